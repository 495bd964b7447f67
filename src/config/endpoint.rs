//! `[[websocket.endpoint]]`: plain WebSocket endpoints (the seeds'
//! `@ServerEndpoint` classes) declared instead of coded.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// The placeholder of `reply` that stands for the text a socket sent.
pub const MESSAGE_PLACEHOLDER: &str = "{message}";

/// One plain WebSocket endpoint: what a socket is sent when it opens and for
/// each message, where its messages go, and which broker destinations reach it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The path, with `{name}` variables as whole segments (`/socket/{id}`).
    pub path: String,
    /// The session's user, from the path variables (`"{id}"`): what `/user`
    /// destinations and `[[acl]]` rules see. A claim, as Spring's path-variable
    /// users are; a handshake token naming someone else is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Text sent to the socket as it opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_open: Option<String>,
    /// Text sent back to the sender for each message; `{message}` is the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Each message is also sent here, as a STOMP SEND would be: a broker
    /// destination, or an `/app` one for a handler or `[[route]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<String>,
    /// Broker destinations whose messages reach the socket, one text frame each.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

impl EndpointConfig {
    /// The names of the path's variables, in order.
    pub fn variables(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }

    /// The path with its variable names erased, for telling overlapping paths apart.
    fn shape(&self) -> String {
        self.path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "{}"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn validate(&self, reserved: &[&str]) -> Result<(), ConfigError> {
        let path = &self.path;
        let invalid = |reason: String| ConfigError::invalid("websocket.endpoint.path", reason);
        if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
            return Err(invalid(format!(
                "{path:?} must start with '/' and not end with one"
            )));
        }
        for segment in path.split('/').skip(1) {
            let variable = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            let bad = match variable {
                Some(name) => {
                    name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || name == "message"
                }
                None => {
                    segment.is_empty()
                        || segment
                            .chars()
                            .any(|c| c.is_whitespace() || c.is_control() || "{}*?".contains(c))
                }
            };
            if bad {
                return Err(invalid(format!(
                    "{path:?}: segment {segment:?} must be a name or a whole {{variable}} (letters, digits, _; not {{message}})"
                )));
            }
        }
        let variables = self.variables();
        if let Some(name) = variables
            .iter()
            .enumerate()
            .find_map(|(index, name)| variables[..index].contains(name).then_some(name))
        {
            return Err(invalid(format!("{path:?} names {{{name}}} twice")));
        }
        let shape = self.shape();
        if let Some(taken) = reserved
            .iter()
            .find(|taken| shape == **taken || shape.starts_with(&format!("{taken}/")))
        {
            return Err(invalid(format!(
                "{path:?} overlaps {taken:?}, which the broker serves"
            )));
        }
        let templates = [
            ("websocket.endpoint.user", self.user.as_deref(), false),
            ("websocket.endpoint.on_open", self.on_open.as_deref(), false),
            ("websocket.endpoint.reply", self.reply.as_deref(), true),
            ("websocket.endpoint.publish", self.publish.as_deref(), false),
        ]
        .into_iter()
        .chain(
            self.subscribe
                .iter()
                .map(|s| ("websocket.endpoint.subscribe", Some(s.as_str()), false)),
        );
        for (key, template, message_allowed) in templates {
            let Some(template) = template else { continue };
            check_placeholders(key, template, &variables, message_allowed)?;
        }
        for (key, destination) in self
            .publish
            .iter()
            .map(|p| ("websocket.endpoint.publish", p))
            .chain(
                self.subscribe
                    .iter()
                    .map(|s| ("websocket.endpoint.subscribe", s)),
            )
        {
            if !destination.starts_with('/') {
                return Err(ConfigError::invalid(
                    key,
                    format!("{destination:?} must start with '/'"),
                ));
            }
        }
        Ok(())
    }
}

/// Every `{name}` in `template` is a path variable (or `{message}` where allowed).
fn check_placeholders(
    key: &'static str,
    template: &str,
    variables: &[&str],
    message_allowed: bool,
) -> Result<(), ConfigError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(ConfigError::invalid(
                key,
                format!("{template:?} has an unclosed '{{'"),
            ));
        };
        let name = &rest[open + 1..open + close];
        let known = variables.contains(&name) || (message_allowed && name == "message");
        if !known {
            let allowed = if message_allowed {
                "a path variable or {message}"
            } else {
                "a path variable"
            };
            return Err(ConfigError::invalid(
                key,
                format!("{template:?}: {{{name}}} is not {allowed}"),
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// Checks every endpoint, and that no two share a path or take one the broker serves.
pub fn validate(endpoints: &[EndpointConfig], reserved: &[&str]) -> Result<(), ConfigError> {
    let mut shapes = Vec::new();
    for endpoint in endpoints {
        endpoint.validate(reserved)?;
        let shape = endpoint.shape();
        if shapes.contains(&shape) {
            return Err(ConfigError::invalid(
                "websocket.endpoint.path",
                format!("{:?} is declared twice", endpoint.path),
            ));
        }
        shapes.push(shape);
    }
    Ok(())
}

/// The seeds' two `@ServerEndpoint` classes, the default endpoints.
pub fn seeds() -> Vec<EndpointConfig> {
    vec![
        EndpointConfig {
            path: "/socket/{id}".into(),
            user: Some("{id}".into()),
            on_open: Some("-连接已建立-".into()),
            reply: Some(MESSAGE_PLACEHOLDER.into()),
            publish: None,
            subscribe: vec!["/chat/single/{id}".into(), "/topic/game_chat".into()],
        },
        EndpointConfig {
            path: "/ws/asset".into(),
            user: None,
            on_open: Some("连接成功".into()),
            reply: Some("收到消息，消息内容：{message}".into()),
            publish: None,
            subscribe: vec!["/topic/asset".into()],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path: &str) -> EndpointConfig {
        EndpointConfig {
            path: path.into(),
            user: None,
            on_open: None,
            reply: None,
            publish: None,
            subscribe: vec![],
        }
    }

    const RESERVED: [&str; 2] = ["/endpoint-websocket", "/api"];

    #[test]
    fn the_seeds_are_valid() {
        validate(&seeds(), &RESERVED).unwrap();
    }

    #[test]
    fn paths_need_whole_variables_and_no_overlap() {
        for bad in [
            "socket",
            "/socket/",
            "/a/{}",
            "/a/x{id}",
            "/a/{id}/{id}",
            "/a/*",
            "/a/{message}",
            "/endpoint-websocket/x",
            "/api",
        ] {
            let error = validate(&[endpoint(bad)], &RESERVED)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("websocket.endpoint.path"),
                "{bad}: {error}"
            );
        }
        let twice = [endpoint("/s/{id}"), endpoint("/s/{name}")];
        assert!(
            validate(&twice, &RESERVED)
                .unwrap_err()
                .to_string()
                .contains("declared twice")
        );
    }

    #[test]
    fn templates_may_name_only_path_variables() {
        let mut e = endpoint("/s/{id}");
        e.subscribe = vec!["/topic/{room}".into()];
        assert!(
            validate(&[e.clone()], &RESERVED)
                .unwrap_err()
                .to_string()
                .contains("{room} is not a path variable")
        );
        e.subscribe = vec!["/topic/{message}".into()];
        assert!(validate(&[e.clone()], &RESERVED).is_err());
        e.subscribe = vec!["topic".into()];
        assert!(
            validate(&[e.clone()], &RESERVED)
                .unwrap_err()
                .to_string()
                .starts_with("websocket.endpoint.subscribe")
        );
        e.subscribe = vec![];
        e.reply = Some("{id} said {message}".into());
        validate(&[e.clone()], &RESERVED).unwrap();
        e.reply = Some("{id".into());
        assert!(
            validate(&[e], &RESERVED)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
    }
}

//! The `/app` handler table: destination templates with `{variables}`, and where
//! each handler's result goes (`@SendTo`, `@SendToUser`, Spring's default, or nowhere).

use super::handler::ErasedHandler;
use std::collections::HashMap;

/// Where a `message_mapping` handler's result is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// Spring's default: the input destination (without the app prefix) under `/topic`.
    Default,
    /// `@SendTo`: a broker destination; `{name}` is replaced by the mapping's variables.
    Broker(String),
    /// `@SendToUser`: the sender's user destination, on all of the user's sessions
    /// or (`broadcast: false`) only on the sending one.
    User {
        destination: String,
        broadcast: bool,
    },
    /// Results are dropped; the handler publishes itself, if at all.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
    /// A last `**`: any number of further segments, none included (as Spring's `/v1/**`).
    Rest,
}

/// A destination template such as `/v1/room/{id}`; variables match one whole
/// segment, and a last `**` segment matches whatever follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err(format!("mapping {text:?} must start with '/'"));
        }
        let parts = text
            .split('/')
            .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                None if segment == "**" => Ok(Part::Rest),
                Some(name) if !name.is_empty() && !name.contains(['{', '}', ':']) => Ok(Part::Variable(name.to_owned())),
                Some(_) => Err(format!("mapping {text:?} has a malformed variable")),
                None if segment.contains(['{', '}', '*', '?']) => {
                    Err(format!("mapping {text:?}: variables must be whole segments; the only wildcard is a last `**` segment"))
                }
                None => Ok(Part::Literal(segment.to_owned())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(rest) = parts.iter().position(|part| *part == Part::Rest)
            && rest != parts.len() - 1
        {
            return Err(format!(
                "mapping {text:?}: `**` may only be the last segment"
            ));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The variables when `path` matches.
    pub fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let mut segments: Vec<&str> = path.split('/').collect();
        if self.parts.last() == Some(&Part::Rest) {
            let fixed = self.parts.len() - 1;
            if segments.len() < fixed {
                return None;
            }
            segments.truncate(fixed);
            segments.push("");
        } else if segments.len() != self.parts.len() {
            return None;
        }
        let mut vars = HashMap::new();
        for (part, segment) in self.parts.iter().zip(segments) {
            match part {
                Part::Literal(literal) if literal == segment => {}
                Part::Variable(name) if !segment.is_empty() => {
                    vars.insert(name.clone(), segment.to_owned());
                }
                Part::Rest => {}
                _ => return None,
            }
        }
        Some(vars)
    }
}

/// Replaces `{name}` placeholders in `text` by `vars`; unknown names stay as they are.
pub fn fill(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

pub struct Mapping {
    pub template: Template,
    pub handler: ErasedHandler,
    pub reply: ReplyTo,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("template", &self.template.as_str())
            .field("reply", &self.reply)
            .finish()
    }
}

impl Mapping {
    /// `@SendTo(destination)`.
    pub fn send_to(&mut self, destination: &str) -> &mut Self {
        self.reply = ReplyTo::Broker(destination.to_owned());
        self
    }

    /// `@SendToUser(destination)`: every session of the sender's user.
    pub fn send_to_user(&mut self, destination: &str) -> &mut Self {
        self.reply = ReplyTo::User {
            destination: destination.to_owned(),
            broadcast: true,
        };
        self
    }

    /// `@SendToUser(destination, broadcast = false)`: only the sending session.
    pub fn send_to_session(&mut self, destination: &str) -> &mut Self {
        self.reply = ReplyTo::User {
            destination: destination.to_owned(),
            broadcast: false,
        };
        self
    }

    /// No reply is published.
    pub fn no_reply(&mut self) -> &mut Self {
        self.reply = ReplyTo::Nothing;
        self
    }
}

/// Handlers by destination, first registered wins on overlap: handlers
/// registered in code, then the `[[route]]` tables (which a reload
/// replaces), then the demo's.
#[derive(Debug, Default)]
pub struct AppRouter {
    pub(crate) messages: Vec<std::sync::Arc<Mapping>>,
    pub(crate) configured: arc_swap::ArcSwap<Vec<std::sync::Arc<Mapping>>>,
    pub(crate) messages_after: Vec<std::sync::Arc<Mapping>>,
    pub(crate) subscriptions: Vec<std::sync::Arc<Mapping>>,
}

fn find(
    list: &[std::sync::Arc<Mapping>],
    path: &str,
) -> Option<(std::sync::Arc<Mapping>, HashMap<String, String>)> {
    list.iter().find_map(|mapping| {
        mapping
            .template
            .matches(path)
            .map(|vars| (mapping.clone(), vars))
    })
}

impl AppRouter {
    /// The `message_mapping` for `path` (the destination without its app prefix).
    pub fn find_message(
        &self,
        path: &str,
    ) -> Option<(std::sync::Arc<Mapping>, HashMap<String, String>)> {
        find(&self.messages, path)
            .or_else(|| find(&self.configured.load(), path))
            .or_else(|| find(&self.messages_after, path))
    }

    /// The `[[route]]` mappings from now on; SENDs already handed to a
    /// handler finish with the one they found.
    pub fn replace_configured(&self, mappings: Vec<std::sync::Arc<Mapping>>) {
        self.configured.store(std::sync::Arc::new(mappings));
    }

    pub fn find_subscription(
        &self,
        path: &str,
    ) -> Option<(std::sync::Arc<Mapping>, HashMap<String, String>)> {
        find(&self.subscriptions, path)
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.configured.load().is_empty()
            && self.messages_after.is_empty()
            && self.subscriptions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_bind_whole_segment_variables() {
        let template = Template::parse("/v1/room/{id}/say").unwrap();
        let vars = template.matches("/v1/room/7/say").unwrap();
        assert_eq!(vars["id"], "7");
        assert!(template.matches("/v1/room/7").is_none());
        assert!(template.matches("/v1/room//say").is_none());
        assert!(Template::parse("/v1/{a").is_err());
        assert!(Template::parse("/v1/x{a}").is_err());
        assert!(Template::parse("v1").is_err());
    }

    #[test]
    fn a_last_double_star_matches_whatever_follows() {
        let template = Template::parse("/v1/{room}/**").unwrap();
        assert_eq!(template.matches("/v1/7").unwrap()["room"], "7");
        assert_eq!(template.matches("/v1/7/say/loud").unwrap()["room"], "7");
        assert!(template.matches("/v1").is_none());
        assert!(template.matches("/v2/7/say").is_none());
        assert!(Template::parse("/v1/**/x").is_err());
        assert!(Template::parse("/v1/a**").is_err());
    }

    #[test]
    fn placeholders_are_filled_from_variables() {
        let vars = HashMap::from([("id".to_owned(), "7".to_owned())]);
        assert_eq!(fill("/topic/room/{id}", &vars), "/topic/room/7");
        assert_eq!(fill("/topic/{other}", &vars), "/topic/{other}");
    }
}

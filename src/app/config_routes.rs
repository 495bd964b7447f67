//! `[[route]]` tables from broker.toml: `/app` destinations forwarded to a broker
//! or user destination without writing a handler.

use super::AppBuilder;
use super::handler::{HandlerError, Message, Payload, TEXT};
use super::router::Template;
use crate::broker::user_destination;
use crate::config::{ConfigError, RouteConfig};
use bytes::Bytes;
use std::borrow::Cow;

async fn forward(message: Message<Bytes>) -> Result<Payload, HandlerError> {
    let content_type = message
        .headers
        .get("content-type")
        .unwrap_or(TEXT)
        .to_owned();
    Ok(Payload {
        body: message.payload,
        content_type: Cow::Owned(content_type),
    })
}

/// Registers one pass-through handler per route; the body and its content type
/// are kept. A route that cannot work is an error naming its key.
pub fn register(
    routes: &[RouteConfig],
    broker_prefixes: &[String],
    app: &mut AppBuilder,
) -> Result<(), ConfigError> {
    for route in routes {
        check(route, broker_prefixes)?;
        let mapping = app.message_mapping(&route.from, forward);
        match (&route.to, &route.to_user) {
            (Some(to), _) => mapping.send_to(to),
            (None, Some(to_user)) if route.all_sessions => mapping.send_to_user(to_user),
            (None, Some(to_user)) => mapping.send_to_session(to_user),
            (None, None) => mapping.no_reply(),
        };
    }
    Ok(())
}

fn check(route: &RouteConfig, broker_prefixes: &[String]) -> Result<(), ConfigError> {
    Template::parse(&route.from).map_err(|reason| ConfigError::invalid("route.from", reason))?;
    match (&route.to, &route.to_user) {
        (Some(to), None) => {
            let target = to.replace(['{', '}'], "");
            let owned = broker_prefixes
                .iter()
                .any(|prefix| target.starts_with(&format!("{prefix}/")));
            if !owned {
                return Err(ConfigError::invalid(
                    "route.to",
                    format!("{to:?} is not under a broker prefix"),
                ));
            }
        }
        (None, Some(to_user)) => {
            if !to_user.starts_with('/') || user_destination::starts_with_user_prefix(to_user) {
                return Err(ConfigError::invalid(
                    "route.to_user",
                    format!("{to_user:?} must start with '/' and not with /user"),
                ));
            }
        }
        _ => {
            return Err(ConfigError::invalid(
                "route",
                format!(
                    "route from {:?} needs exactly one of `to` and `to_user`",
                    route.from
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(toml: &str) -> Result<(), ConfigError> {
        let config = crate::config::Config::parse(toml).expect("scalar checks pass");
        register(
            &config.routes,
            &config.stomp.broker_prefixes,
            &mut AppBuilder::new(),
        )
    }

    #[test]
    fn routes_are_validated() {
        routes("[[route]]\nfrom = \"/v1/echo/{id}\"\nto = \"/topic/echo/{id}\"\n").unwrap();
        let error = routes("[[route]]\nfrom = \"/v1/x\"\nto = \"/queue/x\"\n").unwrap_err();
        assert!(error.to_string().starts_with("route.to"), "{error}");
        let error = routes("[[route]]\nfrom = \"/v1/x\"\n").unwrap_err();
        assert!(error.to_string().contains("exactly one of"), "{error}");
        let error = routes("[[route]]\nfrom = \"/v1/x\"\nto_user = \"/user/q\"\n").unwrap_err();
        assert!(error.to_string().starts_with("route.to_user"), "{error}");
    }
}

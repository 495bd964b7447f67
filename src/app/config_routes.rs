//! `[[route]]` tables from broker.toml: `/app` destinations forwarded to a broker
//! or user destination without writing a handler, or handled by the user's
//! HTTP application (`proxy`).

use super::AppBuilder;
use super::handler::{HandlerError, Message, Payload, TEXT};
use super::router::Template;
use crate::broker::destination::Prefixes;
use crate::broker::user_destination;
use crate::config::{ConfigError, RouteConfig, validate_url};
use crate::proxy::Proxy;
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::Arc;

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
/// are kept. A route with `proxy` calls the application through `proxy` (built
/// whenever a route names one). A route that cannot work is an error naming its key.
pub fn register(
    routes: &[RouteConfig],
    prefixes: (&[String], &[String]),
    proxy: Option<&Arc<Proxy>>,
    app: &mut AppBuilder,
) -> Result<(), ConfigError> {
    let (app_prefixes, broker_prefixes) = prefixes;
    let all_prefixes = Prefixes::new(app_prefixes.to_vec(), broker_prefixes.to_vec());
    let start = app.messages.len();
    for route in routes {
        if let Some(url) = &route.proxy {
            check_proxied(route, url)?;
            let proxy = proxy
                .ok_or_else(|| ConfigError::invalid("route.proxy", "no proxy client was built"))?;
            let handler =
                super::proxied_route::handler(proxy.clone(), url.clone(), all_prefixes.clone());
            app.message_mapping(&route.from, handler).no_reply();
            continue;
        }
        check(route, broker_prefixes)?;
        let mapping = app.message_mapping(&route.from, forward);
        match (&route.to, &route.to_user) {
            (Some(to), _) => mapping.send_to(to),
            (None, Some(to_user)) if route.all_sessions => mapping.send_to_user(to_user),
            (None, Some(to_user)) => mapping.send_to_session(to_user),
            (None, None) => mapping.no_reply(),
        };
    }
    app.configured = start..app.messages.len();
    Ok(())
}

/// The mappings of `routes` alone, for a reload to put in place of the
/// running ones ([`super::router::AppRouter::replace_configured`]).
pub fn mappings(
    routes: &[RouteConfig],
    prefixes: (&[String], &[String]),
    proxy: Option<&Arc<Proxy>>,
) -> Result<Vec<Arc<super::router::Mapping>>, ConfigError> {
    let mut app = AppBuilder::new();
    register(routes, prefixes, proxy, &mut app)?;
    Ok(app.messages.into_iter().map(Arc::new).collect())
}

fn check_proxied(route: &RouteConfig, url: &str) -> Result<(), ConfigError> {
    Template::parse(&route.from).map_err(|reason| ConfigError::invalid("route.from", reason))?;
    validate_url("route.proxy", url)?;
    if route.to.is_some() || route.to_user.is_some() {
        return Err(ConfigError::invalid(
            "route.proxy",
            format!(
                "route from {:?} has a proxy, whose answer says where replies go; remove `to`/`to_user`",
                route.from
            ),
        ));
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
        let proxy = Arc::new(Proxy::new(&config.proxy)?);
        register(
            &config.routes,
            (&config.stomp.app_prefixes, &config.stomp.broker_prefixes),
            Some(&proxy),
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

    #[tokio::test]
    async fn proxied_routes_are_validated() {
        routes("[[route]]\nfrom = \"/v1/**\"\nproxy = \"http://127.0.0.1:3000/stomp/app\"\n")
            .unwrap();
        let error =
            routes("[[route]]\nfrom = \"/v1/x\"\nproxy = \"localhost:3000\"\n").unwrap_err();
        assert!(error.to_string().starts_with("route.proxy"), "{error}");
        let error =
            routes("[[route]]\nfrom = \"/v1/x\"\nproxy = \"http://a/\"\nto = \"/topic/x\"\n")
                .unwrap_err();
        assert!(error.to_string().contains("remove `to`"), "{error}");
    }
}

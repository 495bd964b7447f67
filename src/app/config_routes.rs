//! `[[route]]` tables from broker.toml: `/app` destinations forwarded to a broker
//! or user destination without writing a handler.

use super::AppBuilder;
use super::handler::{HandlerError, Message, Payload, TEXT};
use crate::config::RouteConfig;
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

/// Registers one pass-through handler per route; the body and its content type are kept.
pub fn register(routes: &[RouteConfig], app: &mut AppBuilder) {
    for route in routes {
        let mapping = app.message_mapping(&route.from, forward);
        match (&route.to, &route.to_user) {
            (Some(to), _) => mapping.send_to(to),
            (None, Some(to_user)) if route.all_sessions => mapping.send_to_user(to_user),
            (None, Some(to_user)) => mapping.send_to_session(to_user),
            (None, None) => mapping.no_reply(),
        };
    }
}

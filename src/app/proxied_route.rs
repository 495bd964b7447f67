//! `[[route]] proxy`: an `/app` handler that lives in the user's HTTP
//! application. The SEND goes to it as a `message` call; the replies of its
//! answer are published where each one says.

use super::handler::{BINARY, HandlerError, Message, Payload, TEXT};
use super::session_info::SessionInfo;
use super::template::MessagingTemplate;
use crate::proxy::{Call, Proxy, Reply, ReplyTarget, Request};
use crate::stomp::Headers;
use bytes::Bytes;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A proxied route's handler call: the HTTP exchange and the replies it sends.
type RouteFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// The handler of one proxied route, for [`super::AppBuilder::message_mapping`].
pub fn handler(
    proxy: Arc<Proxy>,
    url: String,
    app_prefixes: Vec<String>,
) -> impl Fn(Message<Bytes>) -> RouteFuture + Send + Sync + 'static {
    let url: Arc<str> = url.into();
    let app_prefixes: Arc<[String]> = app_prefixes.into();
    move |message| {
        let (proxy, url, app_prefixes) = (proxy.clone(), url.clone(), app_prefixes.clone());
        Box::pin(async move { call(&proxy, &url, &app_prefixes, message).await })
    }
}

/// The destination below its application prefix, as `[[route]] from` is written.
fn app_path<'a>(destination: &'a str, app_prefixes: &[String]) -> &'a str {
    app_prefixes
        .iter()
        .find_map(|prefix| {
            destination
                .strip_prefix(prefix.as_str())
                .filter(|rest| rest.starts_with('/'))
        })
        .unwrap_or(destination)
}

/// What the application knows of a session in every call.
pub fn describe_session<'a>(call: Call, session: &'a SessionInfo) -> Request<'a> {
    Request {
        call: call.name(),
        session: &session.id,
        transport: session.attributes.get("transport").map(String::as_str),
        remote: session.remote.map(|remote| remote.to_string()),
        user: session.user.as_deref(),
        roles: &session.roles,
        data: session.data.as_deref(),
        ..Request::default()
    }
}

async fn call(
    proxy: &Proxy,
    url: &str,
    app_prefixes: &[String],
    message: Message<Bytes>,
) -> Result<(), HandlerError> {
    let request = Request {
        headers: Request::frame_headers(&message.headers, &[]),
        destination: Some(&message.destination),
        path: Some(app_path(&message.destination, app_prefixes)),
        vars: Some(&message.vars),
        ..describe_session(Call::Message, &message.session)
    }
    .with_body(&message.payload);
    // Down, slow or garbled, the application cannot handle what this session
    // sends; the session ends with the reason rather than losing messages quietly.
    let answer = proxy
        .ask_route(url, &request)
        .await
        .map_err(|error| HandlerError::fatal(error.to_string()))?;
    if !answer.allow {
        return Err(HandlerError::new(answer.refusal()));
    }
    for reply in answer.replies {
        let destination = reply.destination.clone();
        deliver(&message.template, &message.session, reply).map_err(|why| {
            HandlerError::fatal(format!(
                "route.proxy: the answer of {url} has a reply to {destination:?} that cannot be sent: {why}"
            ))
        })?;
    }
    Ok(())
}

fn deliver(
    template: &MessagingTemplate,
    session: &SessionInfo,
    reply: Reply,
) -> Result<usize, String> {
    let mut headers = Headers::new();
    for (name, value) in reply.content.headers {
        headers.set(&name, value);
    }
    let body = reply.content.body.unwrap_or_default();
    let content_type = match reply.content.content_type {
        Some(content_type) => Cow::Owned(content_type),
        None if std::str::from_utf8(&body).is_ok() => Cow::Borrowed(TEXT),
        None => Cow::Borrowed(BINARY),
    };
    let payload = Payload { body, content_type };
    let sent = match &reply.target {
        ReplyTarget::Destination => template.send(&reply.destination, &headers, payload),
        ReplyTarget::User(user) => {
            template.send_to_user(user, &reply.destination, &headers, payload)
        }
        ReplyTarget::Sender => {
            template.send_to_session(&session.id, &reply.destination, &headers, payload)
        }
    };
    sent.map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::app_path;

    #[test]
    fn the_path_is_below_the_app_prefix() {
        let prefixes = vec!["/app".to_owned(), "/application".to_owned()];
        assert_eq!(app_path("/app/v1/chat", &prefixes), "/v1/chat");
        assert_eq!(app_path("/application/v1/chat", &prefixes), "/v1/chat");
        assert_eq!(app_path("/other/x", &prefixes), "/other/x");
    }
}

//! `[[route]] proxy`: an `/app` handler that lives in the user's HTTP
//! application. The SEND goes to it as a `message` call; the replies of its
//! answer are published where each one says.

use super::handler::{BINARY, HandlerError, Message, Payload, TEXT};
use super::session_info::SessionInfo;
use super::template::{MessagingTemplate, check_user_destination};
use crate::broker::destination::Prefixes;
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
    prefixes: Prefixes,
) -> impl Fn(Message<Bytes>) -> RouteFuture + Send + Sync + 'static {
    let url: Arc<str> = url.into();
    let prefixes = Arc::new(prefixes);
    move |message| {
        let (proxy, url, prefixes) = (proxy.clone(), url.clone(), prefixes.clone());
        Box::pin(async move { call(&proxy, &url, &prefixes, message).await })
    }
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
    prefixes: &Prefixes,
    message: Message<Bytes>,
) -> Result<(), HandlerError> {
    let request = Request {
        headers: Request::frame_headers(&message.headers, &[]),
        destination: Some(&message.destination),
        // As `[[route]] from` is written: below the application prefix.
        path: Some(
            prefixes
                .app_path(&message.destination)
                .unwrap_or(&message.destination),
        ),
        vars: Some(&message.vars),
        ..describe_session(Call::Message, &message.session)
    }
    .with_body(&message.payload);
    // Down, slow or garbled, the application cannot handle what this session
    // sends; the session ends with the reason rather than losing messages quietly.
    let answer = proxy.ask_route(url, &request).await.map_err(|error| {
        tracing::warn!(session = %message.session.id, %error, %url, "call to the application failed");
        HandlerError::fatal(error.to_string())
    })?;
    if !answer.allow {
        return Err(HandlerError::new(answer.refusal()));
    }
    // All or nothing: a reply that cannot be sent is found before any is.
    for reply in &answer.replies {
        check(&message.template, reply).map_err(|why| {
            tracing::warn!(session = %message.session.id, %why, %url, "the application's reply cannot be sent");
            HandlerError::fatal(format!(
                "route.proxy: the application's reply to {:?} cannot be sent: {why}",
                reply.destination
            ))
        })?;
    }
    for reply in answer.replies {
        if let Err(why) = deliver(&message.template, &message.session, reply) {
            tracing::warn!(session = %message.session.id, %why, %url, "the application's reply was not delivered");
        }
    }
    Ok(())
}

/// What the template would refuse about `reply`'s destination.
fn check(template: &MessagingTemplate, reply: &Reply) -> Result<(), String> {
    match reply.target {
        ReplyTarget::Destination => template.check_broker_destination(&reply.destination),
        ReplyTarget::User(_) | ReplyTarget::Sender => check_user_destination(&reply.destination),
    }
    .map_err(|error| error.to_string())
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

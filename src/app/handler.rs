//! Application handlers as plain async functions: what they receive
//! ([`Message`]), how payloads convert ([`Json`], `String`, `Bytes`), and the
//! type-erased form the router stores.

use super::session_info::SessionInfo;
use super::template::MessagingTemplate;
use crate::stomp::Headers;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler receives: the payload, where it was sent, and who sent it.
#[derive(Debug, Clone)]
pub struct Message<T> {
    pub payload: T,
    /// The full destination, e.g. `/app/v1/room/7`.
    pub destination: String,
    /// Values of `{name}` variables in the mapping, e.g. `id` -> `7`.
    pub vars: HashMap<String, String>,
    /// The frame's headers.
    pub headers: Headers,
    /// The sender's session: id, user, handshake attributes.
    pub session: Arc<SessionInfo>,
    /// Publishes from inside the handler (Spring's injected `SimpMessagingTemplate`).
    pub template: MessagingTemplate,
}

/// A handler failure, handed to the exception handler (`@MessageExceptionHandler`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
    /// End the sender's session with an ERROR frame after reporting.
    pub close_session: bool,
}

impl HandlerError {
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            close_session: false,
        }
    }

    /// An error that also ends the sender's session.
    pub fn fatal(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            close_session: true,
        }
    }
}

/// A body with its content type, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub body: Bytes,
    pub content_type: Cow<'static, str>,
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain;charset=UTF-8";
pub const BINARY: &str = "application/octet-stream";

impl Payload {
    /// Serialises `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Payload, HandlerError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| HandlerError::new(format!("cannot serialise reply: {e}")))?;
        Ok(Payload {
            body: Bytes::from(body),
            content_type: Cow::Borrowed(JSON),
        })
    }

    pub fn text(text: impl Into<String>) -> Payload {
        Payload {
            body: Bytes::from(text.into()),
            content_type: Cow::Borrowed(TEXT),
        }
    }
}

/// A JSON payload, in (deserialised with serde) or out (serialised).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

/// Converts a received body into a handler's payload type.
pub trait FromPayload: Sized + Send + 'static {
    fn from_payload(body: &Bytes) -> Result<Self, HandlerError>;
}

impl<T: DeserializeOwned + Send + 'static> FromPayload for Json<T> {
    fn from_payload(body: &Bytes) -> Result<Self, HandlerError> {
        serde_json::from_slice(body)
            .map(Json)
            .map_err(|e| HandlerError::new(format!("payload is not the expected JSON: {e}")))
    }
}

impl FromPayload for String {
    fn from_payload(body: &Bytes) -> Result<Self, HandlerError> {
        String::from_utf8(body.to_vec())
            .map_err(|_| HandlerError::new("payload is not valid UTF-8"))
    }
}

impl FromPayload for Bytes {
    fn from_payload(body: &Bytes) -> Result<Self, HandlerError> {
        Ok(body.clone())
    }
}

/// Converts what a handler returns into the reply; `None` means no reply.
pub trait IntoPayload {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError>;
}

impl<T: Serialize> IntoPayload for Json<T> {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError> {
        Payload::json(&self.0).map(Some)
    }
}

impl IntoPayload for String {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError> {
        Ok(Some(Payload::text(self)))
    }
}

impl IntoPayload for Bytes {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError> {
        Ok(Some(Payload {
            body: self,
            content_type: Cow::Borrowed(BINARY),
        }))
    }
}

impl IntoPayload for Payload {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError> {
        Ok(Some(self))
    }
}

impl IntoPayload for () {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError> {
        Ok(None)
    }
}

impl<T: IntoPayload> IntoPayload for Option<T> {
    fn into_payload(self) -> Result<Option<Payload>, HandlerError> {
        match self {
            Some(inner) => inner.into_payload(),
            None => Ok(None),
        }
    }
}

/// What the router hands a type-erased handler.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub destination: String,
    pub vars: HashMap<String, String>,
    pub headers: Headers,
    pub body: Bytes,
    pub session: Arc<SessionInfo>,
    pub template: MessagingTemplate,
}

pub type HandlerFuture =
    Pin<Box<dyn Future<Output = Result<Option<Payload>, HandlerError>> + Send>>;

/// A stored handler: any `async fn(Message<T>) -> Result<R, HandlerError>`.
pub type ErasedHandler = Arc<dyn Fn(Inbound) -> HandlerFuture + Send + Sync>;

/// Wraps a typed async handler into the stored form.
pub fn erase<T, R, F, Fut>(handler: F) -> ErasedHandler
where
    T: FromPayload,
    R: IntoPayload + 'static,
    F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |inbound: Inbound| {
        let handler = handler.clone();
        Box::pin(async move {
            let payload = T::from_payload(&inbound.body)?;
            let message = Message {
                payload,
                destination: inbound.destination,
                vars: inbound.vars,
                headers: inbound.headers,
                session: inbound.session,
                template: inbound.template,
            };
            handler(message).await?.into_payload()
        })
    })
}

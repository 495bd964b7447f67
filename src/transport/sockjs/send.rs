//! Sending requests (`xhr_send`, `jsonp_send`): the client's messages,
//! handed to its session in order, with the protocol's answers to bad bodies.

use super::http::no_cache;
use super::open::{check_origin, owned};
use super::session::Shared;
use super::{Refused, SockJs, frame, text, valid_ids};
use crate::session::driver::WireError;
use crate::transport::listener::RemoteAddr;
use crate::transport::websocket::message_limit;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub(super) async fn xhr_send(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match send(&sockjs, peer, ids, &headers, body, false).await {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
            no_cache(response.headers_mut());
            response
        }
        Err(refused) => refused.into_response(),
    }
}

pub(super) async fn jsonp_send(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    match send(&sockjs, peer, ids, &headers, body, form).await {
        Ok(()) => {
            let mut response = text(StatusCode::OK, "ok");
            no_cache(response.headers_mut());
            response
        }
        Err(refused) => refused.into_response(),
    }
}

/// Hands the messages of a sending request to its session, in order; the
/// request waits while the session is behind, which slows the client.
async fn send(
    sockjs: &SockJs,
    peer: std::net::SocketAddr,
    (server, session): (String, String),
    headers: &HeaderMap,
    body: Body,
    form: bool,
) -> Result<(), Refused> {
    if !valid_ids(&server, &session) {
        return Err(Refused::not_found());
    }
    let hub = &sockjs.hub;
    check_origin(hub, headers)?;
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(shared) = sockjs.registry.get(&session) else {
        return Err(Refused::not_found());
    };
    let shared = owned(hub, shared, headers, peer)?;
    // Sent while the session ended: dropped, as the protocol says, so that
    // the client learns of the end from its close frame, not a failed send.
    if shared.is_closed() {
        return Ok(());
    }
    let max_frame_size = hub.sessions.rules().codec.max_frame_size;
    let limit = message_limit(max_frame_size);
    let body_limit = send_body_limit(max_frame_size);
    let payload = match axum::body::to_bytes(body, body_limit).await {
        Ok(payload) => payload,
        // The client went away mid-body: nothing to refuse, the session goes on.
        Err(error) if !is_length_limit(&error) => {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                format!("the send's body could not be read: {error}"),
            ));
        }
        Err(_) => {
            let size = header(header::CONTENT_LENGTH)
                .and_then(|v| v.parse().ok())
                .unwrap_or(body_limit + 1);
            return Err(too_large(&shared, size, limit, format!(
                "a SockJS send may carry at most {body_limit} bytes; raise limits.max_frame_size for larger frames"
            ))
            .await);
        }
    };
    let payload = if form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&payload)
            .unwrap_or_default()
            .into_iter()
            .find(|(key, _)| key == "d")
            .map(|(_, value)| value.into_bytes())
            .unwrap_or_default()
    } else {
        payload.to_vec()
    };
    let messages = frame::parse_messages(&payload)
        .map_err(|error| Refused::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    for message in messages {
        if message.len() > limit {
            let size = message.len();
            return Err(too_large(&shared, size, limit, format!(
                "a message of {size} bytes is over the {max_frame_size} bytes of limits.max_frame_size"
            ))
            .await);
        }
        if !shared.deliver(Ok(message)).await {
            break;
        }
    }
    Ok(())
}

/// Whether reading a body failed on its size, not on the connection.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Refuses a send over the size limit and ends its session as WebSocket
/// does for a message too large: an ERROR naming the limit and close 1009.
async fn too_large(shared: &Shared, size: usize, limit: usize, message: String) -> Refused {
    shared
        .deliver(Err(WireError::TooLarge { size, limit }))
        .await;
    Refused::new(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// sockjs-client sends everything queued while a send was under way in one
/// request, so a body holds several frames, each up to six times longer
/// once JSON-escaped: room for a burst, and a bound on a request's memory.
fn send_body_limit(max_frame_size: usize) -> usize {
    message_limit(max_frame_size)
        .saturating_mul(6)
        .max(1024 * 1024)
}

//! Transports: each carries sessions over one kind of connection and is one
//! file here (a [`Wire`] for the session driver plus its opening request), next
//! to the HTTP API. Adding one: a file, a line in `server`, a config section.

mod admin_api;
mod api_access;
pub mod cluster_api;
pub mod endpoint;
pub mod handshake;
pub mod http_api;
mod linger;
pub mod listener;
mod metrics_api;
pub mod sockjs;
pub mod sse;
pub mod tcp;
pub mod tls;
#[cfg(feature = "web")]
pub mod web_assets;
pub mod websocket;

use crate::app::session_info::Handshake;
use crate::hub::Hub;
use crate::proxy::ProxyError;
use crate::session::driver::{self, End, Wire};
use crate::session::{Session, SessionError};
use axum::http::StatusCode;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// Opens a session for `handshake` and runs it over `wire` to its end; it
/// counts in the `connections` of `/api/stats` while it runs.
pub(crate) async fn run_session<W: Wire>(
    hub: &Hub,
    handshake: Handshake,
    wire: W,
    remote: SocketAddr,
) {
    // Opened here, not by the caller: a session held in the caller's future
    // across this call would be stored twice per connection.
    let mut session = hub.sessions.open(handshake);
    tracing::debug!(session = session.id(), %remote, "connected");
    let connections = &hub.lifecycle.connections;
    connections.fetch_add(1, Ordering::Relaxed);
    let end = drive_session(hub, &mut session, wire).await;
    connections.fetch_sub(1, Ordering::Relaxed);
    log_end(&session, remote, &end);
}

/// Runs `session` over `wire` with the hub's rules until either side ends it.
// Not an `async fn`: another generator around the driver's would keep its own
// copy of `wire` for the connection's life.
pub(crate) fn drive_session<'a, W: Wire + 'a>(
    hub: &'a Hub,
    session: &'a mut Session,
    wire: W,
) -> impl Future<Output = End> + Send + 'a {
    let transport = session
        .info()
        .attributes
        .get("transport")
        .map_or("", String::as_str);
    let meter = hub.telemetry.connection(transport);
    driver::drive(
        session,
        wire,
        hub.sessions.rules(),
        &hub.lifecycle.shutdown,
        meter,
    )
}

/// Why a session fed synthetic frames (SSE, plain WebSocket endpoints)
/// could not be opened, as an HTTP status and message.
pub(crate) fn refusal(session: &Session) -> (StatusCode, String) {
    match session.failure() {
        Some(error @ SessionError::AccessDenied(_)) => (StatusCode::FORBIDDEN, error.to_string()),
        Some(error @ SessionError::Auth(_)) => (StatusCode::UNAUTHORIZED, error.to_string()),
        Some(error @ SessionError::AppRefused { .. }) => (StatusCode::FORBIDDEN, error.to_string()),
        // The user's application failed, not the client: a gateway's statuses.
        Some(error @ SessionError::App(ProxyError::Timeout { .. } | ProxyError::Busy { .. })) => {
            (StatusCode::GATEWAY_TIMEOUT, error.to_string())
        }
        Some(error @ SessionError::App(_)) => (StatusCode::BAD_GATEWAY, error.to_string()),
        // The backplane is stalled: the client may try again shortly.
        Some(error @ SessionError::NotLive(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
        Some(error @ SessionError::AppNotAsked { .. }) => {
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        }
        Some(error) => (StatusCode::BAD_REQUEST, error.to_string()),
        None => (
            StatusCode::BAD_REQUEST,
            "the session could not be opened".into(),
        ),
    }
}

/// A slow consumer is worth a warning; every other end is routine.
pub(crate) fn log_end(session: &Session, remote: SocketAddr, end: &End) {
    match end {
        End::SlowConsumer(_) => {
            tracing::warn!(session = session.id(), %remote, reason = %end, "disconnected")
        }
        _ => tracing::debug!(session = session.id(), %remote, reason = %end, "disconnected"),
    }
}

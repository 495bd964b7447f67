//! Receiving requests: opening a session (the handshake of every transport),
//! the `websocket` transport's upgrade, and the HTTP transports that attach
//! to a session to receive its frames.

use super::receiver::{self, Kind};
use super::session::{CacheLimits, HttpWire, Registered, SessionCaps, Shared};
use super::websocket::SockJsWebSocketWire;
use super::{Refused, SockJs, not_found, valid_ids};
use crate::hub::Hub;
use crate::transport::handshake::Admitted;
use crate::transport::listener::RemoteAddr;
use crate::transport::websocket::message_limit;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use std::sync::Arc;

/// The admission of a new SockJS session: the handshake of every transport,
/// with the sub-transport recorded for `/api/sessions` and `/api/stats`.
fn admit(
    hub: &Hub,
    uri: &Uri,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    transport: &'static str,
) -> Result<Admitted, Refused> {
    if hub.is_shutting_down() {
        return Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        ));
    }
    let mut admitted = crate::transport::handshake::run(hub, uri, headers, peer, "sockjs")
        .map_err(|rejection| Refused::new(rejection.status, rejection.message))?;
    admitted
        .handshake
        .attributes
        .insert("sockjs_transport".into(), transport.into());
    Ok(admitted)
}

pub(super) async fn websocket_transport(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path((server, session)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let hub = &sockjs.hub;
    if !hub.settings.sockjs.websocket || !valid_ids(&server, &session) {
        return not_found();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let Admitted {
        handshake,
        remote,
        place,
    } = match admit(hub, &uri, &headers, peer, "websocket") {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let message_limit = message_limit(hub.sessions.rules().codec.max_frame_size);
    let settings = &hub.settings.websocket;
    // JSON escaping may make a STOMP frame up to six times longer (`\u0000`).
    let ws = ws
        .read_buffer_size(settings.read_buffer_size)
        .write_buffer_size(settings.write_buffer_size)
        .max_message_size(message_limit.saturating_mul(6))
        .max_frame_size(message_limit.saturating_mul(6));
    let heartbeat = hub.settings.sockjs.heartbeat();
    let hub = hub.clone();
    let token = hub.lifecycle.tracker.token();
    ws.on_upgrade(move |socket| async move {
        match SockJsWebSocketWire::open(socket, heartbeat, message_limit).await {
            Ok(wire) => crate::transport::run_session(&hub, handshake, wire, remote).await,
            Err(error) => {
                tracing::debug!(%remote, %error, "SockJS WebSocket closed before it opened")
            }
        }
        drop(place);
        drop(token);
    })
}

/// The session `id` names, opened by this request when it is new.
fn find_or_open(
    sockjs: &SockJs,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    transport: &'static str,
) -> Result<Arc<Shared>, Refused> {
    let hub = &sockjs.hub;
    if let Some(shared) = sockjs.registry.get(id) {
        return owned(hub, shared, headers, peer);
    }
    let Admitted {
        handshake,
        remote,
        place,
    } = admit(hub, uri, headers, peer, transport)?;
    let settings = &hub.settings.sockjs;
    let cache = CacheLimits {
        messages: settings.message_cache_size,
        bytes: hub.sessions.queue_limits().soft_bytes,
    };
    let (shared, inbound) = Shared::new(id.to_owned(), remote.ip(), cache);
    // Sessions outlive the requests of polling clients, so the listener's
    // connection caps cannot count them: the registry applies the same numbers.
    let caps = SessionCaps {
        total: hub.admission.max_total(),
        per_client: hub.admission.max_per_ip(),
    };
    match sockjs.registry.insert(&shared, caps) {
        Registered::New => {}
        Registered::Taken(existing) => return owned(hub, existing, headers, peer),
        Registered::Full => {
            tracing::warn!(%remote, limit = caps.total, "SockJS session refused: limit reached");
            return Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} SockJS sessions are open, the most limits.max_connections allows",
                    caps.total
                ),
            ));
        }
        Registered::FullForClient => {
            tracing::warn!(%remote, limit = caps.per_client, "SockJS session refused: per-client limit reached");
            return Err(Refused::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this address holds {} SockJS sessions, the most limits.max_connections_per_ip allows",
                    caps.per_client
                ),
            ));
        }
    }
    let wire = HttpWire::new(
        shared.clone(),
        inbound,
        settings.disconnect_delay(),
        &sockjs.registry,
    );
    let hub = hub.clone();
    let token = hub.lifecycle.tracker.token();
    tokio::spawn(async move {
        crate::transport::run_session(&hub, handshake, wire, remote).await;
        drop(place);
        drop(token);
    });
    Ok(shared)
}

/// `shared`, when the request comes from the address that opened it;
/// otherwise the session is none of this client's: 404, as for an unknown id.
pub(super) fn owned(
    hub: &Hub,
    shared: Arc<Shared>,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
) -> Result<Arc<Shared>, Refused> {
    let client = crate::transport::handshake::client_addr(hub, headers, peer).client();
    if client.ip() == shared.owner {
        Ok(shared)
    } else {
        tracing::warn!(%client, owner = %shared.owner, "SockJS request for another address's session refused");
        Err(Refused::not_found())
    }
}

/// `server.allowed_origins`, as for the WebSocket endpoint.
pub(super) fn check_origin(hub: &Hub, headers: &HeaderMap) -> Result<(), Refused> {
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    hub.origins
        .check(header(header::ORIGIN), header(header::HOST))
        .map_err(|message| Refused::new(StatusCode::FORBIDDEN, message))
}

/// A receiving request: frames of the session, opened here if it is new.
fn receive(
    sockjs: &SockJs,
    peer: std::net::SocketAddr,
    (server, session): (String, String),
    uri: &Uri,
    headers: &HeaderMap,
    kind: Kind,
) -> Response {
    if !valid_ids(&server, &session) {
        return not_found();
    }
    // Every request of a session, not only the one that opened it.
    if let Err(refused) = check_origin(&sockjs.hub, headers) {
        return refused.into_response();
    }
    let shared = match find_or_open(sockjs, &session, uri, headers, peer, kind.name()) {
        Ok(shared) => shared,
        Err(refused) => return refused.into_response(),
    };
    let settings = &sockjs.hub.settings.sockjs;
    match shared.receive() {
        Ok(receiving) => receiver::stream(
            kind,
            receiving,
            settings.heartbeat(),
            settings.stream_bytes_limit,
        ),
        Err(closed) => receiver::refuse(&kind, closed),
    }
}

/// The route of a receiving transport (`method` is GET or POST); `kind`
/// reads the transport, and its parameters, from the URL.
pub(super) fn receiving(
    method: MethodFilter,
    kind: fn(&Uri) -> Result<Kind, Refused>,
) -> MethodRouter<Arc<SockJs>> {
    let handler = move |State(sockjs): State<Arc<SockJs>>,
                        ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
                        Path(ids): Path<(String, String)>,
                        uri: Uri,
                        headers: HeaderMap| {
        std::future::ready(match kind(&uri) {
            Ok(kind) => receive(&sockjs, peer, ids, &uri, &headers, kind),
            Err(refused) => refused.into_response(),
        })
    };
    on(method, handler)
}

/// The `c` query parameter the script transports call back; a 500 naming
/// the problem otherwise, as sockjs-protocol asks.
pub(super) fn callback(uri: &Uri) -> Result<String, Refused> {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let callback = query
        .into_iter()
        .find(|(key, _)| key == "c")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            Refused::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "\"callback\" parameter required",
            )
        })?;
    if !receiver::valid_callback(&callback) {
        return Err(Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid \"callback\" parameter",
        ));
    }
    Ok(callback)
}

//! The opening request of any transport: the client's address (behind a
//! trusted proxy, the one it forwarded, with that client's per-address place),
//! the origin check, a bearer token from the query string or `Authorization`
//! header, then the interceptor chain. A connection without HTTP (STOMP over
//! TCP) has only the address and the interceptors.

use crate::app::interceptor::{HandshakeRequest, Rejection, RequestHeaders};
use crate::app::session_info::Handshake;
use crate::hub::Hub;
use crate::security::connections::ClientPlace;
use crate::security::origin::OriginPolicy;
use crate::security::proxies::ClientAddr;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use std::net::SocketAddr;
use tower_http::cors::AllowOrigin;

/// A handshake that passed.
#[derive(Debug)]
pub struct Admitted {
    pub handshake: Handshake,
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    pub remote: SocketAddr,
    /// A client behind a trusted proxy holds its per-address place while its
    /// session lasts; hold this as long.
    pub place: Option<ClientPlace>,
}

/// Finds the client's address, checks the origin and any bearer token,
/// assigns a session id and runs every interceptor; a rejection is the HTTP
/// answer to give.
/// The client of a request: the peer, or the one a trusted proxy forwarded.
pub fn client_addr(hub: &Hub, headers: &HeaderMap, peer: SocketAddr) -> ClientAddr {
    let all = |name: &'static str| {
        headers
            .get_all(name)
            .into_iter()
            .filter_map(|value| value.to_str().ok())
    };
    hub.proxies
        .client(peer, all("forwarded"), all("x-forwarded-for"))
}

pub fn run(
    hub: &Hub,
    uri: &Uri,
    headers: &HeaderMap,
    peer: SocketAddr,
    transport: &str,
) -> Result<Admitted, Rejection> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let client = client_addr(hub, headers, peer);
    let remote = client.client();
    match &client {
        ClientAddr::Direct(_) => {}
        ClientAddr::Forwarded { header, .. } => {
            tracing::debug!(%remote, proxy = %peer, %header, "client address forwarded by a trusted proxy");
        }
        ClientAddr::Unnamed { reason, .. } => {
            tracing::debug!(proxy = %peer, %reason, "a trusted proxy named no client; counting the proxy as the client");
        }
    }
    let place = client_place(hub, client.through_proxy(), remote, peer, transport)?;
    if let Err(message) = hub.origins.check(header("origin"), header("host")) {
        tracing::warn!(%remote, %transport, reason = %message, "handshake refused");
        hub.telemetry.refused("origin");
        return Err(Rejection::new(StatusCode::FORBIDDEN, message));
    }
    let mut handshake = new_handshake(hub, remote, transport);
    if let Some(proxy) = &hub.app.settings.proxy
        && proxy.judges_connect()
    {
        // A header sent more than once (cookies may be) is joined, as HTTP allows.
        let joined = |name: &str| {
            let separator = if name == "cookie" { "; " } else { ", " };
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(separator))
        };
        handshake.http_headers = proxy
            .http_headers()
            .iter()
            .filter_map(|name| Some((name.clone(), joined(name)?)))
            .collect();
    }
    let request = HandshakeRequest {
        path: uri.path(),
        query_string: uri.query(),
        headers,
        remote,
    };
    let auth = hub.auth();
    // Parsing the query string is only worth it when tokens are checked.
    let query_token = auth
        .accepts_tokens()
        .then(|| request.query(auth.query_parameter()))
        .flatten();
    match auth.handshake(query_token.as_deref(), header("authorization")) {
        Ok(Some(identity)) => {
            handshake.user = identity.user;
            handshake.roles = identity.roles;
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%remote, %transport, reason = %error, "handshake refused");
            hub.telemetry.refused("token");
            return Err(Rejection::new(StatusCode::UNAUTHORIZED, error.to_string()));
        }
    }
    intercept(hub, &request, &mut handshake)?;
    Ok(Admitted {
        handshake,
        remote,
        place,
    })
}

/// No headers: what interceptors see of a connection without HTTP.
const NO_HEADERS: [(&str, &str); 0] = [];

/// The opening of a connection without HTTP (STOMP over TCP): the client is
/// `named` by the peer's PROXY header, or is the peer. There is no origin to
/// check and no token (credentials come with CONNECT); the interceptors see
/// an empty path and no query or headers.
pub fn run_stream(
    hub: &Hub,
    peer: SocketAddr,
    named: Option<SocketAddr>,
    transport: &str,
) -> Result<Admitted, Rejection> {
    let remote = named.unwrap_or(peer);
    if named.is_some() {
        tracing::debug!(%remote, proxy = %peer, "client address named by a PROXY header");
    }
    let through_proxy = hub.proxies.trusts(peer.ip());
    let place = client_place(hub, through_proxy, remote, peer, transport)?;
    let mut handshake = new_handshake(hub, remote, transport);
    let request = HandshakeRequest {
        path: "",
        query_string: None,
        headers: &NO_HEADERS,
        remote,
    };
    intercept(hub, &request, &mut handshake)?;
    Ok(Admitted {
        handshake,
        remote,
        place,
    })
}

/// The per-address place of a client behind a trusted proxy, taken first,
/// before any work is spent on it: the cap the listener could not apply to
/// a proxy's connection.
fn client_place(
    hub: &Hub,
    through_proxy: bool,
    remote: SocketAddr,
    peer: SocketAddr,
    transport: &str,
) -> Result<Option<ClientPlace>, Rejection> {
    if !through_proxy {
        return Ok(None);
    }
    match hub.admission.admit_client(remote.ip()) {
        Ok(place) => Ok(Some(place)),
        Err(refused) => {
            tracing::warn!(%remote, proxy = %peer, %transport, reason = %refused, "handshake refused");
            // 429, not the listener's 503: a proxy told to try the next
            // server on a 503 (nginx's `proxy_next_upstream http_503`) would
            // turn a per-client cap into one per node.
            Err(Rejection::new(
                StatusCode::TOO_MANY_REQUESTS,
                refused.to_string(),
            ))
        }
    }
}

/// A fresh session id, the client's address and the transport's name.
fn new_handshake(hub: &Hub, remote: SocketAddr, transport: &str) -> Handshake {
    let mut handshake = Handshake {
        session: hub.sessions.next_id(),
        remote: Some(remote),
        ..Handshake::default()
    };
    handshake
        .attributes
        .insert("transport".into(), transport.into());
    handshake
}

/// The application's interceptors, in order; the first refusal wins.
fn intercept(
    hub: &Hub,
    request: &HandshakeRequest<'_>,
    handshake: &mut Handshake,
) -> Result<(), Rejection> {
    for interceptor in &hub.app.handshake {
        if let Err(rejection) = interceptor.before(request, handshake) {
            tracing::info!(remote = %request.remote, status = %rejection.status, reason = %rejection.message, "handshake rejected");
            hub.telemetry.refused("handshake-interceptor");
            return Err(rejection);
        }
    }
    for interceptor in &hub.app.handshake {
        interceptor.after(request, handshake);
    }
    Ok(())
}

/// The CORS `Access-Control-Allow-Origin` rule of every transport: the
/// origins `server.allowed_origins` admits, same-origin pages included.
pub fn allowed_origins(origins: OriginPolicy) -> AllowOrigin {
    AllowOrigin::predicate(move |origin: &HeaderValue, request: &Parts| {
        let host = request.headers.get("host").and_then(|v| v.to_str().ok());
        origin
            .to_str()
            .is_ok_and(|origin| origins.allows(origin, host))
    })
}

impl RequestHeaders for HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

impl axum::response::IntoResponse for Rejection {
    fn into_response(self) -> axum::response::Response {
        (self.status, self.message).into_response()
    }
}

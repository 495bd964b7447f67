//! The opening request of any transport: the origin check, a bearer token from
//! the query string or `Authorization` header, then the interceptor chain.

use crate::app::interceptor::{HandshakeRequest, Rejection, RequestHeaders};
use crate::app::session_info::Handshake;
use crate::hub::Hub;
use axum::http::{HeaderMap, StatusCode, Uri};
use std::net::SocketAddr;

/// Checks the origin and any bearer token, assigns a session id and runs every
/// interceptor; a rejection is the HTTP answer to give.
pub fn run(
    hub: &Hub,
    uri: &Uri,
    headers: &HeaderMap,
    remote: SocketAddr,
    transport: &str,
) -> Result<Handshake, Rejection> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(message) = hub.origins.check(header("origin"), header("host")) {
        tracing::warn!(%remote, %transport, reason = %message, "handshake refused");
        return Err(Rejection::new(StatusCode::FORBIDDEN, message));
    }
    let mut handshake = Handshake {
        session: hub.sessions.next_id(),
        remote: Some(remote),
        ..Handshake::default()
    };
    handshake
        .attributes
        .insert("transport".into(), transport.into());
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
            return Err(Rejection::new(StatusCode::UNAUTHORIZED, error.to_string()));
        }
    }
    for interceptor in &hub.app.handshake {
        if let Err(rejection) = interceptor.before(&request, &mut handshake) {
            tracing::info!(%remote, status = %rejection.status, reason = %rejection.message, "handshake rejected");
            return Err(rejection);
        }
    }
    for interceptor in &hub.app.handshake {
        interceptor.after(&request, &handshake);
    }
    Ok(handshake)
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

//! Runs the handshake interceptor chain for any transport's opening request.

use crate::app::interceptor::{HandshakeRequest, Rejection};
use crate::app::session_info::Handshake;
use crate::server::ServerState;
use axum::http::{HeaderMap, Uri};
use std::net::SocketAddr;

/// Assigns a session id and runs every interceptor; a rejection is the HTTP answer to give.
pub fn run(
    state: &ServerState,
    uri: &Uri,
    headers: &HeaderMap,
    remote: SocketAddr,
    transport: &str,
) -> Result<Handshake, Rejection> {
    let mut handshake = Handshake {
        session: state.next_session_id(),
        remote: Some(remote),
        ..Handshake::default()
    };
    handshake
        .attributes
        .insert("transport".into(), transport.into());
    let request = HandshakeRequest {
        uri,
        headers,
        remote,
    };
    for interceptor in &state.app.handshake {
        if let Err(rejection) = interceptor.before(&request, &mut handshake) {
            tracing::info!(%remote, status = %rejection.status, reason = %rejection.message, "handshake rejected");
            return Err(rejection);
        }
    }
    for interceptor in &state.app.handshake {
        interceptor.after(&request, &handshake);
    }
    Ok(handshake)
}

impl axum::response::IntoResponse for Rejection {
    fn into_response(self) -> axum::response::Response {
        (self.status, self.message).into_response()
    }
}

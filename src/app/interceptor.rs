//! Interceptors: the handshake chain (Spring's `HandshakeInterceptor`) and channel
//! interceptors on inbound frames and outbound messages (`ChannelInterceptor`).

use super::session_info::{Handshake, SessionInfo, session_id_text};
pub use crate::broker::hooks::OutboundMessage;
use crate::broker::hooks::PublishHook;
use crate::stomp::Frame;
use axum::http::StatusCode;
use std::net::SocketAddr;
use std::sync::Arc;

/// The headers of an opening request, whatever transport carried it.
pub trait RequestHeaders: Sync {
    /// The first value of header `name` (case-insensitive), if it is text.
    fn header(&self, name: &str) -> Option<&str>;
}

/// Name-value pairs, for transports (and tests) without an HTTP header map.
impl<const N: usize> RequestHeaders for [(&str, &str); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }
}

/// The request that opens a connection, as interceptors see it: an HTTP upgrade
/// or stream request today, described without HTTP types so that any transport
/// can hand one over.
pub struct HandshakeRequest<'a> {
    /// The request path (`/endpoint-websocket`).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query_string: Option<&'a str>,
    pub headers: &'a dyn RequestHeaders,
    pub remote: SocketAddr,
}

impl std::fmt::Debug for HandshakeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeRequest")
            .field("path", &self.path)
            .field("query_string", &self.query_string)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl HandshakeRequest<'_> {
    /// A query-string parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(self.query_string?).ok()?;
        pairs
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.header(name)
    }
}

/// Refuses a handshake with a status and a message: the HTTP answer of an
/// HTTP transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub message: String,
}

impl Rejection {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

pub trait HandshakeInterceptor: Send + Sync {
    /// May set attributes and the user, or refuse the upgrade.
    fn before(
        &self,
        request: &HandshakeRequest<'_>,
        handshake: &mut Handshake,
    ) -> Result<(), Rejection> {
        let _ = (request, handshake);
        Ok(())
    }

    /// Observes an accepted handshake.
    fn after(&self, request: &HandshakeRequest<'_>, handshake: &Handshake) {
        let _ = (request, handshake);
    }
}

/// Always first in the chain: records what the seeds' `HttpHandShakeIntecepter` did
/// (the session id) plus the remote address, user agent and origin.
#[derive(Debug, Default)]
pub struct SessionIdInterceptor;

impl HandshakeInterceptor for SessionIdInterceptor {
    fn before(
        &self,
        request: &HandshakeRequest<'_>,
        handshake: &mut Handshake,
    ) -> Result<(), Rejection> {
        let attributes = &mut handshake.attributes;
        attributes.insert("sessionId".into(), session_id_text(handshake.session));
        attributes.insert("remoteAddress".into(), request.remote.to_string());
        for (header, attribute) in [("user-agent", "userAgent"), ("origin", "origin")] {
            if let Some(value) = request.header(header) {
                attributes.insert(attribute.into(), value.to_owned());
            }
        }
        Ok(())
    }
}

pub trait ChannelInterceptor: Send + Sync {
    /// Sees every frame a client sends, after decoding; return `None` to drop it.
    fn inbound(&self, session: &SessionInfo, frame: Frame) -> Option<Frame> {
        let _ = session;
        Some(frame)
    }

    /// Sees every message once before fan-out; return `None` to drop it.
    fn outbound(&self, message: OutboundMessage) -> Option<OutboundMessage> {
        Some(message)
    }
}

/// The broker's publish hook for a channel interceptor's `outbound` side:
/// the broker knows nothing of sessions and inbound frames.
pub(crate) struct PublishSide(pub(crate) Arc<dyn ChannelInterceptor>);

impl PublishHook for PublishSide {
    fn outbound(&self, message: OutboundMessage) -> Option<OutboundMessage> {
        self.0.outbound(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded() {
        let headers = [("Origin", "http://a.test")];
        let request = HandshakeRequest {
            path: "/endpoint",
            query_string: Some("user=%E7%8E%A9%E5%AE%B6+1&empty="),
            headers: &headers,
            remote: "127.0.0.1:1".parse().unwrap(),
        };
        assert_eq!(request.query("user").as_deref(), Some("玩家 1"));
        assert_eq!(request.query("empty").as_deref(), Some(""));
        assert_eq!(request.query("missing"), None);
        assert_eq!(request.header("origin"), Some("http://a.test"));
    }
}

//! Transports: each carries sessions over one kind of connection, plus the HTTP API.

pub mod cluster_api;
pub mod handshake;
pub mod http_api;
pub mod listener;
pub mod sse;
pub mod tls;
pub mod websocket;

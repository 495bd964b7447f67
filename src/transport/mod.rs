//! Transports: each carries sessions over one kind of connection, plus the HTTP API.

pub mod http_api;
pub mod listener;
pub mod websocket;

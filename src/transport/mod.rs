//! Transports: each carries sessions over one kind of connection.

pub mod websocket;

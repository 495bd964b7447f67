//! stomphub: a STOMP-over-WebSocket message broker.
//!
//! Layout, from the wire inwards:
//! - [`stomp`] turns bytes into [`stomp::Frame`]s and back, with limits and typed errors.
//! - [`session`] is one client's protocol state machine, independent of the transport,
//!   with its bounded outbound queue.
//! - [`app`] is the Spring programming model: `/app` handlers, user destinations,
//!   `MessagingTemplate`, events and interceptors.
//! - [`broker`] routes published messages to subscriptions (exact and Ant patterns).
//! - [`transport`] carries sessions: WebSocket today.
//! - [`server`] wires the HTTP router, listening and graceful shutdown.
//! - [`cluster`] shares the broker between nodes through Redis (`[cluster]`).
//! - [`config`] is `broker.toml`.

pub mod app;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod hub;
pub mod security;
pub mod server;
pub mod session;
pub mod stomp;
pub mod transport;

#[doc(hidden)]
pub mod testing;

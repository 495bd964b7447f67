//! stomphub: a STOMP message broker for pushing to browsers, over WebSocket and
//! server-sent events, with Spring's programming model.
//!
//! # Map of the crate
//! Layers, each importing only those above it in this list
//! (`scripts/check-module-graph.py` enforces it):
//! - `stomp`: frames, the incremental decoder, the encoder, limits, typed errors;
//!   `telemetry`: the Prometheus metrics, below everything that records into them.
//! - `config`: `broker.toml` as plain serde data with scalar checks.
//! - `broker`: destinations (including the `/user` syntax), the subscription
//!   registry, history, outbound queues, publish hooks, and the `Remote` trait
//!   through which other nodes are reached.
//! - `security` (authentication, ACLs, origins, connection caps, client
//!   addresses behind trusted proxies) and `cluster`
//!   (the Redis backplane, a client of the broker).
//! - `proxy`: calls to the user's HTTP application (connect, subscribe, publish,
//!   `/app` routes), with the JSON contract of docs/proxy.md.
//! - `app`: handlers, `MessagingTemplate`, events, interceptors, users.
//! - `session`: one client's STOMP state machine, and the driver that runs it over
//!   any transport with every timing and policy rule of a connection.
//! - `hub`: what transports and HTTP handlers share.
//! - `transport`: one file per transport (WebSocket, SSE) and the HTTP API.
//! - `server`: builds the configuration into runtime parts once, routes, listens,
//!   shuts down.
//!
//! # Public API
//! Run a [`Server`] from a [`Config`] (parsed from `broker.toml` or built in code)
//! and an [`AppBuilder`] holding handlers (`@MessageMapping`), event listeners and
//! interceptors; publish from anywhere with the [`MessagingTemplate`]. The
//! [`stomp`] codec and the [`config`] types are public too.

pub(crate) mod app;
pub(crate) mod broker;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod demo;
pub(crate) mod hub;
pub(crate) mod proxy;
pub(crate) mod security;
pub(crate) mod server;
pub(crate) mod session;
pub mod stomp;
pub(crate) mod telemetry;
pub(crate) mod transport;

#[doc(hidden)]
pub mod testing;

pub use app::AppBuilder;
pub use app::events::{Event, EventKind};
pub use app::handler::{FromPayload, HandlerError, IntoPayload, Json, Message, Payload};
pub use app::interceptor::{
    ChannelInterceptor, HandshakeInterceptor, HandshakeRequest, OutboundMessage, Rejection,
    RequestHeaders,
};
pub use app::router::{Mapping, ReplyTo};
pub use app::session_info::{Handshake, SessionInfo};
pub use app::socket::{Socket, SocketHandler};
pub use app::template::{MessagingTemplate, TemplateError};
pub use config::{Config, ConfigError};
pub use hub::{ReloadError, ReloadReport};
pub use security::password::{hash as hash_password, verify as verify_password};
pub use server::{
    LogLevelHook, Reloader, Server, ServerError, ShutdownHandle, check as check_config,
    raise_open_file_limit, shutdown_signal,
};

//! What transports and HTTP handlers share, in parts a handler can take on its
//! own with axum's `FromRef` (`State<MessagingTemplate>`)
//! instead of the whole hub. Built once by the server from the configuration.

use crate::app::AppRuntime;
use crate::app::template::MessagingTemplate;
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::config::{SockJsConfig, SseConfig, WebSocketConfig};
use crate::security::Authenticator;
use crate::security::connections::Admission;
use crate::security::origin::OriginPolicy;
use crate::security::proxies::TrustedProxies;
use crate::session::Sessions;
use crate::telemetry::Telemetry;
use axum::extract::FromRef;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug)]
pub struct Hub {
    /// Handlers, the template, events, interceptors, users and the session directory.
    pub app: Arc<AppRuntime>,
    /// Opens sessions and holds the rules every connection runs with.
    pub sessions: Sessions,
    pub lifecycle: Lifecycle,
    /// Caps on TCP connections; its counts feed `/api/stats`.
    pub admission: Arc<Admission>,
    /// `server.trusted_proxies`: whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
    pub origins: OriginPolicy,
    /// The backplane to other nodes, with `[cluster]`.
    pub cluster: Option<Arc<Cluster>>,
    pub settings: TransportSettings,
    /// `GET /metrics`: what connections record, rendered with what is counted elsewhere.
    pub telemetry: Arc<Telemetry>,
}

/// Stopping: the shutdown signal, the tasks a graceful stop waits for, and
/// how many STOMP connections are open.
#[derive(Debug, Default)]
pub struct Lifecycle {
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub connections: AtomicUsize,
}

/// The configuration sections the transports read.
#[derive(Debug, Clone)]
pub struct TransportSettings {
    pub websocket: WebSocketConfig,
    pub sse: SseConfig,
    pub sockjs: SockJsConfig,
    /// How often a transport without STOMP heart-beats (plain WebSocket
    /// endpoints) pings an idle client: `stomp.heartbeat`'s sending interval.
    pub ping_every: Option<std::time::Duration>,
    /// `[api]`: the tokens of the HTTP API and whether it is open to all.
    pub api: crate::config::ApiConfig,
}

impl Hub {
    pub fn broker(&self) -> &Broker {
        &self.app.broker
    }

    /// Checks handshake tokens and CONNECT credentials.
    pub fn auth(&self) -> &Authenticator {
        &self.app.settings.auth
    }

    pub fn is_shutting_down(&self) -> bool {
        self.lifecycle.shutdown.is_cancelled()
    }
}

impl FromRef<Arc<Hub>> for MessagingTemplate {
    fn from_ref(hub: &Arc<Hub>) -> Self {
        hub.app.template.clone()
    }
}

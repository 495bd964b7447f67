//! What transports and HTTP handlers share, in parts a handler can take on its
//! own with axum's `FromRef` (`State<MessagingTemplate>`)
//! instead of the whole hub. Built once by the server from the configuration.

use crate::app::AppRuntime;
use crate::app::template::MessagingTemplate;
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::config::{Config, ConfigError, SockJsConfig, SseConfig, WebSocketConfig};
use crate::security::Authenticator;
use crate::security::connections::Admission;
use crate::security::origin::OriginPolicy;
use crate::security::proxies::TrustedProxies;
use crate::session::Sessions;
use crate::telemetry::Telemetry;
use axum::extract::FromRef;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock};
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
    /// `SIGHUP` and `POST /api/reload`: where the configuration is read from
    /// and how the server takes it on.
    pub reloading: Reloading,
}

/// What a reload changed, and what it left for a restart.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// Sections in force now, for new frames and connections.
    pub applied: Vec<&'static str>,
    /// Keys that differ from the running configuration but take a restart.
    pub needs_restart: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(
        "this server was not started from a configuration file, so there is nothing to read again"
    )]
    NoSource,
    /// The file does not parse or validate; nothing changed.
    #[error("{0}; nothing was changed")]
    Config(#[from] ConfigError),
}

pub type ConfigSource = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;
pub type ApplyConfig = Box<dyn Fn(&Hub, Config) -> Result<ReloadReport, ConfigError> + Send + Sync>;

/// Set once by the server (how to apply) and by whoever started it from a
/// file (where to read); reloads run one at a time.
#[derive(Default)]
pub struct Reloading {
    pub source: OnceLock<ConfigSource>,
    pub apply: OnceLock<ApplyConfig>,
    one_at_a_time: Mutex<()>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("has_source", &self.source.get().is_some())
            .finish()
    }
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
    /// `[api]`: the tokens of the HTTP API and whether it is open to all;
    /// replaced by a reload.
    pub api: Arc<arc_swap::ArcSwap<crate::config::ApiConfig>>,
}

impl Hub {
    pub fn broker(&self) -> &Broker {
        &self.app.broker
    }

    /// Checks handshake tokens and CONNECT credentials, as configured now.
    pub fn auth(&self) -> Arc<Authenticator> {
        self.app.settings.auth.load_full()
    }

    /// Reads the configuration again and takes on what can change while
    /// running; a file that fails validation changes nothing.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one = self
            .reloading
            .one_at_a_time
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (Some(source), Some(apply)) = (self.reloading.source.get(), self.reloading.apply.get())
        else {
            return Err(ReloadError::NoSource);
        };
        let outcome = source().and_then(|config| apply(self, config));
        match &outcome {
            Ok(report) => tracing::info!(
                applied = ?report.applied,
                needs_restart = ?report.needs_restart,
                "configuration reloaded"
            ),
            Err(error) => tracing::warn!(%error, "configuration not reloaded; nothing changed"),
        }
        outcome.map_err(ReloadError::from)
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

//! Wiring: builds the runtime parts from the configuration (`build`), the HTTP
//! router (WebSocket endpoint, SSE, API, static files), listens (HTTP, and
//! STOMP over TCP with `[tcp]`), and shuts down gracefully (stop accepting,
//! flush and close sessions, bounded wait).

mod build;
mod open_files;
mod reload;

pub use reload::LogLevelHook;

pub use build::check;
pub use open_files::raise_open_file_limit;

use crate::app::AppBuilder;
use crate::app::template::MessagingTemplate;
use crate::config::{Config, ConfigError};
use crate::hub::{Hub, ReloadError, ReloadReport};
use crate::security::origin::OriginPolicy;
use crate::transport::listener::{GuardedListener, ListenerSettings, RemoteAddr};
use crate::transport::tcp::TcpSettings;
use crate::transport::{endpoint, http_api, sockjs, sse, websocket};
use axum::Router;
use axum::http::{HeaderName, Method, header};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The `[tcp]` listener's address cannot be bound.
    #[error("tcp.bind: cannot listen on {addr}: {source}")]
    BindTcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    /// The configuration names something that cannot be used: a bad entry, a
    /// key or certificate file.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The hub a configuration builds, without listening (for the fuzz targets).
pub(crate) fn build_hub(config: &Config, app: AppBuilder) -> Result<Arc<Hub>, ConfigError> {
    build::build(config, app).map(|built| built.hub)
}

fn router(hub: Arc<Hub>, config: &Config) -> Router {
    let web_root = config.server.web_root.clone();
    // Browsers may read the API and SSE streams from the origins the WebSocket admits.
    let mut cross_origin = http_api::routes();
    if config.sse.enabled {
        cross_origin = cross_origin.merge(sse::routes());
    }
    let mut router = if config.sockjs.enabled {
        sockjs::routes(hub.clone(), &config.stomp.endpoint)
    } else {
        Router::new().route(&config.stomp.endpoint, get(websocket::upgrade))
    }
    .merge(cross_origin.layer(cors(hub.origins.clone())));
    if config.demo.enabled {
        router = router.merge(crate::demo::http_routes());
    }
    router = router.merge(endpoint::routes(&hub.settings.websocket.endpoints));
    router = serve_pages(router, &web_root);
    if config.sockjs.enabled {
        router = sockjs::guard_session_urls(router, &config.stomp.endpoint);
    }
    // The access log: a line per request (method, path, status, latency) at DEBUG.
    // The path only: query strings carry tokens (`?token=`, `?access_token=`).
    let access_log = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(|request: &axum::http::Request<_>| {
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        })
        .on_response(
            tower_http::trace::DefaultOnResponse::new()
                .level(tracing::Level::DEBUG)
                .latency_unit(tower_http::LatencyUnit::Micros),
        );
    router.layer(access_log).with_state(hub)
}

/// `/`: the folder `server.web_root` names, or the pages built into the binary.
fn serve_pages(router: Router<Arc<Hub>>, web_root: &std::path::Path) -> Router<Arc<Hub>> {
    if !web_root.as_os_str().is_empty() {
        if !web_root.is_dir() {
            tracing::warn!(web_root = %web_root.display(), "server.web_root is not a directory; no pages are served");
        }
        return router
            .fallback_service(ServeDir::new(web_root).append_index_html_on_directories(true));
    }
    #[cfg(feature = "web")]
    if crate::transport::web_assets::available() {
        return router.fallback(crate::transport::web_assets::serve);
    }
    tracing::warn!(
        "no pages are built in (the `web` feature, and web/ at build time): set server.web_root to serve a folder"
    );
    router
}

/// CORS answers for the origins `server.allowed_origins` admits.
fn cors(origins: OriginPolicy) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(crate::transport::handshake::allowed_origins(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(Duration::from_secs(600))
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    hub: Arc<Hub>,
    config: Config,
    tls: Option<TlsAcceptor>,
    listener_settings: ListenerSettings,
    /// The STOMP-over-TCP listener, with `[tcp]`.
    tcp: Option<(TcpListener, TcpSettings)>,
    log_level: Arc<std::sync::OnceLock<LogLevelHook>>,
}

/// Reloads a running server's configuration (`SIGHUP` in the binary).
#[derive(Clone, Debug)]
pub struct Reloader(Arc<Hub>);

impl Reloader {
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.0.reload()
    }
}

/// Triggers shutdown from anywhere (tests, signal handlers).
#[derive(Clone, Debug)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

impl Server {
    /// A server with no application handlers: the broker alone.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        Server::bind_with(config, AppBuilder::new()).await
    }

    /// A server running the handlers, listeners and interceptors of `app`.
    pub async fn bind_with(config: Config, app: AppBuilder) -> Result<Server, ServerError> {
        let addr = config.server.bind;
        let built = build::build(&config, app)?;
        let listener = crate::transport::listener::bind(addr)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let tcp = match built.tcp {
            Some(settings) => {
                let addr = settings.bind;
                let listener = crate::transport::listener::bind(addr)
                    .map_err(|source| ServerError::BindTcp { addr, source })?;
                Some((listener, settings))
            }
            None => None,
        };
        warn_about_api_access(&config);
        let log_level = Arc::new(std::sync::OnceLock::new());
        let state = reload::ReloadState {
            current: std::sync::Mutex::new(config.clone()),
            started: config.clone(),
            server_cert: built.certs.0,
            tcp_cert: built.certs.1,
            log_level: log_level.clone(),
        };
        let _ = built
            .hub
            .reloading
            .apply
            .set(Box::new(move |hub, new| reload::apply(hub, &state, new)));
        Ok(Server {
            listener,
            hub: built.hub,
            config,
            tls: built.tls,
            listener_settings: built.listener,
            tcp,
            log_level,
        })
    }

    /// Where a reload reads the configuration (the binary: its file, with
    /// the same command-line overrides). Without it, reloads are refused.
    pub fn reload_from(
        &self,
        source: impl Fn() -> Result<Config, ConfigError> + Send + Sync + 'static,
    ) {
        let _ = self.hub.reloading.source.set(Box::new(source));
    }

    /// How a reload sets the log filter of `[log] level`.
    pub fn on_log_level(&self, hook: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
        let _ = self.log_level.set(Box::new(hook));
    }

    /// Reloads from anywhere (a signal handler), also while the server runs.
    pub fn reloader(&self) -> Reloader {
        Reloader(self.hub.clone())
    }

    /// Publishes from anywhere, like Spring's `SimpMessagingTemplate`.
    pub fn template(&self) -> MessagingTemplate {
        self.hub.app.template.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.config.server.bind)
    }

    /// The STOMP-over-TCP listener's address, with `[tcp]`.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
            .as_ref()
            .map(|(listener, settings)| listener.local_addr().unwrap_or(settings.bind))
    }

    /// The configuration the server was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The number of open STOMP connections (for tests and embedding code).
    pub fn connection_count(&self) -> usize {
        self.hub
            .lifecycle
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.hub.lifecycle.shutdown.clone())
    }

    /// Serves until the shutdown handle fires, then closes every session within
    /// `server.shutdown_timeout_ms`.
    pub async fn run(self) -> Result<(), ServerError> {
        let Server {
            listener,
            hub,
            config,
            tls,
            listener_settings,
            tcp,
            log_level: _,
        } = self;
        let shutdown = hub.lifecycle.shutdown.clone();
        let demo = &config.demo;
        if demo.enabled && demo.price_feed_ms > 0 {
            let every = Duration::from_millis(demo.price_feed_ms);
            tokio::spawn(crate::demo::run_price_feed(
                hub.app.template.clone(),
                every,
                shutdown.clone(),
            ));
        }
        if let Some(cluster) = &hub.cluster {
            // Weak: the hub owns the cluster handle.
            let weak = Arc::downgrade(&hub);
            cluster.set_snapshot(Box::new(move || {
                weak.upgrade()
                    .map(|hub| crate::transport::cluster_api::node_snapshot(&hub))
                    .unwrap_or_default()
            }));
            cluster.start(
                crate::cluster::Local {
                    broker: hub.broker().clone(),
                    users: Arc::new(hub.app.template.clone()),
                },
                shutdown.clone(),
            );
        }
        let tcp = tcp.map(|(listener, settings)| {
            tokio::spawn(crate::transport::tcp::serve(
                listener,
                hub.clone(),
                settings,
                listener_settings.clone(),
            ))
        });
        let app = router(hub.clone(), &config).into_make_service_with_connect_info::<RemoteAddr>();
        let listener =
            GuardedListener::new(listener, listener_settings, hub.admission.clone(), tls);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Some(accepting) = tcp {
            // The accept loop stops on shutdown; when HTTP failed instead, stop it here.
            if served.is_err() {
                accepting.abort();
            }
            let _ = accepting.await;
        }
        served.map_err(ServerError::Serve)?;
        let tracker = &hub.lifecycle.tracker;
        tracker.close();
        let grace = Duration::from_millis(config.server.shutdown_timeout_ms);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                open = tracker.len(),
                "sessions still open after shutdown_timeout_ms; exiting anyway"
            );
        }
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Says at start who can use the HTTP API when the port is reachable from
/// other machines without a token: safe by default, but not silently.
fn warn_about_api_access(config: &Config) {
    let api = &config.api;
    if !api.token.is_empty() || config.server.bind.ip().is_loopback() {
        return;
    }
    if api.insecure {
        tracing::warn!(
            bind = %config.server.bind,
            "[api] insecure = true and no [api] token: anyone who reaches this port may publish, close sessions and reload"
        );
    } else {
        tracing::warn!(
            bind = %config.server.bind,
            "no [api] token: the HTTP API's write endpoints (publish, close a session, reload) answer loopback clients only; set [api] token to use them from elsewhere"
        );
    }
    if api.read_token.is_empty() {
        tracing::warn!(
            bind = %config.server.bind,
            "no [api] read_token or token: /api/stats, /api/sessions and /metrics (user names, client addresses) are readable by anyone who reaches this port"
        );
    }
}

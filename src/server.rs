//! Wiring: builds the HTTP router (WebSocket endpoint, static files), listens,
//! and shuts down gracefully (stop accepting, flush and close sessions, bounded wait).

use crate::app::session_info::Handshake;
use crate::app::template::MessagingTemplate;
use crate::app::{AppBuilder, AppRuntime, AppSettings};
use crate::broker::Broker;
use crate::broker::destination::Prefixes;
use crate::broker::history::History;
use crate::broker::remote::Remote;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::security::connections::{Admission, ConnectionLimits};
use crate::security::origin::OriginPolicy;
use crate::security::{AccessRules, Authenticator};
use crate::broker::outbound::Outbound;
use crate::broker::outbound::QueueBudget;
use crate::session::{Session, SessionConfig};
use crate::transport::listener::{GuardedListener, ListenerSettings, RemoteAddr};
use crate::transport::{http_api, websocket};
use axum::Router;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    /// A file named by the configuration (key, certificate) could not be used.
    #[error("{0}")]
    Setup(String),
}

/// What every connection shares.
#[derive(Debug)]
pub struct ServerState {
    pub config: Config,
    pub app: Arc<AppRuntime>,
    pub session_config: Arc<SessionConfig>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub connections: AtomicUsize,
    /// Caps on TCP connections; its counts feed `/api/stats`.
    pub admission: Arc<Admission>,
    pub origins: OriginPolicy,
    /// Bytes queued for all sessions together, capped by `limits.max_queued_bytes_total`.
    pub queued: Arc<QueueBudget>,
    /// The backplane to other nodes, with `[cluster]`.
    pub cluster: Option<Arc<Cluster>>,
    next_session_id: AtomicU64,
}

impl ServerState {
    /// Builds everything the configuration describes; fails on files it names
    /// that cannot be used (JWT keys).
    pub fn new(config: Config, app: AppBuilder) -> Result<Self, ServerError> {
        // Handlers registered in code come first and win over config routes and the demo.
        let mut app = app;
        crate::app::config_routes::register(&config.routes, &mut app);
        if config.demo.enabled {
            crate::demo::register(&mut app);
        }
        // Validated with the rest of the config; an invalid rule cannot reach here.
        let rules = config.history_rules().unwrap_or_default();
        let cluster = Cluster::new(&config.cluster);
        let remote = cluster.clone().map(|cluster| cluster as Arc<dyn Remote>);
        let broker = Broker::with_parts(
            Prefixes::new(
                config.stomp.app_prefixes.clone(),
                config.stomp.broker_prefixes.clone(),
            ),
            app.publish_hooks(),
            History::new(rules),
            remote,
        );
        let limits = &config.limits;
        let session_config = Arc::new(SessionConfig {
            heartbeat: (config.stomp.heartbeat[0], config.stomp.heartbeat[1]),
            max_subscriptions: limits.max_subscriptions,
            max_transactions: limits.max_transactions,
            max_transaction_bytes: limits.max_transaction_bytes,
            max_frames_per_second: limits.max_frames_per_second,
            frame_burst: limits.frame_burst,
        });
        let settings = AppSettings {
            user_from_login: config.stomp.user_from_login,
            max_pending_app_messages: limits.max_pending_app_messages,
            auth: Arc::new(Authenticator::new(&config.auth).map_err(ServerError::Setup)?),
            access: Arc::new(AccessRules::new(&config.acl).map_err(ServerError::Setup)?),
        };
        let admission = Admission::new(ConnectionLimits {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            max_pending: limits.max_pending_handshakes,
        });
        Ok(ServerState {
            app: Arc::new(app.build(broker, cluster.clone(), settings)),
            cluster,
            origins: OriginPolicy::new(&config.server.allowed_origins),
            queued: QueueBudget::new(limits.max_queued_bytes_total),
            config,
            session_config,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            connections: AtomicUsize::new(0),
            admission,
            next_session_id: AtomicU64::new(1),
        })
    }

    pub fn broker(&self) -> &Broker {
        &self.app.broker
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn new_session(&self, handshake: Handshake) -> Session {
        let outbound = Arc::new(Outbound::with_budget(
            self.config.limits.outbound_queue_bytes,
            self.queued.clone(),
        ));
        Session::new(
            handshake,
            self.app.clone(),
            outbound,
            self.session_config.clone(),
        )
    }
}

pub fn router(state: Arc<ServerState>) -> Router {
    let web_root = state.config.server.web_root.clone();
    if !web_root.is_dir() {
        tracing::warn!(web_root = %web_root.display(), "web root is not a directory; only the WebSocket endpoint is served");
    }
    // Browsers may read the API and SSE streams from the origins the WebSocket admits.
    let mut cross_origin = http_api::routes();
    if state.config.sse.enabled {
        cross_origin = cross_origin
            .route("/sse/subscribe", get(crate::transport::sse::subscribe))
            .route("/sse/users/{user}", get(crate::transport::sse::user_stream));
    }
    let mut router = Router::new()
        .route(&state.config.stomp.endpoint, get(websocket::upgrade))
        .merge(cross_origin.layer(cors(state.origins.clone())));
    if state.config.demo.enabled {
        router = router.merge(crate::demo::http_routes());
    }
    router
        .fallback_service(ServeDir::new(web_root).append_index_html_on_directories(true))
        .with_state(state)
}

/// CORS answers for the origins `server.allowed_origins` admits.
fn cors(origins: OriginPolicy) -> CorsLayer {
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, request: &Parts| {
        let host = request.headers.get("host").and_then(|v| v.to_str().ok());
        origin
            .to_str()
            .is_ok_and(|origin| origins.allows(origin, host))
    });
    CorsLayer::new()
        .allow_origin(allow)
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
    state: Arc<ServerState>,
    tls: Option<TlsAcceptor>,
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
        let tls = config
            .server
            .tls
            .as_ref()
            .map(crate::transport::tls::acceptor)
            .transpose()
            .map_err(ServerError::Setup)?;
        let state = Arc::new(ServerState::new(config, app)?);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Server {
            listener,
            state,
            tls,
        })
    }

    /// Publishes from anywhere, like Spring's `SimpMessagingTemplate`.
    pub fn template(&self) -> MessagingTemplate {
        self.state.app.template.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.server.bind)
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.state.shutdown.clone())
    }

    /// Serves until the shutdown handle fires, then closes every session within
    /// `server.shutdown_timeout_ms`.
    pub async fn run(self) -> Result<(), ServerError> {
        let state = self.state;
        let shutdown = state.shutdown.clone();
        let demo = &state.config.demo;
        if demo.enabled && demo.price_feed_ms > 0 {
            let every = Duration::from_millis(demo.price_feed_ms);
            tokio::spawn(crate::demo::run_price_feed(
                state.app.template.clone(),
                every,
                shutdown.clone(),
            ));
        }
        if let Some(cluster) = &state.cluster {
            // Weak: the state owns the broker, which owns the cluster handle.
            let weak = Arc::downgrade(&state);
            cluster.set_snapshot(Box::new(move || {
                weak.upgrade()
                    .map(|state| crate::transport::cluster_api::node_snapshot(&state))
                    .unwrap_or_default()
            }));
            cluster.start(
                crate::cluster::Local {
                    broker: state.broker().clone(),
                    users: Arc::new(state.app.template.clone()),
                },
                shutdown.clone(),
            );
        }
        let app = router(state.clone()).into_make_service_with_connect_info::<RemoteAddr>();
        let listener = GuardedListener::new(
            self.listener,
            ListenerSettings::from_config(&state.config),
            state.admission.clone(),
            self.tls,
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(ServerError::Serve)?;
        state.tracker.close();
        let grace = Duration::from_millis(state.config.server.shutdown_timeout_ms);
        if tokio::time::timeout(grace, state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = state.tracker.len(),
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

//! The one step from configuration to running parts: every rule, pattern,
//! key and certificate named in `broker.toml` is built here, once, for
//! `serve`, `check-config` and `Server::bind` alike; a bad entry is an error
//! naming its key.

use crate::app::{AppBuilder, AppSettings};
use crate::broker::Broker;
use crate::broker::destination::Prefixes;
use crate::broker::history::{History, HistoryRule};
use crate::broker::outbound::QueueLimits;
use crate::broker::remote::Remote;
use crate::broker::user_destination;
use crate::cluster::Cluster;
use crate::config::{Config, ConfigError};
use crate::hub::{Hub, Lifecycle, TransportSettings};
use crate::proxy::Proxy;
use crate::security::connections::{Admission, ConnectionLimits};
use crate::security::origin::OriginPolicy;
use crate::security::proxies::TrustedProxies;
use crate::security::{AccessRules, Authenticator};
use crate::session::driver::{ConnectionRules, FrameRate};
use crate::session::{SessionConfig, SessionLimits, Sessions};
use crate::transport::listener::ListenerSettings;
use crate::transport::tcp::{TCP_TLS, TcpSettings};
use crate::transport::tls::CertSlot;
use crate::transport::tls::SERVER_TLS;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// What a configuration builds into.
pub(crate) struct Built {
    pub hub: Arc<Hub>,
    pub tls: Option<TlsAcceptor>,
    pub listener: ListenerSettings,
    /// `[tcp]`, when it names an address.
    pub tcp: Option<TcpSettings>,
    /// Where a reload puts renewed certificates: `[server.tls]`, `[tcp.tls]`.
    pub certs: (Option<Arc<CertSlot>>, Option<Arc<CertSlot>>),
}

/// Builds the hub and everything it holds from `config` and the handlers of `app`.
pub(crate) fn build(config: &Config, app: AppBuilder) -> Result<Built, ConfigError> {
    // Configuration that cannot be checked key by key: the scalar checks of
    // `Config::parse` do not run on a `Config` built in code.
    config.validate()?;
    check_reserved_prefixes(config)?;
    // Handlers registered in code come first and win over config routes and the demo.
    let mut app = app;
    // One HTTP client (and connection pool) for the [proxy] calls and the proxied routes.
    let proxied_routes = config.routes.iter().any(|route| route.proxy.is_some());
    let proxy = (config.proxy.is_used() || proxied_routes)
        .then(|| Proxy::new(&config.proxy).map(Arc::new))
        .transpose()?;
    crate::app::config_routes::register(
        &config.routes,
        (&config.stomp.app_prefixes, &config.stomp.broker_prefixes),
        proxy.as_ref(),
        &mut app,
    )?;
    if config.demo.enabled {
        crate::demo::register(&mut app);
    }
    let tls = config
        .server
        .tls
        .as_ref()
        .map(|tls| crate::transport::tls::acceptor(tls, &SERVER_TLS))
        .transpose()?;
    let (tls, server_cert) = tls.unzip();
    let (tcp, tcp_cert) = match tcp_settings(config)? {
        Some((settings, cert)) => (Some(settings), cert),
        None => (None, None),
    };
    let cluster = Cluster::new(&config.cluster);
    let remote = cluster.clone().map(|cluster| cluster as Arc<dyn Remote>);
    let broker = Broker::with_parts(
        Prefixes::new(
            config.stomp.app_prefixes.clone(),
            config.stomp.broker_prefixes.clone(),
        ),
        app.publish_hooks(),
        if config.cluster.enabled() {
            History::shared(history_rules(config)?)
        } else {
            History::new(history_rules(config)?)
        },
        remote,
    );
    let limits = &config.limits;
    let settings = AppSettings {
        user_from_login: config.stomp.user_from_login,
        max_pending_app_messages: limits.max_pending_app_messages,
        auth: Arc::new(ArcSwap::from_pointee(Authenticator::new(&config.auth)?)),
        access: Arc::new(ArcSwap::from_pointee(AccessRules::new(&config.acl)?)),
        proxy: proxy.filter(|_| config.proxy.is_used()),
    };
    // Endpoints registered in code are served and checked with the configured ones.
    let mut websocket = config.websocket.clone();
    websocket.endpoints.extend(app.socket_endpoints());
    if websocket.endpoints.len() > config.websocket.endpoints.len() {
        crate::config::validate_endpoints(config, &websocket.endpoints)?;
    }
    let app = Arc::new(app.build(broker, cluster.clone(), settings));
    let sessions = Sessions::new(
        app.clone(),
        session_limits(config),
        limits.max_queued_bytes_total,
    );
    let proxies = Arc::new(TrustedProxies::new(&config.server.trusted_proxies)?);
    let hub = Hub {
        app,
        sessions,
        lifecycle: Lifecycle::default(),
        admission: Admission::new(connection_limits(config, true), proxies.clone()),
        proxies,
        origins: OriginPolicy::new(&config.server.allowed_origins)?,
        cluster,
        settings: TransportSettings {
            websocket,
            sse: config.sse.clone(),
            sockjs: config.sockjs.clone(),
            ping_every: (config.stomp.heartbeat[0] > 0)
                .then(|| Duration::from_millis(config.stomp.heartbeat[0])),
            api: Arc::new(ArcSwap::from_pointee(config.api.clone())),
        },
        telemetry: Arc::new(crate::telemetry::Telemetry::new()),
        reloading: Default::default(),
    };
    Ok(Built {
        hub: Arc::new(hub),
        tls,
        listener: listener_settings(config),
        tcp,
        certs: (server_cert, tcp_cert),
    })
}

fn check_reserved_prefixes(config: &Config) -> Result<(), ConfigError> {
    let stomp = &config.stomp;
    for (key, prefixes) in [
        ("stomp.app_prefixes", &stomp.app_prefixes),
        ("stomp.broker_prefixes", &stomp.broker_prefixes),
    ] {
        if prefixes
            .iter()
            .any(|prefix| user_destination::is_reserved_prefix(prefix))
        {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "{} is reserved for user destinations",
                    user_destination::USER_PREFIX
                ),
            ));
        }
    }
    Ok(())
}

/// History rules: the configured ones first, then the demo price feed's.
pub(super) fn history_rules(config: &Config) -> Result<Vec<HistoryRule>, ConfigError> {
    let mut rules = Vec::with_capacity(config.history.len() + 1);
    for rule in &config.history {
        let max_age = (rule.max_age_ms > 0).then(|| Duration::from_millis(rule.max_age_ms));
        rules.push(
            HistoryRule::new(&rule.destination, rule.max_messages, max_age)
                .map_err(|error| ConfigError::invalid("history.destination", error.to_string()))?,
        );
    }
    if config.demo.enabled && config.demo.price_feed_ms > 0 {
        rules.push(
            HistoryRule::new(crate::demo::PRICE_TOPIC, 100, None)
                .map_err(|error| ConfigError::invalid("demo", error.to_string()))?,
        );
    }
    Ok(rules)
}

fn listener_settings(config: &Config) -> ListenerSettings {
    let server = &config.server;
    ListenerSettings {
        write_stall_limit: config.send_time_limit(),
        handshake_timeout: Duration::from_millis(config.limits.handshake_timeout_ms),
        keepalive_idle: Duration::from_millis(server.tcp_keepalive_idle_ms),
        keepalive_interval: Duration::from_millis(server.tcp_keepalive_interval_ms),
        keepalive_retries: server.tcp_keepalive_retries,
    }
}

/// The STOMP-over-TCP listener's settings, and its certificate slot with `[tcp.tls]`.
type TcpWithCert = (TcpSettings, Option<Arc<CertSlot>>);

fn tcp_settings(config: &Config) -> Result<Option<TcpWithCert>, ConfigError> {
    let tcp = &config.tcp;
    let Some(bind) = tcp.bind else {
        return Ok(None);
    };
    let tls = tcp
        .tls
        .as_ref()
        .map(|tls| crate::transport::tls::acceptor(tls, &TCP_TLS))
        .transpose()?;
    let (tls, cert) = tls.unzip();
    Ok(Some((
        TcpSettings {
            bind,
            tls,
            proxy_protocol: tcp.proxy_protocol,
        },
        cert,
    )))
}

/// Builds everything `config` describes, as the server will at start, without
/// listening: `check-config` finds what `serve` would refuse.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    build(config, AppBuilder::new()).map(drop)
}

/// The limits of sessions opened from now on; a reload applies them afresh.
pub(super) fn session_limits(config: &Config) -> SessionLimits {
    let limits = &config.limits;
    SessionLimits {
        config: Arc::new(SessionConfig {
            heartbeat: (config.stomp.heartbeat[0], config.stomp.heartbeat[1]),
            heartbeat_min_ms: config.stomp.heartbeat_min_ms,
            max_subscriptions: limits.max_subscriptions,
            max_transactions: limits.max_transactions,
            max_transaction_bytes: limits.max_transaction_bytes,
        }),
        rules: Arc::new(ConnectionRules {
            connect_timeout: Duration::from_millis(limits.connect_timeout_ms),
            send_time_limit: config.send_time_limit(),
            frame_timeout: Duration::from_millis(limits.frame_timeout_ms),
            frame_rate: (limits.max_frames_per_second > 0).then_some(FrameRate {
                per_second: limits.max_frames_per_second,
                burst: limits.frame_burst,
            }),
            codec: config.codec_limits(),
        }),
        queue_limits: QueueLimits {
            soft_bytes: limits.outbound_queue_bytes,
            grace: Duration::from_millis(limits.outbound_queue_grace_ms),
            hard_bytes: limits.outbound_queue_max_bytes,
        },
    }
}

/// The caps on connections; `announce` logs the one in force (at start).
pub(super) fn connection_limits(config: &Config, announce: bool) -> ConnectionLimits {
    let limits = &config.limits;
    let max_connections = super::open_files::connection_cap(
        limits.max_connections,
        super::open_files::open_file_limit(),
    );
    if announce {
        max_connections.log();
    }
    ConnectionLimits {
        max_total: max_connections.value(),
        max_per_ip: limits.max_connections_per_ip,
        max_pending: limits.max_pending_handshakes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(toml: &str) -> Result<Built, ConfigError> {
        build(&Config::parse(toml)?, AppBuilder::new())
    }

    #[test]
    fn the_default_configuration_builds() {
        assert!(built("").is_ok());
    }

    #[test]
    fn a_bad_history_rule_is_an_error_not_history_turned_off() {
        let error = built("[[history]]\ndestination = \"/topic/a**\"\n")
            .err()
            .expect("refused");
        assert!(
            error.to_string().starts_with("history.destination"),
            "{error}"
        );
    }

    #[test]
    fn structural_entries_name_their_key() {
        let cases = [
            (
                "[server]\nallowed_origins = [\"ftp:/x\"]\n",
                "server.allowed_origins",
            ),
            (
                "[stomp]\nbroker_prefixes = [\"/user\"]\n",
                "stomp.broker_prefixes",
            ),
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nginx\"]\n",
                "server.trusted_proxies",
            ),
            ("[[acl]]\ndestination = \"/topic/{x\"\n", "acl.destination"),
            (
                "[[acl]]\ndestination = \"/topic/x\"\nsubscribe = [\"nobody:x\"]\n",
                "acl.subscribe",
            ),
            (
                "[[auth.user]]\nname = \"a\"\npassword_hash = \"plain\"\n",
                "auth.user.password_hash",
            ),
            (
                "[[route]]\nfrom = \"/v1/x\"\nto = \"/queue/x\"\n",
                "route.to",
            ),
        ];
        for (toml, key) in cases {
            let error = built(toml).err().expect(toml);
            assert!(error.to_string().starts_with(key), "{toml}: {error}");
        }
    }

    #[test]
    fn tcp_certificates_are_loaded_at_build_and_name_their_key() {
        let error = built(
            "[tcp]\nbind = \"127.0.0.1:0\"\n\
             [tcp.tls]\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\"\n",
        )
        .err()
        .expect("refused");
        assert!(
            error.to_string().starts_with("tcp.tls.cert_file"),
            "{error}"
        );
        assert!(built("").expect("builds").tcp.is_none());
    }

    #[test]
    fn a_config_built_in_code_is_checked_too() {
        let mut config = Config::default();
        config.limits.max_subscriptions = 0;
        let error = build(&config, AppBuilder::new()).err().expect("refused");
        assert!(
            error.to_string().starts_with("limits.max_subscriptions"),
            "{error}"
        );
    }
}

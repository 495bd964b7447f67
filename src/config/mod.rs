//! `broker.toml`: schema, defaults and validation. Every setting of the broker lives here.

mod cluster;
mod endpoint;
mod env;
mod log;
mod proxy;
mod security;
mod sockjs;
mod tcp;

pub use cluster::{ClusterBackend, ClusterConfig, redacted_url};
pub use endpoint::{EndpointConfig, MESSAGE_PLACEHOLDER};
pub use log::{LogConfig, LogFormat};
pub use proxy::{ProxyConfig, validate_url};
pub use security::{AclRuleConfig, AuthConfig, JwtAlgorithm, JwtConfig, TlsConfig, UserConfig};
pub use sockjs::SockJsConfig;
pub use tcp::TcpConfig;

use crate::stomp::Limits;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration was refused. Each message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl ConfigError {
    /// The value of `key` is wrong, for `reason`.
    pub fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub stomp: StompConfig,
    pub limits: LimitsConfig,
    pub websocket: WebSocketConfig,
    pub api: ApiConfig,
    pub demo: DemoConfig,
    /// `[[route]]` tables: `/app` destinations forwarded without code.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    pub sse: SseConfig,
    /// `[sockjs]`: the SockJS protocol on the STOMP endpoint.
    pub sockjs: SockJsConfig,
    /// `[[history]]` tables: destinations that keep their last messages for replay.
    #[serde(rename = "history")]
    pub history: Vec<HistoryConfig>,
    pub auth: AuthConfig,
    /// `[[acl]]` tables: who may subscribe and send where; the first matching rule decides.
    #[serde(rename = "acl")]
    pub acl: Vec<AclRuleConfig>,
    /// `[cluster]`: several nodes sharing one broker through Redis.
    pub cluster: ClusterConfig,
    /// `[tcp]`: STOMP over plain TCP (and TLS) beside the HTTP listener; off by default.
    pub tcp: TcpConfig,
    /// `[proxy]`: the user's HTTP application asked about connects, subscriptions
    /// and publishes; off by default.
    pub proxy: ProxyConfig,
    /// `[log]`: level and format.
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SseConfig {
    /// Serve `GET /sse/subscribe` and `GET /sse/users/{user}`.
    pub enabled: bool,
    /// The `event:` field of message events; `"destination"` uses each message's destination.
    pub event: String,
    /// A `: ping` comment on a stream idle this long (below proxies' idle timeouts).
    pub heartbeat_ms: u64,
    /// The `retry:` advice: how long browsers wait before reconnecting.
    pub retry_ms: u64,
    /// Destinations one stream may ask for.
    pub max_destinations: usize,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            enabled: true,
            event: "message".into(),
            heartbeat_ms: 15_000,
            retry_ms: 3_000,
            max_destinations: 16,
        }
    }
}

/// Keeps the last messages of matching broker destinations for replay.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// A destination or Ant pattern, e.g. `/topic/price/**`.
    pub destination: String,
    /// Messages kept per destination.
    #[serde(default = "default_history_messages")]
    pub max_messages: usize,
    /// Also drop messages older than this; 0 keeps them until `max_messages` pushes them out.
    #[serde(default)]
    pub max_age_ms: u64,
}

fn default_history_messages() -> usize {
    100
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer token of the write and admin endpoints (publish, close a
    /// session, reload); it also opens the read endpoints. Empty: those answer
    /// loopback clients only, unless `insecure`.
    pub token: String,
    /// Bearer token of the read endpoints (`/api/stats`, `/api/sessions`,
    /// `/metrics`, the dashboard's stream), e.g. for Prometheus. Empty: `token`
    /// guards them when set, otherwise they are open.
    pub read_token: String,
    /// With `token` empty, answer the write endpoints for any client, not
    /// only loopback ones (as Centrifugo's `api_insecure`).
    pub insecure: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// The seeds' demo: `/app/v1/chat`, `/app/v1/chat/single`, `GET /v1/chat/http`, `GET /v1/chat/single`.
    pub enabled: bool,
    /// With `enabled`: publish demo prices to `/topic/price` this often (0 = never);
    /// `/topic/price` then keeps its last 100 messages for replay.
    pub price_feed_ms: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: true,
            price_feed_ms: 1_000,
        }
    }
}

/// Forwards SENDs to `/app{from}` to a broker destination or to the sender's user destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination below an app prefix, e.g. `/v1/echo`; `{name}` matches one segment.
    pub from: String,
    /// Broker destination; may use the `{name}` variables of `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// User destination of the sender, e.g. `/queue/echo` (delivered as `/user/queue/echo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user: Option<String>,
    /// With `to_user`: every session of the user (true) or only the sending one.
    #[serde(default = "yes")]
    pub all_sessions: bool,
    /// The application's URL that handles these SENDs (`@MessageMapping` kept in
    /// the backend); its answer says where replies go, so `to`/`to_user` are unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// A folder served at `/` instead of the pages built into the binary;
    /// empty: the built-in demo pages and their npm packages.
    pub web_root: PathBuf,
    /// How long shutdown waits for sessions to flush and close.
    pub shutdown_timeout_ms: u64,
    /// Tokio worker threads; 0 means one per CPU core.
    pub worker_threads: usize,
    /// Origins allowed to open WebSockets and SSE streams and to call the API from
    /// a browser: exact (`https://app.example.com`), with `*` wildcards
    /// (`https://*.example.com`), or `"*"` for any. Empty: same origin only.
    pub allowed_origins: Vec<String>,
    /// Proxies (IP addresses or CIDR networks) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client: the address then used for
    /// `limits.max_connections_per_ip`, logs, sessions and interceptors.
    /// Other peers' headers are ignored. Empty: none.
    pub trusted_proxies: Vec<String>,
    /// An idle connection is probed after this long without traffic (TCP keepalive).
    pub tcp_keepalive_idle_ms: u64,
    /// Between unanswered probes.
    pub tcp_keepalive_interval_ms: u64,
    /// Unanswered probes before the connection counts as dead. The bound on a
    /// vanished peer is idle + interval x retries, also applied to unacknowledged
    /// writes (TCP_USER_TIMEOUT).
    pub tcp_keepalive_retries: u32,
    /// `[server.tls]`: serve https and wss directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_root: PathBuf::new(),
            shutdown_timeout_ms: 5_000,
            worker_threads: 0,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            tcp_keepalive_idle_ms: 30_000,
            tcp_keepalive_interval_ms: 10_000,
            tcp_keepalive_retries: 3,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StompConfig {
    /// HTTP path of the WebSocket endpoint.
    pub endpoint: String,
    /// Destinations handled by the application (SEND goes to handlers).
    pub app_prefixes: Vec<String>,
    /// Destinations handled by the in-memory broker (SUBSCRIBE and SEND fan out).
    pub broker_prefixes: Vec<String>,
    /// `[send every, expect every]` in milliseconds: what the server asks for
    /// when the client does not ask for faster.
    pub heartbeat: [u64; 2],
    /// The fastest heart-beat interval a client may ask for, in milliseconds.
    pub heartbeat_min_ms: u64,
    /// The CONNECT `login` header names the user when no handshake interceptor did.
    pub user_from_login: bool,
}

impl Default for StompConfig {
    fn default() -> Self {
        StompConfig {
            endpoint: "/endpoint-websocket".into(),
            app_prefixes: vec!["/app".into()],
            broker_prefixes: vec!["/topic".into(), "/chat".into()],
            heartbeat: [10_000, 10_000],
            heartbeat_min_ms: 1_000,
            user_from_login: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_frame_size: usize,
    pub max_headers: usize,
    pub max_header_line: usize,
    pub max_body_size: usize,
    /// Bytes queued for one session that it may stay above for at most
    /// `outbound_queue_grace_ms` before it counts as a slow consumer.
    pub outbound_queue_bytes: usize,
    /// How long a session's queue may stay above `outbound_queue_bytes`.
    pub outbound_queue_grace_ms: u64,
    /// Bytes queued for one session above which it is cut at once.
    pub outbound_queue_max_bytes: usize,
    /// Longest a single write to a client may take before it counts as a slow consumer.
    pub send_time_limit_ms: u64,
    /// Time from the WebSocket handshake (on `[tcp]`, the end of the PROXY header and TLS handshake) to the CONNECT frame.
    pub connect_timeout_ms: u64,
    /// Time from the first byte of a frame to its last.
    pub frame_timeout_ms: u64,
    /// Bytes of SEND frames held by one session's open transactions.
    pub max_transaction_bytes: usize,
    /// Open transactions per session.
    pub max_transactions: usize,
    /// Subscriptions per session.
    pub max_subscriptions: usize,
    /// Messages to `/app` handlers one session may have waiting before the
    /// server stops reading from that client until its handlers catch up.
    pub max_pending_app_messages: usize,
    /// Open TCP connections (WebSocket, SSE, plain HTTP and `[tcp]` together); 0 = no limit.
    /// Unset: the process's open-file limit less a reserve for its other
    /// descriptors, worked out at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Open TCP connections from one IP address; 0 = no limit. Connections from
    /// `server.trusted_proxies` count instead under the client address they
    /// forward, from the WebSocket or SSE handshake on.
    pub max_connections_per_ip: usize,
    /// Connections that have not yet sent a complete HTTP request (on `[tcp]`:
    /// not finished their PROXY header and TLS handshake).
    pub max_pending_handshakes: usize,
    /// Time from accepting a connection to its first complete HTTP request
    /// (TLS handshake included; on `[tcp]`, to the end of the PROXY header and
    /// TLS handshake).
    pub handshake_timeout_ms: u64,
    /// Frames per second one session may send on average (token bucket); 0 = no limit.
    pub max_frames_per_second: u32,
    /// Frames one session may send in a burst above that rate.
    pub frame_burst: u32,
    /// Bytes queued for all sessions together. Past it, a session whose queue
    /// holds more than its fair share of it is cut off as a slow consumer once
    /// its writer stalls, or at once at several shares.
    pub max_queued_bytes_total: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let codec = Limits::default();
        LimitsConfig {
            max_frame_size: codec.max_frame_size,
            max_headers: codec.max_headers,
            max_header_line: codec.max_header_line,
            max_body_size: codec.max_body_size,
            outbound_queue_bytes: 512 * 1024,
            outbound_queue_grace_ms: 5_000,
            outbound_queue_max_bytes: 16 * 1024 * 1024,
            send_time_limit_ms: 10_000,
            connect_timeout_ms: 60_000,
            frame_timeout_ms: 30_000,
            max_transaction_bytes: 1024 * 1024,
            max_transactions: 16,
            max_subscriptions: 1_000,
            max_pending_app_messages: 64,
            max_connections: None,
            max_connections_per_ip: 1_000,
            max_pending_handshakes: 1_024,
            handshake_timeout_ms: 10_000,
            max_frames_per_second: 1_000,
            frame_burst: 2_000,
            max_queued_bytes_total: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Per-connection read buffer.
    pub read_buffer_size: usize,
    /// Bytes the WebSocket layer gathers before writing to the socket.
    pub write_buffer_size: usize,
    /// Removed: the WebSocket message limit follows `limits.max_frame_size`.
    /// Kept only to name the key to use instead when an old file sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<usize>,
    /// `[[websocket.endpoint]]` tables: plain (not STOMP) WebSocket endpoints.
    #[serde(rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            read_buffer_size: 4 * 1024,
            write_buffer_size: 16 * 1024,
            max_message_size: None,
            endpoints: endpoint::seeds(),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    /// Reads, parses and validates a file. Relative paths in it (`web_root`,
    /// certificates, keys, secrets) are taken from the file's folder, so the
    /// same file works whatever the working directory (systemd, containers).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(Some(path), std::iter::empty())
    }

    /// The file at `path` (the built-in defaults without one) with the
    /// `STOMPHUB_<SECTION>__<KEY>` overrides among `vars` (see `env`),
    /// validated; relative paths as [`Config::load`] reads them.
    pub fn load_with_env(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let shown = path.map_or_else(|| PathBuf::from("(built-in defaults)"), Path::to_owned);
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        let with_path = |source| ConfigError::Parse {
            path: shown.clone(),
            source: Box::new(source),
        };
        let mut written: toml::Table = text.parse().map_err(with_path)?;
        let overridden = env::apply(&mut written, vars)?;
        if !overridden.is_empty() {
            tracing::info!(keys = ?overridden, "configuration keys set by STOMPHUB_* environment variables");
        }
        let mut config: Config = written.clone().try_into().map_err(with_path)?;
        if let Some(path) = path {
            config.resolve_paths(path.parent().unwrap_or(Path::new("")), &written);
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates TOML text; relative paths stay as written.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("broker.toml"),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Makes the relative paths `written` in a file relative to its `folder`.
    /// An empty `web_root` (the built-in pages) stays empty.
    fn resolve_paths(&mut self, folder: &Path, written: &toml::Table) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = folder.join(&*path);
            }
        };
        let server_sets_web_root = written
            .get("server")
            .and_then(|server| server.get("web_root"))
            .is_some();
        if server_sets_web_root && !self.server.web_root.as_os_str().is_empty() {
            resolve(&mut self.server.web_root);
        }
        for tls in [&mut self.server.tls, &mut self.tcp.tls]
            .into_iter()
            .flatten()
        {
            resolve(&mut tls.cert_file);
            resolve(&mut tls.key_file);
        }
        if let Some(jwt) = &mut self.auth.jwt {
            jwt.secret_file.iter_mut().for_each(resolve);
            jwt.public_key_file.iter_mut().for_each(resolve);
        }
    }

    /// Names this node in a cluster (`--node-id`, `STOMPHUB_NODE_ID`), so
    /// every node can share one file.
    pub fn set_node_id(&mut self, node_id: &str) -> Result<(), ConfigError> {
        self.cluster.node_id = node_id.to_owned();
        self.validate()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}"))
    }

    /// A copy with secrets masked, for printing.
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        let mask = |secret: &mut String| {
            if !secret.is_empty() {
                *secret = "<redacted>".into();
            }
        };
        mask(&mut config.api.token);
        mask(&mut config.api.read_token);
        for value in config.proxy.headers.values_mut() {
            mask(value);
        }
        if let Some(jwt) = &mut config.auth.jwt {
            mask(&mut jwt.secret);
        }
        config.cluster.url = redacted_url(&config.cluster.url);
        for sentinel in &mut config.cluster.sentinels {
            *sentinel = redacted_url(sentinel);
        }
        config
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cluster.validate()?;
        self.sockjs.validate()?;
        self.tcp.validate(&self.server)?;
        self.proxy.validate()?;
        self.log.validate()?;
        validate_path("stomp.endpoint", &self.stomp.endpoint)?;
        validate_prefixes("stomp.app_prefixes", &self.stomp.app_prefixes)?;
        validate_prefixes("stomp.broker_prefixes", &self.stomp.broker_prefixes)?;
        if self.stomp.broker_prefixes.is_empty() {
            return Err(ConfigError::invalid(
                "stomp.broker_prefixes",
                "at least one prefix is needed",
            ));
        }
        for app in &self.stomp.app_prefixes {
            for broker in &self.stomp.broker_prefixes {
                if app == broker {
                    return Err(ConfigError::invalid(
                        "stomp.app_prefixes",
                        format!("{app:?} is also in stomp.broker_prefixes"),
                    ));
                }
            }
        }
        let l = &self.limits;
        at_least("limits.max_frame_size", l.max_frame_size, 256)?;
        at_least("limits.max_headers", l.max_headers, 8)?;
        at_least("limits.max_header_line", l.max_header_line, 128)?;
        at_least(
            "limits.outbound_queue_bytes",
            l.outbound_queue_bytes,
            l.max_frame_size,
        )?;
        at_least(
            "limits.send_time_limit_ms",
            l.send_time_limit_ms as usize,
            100,
        )?;
        at_least(
            "limits.connect_timeout_ms",
            l.connect_timeout_ms as usize,
            100,
        )?;
        at_least("limits.max_subscriptions", l.max_subscriptions, 1)?;
        at_least(
            "limits.max_pending_app_messages",
            l.max_pending_app_messages,
            1,
        )?;
        if l.max_body_size > l.max_frame_size {
            return Err(ConfigError::invalid(
                "limits.max_body_size",
                format!(
                    "{} is larger than limits.max_frame_size ({})",
                    l.max_body_size, l.max_frame_size
                ),
            ));
        }
        if l.max_header_line > l.max_frame_size {
            return Err(ConfigError::invalid(
                "limits.max_header_line",
                "must not exceed limits.max_frame_size",
            ));
        }
        at_least("limits.max_pending_handshakes", l.max_pending_handshakes, 1)?;
        at_least(
            "limits.handshake_timeout_ms",
            l.handshake_timeout_ms as usize,
            100,
        )?;
        if l.max_frames_per_second > 0 && l.frame_burst < 1 {
            return Err(ConfigError::invalid(
                "limits.frame_burst",
                "must be at least 1 when limits.max_frames_per_second is set",
            ));
        }
        at_least(
            "limits.outbound_queue_max_bytes",
            l.outbound_queue_max_bytes,
            l.outbound_queue_bytes,
        )?;
        at_least(
            "limits.max_queued_bytes_total",
            l.max_queued_bytes_total,
            l.outbound_queue_max_bytes,
        )?;
        at_least("limits.frame_timeout_ms", l.frame_timeout_ms as usize, 100)?;
        let server = &self.server;
        at_least(
            "server.tcp_keepalive_idle_ms",
            server.tcp_keepalive_idle_ms as usize,
            1_000,
        )?;
        at_least(
            "server.tcp_keepalive_interval_ms",
            server.tcp_keepalive_interval_ms as usize,
            1_000,
        )?;
        at_least(
            "server.tcp_keepalive_retries",
            server.tcp_keepalive_retries as usize,
            1,
        )?;
        self.auth.validate()?;
        validate_endpoints(self, &self.websocket.endpoints)?;
        let ws = &self.websocket;
        at_least("websocket.read_buffer_size", ws.read_buffer_size, 1024)?;
        at_least("websocket.write_buffer_size", ws.write_buffer_size, 1024)?;
        if ws.max_message_size.is_some() {
            return Err(ConfigError::invalid(
                "websocket.max_message_size",
                "was removed: the WebSocket message limit now follows limits.max_frame_size; set that instead",
            ));
        }
        for rule in &self.history {
            at_least("history.max_messages", rule.max_messages, 1)?;
        }
        at_least("sse.heartbeat_ms", self.sse.heartbeat_ms as usize, 100)?;
        at_least("sse.max_destinations", self.sse.max_destinations, 1)?;
        if self.sse.event.is_empty() || self.sse.event.contains(['\r', '\n']) {
            return Err(ConfigError::invalid(
                "sse.event",
                "must be a non-empty single line",
            ));
        }
        at_least(
            "stomp.heartbeat_min_ms",
            self.stomp.heartbeat_min_ms as usize,
            100,
        )?;
        for (index, interval) in self.stomp.heartbeat.iter().enumerate() {
            if *interval != 0 && *interval < 100 {
                return Err(ConfigError::invalid(
                    "stomp.heartbeat",
                    format!("entry {index} is {interval} ms; use 0 (off) or at least 100"),
                ));
            }
        }
        Ok(())
    }

    pub fn codec_limits(&self) -> Limits {
        Limits {
            max_frame_size: self.limits.max_frame_size,
            max_headers: self.limits.max_headers,
            max_header_line: self.limits.max_header_line,
            max_body_size: self.limits.max_body_size,
        }
    }

    pub fn send_time_limit(&self) -> Duration {
        Duration::from_millis(self.limits.send_time_limit_ms)
    }
}

/// Checks plain WebSocket endpoints (`config`'s, or those with the ones
/// registered in code) against each other and the paths `config` serves.
pub fn validate_endpoints(
    config: &Config,
    endpoints: &[EndpointConfig],
) -> Result<(), ConfigError> {
    let mut reserved = vec![
        config.stomp.endpoint.as_str(),
        "/api",
        "/sse",
        "/health",
        "/ready",
        "/metrics",
        "/admin",
    ];
    if config.demo.enabled {
        reserved.extend(["/v1/chat/http", "/v1/chat/single"]);
    }
    endpoint::validate(endpoints, &reserved)
}

fn at_least(key: &'static str, value: usize, minimum: usize) -> Result<(), ConfigError> {
    if value < minimum {
        return Err(ConfigError::invalid(
            key,
            format!("{value} is below the minimum of {minimum}"),
        ));
    }
    Ok(())
}

fn validate_path(key: &'static str, path: &str) -> Result<(), ConfigError> {
    if !path.starts_with('/') {
        return Err(ConfigError::invalid(
            key,
            format!("{path:?} must start with '/'"),
        ));
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(ConfigError::invalid(
            key,
            format!("{path:?} must not end with '/'"),
        ));
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "*?{}".contains(c))
    {
        return Err(ConfigError::invalid(
            key,
            format!("{path:?} contains white space or a pattern character"),
        ));
    }
    Ok(())
}

fn validate_prefixes(key: &'static str, prefixes: &[String]) -> Result<(), ConfigError> {
    for prefix in prefixes {
        validate_path(key, prefix)?;
        if prefix == "/" {
            return Err(ConfigError::invalid(
                key,
                "\"/\" would swallow every destination",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_broker_toml_is_the_default_config() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker.toml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Config::parse("[limits]\nmax_frame_sise = 1\n").unwrap_err();
        assert!(error.to_string().contains("max_frame_sise"), "{error}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = Config::parse("[server]\nbind = \"nowhere\"\n").unwrap_err();
        assert!(error.to_string().contains("bind"), "{error}");
        let error = Config::parse("[stomp]\nbroker_prefixes = [\"topic\"]\n").unwrap_err();
        assert!(
            error.to_string().starts_with("stomp.broker_prefixes"),
            "{error}"
        );
        let error = Config::parse("[limits]\nmax_body_size = 70000\n").unwrap_err();
        assert!(
            error.to_string().starts_with("limits.max_body_size"),
            "{error}"
        );
        let error = Config::parse("[stomp]\napp_prefixes = [\"/topic\"]\n").unwrap_err();
        assert!(
            error.to_string().contains("also in stomp.broker_prefixes"),
            "{error}"
        );
    }

    #[test]
    fn the_effective_config_renders_and_parses_back() {
        let config = Config::default();
        assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
    }
}

//! `[cluster]` of `broker.toml`: whether nodes share one broker through Redis,
//! and how the backplane connects, names its keys and reconnects.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// Which engine carries messages between nodes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClusterBackend {
    /// One node: nothing leaves the process.
    #[default]
    None,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub backend: ClusterBackend,
    /// `redis://[user:password@]host:port/db` or `redis+unix:///path/to/socket`.
    /// With `sentinels`, only its user, password and database are used.
    pub url: String,
    /// Redis Sentinel addresses (`redis://host:26379`). When set, the node asks
    /// them for the current master of `sentinel_master` at every (re)connect,
    /// so it follows a failover.
    pub sentinels: Vec<String>,
    pub sentinel_master: String,
    /// This node's name in the registry and in cross-node messages; empty picks
    /// a random one at start (fine unless operators want stable names).
    pub node_id: String,
    /// Prepended to every Redis key and channel, so several clusters can share one Redis.
    pub channel_prefix: String,
    /// How long a node's registry entry outlives its last refresh.
    pub registry_ttl_ms: u64,
    /// How often a live node refreshes its registry entry (sessions, stats).
    pub registry_refresh_ms: u64,
    /// First delay before reconnecting to Redis; doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    /// The longest delay between attempts: it bounds how long cross-node
    /// messages are still lost after Redis is back.
    pub reconnect_max_ms: u64,
    /// Longest wait for a Redis reply or connection before the backplane counts as down.
    pub command_timeout_ms: u64,
    /// Messages waiting to be forwarded to Redis; more are dropped and counted.
    pub max_pending_publishes: usize,
    /// How long a destination's shared history survives its last message.
    pub history_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            backend: ClusterBackend::None,
            url: "redis://127.0.0.1:6379/".into(),
            sentinels: Vec::new(),
            sentinel_master: "mymaster".into(),
            node_id: String::new(),
            channel_prefix: "stomphub:".into(),
            registry_ttl_ms: 10_000,
            registry_refresh_ms: 2_000,
            reconnect_min_ms: 100,
            reconnect_max_ms: 500,
            command_timeout_ms: 2_000,
            max_pending_publishes: 65_536,
            history_ttl_ms: 86_400_000,
        }
    }
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        self.backend != ClusterBackend::None
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        let supported = ["redis://", "redis+unix://", "unix://"];
        if !supported.iter().any(|scheme| self.url.starts_with(scheme)) {
            return Err(ConfigError::invalid(
                "cluster.url",
                format!(
                    "{:?} is not supported: use redis://host:port/db or redis+unix:///socket \
                     (TLS and Redis Cluster are not supported; for Sentinel see cluster.sentinels)",
                    redacted_url(&self.url)
                ),
            ));
        }
        if let Err(error) = redis::Client::open(self.url.as_str()) {
            return Err(ConfigError::invalid("cluster.url", error.to_string()));
        }
        for sentinel in &self.sentinels {
            if !sentinel.starts_with("redis://") || redis::Client::open(sentinel.as_str()).is_err()
            {
                return Err(ConfigError::invalid(
                    "cluster.sentinels",
                    format!(
                        "{:?} is not a redis://host:port address",
                        redacted_url(sentinel)
                    ),
                ));
            }
        }
        if !self.sentinels.is_empty()
            && (self.sentinel_master.is_empty()
                || self
                    .sentinel_master
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(ConfigError::invalid(
                "cluster.sentinel_master",
                "name the master the sentinels monitor (no spaces)",
            ));
        }
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.node_id.len() > 64 || !self.node_id.chars().all(name_ok) {
            return Err(ConfigError::invalid(
                "cluster.node_id",
                "use at most 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.channel_prefix.is_empty()
            || self.channel_prefix.len() > 64
            || self.channel_prefix.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | '[' | ']' | '\\')
            })
        {
            return Err(ConfigError::invalid(
                "cluster.channel_prefix",
                "needs 1 to 64 characters without spaces or glob characters (* ? [ ] \\)",
            ));
        }
        if self.registry_refresh_ms < 100 || self.registry_refresh_ms * 2 > self.registry_ttl_ms {
            return Err(ConfigError::invalid(
                "cluster.registry_refresh_ms",
                "must be at least 100 and at most half of cluster.registry_ttl_ms",
            ));
        }
        // A maximum below the minimum counts as the minimum: a file that
        // set only reconnect_min_ms above the default maximum stays valid.
        if self.reconnect_min_ms == 0 {
            return Err(ConfigError::invalid(
                "cluster.reconnect_min_ms",
                "must be above 0",
            ));
        }
        if self.command_timeout_ms < 10 {
            return Err(ConfigError::invalid(
                "cluster.command_timeout_ms",
                "must be at least 10",
            ));
        }
        if self.max_pending_publishes == 0 {
            return Err(ConfigError::invalid(
                "cluster.max_pending_publishes",
                "must be at least 1",
            ));
        }
        if self.history_ttl_ms < 1000 {
            return Err(ConfigError::invalid(
                "cluster.history_ttl_ms",
                "must be at least 1000",
            ));
        }
        Ok(())
    }
}

/// The URL with any password replaced, for logs and error messages.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: &str) -> ClusterConfig {
        ClusterConfig {
            backend: ClusterBackend::Redis,
            url: url.into(),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn accepts_plain_and_unix_urls() {
        assert!(redis("redis://127.0.0.1:6379/0").validate().is_ok());
        assert!(redis("redis+unix:///run/redis.sock").validate().is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_connect_to_and_hides_passwords() {
        let error = redis("rediss://u:secret@host:6380/")
            .validate()
            .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("cluster.url:"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(redis("http://x").validate().is_err());
    }

    #[test]
    fn passwords_are_masked_for_display() {
        assert_eq!(
            redacted_url("redis://u:secret@h:1/0"),
            "redis://u:***@h:1/0"
        );
        assert_eq!(redacted_url("redis://:secret@h/"), "redis://:***@h/");
        assert_eq!(redacted_url("redis://h:1/"), "redis://h:1/");
    }

    #[test]
    fn sentinels_need_addresses_and_a_master_name() {
        let mut config = redis("redis://:pw@ignored/0");
        config.sentinels = vec!["redis://127.0.0.1:26379".into()];
        assert!(config.validate().is_ok());
        config.sentinel_master = String::new();
        let text = config.validate().unwrap_err().to_string();
        assert!(text.starts_with("cluster.sentinel_master"), "{text}");
        config.sentinel_master = "mymaster".into();
        config.sentinels = vec!["10.0.0.1:26379".into()];
        let text = config.validate().unwrap_err().to_string();
        assert!(text.starts_with("cluster.sentinels"), "{text}");
    }

    #[test]
    fn refresh_must_come_well_before_expiry() {
        let mut config = redis("redis://127.0.0.1/");
        config.registry_refresh_ms = 6_000;
        let text = config.validate().unwrap_err().to_string();
        assert!(text.contains("cluster.registry_refresh_ms"), "{text}");
    }

    #[test]
    fn node_names_and_prefixes_are_checked() {
        let mut config = redis("redis://127.0.0.1/");
        config.node_id = "node 1".into();
        assert!(config.validate().is_err());
        config.node_id = "node-1".into();
        config.channel_prefix = "a*".into();
        assert!(config.validate().is_err());
    }
}

//! `[proxy]`: the user's HTTP application asked about connects, subscriptions
//! and publishes (the `/app` handlers it serves are `[[route]] proxy`).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Called for every CONNECT; empty, it is not called.
    pub connect: String,
    /// Called for a SUBSCRIBE to a destination of `subscribe_destinations`.
    pub subscribe: String,
    /// Called for a client SEND to a broker or `/user` destination of `publish_destinations`.
    pub publish: String,
    /// Patterns (as in `[[acl]]`) of the destinations whose SUBSCRIBE asks the application.
    pub subscribe_destinations: Vec<String>,
    /// Patterns of the destinations whose SEND asks the application.
    pub publish_destinations: Vec<String>,
    /// Headers of the client's opening HTTP request passed to the connect call.
    pub http_headers: Vec<String>,
    /// Headers sent with every call, e.g. a shared secret by which the
    /// application knows the caller is the broker.
    pub headers: BTreeMap<String, String>,
    /// How long one call may take, the wait for a free slot included.
    pub timeout_ms: u64,
    /// Calls in flight from this node to the application; more wait for a slot.
    pub max_in_flight: usize,
    /// Extra tries of a call that could not reach the application at all; a call
    /// that reached it is never repeated, as the application may have acted on it.
    pub retries: u32,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect: String::new(),
            subscribe: String::new(),
            publish: String::new(),
            subscribe_destinations: vec!["/**".into()],
            publish_destinations: vec!["/**".into()],
            http_headers: vec!["cookie".into(), "authorization".into()],
            headers: BTreeMap::new(),
            timeout_ms: 1000,
            max_in_flight: 1000,
            retries: 0,
        }
    }
}

/// Letters, digits and dashes: every header name the broker has reason to use.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An application URL: http or https, with a host.
pub fn validate_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            ConfigError::invalid(key, format!("{url:?} is not an http:// or https:// URL"))
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ConfigError::invalid(key, format!("{url:?} names no host")));
    }
    Ok(())
}

impl ProxyConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("proxy.connect", &self.connect),
            ("proxy.subscribe", &self.subscribe),
            ("proxy.publish", &self.publish),
        ] {
            if !url.is_empty() {
                validate_url(key, url)?;
            }
        }
        if self.timeout_ms < 10 {
            return Err(ConfigError::invalid(
                "proxy.timeout_ms",
                format!("{} is below the minimum of 10", self.timeout_ms),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "proxy.max_in_flight",
                "must be at least 1",
            ));
        }
        if self.retries > 10 {
            return Err(ConfigError::invalid(
                "proxy.retries",
                format!("{} is above the maximum of 10", self.retries),
            ));
        }
        for name in &self.http_headers {
            if !is_header_name(name) {
                return Err(ConfigError::invalid(
                    "proxy.http_headers",
                    format!("{name:?} is not a header name"),
                ));
            }
        }
        for (name, value) in &self.headers {
            if !is_header_name(name) {
                return Err(ConfigError::invalid(
                    "proxy.headers",
                    format!("{name:?} is not a header name"),
                ));
            }
            if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
                return Err(ConfigError::invalid(
                    "proxy.headers",
                    format!("the value of {name:?} holds a control character"),
                ));
            }
        }
        Ok(())
    }

    /// True when any call of `[proxy]` is configured.
    pub fn is_used(&self) -> bool {
        !(self.connect.is_empty() && self.subscribe.is_empty() && self.publish.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn off_by_default_and_parses_when_set() {
        assert!(!Config::default().proxy.is_used());
        let config = Config::parse(
            "[proxy]\nconnect = \"http://127.0.0.1:3000/stomp/connect\"\n\
             subscribe_destinations = [\"/topic/orders/**\"]\ntimeout_ms = 500\n",
        )
        .unwrap();
        assert!(config.proxy.is_used());
        assert_eq!(config.proxy.timeout_ms, 500);
        assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn bad_entries_name_their_key() {
        let cases = [
            ("[proxy]\nconnect = \"127.0.0.1:3000\"\n", "proxy.connect"),
            ("[proxy]\nsubscribe = \"ftp://x/\"\n", "proxy.subscribe"),
            ("[proxy]\npublish = \"http:///x\"\n", "proxy.publish"),
            ("[proxy]\ntimeout_ms = 0\n", "proxy.timeout_ms"),
            ("[proxy]\nmax_in_flight = 0\n", "proxy.max_in_flight"),
            ("[proxy]\nretries = 99\n", "proxy.retries"),
            ("[proxy]\nhttp_headers = [\"a b\"]\n", "proxy.http_headers"),
            ("[proxy]\nheaders = { \"x y\" = \"1\" }\n", "proxy.headers"),
            (
                "[proxy]\nheaders = { \"x\" = \"a\\nb\" }\n",
                "proxy.headers",
            ),
            ("[proxy]\nconect = \"http://x/\"\n", "conect"),
        ];
        for (toml, key) in cases {
            let error = Config::parse(toml).expect_err(toml);
            assert!(error.to_string().contains(key), "{toml}: {error}");
        }
    }
}

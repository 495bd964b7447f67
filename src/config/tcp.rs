//! `[tcp]`: STOMP over plain TCP, the protocol's own transport (port 61613 by
//! convention), optionally under TLS and behind a PROXY-protocol load balancer.

use super::{ConfigError, ServerConfig, TlsConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    /// Address and port of the STOMP listener; unset, there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    /// Every connection must start with a PROXY protocol header (v2, or v1)
    /// naming the client, and may come only from `server.trusted_proxies`.
    pub proxy_protocol: bool,
    /// `[tcp.tls]`: STOMP over TLS (`stomp+ssl://`) on `bind` instead of plain TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl TcpConfig {
    pub(super) fn validate(&self, server: &ServerConfig) -> Result<(), ConfigError> {
        if self.bind.is_none() {
            // Settings for a listener that is not there are a forgotten `bind`.
            if self.proxy_protocol {
                return Err(ConfigError::invalid(
                    "tcp.bind",
                    "is needed when tcp.proxy_protocol is on",
                ));
            }
            if self.tls.is_some() {
                return Err(ConfigError::invalid(
                    "tcp.bind",
                    "is needed when [tcp.tls] is set",
                ));
            }
        }
        // Whoever sends the header chooses the address every per-client rule
        // applies to, and the load balancer's own connections must not count
        // against one address's cap: both need the proxies named.
        if self.proxy_protocol && server.trusted_proxies.is_empty() {
            return Err(ConfigError::invalid(
                "tcp.proxy_protocol",
                "needs server.trusted_proxies: the load balancers allowed to send the PROXY header",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn tcp_is_off_by_default_and_parses_when_set() {
        assert_eq!(Config::default().tcp.bind, None);
        let config = Config::parse(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             [tcp]\nbind = \"127.0.0.1:61613\"\nproxy_protocol = true\n\
             [tcp.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.tcp.bind, Some("127.0.0.1:61613".parse().unwrap()));
        assert!(config.tcp.proxy_protocol);
        assert!(config.tcp.tls.is_some());
        assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn settings_without_a_listener_or_without_trusted_proxies_name_their_key() {
        let cases = [
            ("[tcp]\nproxy_protocol = true\n", "tcp.bind"),
            (
                "[tcp.tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
                "tcp.bind",
            ),
            (
                "[tcp]\nbind = \"127.0.0.1:0\"\nproxy_protocol = true\n",
                "tcp.proxy_protocol",
            ),
            ("[tcp]\nbind = \"nowhere\"\n", "bind"),
        ];
        for (toml, key) in cases {
            let error = Config::parse(toml).expect_err(toml);
            assert!(error.to_string().contains(key), "{toml}: {error}");
        }
    }
}

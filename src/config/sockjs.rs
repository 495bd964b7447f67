//! `[sockjs]`: SockJS on the STOMP endpoint (Spring's `withSockJS()`), with Spring's defaults.

use super::{ConfigError, at_least};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SockJsConfig {
    /// Serve the SockJS protocol under `stomp.endpoint` (`/endpoint-websocket/info`, ...).
    pub enabled: bool,
    /// Offer the `websocket` transport (Spring's `setWebSocketEnabled`); off, clients
    /// use the HTTP transports only.
    pub websocket: bool,
    /// An `h` frame after this long without any frame (Spring's `heartbeatTime`).
    pub heartbeat_ms: u64,
    /// A session with no receiving request for this long is closed (`disconnectDelay`):
    /// the time a polling client may take between requests.
    pub disconnect_delay_ms: u64,
    /// A streaming response ends after this many bytes and the client opens the next
    /// one (`streamBytesLimit`), so browsers do not keep a whole stream in memory.
    pub stream_bytes_limit: usize,
    /// Messages a session holds while no request is receiving (`httpMessageCacheSize`);
    /// past it the session's outbound queue fills and the slow-consumer rules judge it.
    pub message_cache_size: usize,
    /// The sockjs-client script the iframe page loads (`clientLibraryUrl`).
    pub client_library_url: String,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        SockJsConfig {
            enabled: true,
            websocket: true,
            heartbeat_ms: 25_000,
            disconnect_delay_ms: 5_000,
            stream_bytes_limit: 128 * 1024,
            message_cache_size: 100,
            client_library_url: "/node_modules/sockjs-client/dist/sockjs.min.js".into(),
        }
    }
}

impl SockJsConfig {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn disconnect_delay(&self) -> Duration {
        Duration::from_millis(self.disconnect_delay_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least("sockjs.heartbeat_ms", self.heartbeat_ms as usize, 100)?;
        at_least(
            "sockjs.disconnect_delay_ms",
            self.disconnect_delay_ms as usize,
            100,
        )?;
        // Room for the 2 KiB prelude of xhr_streaming and a frame after it.
        at_least("sockjs.stream_bytes_limit", self.stream_bytes_limit, 4096)?;
        at_least("sockjs.message_cache_size", self.message_cache_size, 1)?;
        if self.client_library_url.is_empty()
            || self
                .client_library_url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'<>".contains(c))
        {
            return Err(ConfigError::invalid(
                "sockjs.client_library_url",
                format!(
                    "{:?} is not a URL that can go in a script tag",
                    self.client_library_url
                ),
            ));
        }
        Ok(())
    }
}

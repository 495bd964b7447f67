//! Why a call to the user's application failed, in words that name the key to look at.

/// A failed call. The message (what the client reads in its ERROR) starts
/// with the key of the call (`proxy.connect`, `route.proxy`, ...) and leaves
/// out the application's URL, which is the operator's business: the broker
/// logs it with [`ProxyError::url`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{key}: the application cannot be reached: {why}")]
    Unreachable {
        key: &'static str,
        url: String,
        why: String,
    },
    #[error(
        "{key}: the application did not answer within {ms} ms (proxy.timeout_ms){}",
        queued(*waited_ms)
    )]
    Timeout {
        key: &'static str,
        url: String,
        ms: u64,
        /// Time spent waiting for a free slot before the call was made.
        waited_ms: u64,
    },
    #[error(
        "{key}: {max} calls to the application were in flight and none ended within {ms} ms (proxy.max_in_flight)"
    )]
    Busy {
        key: &'static str,
        max: usize,
        ms: u64,
    },
    #[error("{key}: the application answered HTTP {status}")]
    Status {
        key: &'static str,
        url: String,
        status: u16,
    },
    #[error("{key}: the application's answer is not the JSON of docs/proxy.md: {why}")]
    Garbage {
        key: &'static str,
        url: String,
        why: String,
    },
    /// The call's URL is not configured: a frame was sent to a call that is off.
    #[error("{key} is not set")]
    NotConfigured { key: &'static str },
}

impl ProxyError {
    /// The URL that was called, for the operator's log.
    pub fn url(&self) -> Option<&str> {
        match self {
            ProxyError::Unreachable { url, .. }
            | ProxyError::Timeout { url, .. }
            | ProxyError::Status { url, .. }
            | ProxyError::Garbage { url, .. } => Some(url),
            ProxyError::Busy { .. } | ProxyError::NotConfigured { .. } => None,
        }
    }
}

/// Says how much of a timed-out call's time went to waiting for a slot: a slow
/// application and too few `max_in_flight` slots need different fixes.
fn queued(waited_ms: u64) -> String {
    match waited_ms {
        0 => String::new(),
        ms => format!(", {ms} ms of it waiting for a free slot (proxy.max_in_flight)"),
    }
}

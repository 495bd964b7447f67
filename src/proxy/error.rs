//! Why a call to the user's application failed, in words that name the key to look at.

/// A failed call; the first word of each message is the key of the call
/// (`proxy.connect`, `route.proxy`, ...), as the client reads it in an ERROR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{key}: the application at {url} cannot be reached: {why}")]
    Unreachable {
        key: &'static str,
        url: String,
        why: String,
    },
    #[error(
        "{key}: the application at {url} did not answer within {ms} ms (proxy.timeout_ms){}",
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
    #[error("{key}: the application at {url} answered HTTP {status}")]
    Status {
        key: &'static str,
        url: String,
        status: u16,
    },
    #[error("{key}: the answer of {url} is not the JSON of docs/proxy.md: {why}")]
    Garbage {
        key: &'static str,
        url: String,
        why: String,
    },
    /// A frame the application must judge reached the session without its answer.
    #[error("{key}: the application was not asked about this frame")]
    NotAsked { key: &'static str },
}

/// Says how much of a timed-out call's time went to waiting for a slot: a slow
/// application and too few `max_in_flight` slots need different fixes.
fn queued(waited_ms: u64) -> String {
    match waited_ms {
        0 => String::new(),
        ms => format!(", {ms} ms of it waiting for a free slot (proxy.max_in_flight)"),
    }
}

//! The broker's view of other nodes: what it tells them (interest in a
//! destination, a message to forward) through [`Remote`], implemented by the
//! cluster backplane, and the shared history it merges before a replay.

use crate::stomp::Headers;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A message the broker hands over to reach subscribers on other nodes.
#[derive(Debug)]
pub struct RemoteMessage {
    /// The broker destination (never a per-session `/user` key).
    pub key: String,
    pub headers: Headers,
    pub body: Bytes,
    /// Subscribers here already have it; other nodes must not send it back.
    pub delivered_locally: bool,
    /// The destination's retention when it keeps history: the shared store
    /// then numbers and keeps it, and delivers it here too.
    pub history: Option<usize>,
}

/// Other nodes, as the broker sees them.
pub trait Remote: Send + Sync + std::fmt::Debug {
    /// The first local subscriber of `key` came (`+1`) or the last left (`-1`).
    fn interest(&self, key: &str, delta: i64);
    /// Hands `message` over; false when it will not reach other nodes.
    fn forward(&self, message: RemoteMessage) -> bool;
    /// Waits until messages other nodes publish to `key` reach this node;
    /// `None` when they already do (or cannot for now: this node serves alone).
    fn until_live(self: Arc<Self>, key: &str) -> Option<LiveWait>;
}

/// The wait of [`Remote::until_live`].
pub type LiveWait = Pin<Box<dyn Future<Output = Result<(), NotLive>> + Send + Sync>>;

/// A subscription that could not be made live on every node in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the subscription to {destination} was not confirmed by the cluster backplane (Redis) within {waited_ms} ms (cluster.command_timeout_ms); messages from other nodes could be missed, so it is refused"
)]
pub struct NotLive {
    pub destination: String,
    pub waited_ms: u64,
}

/// One message of a destination's shared history.
#[derive(Debug, Clone)]
pub struct SharedMessage {
    pub position: crate::stomp::Position,
    pub published_ms: u64,
    pub headers: Headers,
    pub body: Bytes,
}

/// What the shared store holds of a destination after a position.
#[derive(Debug, Clone)]
pub struct SharedHistory {
    /// The destination's newest position when it was read (no epoch: the
    /// store holds nothing for it).
    pub head: crate::stomp::Position,
    /// Some messages after the position are no longer kept.
    pub gone: bool,
    /// Oldest first.
    pub messages: Vec<SharedMessage>,
}

//! Several nodes sharing one broker through Redis: this node's handle on the
//! backplane. The broker forwards what it publishes here, registers which
//! destinations and users it has local interest in, and the backplane tasks
//! (`backplane`) deliver what other nodes publish. Off unless `[cluster]` says
//! `backend = "redis"`.

mod accounting;
mod backplane;
pub mod channels;
pub mod envelope;
mod interest;
mod live;
mod nodes;
mod replay;

use crate::broker::Broker;
use crate::broker::remote::{Remote, RemoteMessage};
use crate::config::{ClusterConfig, redacted_url};
use crate::stomp::Headers;
use bytes::Bytes;
use channels::{Channel, Names};
use interest::Interest;
pub use nodes::{
    EndpointStats, NodeEntry, NodeSnapshot, NodeStats, SessionSummary, SubscriptionSummary,
};
pub use replay::Lease;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot, watch};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the cluster backplane is down")]
    Down,
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}

/// What the broker hands over to reach other nodes.
#[derive(Debug)]
pub enum Forward {
    /// A message to a broker destination; with `history`, Redis numbers and stores it.
    Message(RemoteMessage),
    /// A message for every session of `user`, on whichever node.
    User {
        user: String,
        destination: String,
        headers: Headers,
        body: Bytes,
    },
}

/// Delivers a message sent to a user to that user's sessions on this node;
/// the user registry lives above the cluster, in the application layer.
pub trait UserDelivery: Send + Sync {
    fn deliver_to_user_here(
        &self,
        user: &str,
        destination: &str,
        headers: &Headers,
        body: Bytes,
    ) -> usize;
}

/// Where messages from other nodes are delivered on this one.
#[derive(Clone)]
pub struct Local {
    pub broker: Broker,
    pub users: Arc<dyn UserDelivery>,
}

/// The broker reaches other nodes through this: the cluster is a client of
/// the broker, not a part of it.
impl Remote for Cluster {
    fn interest(&self, key: &str, delta: i64) {
        Cluster::interest(self, Channel::for_subscription(key), delta);
    }

    fn forward(&self, message: RemoteMessage) -> bool {
        Cluster::forward(self, Forward::Message(message))
    }

    fn until_live(self: Arc<Self>, key: &str) -> Option<crate::broker::remote::LiveWait> {
        Cluster::until_live(&self, Channel::for_subscription(key))
    }
}

/// Counters reported in `/api/stats`.
#[derive(Debug, Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    pub received: AtomicU64,
    /// Not forwarded because the backplane was down.
    pub dropped_while_down: AtomicU64,
    /// Not forwarded because `cluster.max_pending_publishes` were already waiting.
    pub dropped_queue_full: AtomicU64,
    /// Lost with a Redis request that failed.
    pub dropped_failed: AtomicU64,
    /// Messages of other nodes this node never got, seen as gaps in their
    /// numbering of a channel it listens to (see `accounting`).
    pub missed: AtomicU64,
    /// Inbound payloads that were not stomphub messages.
    pub invalid: AtomicU64,
    pub outages: AtomicU64,
}

#[derive(Debug)]
struct Health {
    changed_at: Instant,
    last_error: Option<String>,
}

pub struct Cluster {
    config: ClusterConfig,
    node: String,
    instance: u64,
    names: Names,
    up: AtomicBool,
    health: Mutex<Health>,
    counters: Counters,
    outbox: mpsc::Sender<Forward>,
    outbox_receiver: Mutex<Option<mpsc::Receiver<Forward>>>,
    interest: Mutex<Interest>,
    interest_changed: Notify,
    /// Bumped whenever the set of confirmed channels changes, for lease waiters.
    confirmations: watch::Sender<u64>,
    markers: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    link: Mutex<Option<backplane::CommandLink>>,
    /// Per-channel numbers of what this node forwards, kept across connections.
    numbering: Mutex<accounting::Numbering>,
    /// What this node received, per origin and channel, kept across connections.
    inbound: Mutex<backplane::InboundState>,
    /// Messages of the publish under way: counted as failed if the connection
    /// ends before Redis answers.
    in_flight: AtomicU64,
    /// The Redis server of the current (or last) connection attempt.
    server: Mutex<String>,
    snapshot: std::sync::OnceLock<Box<dyn Fn() -> NodeSnapshot + Send + Sync>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("up", &self.is_up())
            .finish()
    }
}

pub(crate) fn random_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    RandomState::new().hash_one((nanos, std::process::id()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    /// The handle for `[cluster]`, or `None` on a single node.
    pub fn new(config: &ClusterConfig) -> Option<Arc<Cluster>> {
        if !config.enabled() {
            return None;
        }
        let node = if config.node_id.is_empty() {
            format!("node-{:08x}", random_u64() as u32)
        } else {
            config.node_id.clone()
        };
        let (outbox, receiver) = mpsc::channel(config.max_pending_publishes);
        Some(Arc::new(Cluster {
            names: Names::new(&config.channel_prefix),
            config: config.clone(),
            node,
            instance: random_u64(),
            up: AtomicBool::new(false),
            health: Mutex::new(Health {
                changed_at: Instant::now(),
                last_error: Some("not connected yet".into()),
            }),
            counters: Counters::default(),
            outbox,
            outbox_receiver: Mutex::new(Some(receiver)),
            interest: Mutex::new(Interest::default()),
            interest_changed: Notify::new(),
            confirmations: watch::Sender::new(0),
            markers: Mutex::new(HashMap::new()),
            link: Mutex::new(None),
            numbering: Mutex::default(),
            inbound: Mutex::default(),
            in_flight: AtomicU64::new(0),
            server: Mutex::new(String::new()),
            snapshot: std::sync::OnceLock::new(),
        }))
    }

    /// Starts the backplane tasks; they deliver into `local` and stop with
    /// `shutdown`. Only the first call starts anything.
    pub fn start(self: &Arc<Self>, local: Local, shutdown: tokio_util::sync::CancellationToken) {
        if let Some(outbox) = lock(&self.outbox_receiver).take() {
            tokio::spawn(backplane::run(self.clone(), local, outbox, shutdown));
        }
    }

    /// What this node publishes in its registry entry (sessions, stats).
    pub fn set_snapshot(&self, snapshot: Box<dyn Fn() -> NodeSnapshot + Send + Sync>) {
        let _ = self.snapshot.set(snapshot);
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Hands a message to the backplane; false when it will not reach other
    /// nodes (backplane down, or too many waiting), which is counted.
    pub fn forward(&self, message: Forward) -> bool {
        if !self.is_up() {
            self.counters
                .dropped_while_down
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.outbox.try_send(message) {
            Ok(()) => true,
            Err(_) => {
                let dropped = self
                    .counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                if dropped.is_multiple_of(10_000) {
                    tracing::warn!(
                        limit = self.config.max_pending_publishes,
                        dropped = dropped + 1,
                        "cluster backplane cannot keep up; messages to other nodes dropped (cluster.max_pending_publishes)"
                    );
                }
                false
            }
        }
    }

    /// Counts local interest in `channel` up or down by one.
    pub fn interest(&self, channel: Channel, delta: i64) {
        lock(&self.interest).change(channel, delta);
        self.interest_changed.notify_one();
    }

    fn set_up(&self) {
        self.up.store(true, Ordering::Release);
        let mut health = lock(&self.health);
        let outage = health.changed_at.elapsed();
        health.changed_at = Instant::now();
        health.last_error = None;
        tracing::info!(
            node = %self.node,
            url = %redacted_url(&self.config.url),
            after_ms = outage.as_millis() as u64,
            "cluster backplane up"
        );
    }

    fn set_down(&self, reason: String) {
        let was_up = self.up.swap(false, Ordering::AcqRel);
        lock(&self.interest).forget_confirmations();
        self.confirmations
            .send_modify(|generation| *generation += 1);
        *lock(&self.link) = None;
        let mut health = lock(&self.health);
        if was_up {
            self.counters.outages.fetch_add(1, Ordering::Relaxed);
            health.changed_at = Instant::now();
            tracing::warn!(
                node = %self.node,
                %reason,
                "cluster backplane down: local subscribers keep being served; messages to and from other nodes are lost until it is back"
            );
        } else if health.last_error.as_deref() != Some(reason.as_str()) {
            tracing::warn!(node = %self.node, %reason, "cluster backplane unreachable; retrying with backoff");
        }
        health.last_error = Some(reason);
    }

    /// `/api/stats` and `/ready`: the backplane's state and counters.
    pub fn status(&self) -> serde_json::Value {
        let health = lock(&self.health);
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        serde_json::json!({
            "backend": "redis",
            "node": self.node,
            "url": redacted_url(&self.config.url),
            "server": *lock(&self.server),
            "state": if self.is_up() { "up" } else { "down" },
            "state_for_ms": health.changed_at.elapsed().as_millis() as u64,
            "last_error": health.last_error,
            "outages": load(&c.outages),
            "channels": lock(&self.interest).wanted_count(),
            "pending": self.config.max_pending_publishes - self.outbox.capacity(),
            "forwarded": load(&c.forwarded),
            "received": load(&c.received),
            "dropped_while_down": load(&c.dropped_while_down),
            "dropped_queue_full": load(&c.dropped_queue_full),
            "dropped_failed": load(&c.dropped_failed),
            "missed": load(&c.missed),
            "invalid": load(&c.invalid),
        })
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.config.command_timeout_ms)
    }
}

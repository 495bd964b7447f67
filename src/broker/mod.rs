//! The in-memory broker: routes a published message to every matching subscription's
//! outbound queue. Publishing never waits for a subscriber.

mod clustered;
pub mod destination;
pub mod history;
pub mod hooks;
pub mod outbound;
pub mod registry;
pub mod remote;
pub mod user_destination;

use crate::stomp::{Headers, Position, PreparedMessage};
use bytes::Bytes;
use destination::{DestinationError, Pattern, Prefixes};
use history::History;
use hooks::{OutboundMessage, PublishHook};
use outbound::Outgoing;
use registry::{AckMode, Registry, Subscription};
use remote::Remote;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Headers a sender may not set on a MESSAGE: the broker owns them.
pub const BROKER_HEADERS: [&str; 7] = [
    "destination",
    "message-id",
    "subscription",
    "ack",
    "receipt",
    "transaction",
    "content-length",
];

fn delivery(message: &Arc<PreparedMessage>, subscription: &Subscription) -> Outgoing {
    Outgoing::Delivery {
        message: message.clone(),
        subscription: subscription.id.clone(),
        needs_ack: subscription.ack != AckMode::Auto,
        replayed: false,
    }
}

fn replayed(message: &Arc<PreparedMessage>, subscription: &Subscription) -> Outgoing {
    match delivery(message, subscription) {
        Outgoing::Delivery {
            message,
            subscription,
            needs_ack,
            ..
        } => Outgoing::Delivery {
            message,
            subscription,
            needs_ack,
            replayed: true,
        },
        other => other,
    }
}

fn push_history_gone(subscription: &Subscription) {
    let notice = Outgoing::HistoryGone {
        subscription: subscription.id.clone(),
        destination: subscription.destination.clone(),
    };
    subscription
        .outbound
        .push(notice, 64 + subscription.destination.len());
}

/// Counters reported by the stats API.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages_in: AtomicU64,
    pub deliveries: AtomicU64,
}

struct Inner {
    registry: Registry,
    prefixes: Prefixes,
    next_message_id: AtomicU64,
    counters: Counters,
    interceptors: Vec<Arc<dyn PublishHook>>,
    history: History,
    remote: Option<Arc<dyn Remote>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("prefixes", &self.prefixes)
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

/// Cheap to clone; every clone is the same broker.
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl Broker {
    pub fn new(prefixes: Prefixes) -> Self {
        Broker::with_parts(prefixes, Vec::new(), History::default(), None)
    }

    /// A broker whose published messages pass through `interceptors` once each,
    /// before fan-out, whose destinations under `history` rules keep history,
    /// and which shares its destinations with other nodes through `remote`.
    pub fn with_parts(
        prefixes: Prefixes,
        interceptors: Vec<Arc<dyn PublishHook>>,
        history: History,
        remote: Option<Arc<dyn Remote>>,
    ) -> Self {
        Broker {
            inner: Arc::new(Inner {
                registry: Registry::default(),
                prefixes,
                next_message_id: AtomicU64::new(1),
                counters: Counters::default(),
                interceptors,
                history,
                remote,
            }),
        }
    }

    pub fn prefixes(&self) -> &Prefixes {
        &self.inner.prefixes
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Registers a subscription; a destination with wildcards becomes a pattern subscription.
    pub fn subscribe(&self, subscription: Arc<Subscription>) -> Result<(), DestinationError> {
        let pattern = if destination::is_pattern(&subscription.destination) {
            Some(Pattern::compile(&subscription.destination)?)
        } else {
            destination::validate(&subscription.destination)?;
            None
        };
        let destination = subscription.destination.clone();
        if self.inner.registry.insert(subscription, pattern) {
            self.note_interest(&destination, 1);
        }
        Ok(())
    }

    pub fn unsubscribe(&self, subscription: &Subscription) {
        if self.inner.registry.remove(subscription) {
            self.note_interest(&subscription.destination, -1);
        }
    }

    /// Publishes to every subscriber of `destination` and returns how many
    /// deliveries were queued. `headers` are the sender's; broker-owned ones
    /// are replaced. The destination must be a concrete broker destination.
    pub fn publish(&self, destination: &str, headers: &Headers, body: Bytes) -> usize {
        self.publish_to(destination, destination, headers, body)
    }

    /// Publishes to the subscribers registered under `key`, showing `destination`
    /// in the MESSAGE (user destinations: key `/user/{session}/queue/x`, shown `/user/queue/x`).
    pub fn publish_to(
        &self,
        key: &str,
        destination: &str,
        headers: &Headers,
        body: Bytes,
    ) -> usize {
        if !self.inner.interceptors.is_empty() {
            let mut message = OutboundMessage {
                destination: destination.to_owned(),
                headers: headers.clone(),
                body,
            };
            for interceptor in &self.inner.interceptors {
                match interceptor.outbound(message) {
                    Some(next) => message = next,
                    None => return 0,
                }
            }
            return self.route(key, &message.destination, &message.headers, message.body);
        }
        self.route(key, destination, headers, body)
    }

    /// A MESSAGE for one subscription only (the application's initial message
    /// of a subscription): numbered like every other, never published.
    pub fn prepare_one(
        &self,
        destination: &str,
        headers: &Headers,
        body: Bytes,
    ) -> Arc<PreparedMessage> {
        self.prepare(destination, headers, body, None)
    }

    /// The MESSAGE every subscriber of `destination` gets, with a fresh id.
    fn prepare(
        &self,
        destination: &str,
        headers: &Headers,
        body: Bytes,
        seq: Option<Position>,
    ) -> Arc<PreparedMessage> {
        let message_id = self.inner.next_message_id.fetch_add(1, Ordering::Relaxed);
        let mut message_headers = Headers::with_capacity(headers.len() + 3);
        message_headers.push("destination", destination);
        message_headers.push("message-id", itoa::Buffer::new().format(message_id));
        if let Some(seq) = seq {
            message_headers.push("seq", seq.to_string());
        }
        for (name, value) in headers.iter() {
            let owned_by_broker =
                BROKER_HEADERS.contains(&name) || (seq.is_some() && name == "seq");
            if !owned_by_broker {
                message_headers.push(name, value);
            }
        }
        let message = PreparedMessage::new(message_headers, body);
        Arc::new(match seq {
            Some(seq) => message.with_seq(seq),
            None => message,
        })
    }

    /// Delivers to this node's subscribers, numbering the message when its
    /// destination keeps history.
    fn fan_out(&self, key: &str, destination: &str, headers: &Headers, body: Bytes) -> usize {
        let build = |seq: Option<Position>| self.prepare(destination, headers, body.clone(), seq);
        let deliveries = match self.inner.history.ring(key) {
            // Under the destination's lock, so a replaying subscriber sees each
            // message exactly once: in its replay or live, never both or neither.
            Some(ring) => {
                let mut ring = ring.lock().unwrap_or_else(|p| p.into_inner());
                let message = ring.append(|seq| build(Some(seq)));
                self.deliver(key, &message)
            }
            None => self.deliver(key, &build(None)),
        };
        self.count(1, deliveries);
        deliveries
    }

    fn count(&self, messages: u64, deliveries: usize) {
        let counters = &self.inner.counters;
        if messages > 0 {
            counters.messages_in.fetch_add(messages, Ordering::Relaxed);
        }
        counters
            .deliveries
            .fetch_add(deliveries as u64, Ordering::Relaxed);
    }

    fn deliver(&self, key: &str, message: &Arc<PreparedMessage>) -> usize {
        let size = message.approximate_len();
        let mut deliveries = 0;
        self.inner
            .registry
            .for_each_subscriber(key, |subscription| {
                if subscription.outbound.push(
                    delivery(message, subscription),
                    size + subscription.id.len(),
                ) {
                    deliveries += 1;
                }
            });
        deliveries
    }

    /// Registers `subscription` after queueing the history it missed since
    /// position `since` (exact destinations with history only). Returns the
    /// destination's newest position when it keeps history.
    pub fn subscribe_replaying(
        &self,
        subscription: Arc<Subscription>,
        since: Option<Position>,
    ) -> Result<Option<Position>, DestinationError> {
        let ring = if destination::is_pattern(&subscription.destination) {
            None
        } else {
            self.inner.history.ring(&subscription.destination)
        };
        let Some(ring) = ring else {
            if since.is_some() {
                push_history_gone(&subscription);
            }
            self.subscribe(subscription)?;
            return Ok(None);
        };
        destination::validate(&subscription.destination)?;
        let mut ring = ring.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(since) = since {
            let replay = ring.since(since);
            if replay.gone {
                push_history_gone(&subscription);
            }
            for (_, message) in &replay.messages {
                let size = message.approximate_len() + subscription.id.len();
                subscription
                    .outbound
                    .push(replayed(message, &subscription), size);
            }
        }
        let head = ring.head();
        let destination = subscription.destination.clone();
        if self.inner.registry.insert(subscription, None) {
            self.note_interest(&destination, 1);
        }
        Ok(Some(head))
    }

    /// The newest history position of `destination`, if it keeps history.
    pub fn history_head(&self, destination: &str) -> Option<Position> {
        let ring = self.inner.history.ring(destination)?;
        let head = ring.lock().unwrap_or_else(|p| p.into_inner()).head();
        Some(head)
    }

    /// A fresh message id, for frames built outside `publish` (subscribe-mapping replies).
    /// Whether `id` is a `message-id` this broker has issued.
    pub fn issued_message_id(&self, id: &str) -> bool {
        id.parse::<u64>()
            .is_ok_and(|n| n >= 1 && n < self.inner.next_message_id.load(Ordering::Relaxed))
    }

    pub fn next_message_id(&self) -> u64 {
        self.inner.next_message_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Subscription counts by destination.
    pub fn subscription_counts(&self) -> Vec<(String, usize)> {
        self.inner.registry.counts()
    }

    /// `[[history]]` rules for destinations first published to from now on.
    pub fn replace_history_rules(&self, rules: Vec<history::HistoryRule>) {
        self.inner.history.replace_rules(rules);
    }

    /// Destinations holding history, and the messages they hold together.
    pub fn history_sizes(&self) -> (usize, usize) {
        let (mut destinations, mut messages) = (0, 0);
        self.inner.history.for_each_ring(|ring| {
            destinations += 1;
            messages += ring.kept();
        });
        (destinations, messages)
    }
}

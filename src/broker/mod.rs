//! The in-memory broker: routes a published message to every matching subscription's
//! outbound queue. Publishing never waits for a subscriber.

pub mod destination;
pub mod registry;

use crate::app::interceptor::{ChannelInterceptor, OutboundMessage};
use crate::session::outbound::Outgoing;
use crate::stomp::{Headers, PreparedMessage};
use bytes::Bytes;
use destination::{DestinationError, Pattern, Prefixes};
use registry::{AckMode, Registry, Subscription};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Headers a sender may not set on a MESSAGE: the broker owns them.
const BROKER_HEADERS: [&str; 7] = [
    "destination",
    "message-id",
    "subscription",
    "ack",
    "receipt",
    "transaction",
    "content-length",
];

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
    interceptors: Vec<Arc<dyn ChannelInterceptor>>,
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
        Broker::with_interceptors(prefixes, Vec::new())
    }

    /// A broker whose published messages pass through `interceptors` once each, before fan-out.
    pub fn with_interceptors(
        prefixes: Prefixes,
        interceptors: Vec<Arc<dyn ChannelInterceptor>>,
    ) -> Self {
        Broker {
            inner: Arc::new(Inner {
                registry: Registry::default(),
                prefixes,
                next_message_id: AtomicU64::new(1),
                counters: Counters::default(),
                interceptors,
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
        self.inner.registry.insert(subscription, pattern);
        Ok(())
    }

    pub fn unsubscribe(&self, subscription: &Subscription) {
        self.inner.registry.remove(subscription);
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
            return self.fan_out(key, &message.destination, &message.headers, message.body);
        }
        self.fan_out(key, destination, headers, body)
    }

    fn fan_out(&self, key: &str, destination: &str, headers: &Headers, body: Bytes) -> usize {
        let message_id = self.inner.next_message_id.fetch_add(1, Ordering::Relaxed);
        let mut message_headers = Headers::with_capacity(headers.len() + 2);
        message_headers.push("destination", destination);
        message_headers.push("message-id", itoa::Buffer::new().format(message_id));
        for (name, value) in headers.iter() {
            if !BROKER_HEADERS.contains(&name) {
                message_headers.push(name, value);
            }
        }
        let message = Arc::new(PreparedMessage::new(message_headers, body));
        let size = message.approximate_len();
        let mut deliveries = 0;
        self.inner
            .registry
            .for_each_subscriber(key, |subscription| {
                let item = Outgoing::Delivery {
                    message: message.clone(),
                    subscription: subscription.id.clone(),
                    needs_ack: subscription.ack != AckMode::Auto,
                };
                if subscription
                    .outbound
                    .push(item, size + subscription.id.len())
                {
                    deliveries += 1;
                }
            });
        let counters = &self.inner.counters;
        counters.messages_in.fetch_add(1, Ordering::Relaxed);
        counters
            .deliveries
            .fetch_add(deliveries as u64, Ordering::Relaxed);
        deliveries
    }

    /// A fresh message id, for frames built outside `publish` (subscribe-mapping replies).
    pub fn next_message_id(&self) -> u64 {
        self.inner.next_message_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Subscription counts by destination.
    pub fn subscription_counts(&self) -> Vec<(String, usize)> {
        self.inner.registry.counts()
    }
}

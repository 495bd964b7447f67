//! The broker's side of a cluster: what a publish forwards to other nodes,
//! which destinations this node needs to hear about, and how messages and
//! shared history from other nodes come in.

use super::Broker;
use super::remote::{LiveWait, RemoteMessage, SharedHistory};
use super::user_destination::is_session_key;
use crate::stomp::{Headers, Position};
use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

impl Broker {
    /// The first subscriber of `key` came (+1) or the last left (-1).
    pub(super) fn note_interest(&self, key: &str, delta: i64) {
        if let Some(remote) = &self.inner.remote
            && !is_session_key(key)
        {
            remote.interest(key, delta);
        }
    }

    /// Waits until messages other nodes publish to `key` reach this node;
    /// `None` when nothing needs waiting (one node, a channel already heard,
    /// a per-session key, or a backplane that is down).
    pub fn until_live(&self, key: &str) -> Option<LiveWait> {
        let remote = self.inner.remote.as_ref()?;
        if is_session_key(key) {
            return None;
        }
        remote.clone().until_live(key)
    }

    /// Delivers here and forwards to the other nodes. With a cluster, numbered
    /// history comes from Redis, so such messages reach local subscribers too
    /// through Redis, in the one order every node sees; if Redis is down they
    /// are delivered here unnumbered, and not kept.
    pub(super) fn route(
        &self,
        key: &str,
        destination: &str,
        headers: &Headers,
        body: Bytes,
    ) -> usize {
        let Some(remote) = self.inner.remote.as_ref().filter(|_| key == destination) else {
            return self.fan_out(key, destination, headers, body);
        };
        match self.inner.history.ring(key) {
            Some(ring) => {
                let keep = ring
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .max_messages();
                let forwarded = remote.forward(RemoteMessage {
                    key: key.to_owned(),
                    headers: headers.clone(),
                    body: body.clone(),
                    delivered_locally: false,
                    history: Some(keep),
                });
                if forwarded {
                    self.count(1, 0);
                    return 0;
                }
                let deliveries = self.deliver(key, &self.prepare(destination, headers, body, None));
                self.count(1, deliveries);
                deliveries
            }
            None => {
                let message = self.prepare(destination, headers, body.clone(), None);
                let deliveries = self.deliver(key, &message);
                self.count(1, deliveries);
                remote.forward(RemoteMessage {
                    key: key.to_owned(),
                    headers: headers.clone(),
                    body,
                    delivered_locally: true,
                    history: None,
                });
                deliveries
            }
        }
    }

    /// A message another node published (or a numbered one of this node's).
    /// Interceptors ran on the publishing node.
    pub fn deliver_from_cluster(
        &self,
        key: &str,
        headers: &Headers,
        body: Bytes,
        seq: Option<Position>,
    ) {
        let deliveries = match (seq, self.inner.history.ring(key)) {
            (Some(seq), Some(ring)) => {
                let mut ring = ring.lock().unwrap_or_else(|p| p.into_inner());
                match ring.append_numbered(seq, |seq| self.prepare(key, headers, body, Some(seq))) {
                    Some(message) => self.deliver(key, &message),
                    None => 0,
                }
            }
            _ => self.deliver(key, &self.prepare(key, headers, body, None)),
        };
        self.count(0, deliveries);
    }

    /// A new connection to Redis: Redis may have restarted empty and number
    /// from 1 again, so numbers held here can no longer be compared with new ones.
    pub fn restart_shared_numbering(&self) {
        self.inner
            .history
            .for_each_ring(|ring| ring.restart_numbering());
    }

    /// Whether `key` keeps history (and so can be replayed).
    pub fn keeps_history(&self, key: &str) -> bool {
        self.inner.history.ring(key).is_some()
    }

    /// Merges history read from Redis into `key`'s ring before a replaying subscribe.
    pub fn merge_shared_history(&self, key: &str, fetched: SharedHistory) {
        let Some(ring) = self.inner.history.ring(key) else {
            return;
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let messages = fetched
            .messages
            .into_iter()
            // Kept messages of an older epoch (a list that outlived its
            // numbering) cannot sit beside the head's.
            .filter(|message| {
                message.position.seq > 0 && message.position.epoch == fetched.head.epoch
            })
            .map(|message| {
                let age = Duration::from_millis(now_ms.saturating_sub(message.published_ms));
                let position = message.position;
                let prepared = self.prepare(key, &message.headers, message.body, Some(position));
                (position.seq, age, prepared)
            })
            .collect();
        ring.lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge_fetched(fetched.head, messages);
    }
}

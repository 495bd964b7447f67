//! History shared through Redis, for a client that resumes on another node
//! (SSE `Last-Event-ID`). Redis numbers and keeps each destination's messages
//! (see the publish script in `backplane`); a node about to replay:
//!
//! 1. subscribes to the destination's channel and waits for Redis to confirm,
//! 2. reads the stored messages after the client's position with a script that
//!    also publishes a marker on the channel,
//! 3. waits for the marker to come back through the subscription.
//!
//! Every message numbered up to the read's head is published before the marker,
//! so once the marker is back each of them has either reached the local ring
//! live or is in the read; later ones arrive live. The broker merges the read
//! into the ring and replays from there, with no gap and no repeat.

use super::channels::Channel;
use super::envelope::{self, Inbound};
use super::{Cluster, ClusterError, lock, random_u64};
use crate::broker::remote::{SharedHistory, SharedMessage};
use crate::stomp::{Epoch, Position};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// KEYS: position hash, history list, channel. ARGV: number after which to
/// read (`-` for none), marker, the epoch of that number (empty for none).
/// Returns {head, gone, payloads after the position, epoch}; a number of
/// another epoch reads everything kept.
pub(super) const FETCH_HISTORY: &str = r"
local head = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local epoch = redis.call('HGET', KEYS[1], 'e') or ''
local after = head
if ARGV[1] ~= '-' then
  after = tonumber(ARGV[1])
  if ARGV[3] ~= epoch then after = 0 end
end
local entries = {}
local gone = 0
if after < head then
  local len = redis.call('LLEN', KEYS[2])
  local start = after + 1 - (head - len + 1)
  if start < 0 then
    start = 0
    gone = 1
  end
  entries = redis.call('LRANGE', KEYS[2], start, -1)
end
redis.call('PUBLISH', KEYS[3], ARGV[2])
return {head, gone, entries, epoch}
";

/// Holds a channel subscription while a replaying subscriber is set up.
pub struct Lease {
    cluster: Arc<Cluster>,
    channel: Channel,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.cluster.interest(self.channel.clone(), -1);
    }
}

impl Cluster {
    /// Wants `channel` and waits until Redis has confirmed the subscription.
    pub async fn lease(self: &Arc<Self>, channel: Channel) -> Result<Lease, ClusterError> {
        self.interest(channel.clone(), 1);
        let lease = Lease {
            cluster: self.clone(),
            channel: channel.clone(),
        };
        let mut confirmations = self.confirmations.subscribe();
        let confirmed = async {
            loop {
                if lock(&self.interest).is_confirmed(&channel) {
                    return Ok(());
                }
                if !self.is_up() {
                    return Err(ClusterError::Down);
                }
                confirmations
                    .changed()
                    .await
                    .map_err(|_| ClusterError::Down)?;
            }
        };
        tokio::time::timeout(self.command_timeout(), confirmed)
            .await
            .map_err(|_| ClusterError::Timeout("a channel subscription"))??;
        Ok(lease)
    }

    /// Subscribes to `key`'s channel and reads its shared history after `after`
    /// (only the head when `None`). Keep the lease until the replaying
    /// subscription is registered.
    pub async fn prepare_replay(
        self: &Arc<Self>,
        key: &str,
        after: Option<Position>,
    ) -> Result<(Lease, SharedHistory), ClusterError> {
        if !self.is_up() {
            return Err(ClusterError::Down);
        }
        let lease = self.lease(Channel::Destination(key.to_owned())).await?;
        let mut link = lock(&self.link).clone().ok_or(ClusterError::Down)?;
        let token = random_u64();
        let (marker_back, marker) = oneshot::channel();
        lock(&self.markers).insert(token, marker_back);
        let read = async {
            let reply: (u64, u64, Vec<Vec<u8>>, String) = redis::cmd("EVALSHA")
                .arg(&link.fetch_sha)
                .arg(3)
                .arg(self.names.sequence_key(key))
                .arg(self.names.history_key(key))
                .arg(self.names.destination(key))
                .arg(after.map_or_else(|| "-".to_owned(), |after| after.seq.to_string()))
                .arg(envelope::marker(token))
                .arg(after.map_or_else(String::new, |after| {
                    if after.epoch.is_known() {
                        after.epoch.to_string()
                    } else {
                        String::new()
                    }
                }))
                .query_async(&mut link.connection)
                .await?;
            tokio::time::timeout(self.command_timeout(), marker)
                .await
                .map_err(|_| ClusterError::Timeout("the history marker"))?
                .map_err(|_| ClusterError::Down)?;
            Ok::<_, ClusterError>(reply)
        }
        .await;
        lock(&self.markers).remove(&token);
        let (head, gone, payloads, epoch) = read?;
        let epoch = Epoch::from_hex(&epoch).unwrap_or(Epoch::NONE);
        let mut messages = Vec::with_capacity(payloads.len());
        for payload in payloads {
            match envelope::decode(&payload) {
                Ok(Inbound::Message(envelope)) => messages.push(SharedMessage {
                    position: envelope.seq.unwrap_or_default(),
                    published_ms: envelope.published_ms,
                    headers: envelope.headers,
                    body: envelope.body,
                }),
                _ => {
                    self.counters.invalid.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok((
            lease,
            SharedHistory {
                head: Position::new(epoch, head),
                gone: gone != 0,
                messages,
            },
        ))
    }
}

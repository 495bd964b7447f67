//! When a local subscription is live on every node: Redis has confirmed this
//! node's subscription to its channel, so whatever another node publishes
//! from then on reaches it. A SUBSCRIBE's RECEIPT, an SSE stream's first
//! byte and a plain socket's upgrade wait for this.

use super::channels::Channel;
use super::{Cluster, lock};
use crate::broker::remote::{LiveWait, NotLive};
use std::sync::Arc;

impl Cluster {
    /// Waits until Redis confirms `channel` for this node. `None` when it
    /// already has, or when the backplane is down: the node then serves its
    /// own subscribers alone, as during any outage, and subscribes again on
    /// reconnecting. A backplane going down during the wait ends it the same way.
    pub fn until_live(self: &Arc<Self>, channel: Channel) -> Option<LiveWait> {
        if !self.is_up() || lock(&self.interest).is_confirmed(&channel) {
            return None;
        }
        let cluster = self.clone();
        let mut confirmations = self.confirmations.subscribe();
        Some(Box::pin(async move {
            let limit = cluster.command_timeout();
            let live = async {
                loop {
                    if !cluster.is_up() || lock(&cluster.interest).is_confirmed(&channel) {
                        return;
                    }
                    if confirmations.changed().await.is_err() {
                        return;
                    }
                }
            };
            tokio::time::timeout(limit, live)
                .await
                .map_err(|_| NotLive {
                    destination: channel.describe(),
                    waited_ms: limit.as_millis() as u64,
                })
        }))
    }
}

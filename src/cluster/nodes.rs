//! The cluster registry: each node keeps one Redis key with its sessions and
//! stats, written every `registry_refresh_ms` with a TTL, so `/api/sessions`
//! and `/api/stats` can show every live node and a dead node disappears by itself.

use super::{Cluster, ClusterError, lock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One node's registry entry, as written to Redis.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeEntry {
    pub node: String,
    /// When the node wrote it, in milliseconds since the Unix epoch.
    pub updated_ms: u64,
    pub snapshot: NodeSnapshot,
}

/// What a node tells the others about itself: its `/api/stats` and `/api/sessions`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub stats: NodeStats,
    /// The first of them only, to bound the entry; `sessions_total` counts all.
    pub sessions: Vec<SessionSummary>,
    pub sessions_total: usize,
}

/// A node's `/api/stats`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NodeStats {
    /// STOMP-over-WebSocket sessions.
    pub connections: usize,
    /// Open TCP connections of every kind, and those still before their first request.
    pub tcp_connections: usize,
    /// The cap on `tcp_connections` in force (0 = none), which by default
    /// follows the open-file limit; absent from nodes that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    pub pending_handshakes: usize,
    /// Bytes waiting in all outbound queues, and their cap.
    pub queued_bytes: usize,
    pub max_queued_bytes_total: usize,
    pub sessions: usize,
    /// Sessions by transport (`websocket`, `sse`, `sockjs/xhr`, `plain-websocket`, ...).
    pub transports: BTreeMap<String, usize>,
    pub users: usize,
    pub messages_in: u64,
    pub deliveries: u64,
    pub subscriptions: BTreeMap<String, usize>,
    /// Plain WebSocket endpoints by configured path, with their open sessions;
    /// absent from nodes that predate them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, EndpointStats>,
    /// The backplane's state and counters, with `[cluster]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<serde_json::Value>,
}

/// One plain WebSocket endpoint in a node's `/api/stats`: the seeds' `getOnlineCount()`.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointStats {
    pub sessions: usize,
}

/// One session in a node's `/api/sessions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionSummary {
    pub id: String,
    pub user: Option<String>,
    pub remote: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub connected_since: u64,
    pub subscriptions: Vec<SubscriptionSummary>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SubscriptionSummary {
    pub id: String,
    pub destination: String,
}

/// This node's entry as it is written to Redis; `None` when it cannot be
/// encoded (logged), which leaves the last one written to expire.
pub(super) fn entry(cluster: &Cluster, now_ms: u64) -> Option<String> {
    let entry = NodeEntry {
        node: cluster.node.clone(),
        updated_ms: now_ms,
        snapshot: cluster
            .snapshot
            .get()
            .map(|snapshot| snapshot())
            .unwrap_or_default(),
    };
    serde_json::to_string(&entry)
        .inspect_err(|error| tracing::warn!(%error, "cannot encode this node's registry entry"))
        .ok()
}

/// Most nodes a cluster view reads; far above any sensible cluster.
const MAX_NODES: usize = 1024;

impl Cluster {
    /// Every live node's latest entry, sorted by node id.
    pub async fn nodes(&self) -> Result<Vec<NodeEntry>, ClusterError> {
        let mut link = lock(&self.link).clone().ok_or(ClusterError::Down)?;
        let pattern = self.names.node_keys_pattern();
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(200)
                .query_async(&mut link.connection)
                .await?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 || keys.len() >= MAX_NODES {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        keys.truncate(MAX_NODES);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut link.connection)
            .await?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|text| {
                // Left out rather than failing the whole view; a node of a
                // version with another format would show up here.
                serde_json::from_str(&text)
                    .inspect_err(|error| tracing::debug!(%error, "unreadable registry entry"))
                    .ok()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::NodeEntry;

    /// An entry as the untyped writer before these types wrote it: nodes of
    /// either version must read each other's entries, and the views show them.
    const WRITTEN_BY_JSON_MACRO: &str = r#"{
        "node": "n1",
        "snapshot": {
            "sessions": [{
                "attributes": {"sessionId": "00000001", "transport": "sse"},
                "connected_since": 1795997118492,
                "id": "00000001",
                "remote": "127.0.0.1:42276",
                "subscriptions": [{"destination": "/topic/news", "id": "0"}],
                "user": "alice"
            }],
            "sessions_total": 1,
            "stats": {
                "cluster": {"node": "n1", "state": "up", "last_error": null},
                "connections": 0,
                "deliveries": 0,
                "max_queued_bytes_total": 268435456,
                "messages_in": 3,
                "pending_handshakes": 0,
                "queued_bytes": 0,
                "sessions": 1,
                "subscriptions": {"/topic/news": 1},
                "tcp_connections": 1,
                "transports": {"sse": 1},
                "users": 1
            }
        },
        "updated_ms": 1795997119474
    }"#;

    #[test]
    fn an_entry_reads_and_writes_the_same_json() {
        let entry: NodeEntry = serde_json::from_str(WRITTEN_BY_JSON_MACRO).expect("entry");
        assert_eq!(entry.snapshot.sessions[0].user.as_deref(), Some("alice"));
        assert_eq!(entry.snapshot.stats.messages_in, 3);
        let expected: serde_json::Value =
            serde_json::from_str(WRITTEN_BY_JSON_MACRO).expect("json");
        assert_eq!(serde_json::to_value(&entry).expect("encode"), expected);
    }

    #[test]
    fn a_node_without_cluster_stats_leaves_the_key_out() {
        let mut entry: NodeEntry = serde_json::from_str(WRITTEN_BY_JSON_MACRO).expect("entry");
        entry.snapshot.stats.cluster = None;
        let text = serde_json::to_string(&entry).expect("encode");
        assert!(!text.contains("\"cluster\""), "{text}");
    }
}

//! The cluster registry: each node keeps one Redis key with its sessions and
//! stats, written every `registry_refresh_ms` with a TTL, so `/api/sessions`
//! and `/api/stats` can show every live node and a dead node disappears by itself.

use super::{Cluster, ClusterError, lock};

/// This node's entry as it is written to Redis.
pub(super) fn entry(cluster: &Cluster, now_ms: u64) -> serde_json::Value {
    let snapshot = cluster
        .snapshot
        .get()
        .map(|snapshot| snapshot())
        .unwrap_or_else(|| serde_json::json!({}));
    serde_json::json!({
        "node": cluster.node,
        "updated_ms": now_ms,
        "snapshot": snapshot,
    })
}

/// Most nodes a cluster view reads; far above any sensible cluster.
const MAX_NODES: usize = 1024;

impl Cluster {
    /// Every live node's latest entry, sorted by node id.
    pub async fn nodes(&self) -> Result<Vec<serde_json::Value>, ClusterError> {
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
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect())
    }
}

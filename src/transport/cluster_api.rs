//! Health for load balancers (`/health`, `/ready`) and the cluster-wide views
//! of `/api/stats` and `/api/sessions` (`?scope=cluster`), read from the
//! registry entries every live node keeps in Redis.

use super::http_api::{ApiError, session_views, stats_view};
use crate::cluster::{EndpointStats, NodeEntry, NodeSnapshot, NodeStats, SessionSummary};
use crate::hub::Hub;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Liveness: the process answers HTTP. Restart it when this fails.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: send new clients here. False while shutting down, and while
/// the cluster backplane is down (this node's clients would miss other nodes' messages).
pub async fn ready(State(state): State<Arc<Hub>>) -> Response {
    let mut reasons = Vec::new();
    if state.is_shutting_down() {
        reasons.push("shutting down".to_owned());
    }
    let cluster = state.cluster.as_ref();
    let backplane = cluster.map(|cluster| cluster.status());
    if let Some(cluster) = cluster
        && !cluster.is_up()
    {
        let error = backplane
            .as_ref()
            .and_then(|backplane| backplane["last_error"].as_str());
        reasons.push(format!(
            "cluster backplane down: {}",
            error.unwrap_or("unknown")
        ));
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": reasons.is_empty(),
        "reasons": reasons,
        "cluster": backplane,
    });
    (status, Json(body)).into_response()
}

/// Most sessions one node lists in its registry entry, which is rewritten every
/// `registry_refresh_ms`: 10,000 sessions are about 2 MB.
const MAX_LISTED_SESSIONS: usize = 10_000;

/// What this node writes into its registry entry.
pub fn node_snapshot(state: &Hub) -> NodeSnapshot {
    let mut sessions = session_views(state);
    let sessions_total = sessions.len();
    sessions.truncate(MAX_LISTED_SESSIONS);
    NodeSnapshot {
        stats: stats_view(state),
        sessions,
        sessions_total,
    }
}

async fn registry(state: &Hub) -> Result<Vec<NodeEntry>, ApiError> {
    let cluster = state.cluster.as_ref().ok_or_else(|| {
        ApiError::BadRequest("scope=cluster needs [cluster] in broker.toml".into())
    })?;
    cluster
        .nodes()
        .await
        .map_err(|error| ApiError::Unavailable(format!("cluster view unavailable: {error}")))
}

/// One session in the cluster-wide `/api/sessions`: the node's view of it, and the node.
#[derive(Serialize)]
struct NodeSessionView<'a> {
    #[serde(flatten)]
    session: &'a SessionSummary,
    node: &'a str,
}

/// Every live node's stats as of its last refresh, and totals.
pub(crate) async fn cluster_stats(state: &Hub) -> Result<Response, ApiError> {
    let nodes = registry(state).await?;
    let sum = |field: fn(&NodeStats) -> u64| -> u64 {
        nodes.iter().map(|entry| field(&entry.snapshot.stats)).sum()
    };
    let users: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|entry| &entry.snapshot.sessions)
        .filter_map(|session| session.user.as_deref())
        .collect();
    let mut endpoints: BTreeMap<&str, EndpointStats> = BTreeMap::new();
    for entry in &nodes {
        for (path, stats) in &entry.snapshot.stats.endpoints {
            endpoints.entry(path).or_default().sessions += stats.sessions;
        }
    }
    let totals = serde_json::json!({
        "nodes": nodes.len(),
        "connections": sum(|stats| stats.connections as u64),
        "sessions": sum(|stats| stats.sessions as u64),
        "users": users.len(),
        "messages_in": sum(|stats| stats.messages_in),
        "deliveries": sum(|stats| stats.deliveries),
        "endpoints": endpoints,
    });
    let nodes: Vec<_> = nodes
        .iter()
        .map(|entry| {
            serde_json::json!({
                "node": entry.node,
                "updated_ms": entry.updated_ms,
                "stats": entry.snapshot.stats,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "totals": totals, "nodes": nodes })).into_response())
}

/// Every live node's sessions as of its last refresh, each with its node.
pub(crate) async fn cluster_sessions(state: &Hub) -> Result<Response, ApiError> {
    let nodes = registry(state).await?;
    let sessions: Vec<_> = nodes
        .iter()
        .flat_map(|entry| {
            entry
                .snapshot
                .sessions
                .iter()
                .map(|session| NodeSessionView {
                    session,
                    node: &entry.node,
                })
        })
        .collect();
    Ok(Json(sessions).into_response())
}

//! Health for load balancers (`/health`, `/ready`) and the cluster-wide views
//! of `/api/stats` and `/api/sessions` (`?scope=cluster`), read from the
//! registry entries every live node keeps in Redis.

use super::http_api::{ApiError, session_views, stats_view};
use crate::server::ServerState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Liveness: the process answers HTTP. Restart it when this fails.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: send new clients here. False while shutting down, and while
/// the cluster backplane is down (this node's clients would miss other nodes' messages).
pub async fn ready(State(state): State<Arc<ServerState>>) -> Response {
    let mut reasons = Vec::new();
    if state.shutdown.is_cancelled() {
        reasons.push("shutting down".to_owned());
    }
    let cluster = state.broker().cluster();
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
pub fn node_snapshot(state: &ServerState) -> serde_json::Value {
    let mut sessions = session_views(state);
    let total = sessions.len();
    sessions.truncate(MAX_LISTED_SESSIONS);
    serde_json::json!({
        "stats": stats_view(state),
        "sessions": sessions,
        "sessions_total": total,
    })
}

async fn registry(state: &ServerState) -> Result<Vec<serde_json::Value>, ApiError> {
    let cluster = state.broker().cluster().ok_or_else(|| {
        ApiError::BadRequest("scope=cluster needs [cluster] in broker.toml".into())
    })?;
    cluster
        .nodes()
        .await
        .map_err(|error| ApiError::Unavailable(format!("cluster view unavailable: {error}")))
}

fn sum(nodes: &[serde_json::Value], field: &str) -> u64 {
    nodes
        .iter()
        .filter_map(|node| node["snapshot"]["stats"][field].as_u64())
        .sum()
}

/// Every live node's stats as of its last refresh, and totals.
pub(crate) async fn cluster_stats(state: &ServerState) -> Result<Response, ApiError> {
    let nodes = registry(state).await?;
    let users: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|node| node["snapshot"]["sessions"].as_array())
        .flatten()
        .filter_map(|session| session["user"].as_str())
        .collect();
    let totals = serde_json::json!({
        "nodes": nodes.len(),
        "connections": sum(&nodes, "connections"),
        "sessions": sum(&nodes, "sessions"),
        "users": users.len(),
        "messages_in": sum(&nodes, "messages_in"),
        "deliveries": sum(&nodes, "deliveries"),
    });
    let nodes: Vec<_> = nodes
        .iter()
        .map(|node| {
            serde_json::json!({
                "node": node["node"],
                "updated_ms": node["updated_ms"],
                "stats": node["snapshot"]["stats"],
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "totals": totals, "nodes": nodes })).into_response())
}

/// Every live node's sessions as of its last refresh, each with its node.
pub(crate) async fn cluster_sessions(state: &ServerState) -> Result<Response, ApiError> {
    let nodes = registry(state).await?;
    let mut sessions = Vec::new();
    for node in &nodes {
        for session in node["snapshot"]["sessions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let mut session = session.clone();
            session["node"] = node["node"].clone();
            sessions.push(session);
        }
    }
    Ok(Json(sessions).into_response())
}

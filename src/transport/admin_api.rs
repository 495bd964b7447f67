//! `GET /api/stats/stream`: the dashboard's feed (`web/admin/`), a server-sent
//! event every second with this node's counters, its busiest destinations,
//! its first sessions and, with a cluster, every node's headline figures.
//! A read endpoint: `[api] read_token` or `token` when set, here as `?token=`
//! since an `EventSource` cannot send headers.

use super::api_access::authorize_read;
use super::http_api::{ApiError, ScopeQuery, session_views, stats_view};
use crate::hub::Hub;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Destinations and sessions listed per event: the dashboard shows the
/// busiest, and an event stays small on a node with 100,000 sessions.
const LISTED: usize = 100;
const EVERY: Duration = Duration::from_secs(1);

pub(crate) async fn stats_stream(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Result<Response, ApiError> {
    authorize_read(&hub, &headers, query.token.as_deref())?;
    let shutdown = hub.lifecycle.shutdown.clone();
    let ticks = tokio_stream_of_ticks(EVERY);
    let events = ticks
        .take_until(shutdown.cancelled_owned())
        .then(move |()| {
            let hub = hub.clone();
            async move {
                let snapshot = snapshot(&hub).await;
                Ok::<_, Infallible>(format!("data: {snapshot}\n\n"))
            }
        });
    Ok(super::sse::event_stream(
        Body::from_stream(events).into_response(),
    ))
}

/// A tick now and then every `every`.
fn tokio_stream_of_ticks(every: Duration) -> impl futures_util::Stream<Item = ()> {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures_util::stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    })
}

async fn snapshot(hub: &Hub) -> serde_json::Value {
    let stats = stats_view(hub);
    let mut destinations: Vec<(&String, &usize)> = stats.subscriptions.iter().collect();
    destinations.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let destinations: Vec<serde_json::Value> = destinations
        .into_iter()
        .take(LISTED)
        .map(|(destination, subscribers)| {
            serde_json::json!({ "destination": destination, "subscribers": subscribers })
        })
        .collect();
    let mut sessions = session_views(hub);
    sessions.sort_by_key(|session| session.connected_since);
    let sessions_total = sessions.len();
    sessions.truncate(LISTED);
    let nodes = match &hub.cluster {
        Some(cluster) => match cluster.nodes().await {
            Ok(nodes) => nodes
                .into_iter()
                .map(|entry| {
                    let stats = &entry.snapshot.stats;
                    serde_json::json!({
                        "node": entry.node,
                        "updated_ms": entry.updated_ms,
                        "connections": stats.connections,
                        "sessions": stats.sessions,
                        "messages_in": stats.messages_in,
                        "deliveries": stats.deliveries,
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    let telemetry = &hub.telemetry;
    let refusals: u64 = telemetry
        .refusals()
        .into_iter()
        .map(|(_, count)| count)
        .chain(hub.admission.refusals().map(|(_, count)| count))
        .sum();
    serde_json::json!({
        "time_ms": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default(),
        "connections": stats.connections,
        "tcp_connections": stats.tcp_connections,
        "sessions": stats.sessions,
        "transports": stats.transports,
        "users": stats.users,
        "subscriptions": stats.subscriptions.values().sum::<usize>(),
        "messages_in": stats.messages_in,
        "deliveries": stats.deliveries,
        "queued_bytes": stats.queued_bytes,
        "max_queued_bytes_total": stats.max_queued_bytes_total,
        "slow_consumer_cuts": telemetry.slow_consumer_cuts(),
        "refusals": refusals,
        "destinations": destinations,
        "sessions_total": sessions_total,
        "session_list": sessions,
        "cluster": stats.cluster,
        "nodes": nodes,
    })
}

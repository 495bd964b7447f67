//! `GET /metrics`: the Prometheus text format of what connections recorded
//! (`telemetry`) and of the node's state read at scrape time: sessions by
//! transport, subscriptions, queues, history, refusals, the cluster's counters.

use super::api_access::authorize_read;
use super::http_api::{ApiError, ScopeQuery};
use crate::hub::Hub;
use crate::telemetry::{CONTENT_TYPE, Scrape, transport_label};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) async fn metrics(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Result<Response, ApiError> {
    authorize_read(&hub, &headers, query.token.as_deref())?;
    let text = hub.telemetry.render(scrape(&hub));
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

fn scrape(hub: &Hub) -> Scrape {
    let mut scrape = Scrape::default();
    let as_f64 = |n: usize| n as f64;
    scrape.gauge_by(
        "stomphub_build_info",
        "The running version (always 1).",
        "version",
        [(env!("CARGO_PKG_VERSION").to_owned(), 1.0)],
    );
    scrape.gauge(
        "stomphub_connections",
        "Connections carrying a STOMP session now (WebSocket, SockJS, TCP).",
        as_f64(hub.lifecycle.connections.load(Ordering::Relaxed)),
    );
    scrape.gauge(
        "stomphub_tcp_connections",
        "TCP connections admitted now (limits.max_connections counts these).",
        as_f64(hub.admission.open()),
    );
    scrape.gauge(
        "stomphub_pending_handshakes",
        "Connections that have not completed their opening request yet.",
        as_f64(hub.admission.pending()),
    );
    let mut by_transport: BTreeMap<&'static str, usize> = BTreeMap::new();
    for info in hub.app.directory.list() {
        let transport = info.attributes.get("transport").map_or("", String::as_str);
        *by_transport.entry(transport_label(transport)).or_default() += 1;
    }
    scrape.gauge_by(
        "stomphub_sessions",
        "Sessions open now, by transport.",
        "transport",
        by_transport
            .into_iter()
            .map(|(transport, count)| (transport.to_owned(), as_f64(count))),
    );
    scrape.gauge(
        "stomphub_users",
        "Users with at least one session on this node.",
        as_f64(hub.app.users.user_count()),
    );
    let counts = hub.broker().subscription_counts();
    scrape.gauge(
        "stomphub_subscriptions",
        "Subscriptions to broker destinations (patterns included).",
        as_f64(counts.iter().map(|(_, count)| count).sum()),
    );
    scrape.gauge(
        "stomphub_destinations",
        "Broker destinations (and patterns) with at least one subscriber.",
        as_f64(counts.len()),
    );
    let queued = hub.sessions.queued();
    scrape.gauge(
        "stomphub_queued_bytes",
        "Bytes queued for clients and not yet written, all sessions together.",
        as_f64(queued.used()),
    );
    scrape.gauge(
        "stomphub_queued_bytes_limit",
        "limits.max_queued_bytes_total.",
        as_f64(queued.limit()),
    );
    let counters = hub.broker().counters();
    scrape.counter(
        "stomphub_messages_published_total",
        "Messages published to broker destinations on this node (SEND, handlers, the template, the HTTP API).",
        counters.messages_in.load(Ordering::Relaxed),
    );
    let (history_destinations, history_messages) = hub.broker().history_sizes();
    scrape.gauge(
        "stomphub_history_destinations",
        "Destinations holding history ([[history]]).",
        as_f64(history_destinations),
    );
    scrape.gauge(
        "stomphub_history_messages",
        "Messages held in history, all destinations together.",
        as_f64(history_messages),
    );
    let mut refusals: BTreeMap<&'static str, u64> = hub.telemetry.refusals().into_iter().collect();
    refusals.extend(hub.admission.refusals());
    scrape.counter_by(
        "stomphub_refusals_total",
        "Connections, handshakes and sessions refused by a limit or a security rule, by reason.",
        "reason",
        refusals,
    );
    if let Some(cluster) = &hub.cluster {
        cluster_families(cluster, &mut scrape);
    }
    scrape
}

fn cluster_families(cluster: &crate::cluster::Cluster, scrape: &mut Scrape) {
    let counters = cluster.counters();
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    scrape.gauge(
        "stomphub_cluster_up",
        "1 while the Redis backplane is connected.",
        if cluster.is_up() { 1.0 } else { 0.0 },
    );
    scrape.counter(
        "stomphub_cluster_outages_total",
        "Times the backplane went down.",
        load(&counters.outages),
    );
    scrape.counter(
        "stomphub_cluster_forwarded_total",
        "Messages published to Redis for other nodes.",
        load(&counters.forwarded),
    );
    scrape.counter(
        "stomphub_cluster_received_total",
        "Messages taken from Redis and delivered here.",
        load(&counters.received),
    );
    scrape.counter_by(
        "stomphub_cluster_dropped_total",
        "Messages for other nodes not sent (while_down, queue_full) or maybe not sent (failed).",
        "reason",
        [
            ("while_down", load(&counters.dropped_while_down)),
            ("queue_full", load(&counters.dropped_queue_full)),
            ("failed", load(&counters.dropped_failed)),
        ],
    );
    scrape.counter(
        "stomphub_cluster_missed_total",
        "Messages of other nodes never received here, seen as gaps in their numbering.",
        load(&counters.missed),
    );
    scrape.counter(
        "stomphub_cluster_invalid_total",
        "Payloads on cluster channels that were not stomphub messages of this version.",
        load(&counters.invalid),
    );
}

//! The broker's measurements for Prometheus (`GET /metrics`): counters and
//! histograms the connection paths record into, and the families read at
//! scrape time from state that is counted elsewhere already (see [`Scrape`]).
//! Names start with `stomphub_`; labels are bounded sets (transport, reason),
//! never a session or a destination. docs/operations.md lists them all.

mod scrape;

pub use scrape::Scrape;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The transports a `transport` label may name: the handshake's own names,
/// so the label set stays bounded whatever a session's attributes say.
const TRANSPORTS: [&str; 5] = ["websocket", "sockjs", "sse", "plain-websocket", "tcp"];

/// A `transport` label value from a session's `transport` attribute.
pub fn transport_label(transport: &str) -> &'static str {
    TRANSPORTS
        .iter()
        .find(|known| **known == transport)
        .copied()
        .unwrap_or("other")
}

/// What the connection paths record, registered once per server.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    deliveries: IntCounterVec,
    messages_received: IntCounterVec,
    bytes_received: IntCounterVec,
    bytes_sent: IntCounterVec,
    slow_consumers: IntCounterVec,
    throttled: IntCounterVec,
    /// By reason; refusals are rare, so a lock is cheap enough, and the
    /// listener's own refusals join these at scrape time in one family.
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    connect_seconds: HistogramVec,
    delivery_seconds: Histogram,
}

/// The counters of one connection, taken once when it opens so that
/// recording costs an atomic add, not a label lookup.
#[derive(Debug, Clone)]
pub struct ConnectionMeter {
    pub deliveries: IntCounter,
    pub messages_received: IntCounter,
    pub bytes_received: IntCounter,
    pub bytes_sent: IntCounter,
    pub slow_consumers: IntCounter,
    pub throttled: IntCounter,
    pub connect_seconds: Histogram,
    pub delivery_seconds: Histogram,
    telemetry: Arc<Telemetry>,
}

fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric definition")
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let deliveries = counter_vec(
            "stomphub_deliveries_total",
            "Messages written to subscribers, by transport.",
            "transport",
        );
        let messages_received = counter_vec(
            "stomphub_messages_received_total",
            "SEND frames received from clients, by transport.",
            "transport",
        );
        let bytes_received = counter_vec(
            "stomphub_received_bytes_total",
            "Bytes of STOMP frames read from clients, by transport.",
            "transport",
        );
        let bytes_sent = counter_vec(
            "stomphub_sent_bytes_total",
            "Bytes of frames written to clients as the outbound queues count them (before escaping and transport framing), by transport.",
            "transport",
        );
        let slow_consumers = counter_vec(
            "stomphub_slow_consumer_disconnects_total",
            "Connections cut because they did not read fast enough (limits.max_queued_*, send_time_limit_ms), by transport.",
            "transport",
        );
        let throttled = counter_vec(
            "stomphub_throttled_total",
            "Times a connection's reading paused for limits.max_frames_per_second, by transport.",
            "transport",
        );
        let connect_seconds = HistogramVec::new(
            HistogramOpts::new(
                "stomphub_connect_duration_seconds",
                "From a connection's transport being open to its CONNECTED frame (credential checks included), by transport.",
            )
            .buckets(prometheus::exponential_buckets(0.000_05, 2.0, 16).expect("buckets")),
            &["transport"],
        )
        .expect("a valid metric definition");
        let delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "stomphub_delivery_latency_seconds",
                "From a message's publication on this node to the write that carries it (one sample per write).",
            )
            .buckets(prometheus::exponential_buckets(0.000_01, 2.0, 20).expect("buckets")),
        )
        .expect("a valid metric definition");
        let collectors: [Box<dyn Collector>; 8] = [
            Box::new(deliveries.clone()),
            Box::new(messages_received.clone()),
            Box::new(bytes_received.clone()),
            Box::new(bytes_sent.clone()),
            Box::new(slow_consumers.clone()),
            Box::new(throttled.clone()),
            Box::new(connect_seconds.clone()),
            Box::new(delivery_seconds.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("distinct metric names");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("distinct metric names");
        Telemetry {
            registry,
            deliveries,
            messages_received,
            bytes_received,
            bytes_sent,
            slow_consumers,
            throttled,
            refusals: Mutex::default(),
            connect_seconds,
            delivery_seconds,
        }
    }

    /// The counters of a connection over `transport` (a session's attribute).
    pub fn connection(self: &Arc<Self>, transport: &str) -> ConnectionMeter {
        let label = [transport_label(transport)];
        ConnectionMeter {
            deliveries: self.deliveries.with_label_values(&label),
            messages_received: self.messages_received.with_label_values(&label),
            bytes_received: self.bytes_received.with_label_values(&label),
            bytes_sent: self.bytes_sent.with_label_values(&label),
            slow_consumers: self.slow_consumers.with_label_values(&label),
            throttled: self.throttled.with_label_values(&label),
            connect_seconds: self.connect_seconds.with_label_values(&label),
            delivery_seconds: self.delivery_seconds.clone(),
            telemetry: self.clone(),
        }
    }

    /// Counts a refusal; `reason` is one of a fixed set of names.
    pub fn refused(&self, reason: &'static str) {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        *refusals.entry(reason).or_default() += 1;
    }

    /// Connections cut as slow consumers so far, every transport together.
    pub fn slow_consumer_cuts(&self) -> u64 {
        self.slow_consumers
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }

    /// Refusals so far, by reason.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        let refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        refusals
            .iter()
            .map(|(reason, count)| (*reason, *count))
            .collect()
    }

    /// The Prometheus text format of everything recorded, followed by `scrape`.
    pub fn render(&self, scrape: Scrape) -> String {
        let mut families = self.registry.gather();
        families.extend(scrape.families());
        let mut out = Vec::new();
        // Writing to a Vec fails only on a family the encoder cannot express,
        // which the definitions above exclude.
        if let Err(error) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(%error, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl ConnectionMeter {
    pub fn connected_after(&self, elapsed: Duration) {
        self.connect_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn refused(&self, reason: &'static str) {
        self.telemetry.refused(reason);
    }
}

/// The content type of [`Telemetry::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

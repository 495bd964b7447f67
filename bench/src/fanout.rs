//! The `fanout` scenario: N subscribers (STOMP over WebSocket, SockJS or TCP,
//! or plain WebSocket endpoint sockets; optionally also SSE) on one
//! destination, P publishers at max rate (bounded in-flight window) or an
//! offered rate; every phase bounded in time.

use crate::client::{self, Target};
use crate::plain;
use crate::report::{Measurement, ProcessFigures, join_publishers};
use crate::sockjs::{self, WebSocketSubscriber, XhrStreamingSubscriber};
use crate::stats::{self, Delivery, Latency};
use crate::stomp_tcp;
use crate::subscribers::{self, SubscriberTransport, now_ns, slowest};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stomphub::stomp::{Command, Frame};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    pub target: Target,
    /// Where the subscribers connect, round-robin; empty = `target`.
    pub subscriber_targets: Vec<Target>,
    pub destination: String,
    pub subscribers: usize,
    /// How the N subscribers connect; the publishers always use STOMP over WebSocket.
    pub subscriber_transport: SubscriberTransport,
    /// The plain WebSocket endpoint (`ws://...`) for `plain-websocket`
    /// subscribers; it must subscribe its sockets to `destination`.
    pub plain_url: Option<String>,
    /// The STOMP-over-TCP listener (`stomp://host:port`) for `tcp` subscribers.
    pub tcp_url: Option<String>,
    /// Server-sent-events subscribers on the same destination, beside the STOMP ones.
    pub sse_subscribers: usize,
    pub publishers: usize,
    /// Messages per publisher.
    pub messages: u64,
    pub body_size: usize,
    /// Most messages (over all publishers) published but not yet received by the
    /// slowest subscriber, in max-rate mode.
    pub window: u64,
    /// Offered messages per second over all publishers; `None` = max rate.
    pub rate: Option<u64>,
    /// Hard bound on the publishing phase.
    pub max_duration: Duration,
    /// How long to wait for deliveries after the last publish.
    pub drain: Duration,
    pub broker_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct FanoutReport {
    pub scenario: &'static str,
    pub url: String,
    pub subscribers: usize,
    pub subscriber_transport: SubscriberTransport,
    pub sse_subscribers: usize,
    pub publishers: usize,
    pub body_size: usize,
    pub window: u64,
    pub offered_rate: Option<u64>,
    pub published: u64,
    pub seconds: f64,
    pub deliveries_per_second: f64,
    pub delivery: Delivery,
    pub latency: Latency,
    pub broker: Option<ProcessFigures>,
    pub broker_cpu_us_per_delivery: Option<f64>,
    pub generator: ProcessFigures,
}

/// Publishes `options.messages` SENDs, paced by the offered rate or by the window.
async fn publish(
    publisher: usize,
    options: Arc<FanoutOptions>,
    counts: Arc<Vec<Arc<AtomicU64>>>,
    published_total: Arc<AtomicU64>,
    base: Instant,
) -> Result<u64, String> {
    let (mut sender, _receiver) = client::connect(&options.target).await?;
    let started = Instant::now();
    let per_publisher_rate = options
        .rate
        .map(|rate| (rate as f64 / options.publishers as f64).max(1.0));
    let mut sent = 0;
    while sent < options.messages && started.elapsed() < options.max_duration {
        match per_publisher_rate {
            Some(rate) => {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                if due > Instant::now() + Duration::from_millis(1) {
                    sender.flush().await?;
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            None => {
                while published_total
                    .load(Ordering::Relaxed)
                    .saturating_sub(slowest(&counts))
                    >= options.window
                {
                    sender.flush().await?;
                    tokio::task::yield_now().await;
                    if started.elapsed() >= options.max_duration {
                        break;
                    }
                }
            }
        }
        let body = stats::body(publisher, sent, now_ns(base), options.body_size);
        let frame = Frame::new(Command::Send)
            .header("destination", options.destination.clone())
            .body(body);
        sender.feed(&frame).await?;
        sent += 1;
        published_total.fetch_add(1, Ordering::Relaxed);
        if sent.is_multiple_of(32) {
            sender.flush().await?;
        }
    }
    sender.flush().await?;
    // Give the broker the last frames before the socket closes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    sender.close().await;
    Ok(sent)
}

/// The URL `plain-websocket` subscribers open.
fn plain_url(options: &FanoutOptions) -> Result<&str, String> {
    options.plain_url.as_deref().ok_or_else(|| {
        "plain-websocket subscribers need --plain-url (a [[websocket.endpoint]] subscribed to the destination)"
            .to_owned()
    })
}

/// The URL `tcp` subscribers connect to.
fn tcp_url(options: &FanoutOptions) -> Result<&str, String> {
    options
        .tcp_url
        .as_deref()
        .ok_or_else(|| "tcp subscribers need --tcp-url stomp://host:port".to_owned())
}

pub async fn run(options: FanoutOptions) -> Result<FanoutReport, String> {
    let uses_own_url = matches!(
        options.subscriber_transport,
        SubscriberTransport::PlainWebsocket | SubscriberTransport::Tcp
    );
    if uses_own_url && !options.subscriber_targets.is_empty() {
        return Err(format!(
            "--subscriber-urls spreads STOMP-over-WebSocket and SockJS subscribers; {} subscribers use {}",
            options.subscriber_transport.name(),
            if options.subscriber_transport == SubscriberTransport::Tcp {
                "--tcp-url"
            } else {
                "--plain-url"
            }
        ));
    }
    let base = Instant::now();
    let (stop, stop_signal) = watch::channel(false);
    let destinations = vec![options.destination.clone(); options.subscribers];
    let connect = async {
        let subscriber_targets = if options.subscriber_targets.is_empty() {
            std::slice::from_ref(&options.target)
        } else {
            &options.subscriber_targets[..]
        };
        let (publishers, messages) = (options.publishers, options.messages);
        let mut tasks = match options.subscriber_transport {
            SubscriberTransport::Stomp => {
                subscribers::start_stomp(
                    subscriber_targets,
                    &destinations,
                    publishers,
                    messages,
                    &stop_signal,
                    base,
                )
                .await?
            }
            SubscriberTransport::SockjsWebsocket => {
                sockjs::start::<WebSocketSubscriber>(
                    subscriber_targets,
                    &destinations,
                    publishers,
                    messages,
                    &stop_signal,
                    base,
                )
                .await?
            }
            SubscriberTransport::SockjsXhrStreaming => {
                sockjs::start::<XhrStreamingSubscriber>(
                    subscriber_targets,
                    &destinations,
                    publishers,
                    messages,
                    &stop_signal,
                    base,
                )
                .await?
            }
            // These have one URL of their own: --subscriber-urls was refused above.
            SubscriberTransport::PlainWebsocket => {
                plain::start(
                    plain_url(&options)?,
                    options.subscribers,
                    publishers,
                    messages,
                    &stop_signal,
                    base,
                )
                .await?
            }
            SubscriberTransport::Tcp => {
                stomp_tcp::start(
                    tcp_url(&options)?,
                    &options.target,
                    &options.destination,
                    options.subscribers,
                    publishers,
                    messages,
                    &stop_signal,
                    base,
                )
                .await?
            }
        };
        tasks.extend(
            subscribers::start_sse(
                &options.target,
                &options.destination,
                options.sse_subscribers,
                options.publishers,
                options.messages,
                &stop_signal,
                base,
            )
            .await?,
        );
        Ok::<_, String>(tasks)
    };
    let tasks = tokio::time::timeout(Duration::from_secs(120), connect)
        .await
        .map_err(|_| "connecting subscribers took over 120 s".to_owned())??;
    let counts: Arc<Vec<Arc<AtomicU64>>> =
        Arc::new(tasks.iter().map(|s| s.received.clone()).collect());
    let measurement = Measurement::start(options.broker_pid);
    let options = Arc::new(options);
    let published_total = Arc::new(AtomicU64::new(0));
    let publishers: Vec<_> = (0..options.publishers)
        .map(|p| {
            tokio::spawn(publish(
                p,
                options.clone(),
                counts.clone(),
                published_total.clone(),
                base,
            ))
        })
        .collect();
    let published = join_publishers(publishers).await?;
    let total: u64 = published.iter().sum();
    let drain_deadline = Instant::now() + options.drain;
    while slowest(&counts) < total && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (seconds, broker, generator) = measurement.finish();
    let all_stats = subscribers::collect(stop, tasks).await?;
    let (delivery, latency) = stats::summarise(&all_stats, |_, publisher| published[publisher]);
    let broker_cpu_us_per_delivery = broker
        .as_ref()
        .map(|b| b.cpu_seconds * 1e6 / delivery.received.max(1) as f64);
    Ok(FanoutReport {
        scenario: "fanout",
        url: options.target.url.clone(),
        subscribers: options.subscribers,
        subscriber_transport: options.subscriber_transport,
        sse_subscribers: options.sse_subscribers,
        publishers: options.publishers,
        body_size: options.body_size,
        window: options.window,
        offered_rate: options.rate,
        published: total,
        seconds,
        deliveries_per_second: delivery.received as f64 / seconds,
        delivery,
        latency,
        broker,
        broker_cpu_us_per_delivery,
        generator,
    })
}

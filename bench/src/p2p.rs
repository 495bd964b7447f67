//! The `p2p` scenario: N users, each subscribed to its own destination
//! (`/chat/single/{id}`), and P publishers sending to random users at max rate
//! with a bounded in-flight window.

use crate::client::{self, Target};
use crate::report::{Measurement, ProcessFigures, join_publishers};
use crate::stats::{self, Delivery, Latency};
use crate::subscribers::{self, now_ns};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stomphub::stomp::{Command, Frame};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct P2pOptions {
    pub target: Target,
    /// `{id}` is replaced by the user number.
    pub destination_template: String,
    pub users: usize,
    pub publishers: usize,
    pub messages: u64,
    pub body_size: usize,
    pub window: u64,
    pub max_duration: Duration,
    pub drain: Duration,
    pub broker_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct P2pReport {
    pub scenario: &'static str,
    pub url: String,
    pub users: usize,
    pub publishers: usize,
    pub body_size: usize,
    pub window: u64,
    pub published: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub delivery: Delivery,
    pub latency: Latency,
    pub broker: Option<ProcessFigures>,
    pub generator: ProcessFigures,
}

/// Sends to pseudo-random users; returns how many messages each user was sent.
async fn publish(
    publisher: usize,
    options: Arc<P2pOptions>,
    destinations: Arc<Vec<String>>,
    received: Arc<Vec<Arc<AtomicU64>>>,
    published_total: Arc<AtomicU64>,
    base: Instant,
) -> Result<Vec<u64>, String> {
    let (mut sender, _receiver) = client::connect(&options.target).await?;
    let mut sent_to = vec![0u64; options.users];
    // A per-publisher linear congruential generator: spread, repeatable, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ publisher as u64;
    let started = Instant::now();
    for _ in 0..options.messages {
        if started.elapsed() >= options.max_duration {
            break;
        }
        while published_total
            .load(Ordering::Relaxed)
            .saturating_sub(total(&received))
            >= options.window
        {
            sender.flush().await?;
            tokio::task::yield_now().await;
            if started.elapsed() >= options.max_duration {
                break;
            }
        }
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let user = ((state >> 33) % options.users as u64) as usize;
        let body = stats::body(publisher, sent_to[user], now_ns(base), options.body_size);
        sent_to[user] += 1;
        let frame = Frame::new(Command::Send)
            .header("destination", destinations[user].clone())
            .body(body);
        sender.feed(&frame).await?;
        let published = published_total.fetch_add(1, Ordering::Relaxed) + 1;
        if published.is_multiple_of(32) {
            sender.flush().await?;
        }
    }
    sender.flush().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    sender.close().await;
    Ok(sent_to)
}

fn total(counts: &[Arc<AtomicU64>]) -> u64 {
    counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

pub async fn run(options: P2pOptions) -> Result<P2pReport, String> {
    let base = Instant::now();
    let (stop, stop_signal) = watch::channel(false);
    let destinations: Arc<Vec<String>> = Arc::new(
        (0..options.users)
            .map(|user| {
                options
                    .destination_template
                    .replace("{id}", &user.to_string())
            })
            .collect(),
    );
    let expected_each = options.messages / options.users.max(1) as u64 + 1;
    let tasks = tokio::time::timeout(
        Duration::from_secs(120),
        subscribers::start_stomp(
            std::slice::from_ref(&options.target),
            &destinations,
            options.publishers,
            expected_each,
            &stop_signal,
            base,
        ),
    )
    .await
    .map_err(|_| "connecting users took over 120 s".to_owned())??;
    let received: Arc<Vec<Arc<AtomicU64>>> =
        Arc::new(tasks.iter().map(|t| t.received.clone()).collect());
    let measurement = Measurement::start(options.broker_pid);
    let options = Arc::new(options);
    let published_total = Arc::new(AtomicU64::new(0));
    let publishers: Vec<_> = (0..options.publishers)
        .map(|p| {
            tokio::spawn(publish(
                p,
                options.clone(),
                destinations.clone(),
                received.clone(),
                published_total.clone(),
                base,
            ))
        })
        .collect();
    let sent = join_publishers(publishers).await?;
    let published: u64 = sent.iter().flatten().sum();
    let drain_deadline = Instant::now() + options.drain;
    while total(&received) < published && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (seconds, broker, generator) = measurement.finish();
    let all_stats = subscribers::collect(stop, tasks).await?;
    let (delivery, latency) = stats::summarise(&all_stats, |user, publisher| sent[publisher][user]);
    Ok(P2pReport {
        scenario: "p2p",
        url: options.target.url.clone(),
        users: options.users,
        publishers: options.publishers,
        body_size: options.body_size,
        window: options.window,
        published,
        seconds,
        messages_per_second: delivery.received as f64 / seconds,
        delivery,
        latency,
        broker,
        generator,
    })
}

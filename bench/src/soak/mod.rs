//! `stomphub-soak`: a bounded mixed-load run against a broker process it starts.
//! Well-behaved publishers and subscribers run the whole time beside churning
//! clients, slow consumers and garbage senders. The report checks that every
//! well-behaved subscriber received exactly what was sent, and that the
//! broker's open file descriptors return to their idle baseline.

pub mod actors;
pub mod broker;

use crate::client::Target;
use crate::stats::{self, Delivery, Latency};
use actors::Tally;
use broker::{BrokerProcess, Sample};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub broker: PathBuf,
    pub port: u16,
    pub duration: Duration,
    pub publishers: usize,
    pub rate_per_publisher: u32,
    pub subscribers: usize,
    pub churners: usize,
    pub slow_consumers: usize,
    pub garbage_senders: usize,
    pub sample_every: Duration,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub sent: u64,
    /// What each well-behaved subscriber received, in subscriber order.
    pub received_per_subscriber: Vec<u64>,
    pub delivery: Delivery,
    pub latency: Latency,
    pub samples: Vec<Sample>,
    pub idle_fds: usize,
    pub end_fds: usize,
    pub peak_rss_kib: u64,
    pub end_rss_kib: u64,
    pub churn_cycles: u64,
    pub churn_failures: u64,
    pub slow_consumers_cut: u64,
    pub slow_consumers_not_cut: u64,
    pub garbage_refused: u64,
    pub garbage_unanswered: u64,
    pub broker_exit_code: Option<i32>,
    /// Every check passed: equal counts, nothing lost or repeated, descriptors back to idle.
    pub passed: bool,
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(options: SoakOptions) -> Result<SoakReport, String> {
    let broker = BrokerProcess::start(&options.broker, options.port)?;
    let started = Instant::now();
    let idle = broker.sample(started);
    let target = Target {
        subprotocol: None,
        url: format!("ws://127.0.0.1:{}/endpoint-websocket", broker.port),
        host: "localhost".into(),
        login: None,
        passcode: None,
    };
    let base = Instant::now();
    let (done_tx, done_rx) = watch::channel(false);
    let ready = Arc::new(AtomicU64::new(0));
    let mut subscribers = Vec::new();
    let mut received = Vec::new();
    for id in 0..options.subscribers {
        let count = Arc::new(AtomicU64::new(0));
        received.push(count.clone());
        subscribers.push(tokio::spawn(actors::subscriber(
            target.clone(),
            id,
            options.publishers,
            base,
            ready.clone(),
            count,
            done_rx.clone(),
        )));
    }
    wait_until(Duration::from_secs(30), || {
        ready.load(Ordering::Relaxed) == options.subscribers as u64
    })
    .await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let tally = Arc::new(Tally::default());
    let publishers: Vec<_> = (0..options.publishers)
        .map(|id| {
            let (target, stop) = (target.clone(), stop_rx.clone());
            tokio::spawn(actors::publisher(
                target,
                id,
                options.rate_per_publisher,
                base,
                stop,
            ))
        })
        .collect();
    let mut others = Vec::new();
    for _ in 0..options.churners {
        others.push(tokio::spawn(actors::churner(
            target.clone(),
            tally.clone(),
            stop_rx.clone(),
        )));
    }
    if options.slow_consumers > 0 {
        let (target, stop) = (target.clone(), stop_rx.clone());
        others.push(tokio::spawn(async move {
            if let Err(error) = actors::heavy_publisher(target, stop).await {
                eprintln!("heavy publisher: {error}");
            }
        }));
    }
    for _ in 0..options.slow_consumers {
        let hold = Duration::from_secs(20);
        others.push(tokio::spawn(actors::slow_consumer(
            target.clone(),
            hold,
            tally.clone(),
            stop_rx.clone(),
        )));
    }
    for _ in 0..options.garbage_senders {
        others.push(tokio::spawn(actors::garbage_sender(
            target.clone(),
            tally.clone(),
            stop_rx.clone(),
        )));
    }
    let mut samples = vec![idle];
    let end = Instant::now() + options.duration;
    while Instant::now() < end {
        tokio::time::sleep(options.sample_every.min(end - Instant::now())).await;
        let sample = broker.sample(started);
        eprintln!(
            "t={:>5.0}s rss={:>7} KiB fds={:>5} slow cut={} churn={} garbage refused={}",
            sample.at_s,
            sample.rss_kib,
            sample.open_fds,
            tally.slow_consumers_cut.load(Ordering::Relaxed),
            tally.churn_cycles.load(Ordering::Relaxed),
            tally.garbage_refused.load(Ordering::Relaxed),
        );
        samples.push(sample);
    }
    let _ = stop_tx.send(true);
    let mut sent_by = Vec::new();
    for publisher in publishers {
        sent_by.push(publisher.await.map_err(|e| e.to_string())??);
    }
    let sent: u64 = sent_by.iter().sum();
    wait_until(Duration::from_secs(20), || {
        received.iter().all(|r| r.load(Ordering::Relaxed) >= sent)
    })
    .await;
    let _ = done_tx.send(true);
    let mut stats = Vec::new();
    for subscriber in subscribers {
        stats.push(subscriber.await.map_err(|e| e.to_string())??);
    }
    for task in others {
        let _ = task.await;
    }
    let (delivery, latency) = stats::summarise(&stats, |_, publisher| sent_by[publisher]);
    drop(stats);
    // Every client has gone: the broker should be back to its idle descriptors.
    wait_until(Duration::from_secs(20), || {
        broker.sample(started).open_fds <= idle.open_fds
    })
    .await;
    let last = broker.sample(started);
    samples.push(last);
    let broker_exit_code = broker.stop();
    let received_per_subscriber: Vec<u64> =
        received.iter().map(|r| r.load(Ordering::Relaxed)).collect();
    let passed = received_per_subscriber.iter().all(|&r| r == sent)
        && delivery.lost == 0
        && delivery.duplicates == 0
        && delivery.reordered == 0
        && last.open_fds <= idle.open_fds
        && tally.garbage_unanswered.load(Ordering::Relaxed) == 0;
    Ok(SoakReport {
        duration_s: options.duration.as_secs_f64(),
        sent,
        received_per_subscriber,
        delivery,
        latency,
        peak_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        end_rss_kib: last.rss_kib,
        samples,
        idle_fds: idle.open_fds,
        end_fds: last.open_fds,
        churn_cycles: tally.churn_cycles.load(Ordering::Relaxed),
        churn_failures: tally.churn_failures.load(Ordering::Relaxed),
        slow_consumers_cut: tally.slow_consumers_cut.load(Ordering::Relaxed),
        slow_consumers_not_cut: tally.slow_consumers_not_cut.load(Ordering::Relaxed),
        garbage_refused: tally.garbage_refused.load(Ordering::Relaxed),
        garbage_unanswered: tally.garbage_unanswered.load(Ordering::Relaxed),
        broker_exit_code,
        passed,
    })
}

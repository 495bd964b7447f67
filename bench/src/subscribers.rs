//! Subscriber connections shared by the scenarios: each runs on its own task,
//! counts what it received, and hands back its statistics when told to stop.

use crate::client::{self, Receiver, Target};
use crate::stats::SubscriberStats;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stomphub::stomp::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct SubscriberTask {
    pub received: Arc<AtomicU64>,
    handle: JoinHandle<SubscriberStats>,
}

pub fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

async fn run_stomp(
    mut receiver: Receiver,
    mut stats: SubscriberStats,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    base: Instant,
) -> SubscriberStats {
    loop {
        // next_frame is cancel-safe: it only changes state after a message arrived.
        let frame = tokio::select! {
            _ = stop.changed() => break,
            frame = receiver.next_frame() => match frame {
                Ok(frame) => frame,
                Err(error) => {
                    eprintln!("subscriber connection ended: {error}");
                    break;
                }
            },
        };
        if frame.command == Command::Message {
            stats.record(&frame.body, now_ns(base));
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
    stats
}

async fn run_sse(
    mut receiver: crate::sse_client::SseReceiver,
    mut stats: SubscriberStats,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    base: Instant,
) -> SubscriberStats {
    loop {
        // next_data is cancel-safe: it only changes state after bytes arrived.
        let data = tokio::select! {
            _ = stop.changed() => break,
            data = receiver.next_data() => match data {
                Ok(data) => data,
                Err(error) => {
                    eprintln!("SSE subscriber ended: {error}");
                    break;
                }
            },
        };
        stats.record(&data, now_ns(base));
        received.fetch_add(1, Ordering::Relaxed);
    }
    stats
}

/// One STOMP subscriber per destination (a destination may repeat).
pub async fn start_stomp(
    target: &Target,
    destinations: &[String],
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> Result<Vec<SubscriberTask>, String> {
    let mut tasks = Vec::with_capacity(destinations.len());
    for (index, destination) in destinations.iter().enumerate() {
        let (mut sender, mut receiver) = client::connect(target).await?;
        client::subscribe(
            &mut sender,
            &mut receiver,
            &format!("bench-{index}"),
            destination,
        )
        .await?;
        let received = Arc::new(AtomicU64::new(0));
        let stats = SubscriberStats::new(publishers, expected_per_publisher);
        let handle = tokio::spawn(run_stomp(
            receiver,
            stats,
            received.clone(),
            stop.clone(),
            base,
        ));
        // Keep the sending half open for the whole run; dropping it would close the socket.
        tokio::spawn(async move {
            let _keep = sender;
            std::future::pending::<()>().await
        });
        tasks.push(SubscriberTask { received, handle });
    }
    Ok(tasks)
}

/// `count` server-sent-events subscribers of `destination`.
pub async fn start_sse(
    target: &Target,
    destination: &str,
    count: usize,
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> Result<Vec<SubscriberTask>, String> {
    let authority = crate::sse_client::authority(&target.url)?;
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let receiver = crate::sse_client::open(authority, destination).await?;
        let received = Arc::new(AtomicU64::new(0));
        let stats = SubscriberStats::new(publishers, expected_per_publisher);
        let handle = tokio::spawn(run_sse(
            receiver,
            stats,
            received.clone(),
            stop.clone(),
            base,
        ));
        tasks.push(SubscriberTask { received, handle });
    }
    Ok(tasks)
}

/// Stops every subscriber and returns their statistics in order.
pub async fn collect(
    stop: watch::Sender<bool>,
    tasks: Vec<SubscriberTask>,
) -> Result<Vec<SubscriberStats>, String> {
    let _ = stop.send(true);
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        all.push(task.handle.await.map_err(|e| e.to_string())?);
    }
    Ok(all)
}

pub fn slowest(counts: &[Arc<AtomicU64>]) -> u64 {
    counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0)
}

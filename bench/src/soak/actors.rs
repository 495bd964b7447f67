//! The soak's clients. Each loops until the stop signal: well-behaved
//! publishers and subscribers (the ones that are checked), churning clients,
//! slow consumers that stop reading, and senders of garbage.

use crate::client::{self, Target};
use crate::stats::{self, SubscriberStats};
use crate::stomp_client::{self, Receiver};
use crate::subscribers::now_ns;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stomphub::stomp::{Command, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

pub const TOPIC: &str = "/topic/soak";
/// Large messages only the slow consumers subscribe to, so their buffers fill in seconds.
pub const HEAVY_TOPIC: &str = "/topic/soak-heavy";

/// Counts of what the misbehaving clients did and what the broker answered.
#[derive(Debug, Default)]
pub struct Tally {
    pub churn_cycles: AtomicU64,
    pub churn_failures: AtomicU64,
    pub slow_consumers_cut: AtomicU64,
    pub slow_consumers_not_cut: AtomicU64,
    pub garbage_refused: AtomicU64,
    pub garbage_unanswered: AtomicU64,
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Sleeps `duration` unless stopped first; true when stopped.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => stopped(stop),
        _ = stop.changed() => true,
    }
}

/// Publishes `rate` messages a second until stopped; returns how many it sent.
pub async fn publisher(
    target: Target,
    id: usize,
    rate: u32,
    base: Instant,
    mut stop: watch::Receiver<bool>,
) -> Result<u64, String> {
    let (mut sender, _receiver) = client::connect(&target).await?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => break,
        }
        let body = stats::body(id, sent, now_ns(base), 128);
        sender
            .send(
                &Frame::new(Command::Send)
                    .header("destination", TOPIC)
                    .body(body),
            )
            .await?;
        sent += 1;
    }
    // A receipt proves the broker has taken every SEND before the count is reported.
    sender
        .send(&Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await?;
    Ok(sent)
}

/// Publishes 16 KiB messages to the heavy topic, 100 a second (1.6 MB/s, past
/// what loopback socket buffers absorb in the hold time), until stopped.
pub async fn heavy_publisher(
    target: Target,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let (mut sender, _receiver) = client::connect(&target).await?;
    let body = "h".repeat(16 * 1024);
    while !pause(&mut stop, Duration::from_millis(10)).await {
        let frame = Frame::new(Command::Send)
            .header("destination", HEAVY_TOPIC)
            .body(body.clone());
        sender.send(&frame).await?;
    }
    Ok(())
}

/// Counts everything on the topic until `done`; the stats are checked at the end.
pub async fn subscriber(
    target: Target,
    id: usize,
    publishers: usize,
    base: Instant,
    ready: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    mut done: watch::Receiver<bool>,
) -> Result<SubscriberStats, String> {
    let (mut sender, mut receiver) = client::connect(&target).await?;
    stomp_client::subscribe(&mut sender, &mut receiver, &format!("s{id}"), TOPIC).await?;
    ready.fetch_add(1, Ordering::Relaxed);
    let mut stats = SubscriberStats::new(publishers, 1024);
    loop {
        let frame = tokio::select! {
            frame = receiver.next_frame() => frame?,
            _ = done.changed() => return Ok(stats),
        };
        if frame.command == Command::Message {
            stats.record(&frame.body, now_ns(base));
            received.fetch_add(1, Ordering::Relaxed);
        } else {
            return Err(format!("subscriber {id} got {:?}", frame.get("message")));
        }
    }
}

/// Connects, subscribes, reads a little and leaves: politely or abruptly in turn.
pub async fn churner(target: Target, tally: Arc<Tally>, mut stop: watch::Receiver<bool>) {
    let mut cycle = 0u64;
    while !stopped(&stop) {
        let result = async {
            let (mut sender, mut receiver) = client::connect(&target).await?;
            stomp_client::subscribe(&mut sender, &mut receiver, "c", TOPIC).await?;
            for _ in 0..3 {
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), receiver.next_frame()).await;
            }
            if cycle.is_multiple_of(2) {
                sender.send(&Frame::new(Command::Disconnect)).await?;
            }
            Ok::<_, String>((sender, receiver))
        }
        .await;
        match result {
            Ok(_) => tally.churn_cycles.fetch_add(1, Ordering::Relaxed),
            Err(_) => tally.churn_failures.fetch_add(1, Ordering::Relaxed),
        };
        cycle += 1;
        if pause(&mut stop, Duration::from_millis(50)).await {
            break;
        }
    }
}

/// Whether the broker sent a slow-consumer ERROR among what is buffered.
async fn was_cut(receiver: &mut Receiver) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), receiver.next_frame()).await {
            Ok(Ok(frame)) if frame.command == Command::Error => {
                return frame
                    .get("message")
                    .is_some_and(|m| m.contains("slow consumer"));
            }
            Ok(Ok(_)) => continue,
            // Closed without our reading the ERROR (the write timed out first): cut as well.
            Ok(Err(_)) => return true,
            Err(_) => return false,
        }
    }
}

/// Subscribes and stops reading for `hold`, then checks that it was cut off.
pub async fn slow_consumer(
    target: Target,
    hold: Duration,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) {
    while !stopped(&stop) {
        let Ok((mut sender, mut receiver)) = client::connect(&target).await else {
            continue;
        };
        // No receipts: messages would arrive ahead of the second one. A refused
        // SUBSCRIBE shows up as an ERROR instead of a cut when it is checked.
        let subscribed = async {
            for (id, topic) in [("slow", TOPIC), ("heavy", HEAVY_TOPIC)] {
                let frame = Frame::new(Command::Subscribe)
                    .header("id", id)
                    .header("destination", topic);
                sender.send(&frame).await?;
            }
            Ok::<_, String>(())
        };
        if subscribed.await.is_err() {
            continue;
        }
        if pause(&mut stop, hold).await {
            break;
        }
        if was_cut(&mut receiver).await {
            tally.slow_consumers_cut.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.slow_consumers_not_cut.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One kind of bad input per round: raw bytes that are not HTTP, binary noise,
/// an oversized message, a frame begun and never finished. Each must be
/// refused. (A flood past the frame rate is no longer refused: it is read
/// slower, which the well-behaved publishers' figures would show.)
pub async fn garbage_sender(target: Target, tally: Arc<Tally>, mut stop: watch::Receiver<bool>) {
    let authority = client::authority(&target.url)
        .unwrap_or("127.0.0.1:8080")
        .to_owned();
    let mut round = 0u64;
    while !stopped(&stop) {
        let refused = match round % 4 {
            0 => async {
                let mut tcp = tokio::net::TcpStream::connect(&authority).await.ok()?;
                tcp.write_all(b"\x16\x03\x01garbage that is not HTTP\r\n\r\n")
                    .await
                    .ok()?;
                let mut answer = Vec::new();
                tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
                    .await
                    .ok()?
                    .ok()?;
                Some(answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"))
            }
            .await
            .unwrap_or(false),
            kind => async {
                let (mut sender, mut receiver) = client::connect(&target).await.ok()?;
                let bytes = match kind {
                    1 => (0..4096u32)
                        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect(),
                    2 => format!("SEND\ndestination:{TOPIC}\n\n{}\0", "z".repeat(70_000))
                        .into_bytes(),
                    _ => {
                        b"SEND\ndestination:/topic/void\ncontent-length:100\n\nunfinished".to_vec()
                    }
                };
                let _ = sender.send_message(Message::Binary(bytes.into())).await;
                match tokio::time::timeout(Duration::from_secs(5), receiver.next_frame()).await {
                    Ok(Ok(frame)) => Some(frame.command == Command::Error),
                    Ok(Err(_)) => Some(true),
                    Err(_) => Some(false),
                }
            }
            .await
            .unwrap_or(false),
        };
        if refused {
            tally.garbage_refused.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.garbage_unanswered.fetch_add(1, Ordering::Relaxed);
        }
        round += 1;
        if pause(&mut stop, Duration::from_millis(200)).await {
            break;
        }
    }
}

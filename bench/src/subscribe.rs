//! Subscribe latency: how long a SUBSCRIBE takes to its RECEIPT for a
//! destination new to the broker (in a cluster, a Redis channel the node
//! subscribes to first) and for one it already serves. The two kinds
//! alternate on one connection, so the machine's noise falls on both.

use crate::client::{Target, connect};
use crate::stats::Latency;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::{Duration, Instant};
use stomphub::stomp::{Command, Frame};

#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub target: Target,
    /// Subscriptions of each kind.
    pub subscriptions: usize,
    pub max_duration: Duration,
}

#[derive(Debug, Serialize)]
pub struct SubscribeReport {
    /// A destination nobody subscribed to before.
    pub new_destination: Latency,
    /// A destination another connection keeps subscribed.
    pub existing_destination: Latency,
    pub seconds: f64,
}

pub async fn run(options: SubscribeOptions) -> Result<SubscribeReport, String> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let held = format!("/topic/subscribe-bench/{nonce}/held");
    // Keeps `held` subscribed (and, in a cluster, its channel) throughout.
    let (mut holder_tx, mut holder_rx) = connect(&options.target).await?;
    subscribe(&mut holder_tx, &mut holder_rx, "held", &held).await?;
    let (mut tx, mut rx) = connect(&options.target).await?;
    let histogram = || Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
    let (mut new, mut existing) = (histogram(), histogram());
    let started = Instant::now();
    for i in 0..options.subscriptions {
        if started.elapsed() > options.max_duration {
            return Err(format!(
                "only {i} of {} subscriptions within {:?}",
                options.subscriptions, options.max_duration
            ));
        }
        for (histogram, destination) in [
            (&mut new, format!("/topic/subscribe-bench/{nonce}/{i}")),
            (&mut existing, held.clone()),
        ] {
            let id = format!("s{i}");
            let took = subscribe(&mut tx, &mut rx, &id, &destination).await?;
            let _ = histogram.record((took.as_nanos() as u64).max(1_000));
            tx.send(&Frame::new(Command::Unsubscribe).header("id", id))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(SubscribeReport {
        new_destination: Latency::of(&new),
        existing_destination: Latency::of(&existing),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// SUBSCRIBE with a receipt; the time until the RECEIPT.
async fn subscribe(
    tx: &mut crate::stomp_client::Sender,
    rx: &mut crate::stomp_client::Receiver,
    id: &str,
    destination: &str,
) -> Result<Duration, String> {
    let sent = Instant::now();
    tx.send(
        &Frame::new(Command::Subscribe)
            .header("id", id)
            .header("destination", destination)
            .header("receipt", id),
    )
    .await
    .map_err(|e| e.to_string())?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), rx.next_frame())
            .await
            .map_err(|_| format!("no RECEIPT for {destination} within 10 s"))?
            .map_err(|e| e.to_string())?;
        match frame.command {
            Command::Receipt => return Ok(sent.elapsed()),
            Command::Error => return Err(format!("ERROR: {:?}", frame.get("message"))),
            _ => {}
        }
    }
}

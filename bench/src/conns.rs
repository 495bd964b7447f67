//! The `conns` scenario: N idle connections with one subscription each, held for
//! S seconds. Measures the connection set-up rate and the broker's RSS per connection.

use crate::client::{self, Target};
use crate::procfs;
use crate::stomp_client;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ConnsOptions {
    pub target: Target,
    pub destination: String,
    pub connections: usize,
    /// Connections being set up at once.
    pub concurrency: usize,
    /// Spread the client side over 127.0.0.1 .. 127.0.0.N to stay clear of the
    /// ephemeral-port limit of one source address.
    pub source_addresses: u8,
    pub hold: Duration,
    pub broker_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct ConnsReport {
    pub scenario: &'static str,
    pub url: String,
    pub requested: usize,
    pub established: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
    pub setup_seconds: f64,
    pub setups_per_second: f64,
    pub broker_rss_before_kib: Option<u64>,
    pub broker_rss_held_kib: Option<u64>,
    pub broker_rss_per_connection_kib: Option<f64>,
    pub held_seconds: f64,
}

/// Failed connections after which the rest are not attempted.
const GIVE_UP_AFTER: usize = 100;

fn source(index: usize, count: u8) -> Option<IpAddr> {
    (count > 1).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % count as usize) as u8)))
}

pub async fn run(options: ConnsOptions) -> Result<ConnsReport, String> {
    use futures_util::StreamExt;
    let broker_pid = options.broker_pid.map(|pid| pid.to_string());
    let rss = |pid: &Option<String>| pid.as_deref().and_then(procfs::usage).map(|u| u.rss_kib);
    let rss_before = rss(&broker_pid);
    let started = Instant::now();
    // A broker that refuses connections should end the phase, not wait out every timeout.
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attempts = futures_util::stream::iter(0..options.connections)
        .map(|index| {
            let target = options.target.clone();
            let destination = options.destination.clone();
            let from = source(index, options.source_addresses);
            let failed = failed.clone();
            async move {
                if failed.load(std::sync::atomic::Ordering::Relaxed) >= GIVE_UP_AFTER {
                    return Err(format!("not attempted after {GIVE_UP_AFTER} failures"));
                }
                let attempt = async {
                    let (mut sender, mut receiver) = client::connect_from(&target, from).await?;
                    stomp_client::subscribe(&mut sender, &mut receiver, "idle", &destination)
                        .await?;
                    Ok::<_, String>((sender, receiver))
                };
                let result = attempt.await;
                if result.is_err() {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                result
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect::<Vec<_>>();
    let results = tokio::time::timeout(Duration::from_secs(600), attempts)
        .await
        .map_err(|_| "connecting took over 600 s".to_owned())?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let mut held = Vec::with_capacity(results.len());
    let mut failures = 0;
    let mut first_failure = None;
    for result in results {
        match result {
            Ok(connection) => held.push(connection),
            Err(error) => {
                failures += 1;
                first_failure.get_or_insert(error);
            }
        }
    }
    let established = held.len();
    // Let allocations settle before reading RSS, then hold the connections.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hold_started = Instant::now();
    tokio::time::sleep(options.hold).await;
    let rss_held = rss(&broker_pid);
    let per_connection = rss_before
        .zip(rss_held)
        .map(|(before, after)| after.saturating_sub(before) as f64 / established.max(1) as f64);
    let held_seconds = hold_started.elapsed().as_secs_f64();
    for (sender, _receiver) in held {
        sender.close().await;
    }
    Ok(ConnsReport {
        scenario: "conns",
        url: options.target.url.clone(),
        requested: options.connections,
        established,
        failures,
        first_failure,
        setup_seconds,
        setups_per_second: established as f64 / setup_seconds,
        broker_rss_before_kib: rss_before,
        broker_rss_held_kib: rss_held,
        broker_rss_per_connection_kib: per_connection,
        held_seconds,
    })
}

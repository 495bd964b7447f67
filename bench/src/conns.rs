//! The `conns` scenario: N idle connections with one subscription each, held for
//! S seconds. Measures the connection set-up rate and the broker's RSS per connection.
//!
//! The connections are STOMP over WebSocket (CONNECT and one SUBSCRIBE), plain
//! WebSocket sockets on a `[[websocket.endpoint]]` (nothing said: the endpoint
//! subscribes them), or STOMP over TCP (CONNECT and one SUBSCRIBE), so that the
//! memory each costs the broker can be compared.

use crate::client::{self, Target};
use crate::plain::PlainSubscriber;
use crate::procfs;
use crate::stats::Latency;
use crate::stomp_client::{self, Receiver, Sender};
use crate::stomp_tcp::{self, StompTcp};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What each idle connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ConnTransport {
    /// STOMP over WebSocket at `--url`.
    #[default]
    Stomp,
    /// A bare socket on the plain endpoint at `--plain-url`.
    PlainWebsocket,
    /// STOMP over TCP at `--tcp-url`.
    Tcp,
}

impl ConnTransport {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            ConnTransport::Stomp => "stomp",
            ConnTransport::PlainWebsocket => "plain-websocket",
            ConnTransport::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnsOptions {
    pub target: Target,
    pub transport: ConnTransport,
    /// The plain endpoint for `plain-websocket`; its own `subscribe` list
    /// decides what the sockets are subscribed to, not `destination`.
    pub plain_url: Option<String>,
    /// The STOMP-over-TCP listener for `tcp`.
    pub tcp_url: Option<String>,
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
    pub transport: ConnTransport,
    /// Where the connections went.
    pub url: String,
    pub requested: usize,
    pub established: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
    pub setup_seconds: f64,
    pub setups_per_second: f64,
    /// From starting one connection to its subscription's RECEIPT (or, for a
    /// plain socket, the upgrade), with `concurrency` being set up at once.
    pub setup_latency: Latency,
    pub broker_rss_before_kib: Option<u64>,
    pub broker_rss_held_kib: Option<u64>,
    pub broker_rss_per_connection_kib: Option<f64>,
    pub held_seconds: f64,
}

/// Failed connections after which the rest are not attempted.
const GIVE_UP_AFTER: usize = 100;
/// Bound on closing every held connection at the end.
const CLOSE_LIMIT: Duration = Duration::from_secs(60);

fn source(index: usize, count: u8) -> Option<IpAddr> {
    (count > 1).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % count as usize) as u8)))
}

/// One idle connection, kept open until the end of the hold.
enum Held {
    Stomp(
        Sender,
        #[allow(dead_code, reason = "never read: held so the socket stays whole")] Receiver,
    ),
    Plain(PlainSubscriber),
    Tcp(StompTcp),
}

impl Held {
    async fn close(self) {
        match self {
            Held::Stomp(sender, _) => sender.close().await,
            Held::Plain(socket) => socket.close().await,
            Held::Tcp(connection) => connection.close().await,
        }
    }
}

/// Where `options.transport` connects, checked before thousands of attempts
/// would each fail the same way.
fn url(options: &ConnsOptions) -> Result<String, String> {
    match options.transport {
        ConnTransport::Stomp => {
            client::only_loopback(&options.target.url)?;
            Ok(options.target.url.clone())
        }
        ConnTransport::PlainWebsocket => {
            let url = options.plain_url.clone().ok_or(
                "--transport plain-websocket needs --plain-url (a [[websocket.endpoint]])",
            )?;
            client::only_loopback(&url)?;
            Ok(url)
        }
        ConnTransport::Tcp => {
            let url = options
                .tcp_url
                .clone()
                .ok_or("--transport tcp needs --tcp-url stomp://host:port")?;
            stomp_tcp::authority(&url)?;
            Ok(url)
        }
    }
}

/// Opens connection `index` and, for the STOMP kinds, subscribes it.
async fn open(options: &ConnsOptions, url: &str, index: usize) -> Result<Held, String> {
    let from = source(index, options.source_addresses);
    match options.transport {
        ConnTransport::Stomp => {
            let (mut sender, mut receiver) = client::connect_from(&options.target, from).await?;
            stomp_client::subscribe(&mut sender, &mut receiver, "idle", &options.destination)
                .await?;
            Ok(Held::Stomp(sender, receiver))
        }
        ConnTransport::PlainWebsocket => Ok(Held::Plain(PlainSubscriber::open(url, from).await?)),
        ConnTransport::Tcp => {
            let mut connection = StompTcp::connect(url, &options.target, from).await?;
            connection.subscribe("idle", &options.destination).await?;
            Ok(Held::Tcp(connection))
        }
    }
}

pub async fn run(options: ConnsOptions) -> Result<ConnsReport, String> {
    use futures_util::StreamExt;
    let url = Arc::new(url(&options)?);
    let options = Arc::new(options);
    let broker_pid = options.broker_pid.map(|pid| pid.to_string());
    let rss = |pid: &Option<String>| pid.as_deref().and_then(procfs::usage).map(|u| u.rss_kib);
    let rss_before = rss(&broker_pid);
    let started = Instant::now();
    // A broker that refuses connections should end the phase, not wait out every timeout.
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attempts = futures_util::stream::iter(0..options.connections)
        .map(|index| {
            let options = options.clone();
            let url = url.clone();
            let failed = failed.clone();
            async move {
                if failed.load(std::sync::atomic::Ordering::Relaxed) >= GIVE_UP_AFTER {
                    return Err(format!("not attempted after {GIVE_UP_AFTER} failures"));
                }
                let began = Instant::now();
                let result = open(&options, &url, index).await;
                if result.is_err() {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                result.map(|held| (held, began.elapsed()))
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
    let mut setup =
        Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3).map_err(|e| e.to_string())?;
    for result in results {
        match result {
            Ok((connection, took)) => {
                let _ = setup.record(took.as_nanos() as u64);
                held.push(connection);
            }
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
    // Closing politely lets the broker free each session at once; bounded
    // all the same, as a stuck socket must not hold up a scripted run.
    let close_all = async {
        for connection in held {
            connection.close().await;
        }
    };
    if tokio::time::timeout(CLOSE_LIMIT, close_all).await.is_err() {
        eprintln!("closing the connections took over {CLOSE_LIMIT:?}; the rest are dropped");
    }
    Ok(ConnsReport {
        scenario: "conns",
        transport: options.transport,
        url: url.to_string(),
        requested: options.connections,
        established,
        failures,
        first_failure,
        setup_seconds,
        setups_per_second: established as f64 / setup_seconds,
        setup_latency: Latency::of(&setup),
        broker_rss_before_kib: rss_before,
        broker_rss_held_kib: rss_held,
        broker_rss_per_connection_kib: per_connection,
        held_seconds,
    })
}

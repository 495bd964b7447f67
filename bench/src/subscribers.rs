//! Subscriber connections shared by the scenarios: each runs on its own task,
//! counts what it received, and hands back its statistics when told to stop.

use crate::client::{self, Target};
use crate::sse::{SseClient, SseItem};
use crate::stats::SubscriberStats;
use crate::stomp_client::{self, Receiver};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stomphub::stomp::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the fan-out subscribers reach the broker: STOMP over WebSocket, STOMP
/// inside SockJS over one of its transports (see `sockjs.rs`), a plain
/// WebSocket endpoint that sends bare bodies (`plain.rs`), or STOMP over
/// plain TCP (`stomp_tcp.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriberTransport {
    #[default]
    Stomp,
    SockjsWebsocket,
    SockjsXhrStreaming,
    PlainWebsocket,
    Tcp,
}

impl SubscriberTransport {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            SubscriberTransport::Stomp => "stomp",
            SubscriberTransport::SockjsWebsocket => "sockjs-websocket",
            SubscriberTransport::SockjsXhrStreaming => "sockjs-xhr-streaming",
            SubscriberTransport::PlainWebsocket => "plain-websocket",
            SubscriberTransport::Tcp => "tcp",
        }
    }
}

pub struct SubscriberTask {
    pub received: Arc<AtomicU64>,
    handle: JoinHandle<SubscriberStats>,
}

pub fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Where a subscriber's message bodies come from: a STOMP connection (over
/// WebSocket, SockJS or TCP), an SSE stream, or a plain WebSocket.
pub trait BodySource: Send + 'static {
    /// The next message body; `None` for something that is not a message.
    /// Cancel-safe: state changes only after data arrived.
    fn next_body(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Bytes>, String>> + Send;
}

impl BodySource for Receiver {
    async fn next_body(&mut self) -> Result<Option<Bytes>, String> {
        let frame = self.next_frame().await?;
        Ok((frame.command == Command::Message).then_some(frame.body))
    }
}

impl BodySource for SseClient {
    async fn next_body(&mut self) -> Result<Option<Bytes>, String> {
        match self.next().await? {
            Some(SseItem::Event { event, data, .. }) if event == "message" => Ok(Some(data)),
            Some(_) => Ok(None),
            None => Err("SSE stream ended".into()),
        }
    }
}

async fn run<S: BodySource>(
    mut source: S,
    mut stats: SubscriberStats,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    base: Instant,
) -> SubscriberStats {
    loop {
        let body = tokio::select! {
            _ = stop.changed() => break,
            body = source.next_body() => match body {
                Ok(body) => body,
                Err(error) => {
                    eprintln!("subscriber ended: {error}");
                    break;
                }
            },
        };
        if let Some(body) = body {
            stats.record(&body, now_ns(base));
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
    stats
}

/// Runs `source` on its own task, counting what it receives.
pub fn spawn<S: BodySource>(
    source: S,
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> SubscriberTask {
    let received = Arc::new(AtomicU64::new(0));
    let stats = SubscriberStats::new(publishers, expected_per_publisher);
    let handle = tokio::spawn(run(source, stats, received.clone(), stop.clone(), base));
    SubscriberTask { received, handle }
}

/// One STOMP subscriber per destination (a destination may repeat), connected
/// to `targets` in turn.
pub async fn start_stomp(
    targets: &[Target],
    destinations: &[String],
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> Result<Vec<SubscriberTask>, String> {
    let mut tasks = Vec::with_capacity(destinations.len());
    for (index, destination) in destinations.iter().enumerate() {
        let (mut sender, mut receiver) = client::connect(&targets[index % targets.len()]).await?;
        stomp_client::subscribe(
            &mut sender,
            &mut receiver,
            &format!("bench-{index}"),
            destination,
        )
        .await?;
        let task = spawn(receiver, publishers, expected_per_publisher, stop, base);
        // Keep the sending half open for the whole run; dropping it would close the socket.
        tokio::spawn(async move {
            let _keep = sender;
            std::future::pending::<()>().await
        });
        tasks.push(task);
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
    let authority = client::authority(&target.url)?;
    let path = format!("/sse/subscribe?destination={destination}");
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let receiver = SseClient::try_open(authority, &path, None).await?;
        if receiver.status != 200 {
            return Err(format!("SSE subscribe refused: {}", receiver.head));
        }
        tasks.push(spawn(
            receiver,
            publishers,
            expected_per_publisher,
            stop,
            base,
        ));
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

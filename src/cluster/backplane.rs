//! The Redis side of a node: connects (and reconnects with backoff), forwards
//! the outbox in pipelined batches, keeps the channel subscriptions matching
//! local interest, refreshes the node's registry entry, and delivers what
//! other nodes publish.
//!
//! Each connection runs four tasks; the first to fail ends the connection,
//! and the node serves local subscribers alone until the next one is up.

use super::accounting::{Arrivals, Numbering};
use super::channels::{Channel, Target};
use super::envelope::{self, Envelope, Inbound, Origin};
use super::{Cluster, ClusterError, Forward, Local, lock};
use crate::broker::remote::RemoteMessage;
use crate::stomp::Epoch;
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Numbers, stores and publishes a message of a destination with history, in
/// one step, so every node sees the numbers in the order Redis assigned them.
/// The first message of a destination (ever, or since Redis lost its data or
/// the history expired) sets the epoch to the publisher's candidate, so
/// numbers that start again at 1 are never mistaken for old ones.
/// KEYS: position hash (`n` last number, `e` epoch), history list, channel.
/// ARGV: preamble head, frame tail, messages to keep, TTL in ms, epoch candidate.
const PUBLISH_WITH_HISTORY: &str = r"
local seq = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSETNX', KEYS[1], 'e', ARGV[5])
local epoch = redis.call('HGET', KEYS[1], 'e')
local payload = ARGV[1] .. epoch .. '-' .. seq .. ARGV[2]
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[3], payload)
return seq
";

/// The command connection, shared with replay and the cluster views.
#[derive(Clone)]
pub(super) struct CommandLink {
    pub connection: MultiplexedConnection,
    pub publish_sha: String,
    pub fetch_sha: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

async fn connect(
    cluster: &Cluster,
    client: &redis::Client,
) -> Result<(CommandLink, PubSubSink, PubSubStream), ClusterError> {
    let timeout = cluster.command_timeout();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .map_err(|_| ClusterError::Timeout("the subscription connection"))??;
    let load = |script: &'static str| redis::cmd("SCRIPT").arg("LOAD").arg(script).clone();
    let publish_sha: String = load(PUBLISH_WITH_HISTORY)
        .query_async(&mut connection)
        .await?;
    let fetch_sha: String = load(super::replay::FETCH_HISTORY)
        .query_async(&mut connection)
        .await?;
    let (sink, stream) = pubsub.split();
    Ok((
        CommandLink {
            connection,
            publish_sha,
            fetch_sha,
        },
        sink,
        stream,
    ))
}

/// Where the Redis server comes from: fixed, or the current master as the sentinels say.
enum Source {
    Direct(redis::Client),
    Sentinel(Box<redis::sentinel::SentinelClient>),
}

impl Source {
    fn new(config: &crate::config::ClusterConfig) -> redis::RedisResult<Source> {
        if config.sentinels.is_empty() {
            return redis::Client::open(config.url.as_str()).map(Source::Direct);
        }
        let master = redis::IntoConnectionInfo::into_connection_info(config.url.as_str())?;
        let node = redis::sentinel::SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(master.redis_settings().clone());
        redis::sentinel::SentinelClient::build(
            config.sentinels.clone(),
            config.sentinel_master.clone(),
            Some(node),
            redis::sentinel::SentinelServerType::Master,
        )
        .map(|client| Source::Sentinel(Box::new(client)))
    }

    /// The server to connect to now: after a failover, the new master.
    async fn client(&mut self, timeout: Duration) -> Result<redis::Client, ClusterError> {
        match self {
            Source::Direct(client) => Ok(client.clone()),
            Source::Sentinel(sentinel) => {
                tokio::time::timeout(timeout, sentinel.async_get_client())
                    .await
                    .map_err(|_| ClusterError::Timeout("the sentinels"))?
                    .map_err(ClusterError::from)
            }
        }
    }
}

pub(super) async fn run(
    cluster: Arc<Cluster>,
    local: Local,
    outbox: mpsc::Receiver<Forward>,
    shutdown: CancellationToken,
) {
    let mut source = match Source::new(&cluster.config) {
        Ok(source) => source,
        Err(error) => {
            // Validated with the configuration; reaching here is a bug, not an outage.
            tracing::error!(%error, "cluster.url cannot be used; running as a single node");
            return;
        }
    };
    let outbox = Arc::new(tokio::sync::Mutex::new(outbox));
    let min = Duration::from_millis(cluster.config.reconnect_min_ms);
    // A longest delay below the first counts as the first.
    let max = Duration::from_millis(
        cluster
            .config
            .reconnect_max_ms
            .max(cluster.config.reconnect_min_ms),
    );
    let mut backoff = min;
    while !shutdown.is_cancelled() {
        let attempt = async {
            let client = source.client(cluster.command_timeout()).await?;
            *lock(&cluster.server) = client.get_connection_info().addr().to_string();
            connect(&cluster, &client).await
        };
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => break,
            attempt = attempt => attempt,
        };
        match attempt {
            Ok((link, sink, stream)) => {
                backoff = min;
                let reason = serve(&cluster, &local, &outbox, link, sink, stream, &shutdown).await;
                if shutdown.is_cancelled() {
                    break;
                }
                cluster.set_down(reason);
            }
            Err(error) => cluster.set_down(error.to_string()),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = drop_while_down(&cluster, &outbox, backoff) => {}
        }
        backoff = (backoff * 2).min(max);
    }
    remove_registry_entry(&cluster).await;
}

/// Sleeps for `pause`, dropping (and counting) what was queued before the outage.
async fn drop_while_down(
    cluster: &Cluster,
    outbox: &tokio::sync::Mutex<mpsc::Receiver<Forward>>,
    pause: Duration,
) {
    let deadline = tokio::time::Instant::now() + pause;
    let mut outbox = outbox.lock().await;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, outbox.recv()).await {
        cluster
            .counters
            .dropped_while_down
            .fetch_add(1, Ordering::Relaxed);
    }
}

async fn serve(
    cluster: &Arc<Cluster>,
    local: &Local,
    outbox: &Arc<tokio::sync::Mutex<mpsc::Receiver<Forward>>>,
    link: CommandLink,
    sink: PubSubSink,
    mut stream: PubSubStream,
    shutdown: &CancellationToken,
) -> String {
    *lock(&cluster.link) = Some(link.clone());
    local.broker.restart_shared_numbering();
    // Interest that ended during the outage was never unsubscribed: gaps on
    // those channels are not losses.
    {
        let interest = lock(&cluster.interest);
        lock(&cluster.inbound).arrivals.retain(|name| {
            cluster
                .names
                .channel(name)
                .is_some_and(|channel| interest.wants(&channel))
        });
    }
    let mut tasks: JoinSet<String> = JoinSet::new();
    tasks.spawn(forward_outbox(
        cluster.clone(),
        outbox.clone(),
        link.clone(),
    ));
    tasks.spawn(follow_interest(cluster.clone(), sink));
    tasks.spawn(refresh_registry(cluster.clone(), link.connection.clone()));
    cluster.set_up();
    let reason = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break "shutting down".to_owned(),
            message = stream.next() => match message {
                Some(message) => handle_inbound(cluster, local, &message),
                None => break "the subscription connection closed".to_owned(),
            },
            failed = tasks.join_next() => {
                break match failed {
                    Some(Ok(reason)) => reason,
                    Some(Err(error)) => format!("backplane task failed: {error}"),
                    None => "backplane tasks ended".to_owned(),
                };
            }
        }
    };
    tasks.shutdown().await;
    // A publish cut off before Redis answered may or may not have reached it:
    // counted as failed, and receivers count what they missed of it.
    let cut_off = cluster.in_flight.swap(0, Ordering::AcqRel);
    cluster
        .counters
        .dropped_failed
        .fetch_add(cut_off, Ordering::Relaxed);
    reason
}

async fn forward_outbox(
    cluster: Arc<Cluster>,
    outbox: Arc<tokio::sync::Mutex<mpsc::Receiver<Forward>>>,
    mut link: CommandLink,
) -> String {
    let mut outbox = outbox.lock().await;
    let mut batch = Vec::with_capacity(256);
    loop {
        if outbox.recv_many(&mut batch, 256).await == 0 {
            return "the outbox closed".into();
        }
        let mut pipe = redis::pipe();
        let published_ms = now_ms();
        {
            let mut numbering = lock(&cluster.numbering);
            for message in batch.drain(..) {
                let origin_seq = numbering.next_origin();
                add_to_pipeline(
                    &cluster,
                    &link,
                    &mut pipe,
                    &mut numbering,
                    message,
                    origin_seq,
                    published_ms,
                );
            }
        }
        let count = pipe.len() as u64;
        cluster.in_flight.store(count, Ordering::Release);
        let published = pipe.exec_async(&mut link.connection).await;
        // Whoever takes the count back accounts for the batch: here, or
        // `serve` if this task is cut off first.
        let count = cluster.in_flight.swap(0, Ordering::AcqRel);
        if let Err(error) = published {
            cluster
                .counters
                .dropped_failed
                .fetch_add(count, Ordering::Relaxed);
            return format!("publishing failed: {error}");
        }
        cluster
            .counters
            .forwarded
            .fetch_add(count, Ordering::Relaxed);
    }
}

fn add_to_pipeline(
    cluster: &Cluster,
    link: &CommandLink,
    pipe: &mut redis::Pipeline,
    numbering: &mut Numbering,
    message: Forward,
    origin_seq: u64,
    published_ms: u64,
) {
    let names = &cluster.names;
    let origin = |channel_seq, delivered_at_origin| Origin {
        node: &cluster.node,
        instance: cluster.instance,
        origin_seq,
        channel_seq,
        delivered_at_origin,
        published_ms,
    };
    match message {
        Forward::Message(RemoteMessage {
            key,
            headers,
            body,
            delivered_locally,
            history,
        }) => {
            let channel = names.destination(&key);
            let head = envelope::preamble_head(origin(numbering.next(&channel), delivered_locally));
            let tail = envelope::frame_tail(&key, &headers, &body);
            match history {
                Some(keep) => {
                    pipe.cmd("EVALSHA")
                        .arg(&link.publish_sha)
                        .arg(3)
                        .arg(names.sequence_key(&key))
                        .arg(names.history_key(&key))
                        .arg(channel)
                        .arg(head)
                        .arg(&tail[..])
                        .arg(keep.max(1))
                        .arg(cluster.config.history_ttl_ms)
                        .arg(Epoch::fresh(cluster.instance).to_string())
                        .ignore();
                }
                None => {
                    let mut payload = head.into_bytes();
                    payload.push(b'0');
                    payload.extend_from_slice(&tail);
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                }
            }
        }
        Forward::User {
            user,
            destination,
            headers,
            body,
        } => {
            let channel = names.user(&user);
            let mut payload =
                envelope::preamble_head(origin(numbering.next(&channel), true)).into_bytes();
            payload.push(b'0');
            payload.extend_from_slice(&envelope::frame_tail(&destination, &headers, &body));
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
    }
}

/// Keeps the connection's subscriptions equal to what local interest wants.
async fn follow_interest(cluster: Arc<Cluster>, mut sink: PubSubSink) -> String {
    loop {
        let changed = cluster.interest_changed.notified();
        let plan = lock(&cluster.interest).plan();
        if plan.is_empty() {
            changed.await;
            continue;
        }
        // One command per kind: a burst of new channels (a page subscribing
        // to many, a reconnect) waits one round trip, not one per channel.
        for (channels, pattern) in by_kind(plan.subscribe) {
            let names = redis_names(&cluster, &channels);
            let done = if pattern {
                sink.psubscribe(&names).await
            } else {
                sink.subscribe(&names).await
            };
            if let Err(error) = done {
                return format!("subscribing to {} channels failed: {error}", names.len());
            }
            if !pattern {
                let mut inbound = lock(&cluster.inbound);
                for name in &names {
                    inbound.arrivals.listen(name);
                }
            }
            let mut interest = lock(&cluster.interest);
            for channel in channels {
                interest.confirm(channel);
            }
        }
        cluster
            .confirmations
            .send_modify(|generation| *generation += 1);
        // A channel wanted again since the plan was made stays: a subscriber
        // that came meanwhile was told it is live.
        let leaving: Vec<Channel> = {
            let mut interest = lock(&cluster.interest);
            plan.unsubscribe
                .into_iter()
                .filter(|channel| interest.withdraw_if_unwanted(channel))
                .collect()
        };
        {
            let mut inbound = lock(&cluster.inbound);
            for channel in &leaving {
                inbound
                    .arrivals
                    .forget(&cluster.names.redis_name(channel).0);
            }
        }
        for (channels, pattern) in by_kind(leaving) {
            let names = redis_names(&cluster, &channels);
            let done = if pattern {
                sink.punsubscribe(&names).await
            } else {
                sink.unsubscribe(&names).await
            };
            if let Err(error) = done {
                return format!(
                    "unsubscribing from {} channels failed: {error}",
                    names.len()
                );
            }
        }
    }
}

/// Plain channels and patterns, each non-empty, for SUBSCRIBE and PSUBSCRIBE.
fn by_kind(channels: Vec<Channel>) -> impl Iterator<Item = (Vec<Channel>, bool)> {
    let (patterns, plain): (Vec<_>, Vec<_>) = channels
        .into_iter()
        .partition(|channel| matches!(channel, Channel::Pattern(_)));
    [(plain, false), (patterns, true)]
        .into_iter()
        .filter(|(channels, _)| !channels.is_empty())
}

fn redis_names(cluster: &Cluster, channels: &[Channel]) -> Vec<String> {
    channels
        .iter()
        .map(|channel| cluster.names.redis_name(channel).0)
        .collect()
}

/// Writes this node's registry entry every `registry_refresh_ms`; it expires
/// `registry_ttl_ms` after the last write, so a dead node drops out by itself.
/// A write that fails or times out also tells that Redis is gone.
async fn refresh_registry(cluster: Arc<Cluster>, mut connection: MultiplexedConnection) -> String {
    let mut every =
        tokio::time::interval(Duration::from_millis(cluster.config.registry_refresh_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(entry) = super::nodes::entry(&cluster, now_ms()) else {
            continue;
        };
        let written: Result<(), _> = redis::cmd("SET")
            .arg(cluster.names.node_key(&cluster.node))
            .arg(entry)
            .arg("PX")
            .arg(cluster.config.registry_ttl_ms)
            .query_async(&mut connection)
            .await;
        if let Err(error) = written {
            return format!("registry refresh failed: {error}");
        }
    }
}

async fn remove_registry_entry(cluster: &Cluster) {
    let link = lock(&cluster.link).clone();
    if let Some(mut link) = link {
        let removed: Result<(), _> = redis::cmd("DEL")
            .arg(cluster.names.node_key(&cluster.node))
            .query_async(&mut link.connection)
            .await;
        if let Err(error) = removed {
            tracing::debug!(%error, "could not remove the registry entry; it expires by itself");
        }
    }
}

/// What this node knows of what it received: kept across connections, so
/// repeats are dropped and losses across an outage are counted.
#[derive(Debug, Default)]
pub(super) struct InboundState {
    /// The last origin sequence number by instance: random per process, so a
    /// node id reused after a restart starts afresh.
    last_seen: HashMap<u64, u64>,
    pub arrivals: Arrivals,
}

impl InboundState {
    /// A publish reaches a node once per matching subscription (a channel and
    /// a pattern); origins number their messages in sending order, so anything
    /// not above the last number seen from that origin is a repeat.
    fn is_new(&mut self, envelope: &Envelope) -> bool {
        let last = self.last_seen.entry(envelope.instance).or_default();
        if envelope.origin_seq <= *last {
            return false;
        }
        *last = envelope.origin_seq;
        true
    }
}

fn handle_inbound(cluster: &Cluster, local: &Local, message: &redis::Msg) {
    let envelope = match envelope::decode(message.get_payload_bytes()) {
        Ok(Inbound::Message(envelope)) => envelope,
        Ok(Inbound::Marker(token)) => {
            if let Some(waiter) = lock(&cluster.markers).remove(&token) {
                let _ = waiter.send(());
            }
            return;
        }
        Err(error) => {
            let seen = cluster.counters.invalid.fetch_add(1, Ordering::Relaxed);
            if seen.is_multiple_of(1000) {
                tracing::warn!(channel = message.get_channel_name(), %error, "ignored a message on a cluster channel");
            }
            return;
        }
    };
    let channel = message.get_channel_name();
    {
        let mut inbound = lock(&cluster.inbound);
        if !inbound.is_new(&envelope) {
            return;
        }
        let own = envelope.node == cluster.node && envelope.instance == cluster.instance;
        if own && envelope.delivered_at_origin {
            return;
        }
        let missed = inbound.arrivals.arrived(
            envelope.instance,
            channel,
            envelope.channel_seq,
            !message.from_pattern(),
        );
        if missed > 0 {
            cluster.counters.missed.fetch_add(missed, Ordering::Relaxed);
        }
    }
    cluster.counters.received.fetch_add(1, Ordering::Relaxed);
    let Envelope {
        destination,
        headers,
        body,
        seq,
        ..
    } = envelope;
    match cluster.names.target(channel) {
        Some(Target::Destination(key)) if key == destination => {
            local.broker.deliver_from_cluster(key, &headers, body, seq);
        }
        Some(Target::User(user)) => {
            local
                .users
                .deliver_to_user_here(user, &destination, &headers, body);
        }
        _ => {
            cluster.counters.invalid.fetch_add(1, Ordering::Relaxed);
        }
    }
}

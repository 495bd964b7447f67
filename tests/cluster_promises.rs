//! What a cluster promises at its edges, on three nodes over one Redis behind
//! nginx: a RECEIPT (an SSE stream's first byte) means the subscription is
//! live on every node; history positions from before a Redis that restarted
//! empty are never silently resumed; and during a Redis outage every message
//! that other nodes miss is counted.
//! Needs redis-server, redis-cli and nginx; scripts/test.sh installs them.

#[allow(
    dead_code,
    reason = "helpers shared with tests/cluster.rs; this suite needs fewer"
)]
mod common {
    pub mod cluster;
    pub mod http;
    pub mod process;
    pub mod sse;
    pub mod stomp_client;
}

use common::cluster::{Nginx, Node, Redis, node_config, scratch, skip_without_tools, wait_until};
use common::http::get;
use common::sse::{SseClient, SseItem};
use common::stomp_client::Client;
use std::time::Duration;
use stomphub::stomp::{Command, Frame};

/// Runs of the fresh-subscription checks, and subscriptions per run.
const RUNS: usize = 5;
const FRESH: usize = 200;
/// Long enough for a message that is coming; one that is lost never does.
const ARRIVAL: Duration = Duration::from_secs(2);

struct Cluster {
    redis: Redis,
    nodes: Vec<Node>,
    nginx: Nginx,
    _dir: std::path::PathBuf,
}

/// Three nodes reconnecting to Redis as configured by default, except that
/// `first_back` (if any) retries every 50 ms, so it is back before the others.
async fn three_nodes(name: &str, first_back: Option<&str>) -> Cluster {
    let dir = scratch(name);
    let prefix = format!("p{}{name}:", std::process::id());
    let redis_port = common::cluster::free_port();
    let redis = Redis::start_on(redis_port);
    // One file for every node, as docs/operations.md has it.
    let shared = node_config("any", redis_port, &prefix, &dir)
        .replace("node_id = \"any\"\n", "")
        .replace("reconnect_min_ms = 50\n", "")
        .replace("reconnect_max_ms = 400\n", "");
    let shared_path = dir.join("cluster.toml");
    std::fs::write(&shared_path, &shared).expect("write the shared config");
    let nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| match first_back {
            Some(first) if first == *id => {
                let own = shared.replace(
                    "[cluster]\n",
                    &format!("[cluster]\nnode_id = \"{id}\"\nreconnect_min_ms = 50\nreconnect_max_ms = 50\n"),
                );
                Node::start(&dir, id, &own)
            }
            _ => Node::start_shared(&shared_path, id),
        })
        .collect();
    for node in &nodes {
        wait_until("the node is ready", Duration::from_secs(10), async || {
            get(node.addr, "/ready").await.status == 200
        })
        .await;
        let stats = get(node.addr, "/api/stats").await.json();
        assert_eq!(
            stats["cluster"]["node"],
            node.id.as_str(),
            "named from outside the file"
        );
    }
    let nginx = Nginx::start(&dir, &[&nodes[0], &nodes[1], &nodes[2]]);
    Cluster {
        redis,
        nodes,
        nginx,
        _dir: dir,
    }
}

/// SUBSCRIBE with a receipt and wait for it.
async fn subscribe_with_receipt(client: &mut Client, id: &str, destination: &str) {
    client
        .send(
            Frame::new(Command::Subscribe)
                .header("id", id)
                .header("destination", destination)
                .header("receipt", id),
        )
        .await;
    let receipt = client.frame().await;
    assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
}

/// The body of the next MESSAGE, if one comes within [`ARRIVAL`].
async fn arrives(client: &mut Client) -> Option<String> {
    let frame = client.frame_within(ARRIVAL).await?;
    assert_eq!(frame.command, Command::Message, "{frame:?}");
    Some(String::from_utf8_lossy(&frame.body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_means_the_subscription_is_live_on_every_node() {
    if skip_without_tools() {
        return;
    }
    let cluster = three_nodes("live", None).await;
    let [n1, n2, n3] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let mut publisher = Client::connect(&n1.ws_url()).await;
    let mut subscribers = [
        Client::connect(&n2.ws_url()).await,
        Client::connect(&n3.ws_url()).await,
    ];
    let mut lost = Vec::new();
    for run in 0..RUNS {
        // A topic no node has heard of: its RECEIPT waits for node 2's or 3's
        // Redis subscription, and node 1 publishes the moment it comes.
        for i in 0..FRESH {
            let subscriber = &mut subscribers[i % 2];
            let topic = format!("/topic/payment/{run}-{i}");
            subscribe_with_receipt(subscriber, "pay", &topic).await;
            publisher.publish(&topic, &topic).await;
            if arrives(subscriber).await.as_deref() != Some(topic.as_str()) {
                lost.push(topic);
            }
            subscriber
                .send(Frame::new(Command::Unsubscribe).header("id", "pay"))
                .await;
        }
        // A user new to the cluster: its channel is new to the node too.
        for i in 0..FRESH {
            let node = [n2, n3][i % 2];
            let user = format!("payer-{run}-{i}");
            let mut client = Client::connect_as(&node.ws_url(), Some(&user)).await;
            subscribe_with_receipt(&mut client, "result", "/user/queue/result").await;
            publisher
                .publish(&format!("/user/{user}/queue/result"), &user)
                .await;
            if arrives(&mut client).await.as_deref() != Some(user.as_str()) {
                lost.push(format!("user {user}"));
            }
            client.send(Frame::new(Command::Disconnect)).await;
        }
        // An SSE stream through nginx: its first byte is the promise.
        for i in 0..FRESH {
            let topic = format!("/topic/price/{run}-{i}");
            let path = format!("/sse/subscribe?destination={topic}");
            let mut stream = SseClient::open(cluster.nginx.round_robin, &path, None).await;
            publisher.publish(&topic, &topic).await;
            if !sse_data_arrives(&mut stream, &topic).await {
                lost.push(format!("sse {topic}"));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} first messages lost: {lost:?}",
        lost.len(),
        RUNS * FRESH * 3
    );
    drop(cluster.redis);
}

/// Whether an event carrying `data` comes within [`ARRIVAL`].
async fn sse_data_arrives(stream: &mut SseClient, data: &str) -> bool {
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream.next_within(left).await {
            Some(SseItem::Event { data: got, .. }) => return got.as_ref() == data.as_bytes(),
            Some(_) => continue,
            None => return false,
        }
    }
}

async fn publish_over_http(node: &Node, destination: &str, body: &str) {
    let posted = common::http::post_json(
        node.addr,
        "/api/publish",
        None,
        &serde_json::json!({ "destination": destination, "body": body }).to_string(),
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
}

/// The next event's id and data (or `history-gone`).
async fn next_event(stream: &mut SseClient) -> (String, String) {
    let (id, event, data) = stream.event().await;
    if event == "history-gone" {
        return (String::new(), "history-gone".into());
    }
    (id.unwrap_or_default(), data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_from_before_redis_restarted_empty_are_never_resumed_silently() {
    if skip_without_tools() {
        return;
    }
    let mut cluster = three_nodes("epoch", None).await;
    const FEED: &str = "/topic/hist/orders";
    let path = format!("/sse/subscribe?destination={FEED}");
    let mut reader = SseClient::open(cluster.nodes[1].addr, &path, None).await;
    for i in 1..=5 {
        publish_over_http(&cluster.nodes[0], FEED, &format!("o{i}")).await;
    }
    let mut last_id = String::new();
    for i in 1..=5 {
        let (id, data) = next_event(&mut reader).await;
        assert_eq!(data, format!("o{i}"));
        last_id = id;
    }
    assert!(last_id.ends_with("-5"), "{last_id}");
    drop(reader);

    // Redis loses everything; numbering starts again at 1 and passes the old id.
    let port = cluster.redis.port;
    cluster.redis.stop();
    cluster.redis = Redis::start_on(port);
    for node in &cluster.nodes {
        wait_until("the node is back", Duration::from_secs(10), async || {
            get(node.addr, "/ready").await.status == 200
        })
        .await;
    }
    for i in 6..=18 {
        publish_over_http(&cluster.nodes[0], FEED, &format!("o{i}")).await;
    }
    wait_until(
        "13 new messages in Redis",
        Duration::from_secs(5),
        async || {
            let key = format!("p{}epoch:hist:{FEED}", std::process::id());
            cluster.redis.cli(&["LLEN", &key]) == "13"
        },
    )
    .await;

    // On every node, over SSE: history-gone, then all the new epoch holds, then live.
    let mut live: Vec<String> = Vec::new();
    for node in &cluster.nodes {
        let mut resumed = SseClient::open(node.addr, &path, Some(&last_id)).await;
        let gone = next_event(&mut resumed).await.1;
        assert_eq!(gone, "history-gone", "{}", node.id);
        for i in 6..=18 {
            let (id, data) = next_event(&mut resumed).await;
            assert_eq!(data, format!("o{i}"), "{}", node.id);
            assert!(id.ends_with(&format!("-{}", i - 5)), "{id}");
            let (epoch, old) = (id.split('-').next(), last_id.split('-').next());
            assert_ne!(epoch, old, "a new epoch");
        }
        // Kept too: what earlier rounds published live.
        for earlier in &live {
            assert_eq!(&next_event(&mut resumed).await.1, earlier);
        }
        live.push(format!("live-{}", node.id));
        publish_over_http(&cluster.nodes[2], FEED, &live[live.len() - 1]).await;
        assert_eq!(&next_event(&mut resumed).await.1, &live[live.len() - 1]);
    }
    // Over STOMP, `since` from the old epoch: the same.
    let mut client = Client::connect(&cluster.nodes[1].ws_url()).await;
    client
        .send(
            Frame::new(Command::Subscribe)
                .header("id", "s")
                .header("destination", FEED)
                .header("since", last_id.as_str()),
        )
        .await;
    let gone = client.frame().await;
    assert_eq!(gone.get("history-gone"), Some("true"), "{gone:?}");
    let first = client.frame().await;
    assert_eq!(&first.body[..], b"o6");
}

/// Redis killed for 5 s under 100 msg/s: what a receiving node lacks is what
/// node 1 never sent (counted there) plus what it sent that the receiver never
/// got (counted by the receiver from the gaps), exactly; and how long losses
/// go on after Redis is back, with the default reconnect settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_lost_in_a_redis_outage_is_counted() {
    if skip_without_tools() {
        return;
    }
    let mut cluster = three_nodes("outage", Some("n1")).await;
    const TOPIC: &str = "/topic/ticks";
    let mut receivers = [
        Client::connect(&cluster.nodes[1].ws_url()).await,
        Client::connect(&cluster.nodes[2].ws_url()).await,
    ];
    for receiver in &mut receivers {
        receiver.subscribe("t", TOPIC).await;
    }
    let n1 = cluster.nodes[0].addr;
    let counters = async |addr| get(addr, "/api/stats").await.json()["cluster"].clone();
    let before = counters(n1).await;

    // 100 messages a second from node 1 for 10 s; Redis is killed after 2 s
    // and started again, empty, 5 s later.
    const COUNT: usize = 1000;
    let url = cluster.nodes[0].ws_url();
    let publisher = tokio::spawn(async move {
        let mut publisher = Client::connect(&url).await;
        let mut sent_at = Vec::with_capacity(COUNT);
        let mut every = tokio::time::interval(Duration::from_millis(10));
        for i in 0..COUNT {
            every.tick().await;
            sent_at.push(std::time::Instant::now());
            publisher.publish(TOPIC, &i.to_string()).await;
        }
        (publisher, sent_at)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let port = cluster.redis.port;
    cluster.redis.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.redis = Redis::start_on(port);
    let redis_back = std::time::Instant::now();
    let (mut publisher, sent_at) = publisher.await.expect("publisher");
    // An end marker each receiver gets: everything before it has arrived.
    let mut received: [Vec<usize>; 2] = Default::default();
    let mut ends_sent = 0;
    for (receiver, got) in receivers.iter_mut().zip(&mut received) {
        let mut ended = false;
        while !ended && ends_sent < 50 {
            publisher.publish(TOPIC, &format!("end-{ends_sent}")).await;
            ends_sent += 1;
            while let Some(frame) = receiver.frame_within(Duration::from_millis(100)).await {
                let body = String::from_utf8_lossy(&frame.body).into_owned();
                match body.parse::<usize>() {
                    Ok(n) => got.push(n),
                    Err(_) => ended |= body.starts_with("end-"),
                }
            }
        }
        assert!(ended, "a node never delivered again after the outage");
    }
    let after = counters(n1).await;
    let delta = |name: &str| after[name].as_u64().unwrap() - before[name].as_u64().unwrap();
    // Every message node 1 published was forwarded or counted as dropped, once.
    let accounted = delta("forwarded")
        + delta("dropped_while_down")
        + delta("dropped_queue_full")
        + delta("dropped_failed");
    assert_eq!(accounted, (COUNT + ends_sent) as u64);
    let not_sent = delta("dropped_while_down") + delta("dropped_queue_full");
    eprintln!(
        "node 1: forwarded {}, dropped_while_down {}, dropped_queue_full {}, dropped_failed {}",
        delta("forwarded"),
        delta("dropped_while_down"),
        delta("dropped_queue_full"),
        delta("dropped_failed")
    );
    assert!(
        not_sent > 0,
        "the outage dropped nothing: it did not happen"
    );
    let mut missed_anywhere = 0;
    for (index, got) in received.iter().enumerate() {
        let node = &cluster.nodes[index + 1];
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{}: in order, once",
            node.id
        );
        let missing: Vec<usize> = (0..COUNT).filter(|n| !got.contains(n)).collect();
        let missed = counters(node.addr).await["missed"].as_u64().unwrap();
        eprintln!(
            "{}: {} of {COUNT} missing = {not_sent} never sent by node 1 + {missed} missed here",
            node.id,
            missing.len()
        );
        assert_eq!(missing.len() as u64, not_sent + missed, "{}", node.id);
        missed_anywhere += missed;
        // How long after Redis came back messages were still lost.
        let last_lost = missing.iter().map(|n| sent_at[*n]).max().expect("losses");
        let window = last_lost.saturating_duration_since(redis_back);
        eprintln!("{}: loss window after Redis returned: {window:?}", node.id);
        assert!(
            window < Duration::from_millis(1500),
            "{}: {window:?}",
            node.id
        );
    }
    // Node 1 reconnects first, so it forwards messages before the receivers'
    // subscriptions are back: those are the receivers' to count.
    assert!(missed_anywhere > 0, "the receivers' side was not exercised");
}

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

async fn three_nodes(name: &str) -> Cluster {
    let dir = scratch(name);
    let prefix = format!("p{}{name}:", std::process::id());
    let redis_port = common::cluster::free_port();
    let redis = Redis::start_on(redis_port);
    let nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| Node::start(&dir, id, &node_config(id, redis_port, &prefix, &dir)))
        .collect();
    for node in &nodes {
        wait_until("the node is ready", Duration::from_secs(10), async || {
            get(node.addr, "/ready").await.status == 200
        })
        .await;
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
    let cluster = three_nodes("live").await;
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

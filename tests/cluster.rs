//! Three stomphub nodes sharing one broker through Redis, behind nginx running
//! the documented configuration: fan-out across nodes in order and once, user
//! messages to sessions on two nodes, the cluster-wide views, SSE history
//! resumed on another node, a node killed (its clients reconnect through
//! nginx), Redis stopped for 5 s and started again, a Sentinel failover, and
//! `[proxy]` calls made by every node for its own sessions.
//! Needs redis-server, redis-cli and nginx; scripts/test.sh installs them.

mod common {
    pub mod cluster;
    pub mod http;
    pub mod process;
    pub mod proxy_backend;
    pub mod sse;
    pub mod stomp_client;
}

use common::cluster::{
    Nginx, Node, Redis, free_port, node_config, scratch, sentinel_node_config, skip_without_tools,
    wait_until,
};
use common::http::{get, post_json};
use common::proxy_backend::Backend;
use common::sse::SseClient;
use common::stomp_client::Client;
use std::time::{Duration, Instant};
use stomphub::stomp::Command;

const TOPIC: &str = "/topic/cluster";

/// A SockJS xhr-polling session, one request per connection as a browser's may be.
struct SockJsPoller {
    addr: std::net::SocketAddr,
    base: String,
}

impl SockJsPoller {
    async fn open(addr: std::net::SocketAddr, session: &str) -> SockJsPoller {
        let poller = SockJsPoller {
            addr,
            base: format!("/endpoint-websocket/000/{session}"),
        };
        assert_eq!(poller.poll().await, Vec::<String>::new(), "the open frame");
        poller
            .send("CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0")
            .await;
        poller.frames_until("CONNECTED").await;
        poller
    }

    async fn send(&self, frame: &str) {
        let body = serde_json::to_string(&[frame]).expect("JSON");
        let path = format!("{}/xhr_send", self.base);
        let sent = common::http::request(self.addr, "POST", &path, &[], &body).await;
        assert_eq!(sent.status, 204, "{sent:?}");
    }

    /// The STOMP frames of one poll (none for `o` or `h`).
    async fn poll(&self) -> Vec<String> {
        let path = format!("{}/xhr", self.base);
        let response = common::http::request(self.addr, "POST", &path, &[], "").await;
        assert_eq!(response.status, 200, "{response:?}");
        let body = dechunk(&response.body);
        let frame = body.trim_end();
        match frame.strip_prefix('a') {
            Some(array) => serde_json::from_str(array).expect("an array of strings"),
            None => {
                assert!(
                    frame == "o" || frame == "h",
                    "unexpected SockJS frame {frame:?}"
                );
                Vec::new()
            }
        }
    }

    async fn frames_until(&self, command: &str) -> Vec<String> {
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !frames.iter().any(|f: &String| f.starts_with(command)) {
            assert!(
                Instant::now() < deadline,
                "no {command} within 10 s: {frames:?}"
            );
            frames.extend(self.poll().await);
        }
        frames
    }

    /// The bodies of the next `count` MESSAGE frames.
    async fn bodies(&self, count: usize) -> Vec<String> {
        let mut bodies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while bodies.len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} within 20 s",
                bodies.len()
            );
            for frame in self.poll().await {
                if let Some(("MESSAGE", rest)) = frame.split_once('\n')
                    && let Some((_, body)) = rest.split_once("\n\n")
                {
                    bodies.push(body.trim_end_matches('\0').to_owned());
                }
            }
        }
        bodies
    }
}

/// The seeds' `sendToMessageById(77, ...)` across nodes: a plain socket
/// `/socket/77` on one node gets what a client on another publishes to
/// `/chat/single/77`.
async fn plain_socket_on_another_node(node: &Node, publisher: &mut Client) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{}/socket/77", node.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("open /socket/77");
    let mut next_text = async || loop {
        match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("socket 77 ended: {other:?}"),
            Err(_) => return None,
        }
    };
    assert_eq!(next_text().await.as_deref(), Some("-连接已建立-"));
    // The node subscribes to the channel of /chat/single/77 as the socket
    // opens; warm up until that has reached Redis.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publisher.publish("/chat/single/77", "warm-up").await;
        if next_text().await.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "socket 77 never heard from node 1"
        );
    }
    publisher
        .publish("/chat/single/77", "for seventy-seven")
        .await;
    loop {
        match next_text().await {
            Some(text) if text == "warm-up" => continue,
            Some(text) => {
                assert_eq!(text, "for seventy-seven");
                break;
            }
            None => panic!("socket 77 did not get its message"),
        }
    }
}

/// The data of a chunked HTTP body.
fn dechunk(mut raw: &str) -> String {
    let mut data = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        data.push_str(&rest[..size]);
        raw = &rest[size + 2..];
    }
    data
}

/// Bodies of the next `count` MESSAGE frames that are not warm-ups.
async fn receive(client: &mut Client, count: usize, what: &str) -> Vec<String> {
    let mut bodies = Vec::with_capacity(count);
    while bodies.len() < count {
        let frame = client
            .frame_within(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{what}: only {} of {count} messages arrived", bodies.len()));
        assert_eq!(frame.command, Command::Message, "{what}: {frame:?}");
        let body = String::from_utf8_lossy(&frame.body).into_owned();
        if !body.starts_with("warm") {
            bodies.push(body);
        }
    }
    bodies
}

/// Nothing but warm-ups arrives within `quiet`.
async fn nothing_more(client: &mut Client, quiet: Duration, what: &str) {
    while let Some(frame) = client.frame_within(quiet).await {
        let body = String::from_utf8_lossy(&frame.body).into_owned();
        assert!(
            body.starts_with("warm"),
            "{what}: unexpected extra {frame:?}"
        );
    }
}

/// Publishes warm-ups until every subscriber has had one: the subscriptions'
/// Redis channels are then confirmed on every node.
async fn warm_up(publisher: &mut Client, subscribers: &mut [Client], destination: &str) {
    let started = Instant::now();
    let mut warm = vec![false; subscribers.len()];
    let mut round = 0;
    while warm.contains(&false) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "subscriptions never reached every node"
        );
        publisher
            .publish(destination, &format!("warm-{round}"))
            .await;
        round += 1;
        for (index, subscriber) in subscribers.iter_mut().enumerate() {
            while let Some(frame) = subscriber.frame_within(Duration::from_millis(50)).await {
                warm[index] |= frame.command == Command::Message;
            }
        }
    }
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

async fn subscribed_client(url: &str, destination: &str) -> Client {
    let mut client = Client::connect(url).await;
    client.subscribe("s", destination).await;
    client
}

async fn sessions_on(node: &Node) -> u64 {
    get(node.addr, "/api/stats").await.json()["sessions"]
        .as_u64()
        .expect("sessions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_nginx_share_one_broker() {
    if skip_without_tools() {
        return;
    }
    let dir = scratch("cluster");
    let prefix = format!("t{}:", std::process::id());
    let redis_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut redis = Redis::start_on(redis_port);
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"]
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
    let through_nginx = Nginx::ws_url(nginx.round_robin);

    // Six subscribers through round-robin nginx: two per node.
    let mut subscribers = Vec::new();
    for _ in 0..6 {
        subscribers.push(subscribed_client(&through_nginx, TOPIC).await);
    }
    for node in &nodes {
        assert_eq!(
            sessions_on(node).await,
            2,
            "round-robin spreads clients to {}",
            node.id
        );
    }
    // ip_hash sends every loopback client to one node; it must still proxy STOMP.
    let mut sticky = subscribed_client(&Nginx::ws_url(nginx.sticky), TOPIC).await;
    // A pattern on node 2 puts it on the channel twice (SUBSCRIBE and PSUBSCRIBE):
    // each message must still reach each subscription once.
    let mut wildcard = subscribed_client(&nodes[1].ws_url(), "/topic/clus*").await;
    let mut publisher = Client::connect(&nodes[0].ws_url()).await;
    warm_up(&mut publisher, &mut subscribers, TOPIC).await;
    warm_up(&mut publisher, std::slice::from_mut(&mut sticky), TOPIC).await;
    warm_up(&mut publisher, std::slice::from_mut(&mut wildcard), TOPIC).await;
    let channel = format!("{prefix}d:{TOPIC}");
    assert_eq!(
        redis.cli(&["PUBSUB", "NUMSUB", &channel]),
        format!("{channel}\n3")
    );

    // Foreign or broken payloads on a cluster channel are counted and dropped.
    for junk in [
        "hello",
        "S2 n9 zz 1 a:1 1 1 0\nMESSAGE",
        "S2 n9 a 1 a:1 0 1 0\nNOPE\n\n",
    ] {
        // Node 2 hears the channel twice: through it and through its pattern.
        assert_eq!(redis.cli(&["PUBLISH", &channel, junk]), "4");
    }
    wait_until(
        "every node counts the junk",
        Duration::from_secs(5),
        async || {
            let mut all = true;
            for node in &nodes {
                let invalid =
                    get(node.addr, "/api/stats").await.json()["cluster"]["invalid"].as_u64();
                all &= invalid >= Some(3);
            }
            all
        },
    )
    .await;

    // Publisher on node 1: every subscriber gets every message once, in order.
    // A SockJS xhr-polling session through round-robin nginx: the documented
    // config keeps its requests on one node, which receives from node 1.
    let sockjs = SockJsPoller::open(nginx.round_robin, "clusterpoll").await;
    sockjs
        .send(&format!(
            "SUBSCRIBE\nid:0\ndestination:{TOPIC}\nreceipt:sub\n\n\0"
        ))
        .await;
    sockjs.frames_until("RECEIPT").await;
    for i in 0..300 {
        publisher.publish(TOPIC, &format!("m-{i}")).await;
    }
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        let what = format!("subscriber {index}");
        assert_eq!(
            receive(subscriber, 300, &what).await,
            numbered("m", 0..300),
            "{what}"
        );
    }
    assert_eq!(
        receive(&mut sticky, 300, "sticky").await,
        numbered("m", 0..300)
    );
    assert_eq!(
        receive(&mut wildcard, 300, "wildcard").await,
        numbered("m", 0..300)
    );
    assert_eq!(sockjs.bodies(300).await, numbered("m", 0..300), "SockJS");
    plain_socket_on_another_node(&nodes[2], &mut publisher).await;
    nothing_more(&mut wildcard, Duration::from_millis(200), "wildcard").await;
    drop(wildcard);
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        nothing_more(
            subscriber,
            Duration::from_millis(200),
            &format!("subscriber {index}"),
        )
        .await;
    }

    // A user with sessions on nodes 2 and 3 gets a user message sent on node 1, once on each.
    let mut alice_2 = Client::connect_as(&nodes[1].ws_url(), Some("alice")).await;
    let mut alice_3 = Client::connect_as(&nodes[2].ws_url(), Some("alice")).await;
    alice_2.subscribe("n", "/user/queue/notes").await;
    alice_3.subscribe("n", "/user/queue/notes").await;
    let user_channel = format!("{prefix}u:alice");
    wait_until(
        "both nodes follow alice",
        Duration::from_secs(5),
        async || redis.cli(&["PUBSUB", "NUMSUB", &user_channel]) == format!("{user_channel}\n2"),
    )
    .await;
    publisher
        .publish("/user/alice/queue/notes", "over STOMP")
        .await;
    let posted = post_json(
        nodes[0].addr,
        "/api/users/alice/publish",
        None,
        r#"{"destination": "/queue/notes", "body": "over HTTP"}"#,
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    for alice in [&mut alice_2, &mut alice_3] {
        assert_eq!(
            receive(alice, 2, "alice").await,
            ["over STOMP", "over HTTP"]
        );
        nothing_more(alice, Duration::from_millis(200), "alice").await;
    }

    // The cluster-wide views list every node's sessions.
    wait_until(
        "the registry shows alice on two nodes",
        Duration::from_secs(5),
        async || {
            let sessions = get(nodes[0].addr, "/api/sessions?scope=cluster")
                .await
                .json();
            let mut alice_nodes: Vec<_> = sessions
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["user"] == "alice")
                .filter_map(|s| s["node"].as_str().map(str::to_owned))
                .collect();
            alice_nodes.sort();
            alice_nodes == ["n2", "n3"]
        },
    )
    .await;
    let stats = get(nodes[2].addr, "/api/stats?scope=cluster").await.json();
    assert_eq!(stats["totals"]["nodes"], 3, "{stats}");
    assert_eq!(
        get(nodes[0].addr, "/api/stats?scope=galaxy").await.status,
        400
    );

    // SSE history published on node 1 is resumed on node 2, which never held it.
    for i in 1..=5 {
        let posted = post_json(
            nodes[0].addr,
            "/api/publish",
            None,
            &format!(r#"{{"destination": "/topic/hist/a", "body": "h-{i}"}}"#),
        )
        .await;
        assert_eq!(posted.status, 200, "{}", posted.body);
    }
    wait_until(
        "five numbered messages in Redis",
        Duration::from_secs(5),
        async || redis.cli(&["LLEN", &format!("{prefix}hist:/topic/hist/a")]) == "5",
    )
    .await;
    // Positions are `<epoch>-<n>`; Redis keeps the destination's epoch.
    let epoch = redis.cli(&["HGET", &format!("{prefix}pos:/topic/hist/a"), "e"]);
    let mut resumed = SseClient::open(
        nodes[1].addr,
        "/sse/subscribe?destination=/topic/hist/a",
        Some(&format!("{epoch}-2")),
    )
    .await;
    assert_eq!(resumed.status, 200);
    for i in 3..=5 {
        let (id, _, data) = resumed.event().await;
        assert_eq!(
            (id.as_deref(), data.as_str()),
            (
                Some(format!("{epoch}-{i}").as_str()),
                format!("h-{i}").as_str()
            )
        );
    }
    post_json(
        nodes[2].addr,
        "/api/publish",
        None,
        r#"{"destination": "/topic/hist/a", "body": "h-6"}"#,
    )
    .await;
    let (id, _, data) = resumed.event().await;
    assert_eq!(
        (id.as_deref(), data.as_str()),
        (Some(format!("{epoch}-6").as_str()), "h-6")
    );

    // Node 3 dies: the others' subscribers keep receiving; its clients reconnect through nginx.
    nodes[2].kill();
    let mut survivors = Vec::new();
    let mut orphans = 0;
    for mut subscriber in subscribers {
        publisher.publish(TOPIC, "warm-probe").await;
        match subscriber.frame_within(Duration::from_secs(2)).await {
            Some(frame) if frame.command == Command::Message => survivors.push(subscriber),
            _ => orphans += 1,
        }
    }
    assert_eq!(orphans, 2, "node 3's two clients lost their connection");
    for _ in 0..orphans {
        survivors.push(subscribed_client(&through_nginx, TOPIC).await);
    }
    warm_up(&mut publisher, &mut survivors, TOPIC).await;
    for i in 0..100 {
        publisher.publish(TOPIC, &format!("k-{i}")).await;
    }
    for (index, subscriber) in survivors.iter_mut().enumerate() {
        assert_eq!(
            receive(subscriber, 100, &format!("survivor {index}")).await,
            numbered("k", 0..100)
        );
    }
    wait_until(
        "node 3's registry entry expires",
        Duration::from_secs(5),
        async || {
            get(nodes[0].addr, "/api/stats?scope=cluster").await.json()["totals"]["nodes"] == 2
        },
    )
    .await;

    // Redis stops for 5 s: local delivery goes on, /ready says no; then cross-node delivery resumes.
    let mut local = subscribed_client(&nodes[0].ws_url(), TOPIC).await;
    let mut remote = subscribed_client(&nodes[1].ws_url(), TOPIC).await;
    warm_up(&mut publisher, std::slice::from_mut(&mut remote), TOPIC).await;
    redis.stop();
    wait_until(
        "node 1 reports the outage",
        Duration::from_secs(5),
        async || get(nodes[0].addr, "/ready").await.status == 503,
    )
    .await;
    let outage = Instant::now();
    let mut sent = 0;
    while outage.elapsed() < Duration::from_secs(5) {
        publisher.publish(TOPIC, &format!("o-{sent}")).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        receive(&mut local, sent, "local during outage").await,
        numbered("o", 0..sent)
    );
    let stats = get(nodes[0].addr, "/api/stats").await.json();
    assert_eq!(stats["cluster"]["state"], "down", "{stats}");
    assert!(
        stats["cluster"]["dropped_while_down"].as_u64() > Some(0),
        "{stats}"
    );
    redis = Redis::start_on(redis_port);
    for node in &nodes[..2] {
        wait_until(
            "the node is ready again",
            Duration::from_secs(10),
            async || get(node.addr, "/ready").await.status == 200,
        )
        .await;
    }
    // What was published during the outage never reached node 2.
    while let Some(frame) = remote.frame_within(Duration::from_millis(200)).await {
        let body = String::from_utf8_lossy(&frame.body).into_owned();
        assert!(
            body.starts_with("warm"),
            "outage message reached node 2: {body}"
        );
    }
    warm_up(&mut publisher, std::slice::from_mut(&mut remote), TOPIC).await;
    for i in 0..50 {
        publisher.publish(TOPIC, &format!("r-{i}")).await;
    }
    assert_eq!(
        receive(&mut remote, 50, "remote after outage").await,
        numbered("r", 0..50)
    );
    assert_eq!(
        receive(&mut local, 50, "local after outage").await,
        numbered("r", 0..50)
    );

    // Redis came back empty: history is numbered from 1 again, live streams go on,
    // and a resume from a position of the old numbering is told history-gone.
    post_json(
        nodes[0].addr,
        "/api/publish",
        None,
        r#"{"destination": "/topic/hist/a", "body": "h-7"}"#,
    )
    .await;
    // Numbering restarts at 1 in a new epoch.
    let (id, _, data) = resumed.event().await;
    let new_epoch = redis.cli(&["HGET", &format!("{prefix}pos:/topic/hist/a"), "e"]);
    assert_ne!(new_epoch, epoch);
    assert_eq!(
        (id.as_deref(), data.as_str()),
        (Some(format!("{new_epoch}-1").as_str()), "h-7")
    );
    let mut stale = SseClient::open(
        nodes[0].addr,
        "/sse/subscribe?destination=/topic/hist/a",
        Some(&format!("{epoch}-6")),
    )
    .await;
    assert_eq!(stale.event().await.1, "history-gone");
    assert_eq!(stale.event().await.2, "h-7");
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nodes configured with a Redis Sentinel follow a failover: the master dies,
/// the sentinel promotes the replica, and the nodes reconnect to it by asking
/// the sentinel again; cross-node delivery resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_follow_a_sentinel_failover() {
    if skip_without_tools() {
        return;
    }
    let dir = scratch("sentinel");
    let (master_port, replica_port, sentinel_port) = (free_port(), free_port(), free_port());
    let mut master = Redis::start_on(master_port);
    let replica = Redis::start_with(
        replica_port,
        &["--replicaof", "127.0.0.1", &master_port.to_string()],
    );
    let sentinel = Redis::sentinel(&dir, sentinel_port, master_port);
    wait_until(
        "the sentinel sees the replica",
        Duration::from_secs(15),
        async || {
            sentinel
                .cli(&["SENTINEL", "replicas", "mymaster"])
                .contains(&replica_port.to_string())
        },
    )
    .await;
    let nodes: Vec<Node> = ["s1", "s2"]
        .iter()
        .map(|id| {
            Node::start(
                &dir,
                id,
                &sentinel_node_config(id, sentinel_port, "s:", &dir),
            )
        })
        .collect();
    for node in &nodes {
        wait_until("the node is ready", Duration::from_secs(10), async || {
            get(node.addr, "/ready").await.status == 200
        })
        .await;
        let stats = get(node.addr, "/api/stats").await.json();
        assert_eq!(
            stats["cluster"]["server"],
            format!("127.0.0.1:{master_port}"),
            "{stats}"
        );
    }
    let mut publisher = Client::connect(&nodes[0].ws_url()).await;
    let mut remote = subscribed_client(&nodes[1].ws_url(), TOPIC).await;
    warm_up(&mut publisher, std::slice::from_mut(&mut remote), TOPIC).await;
    for i in 0..20 {
        publisher.publish(TOPIC, &format!("a-{i}")).await;
    }
    assert_eq!(
        receive(&mut remote, 20, "before failover").await,
        numbered("a", 0..20)
    );

    master.stop();
    wait_until(
        "the sentinel promotes the replica",
        Duration::from_secs(20),
        async || {
            sentinel
                .cli(&["SENTINEL", "get-master-addr-by-name", "mymaster"])
                .contains(&replica_port.to_string())
        },
    )
    .await;
    for node in &nodes {
        wait_until(
            "the node reconnects to the new master",
            Duration::from_secs(15),
            async || {
                let stats = get(node.addr, "/api/stats").await.json();
                stats["cluster"]["state"] == "up"
                    && stats["cluster"]["server"] == format!("127.0.0.1:{replica_port}")
            },
        )
        .await;
    }
    warm_up(&mut publisher, std::slice::from_mut(&mut remote), TOPIC).await;
    for i in 0..20 {
        publisher.publish(TOPIC, &format!("b-{i}")).await;
    }
    assert_eq!(
        receive(&mut remote, 20, "after failover").await,
        numbered("b", 0..20)
    );
    drop((replica, sentinel));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each node calls the user's application for the sessions it holds: users
/// the application names on two nodes, a proxied `/app` SEND on node 2 whose
/// reply reaches a subscriber on node 1 through Redis, and a refusal on node 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_calls_the_application_for_its_sessions() {
    if skip_without_tools() {
        return;
    }
    let dir = scratch("proxy-cluster");
    let redis_port = free_port();
    let redis = Redis::start_on(redis_port);
    let backend = Backend::start();
    let proxy = format!(
        "\n[proxy]\nconnect = \"{}\"\nsubscribe = \"{}\"\n\n[[route]]\nfrom = \"/v1/**\"\nproxy = \"{}\"\n",
        backend.at("/stomp/connect"),
        backend.at("/stomp/subscribe"),
        backend.at("/stomp/app")
    );
    let nodes: Vec<Node> = ["p1", "p2"]
        .iter()
        .map(|id| {
            let config = node_config(id, redis_port, &format!("p{}:", std::process::id()), &dir);
            Node::start(&dir, id, &(config + &proxy))
        })
        .collect();
    for node in &nodes {
        wait_until("the node is ready", Duration::from_secs(10), async || {
            get(node.addr, "/ready").await.status == 200
        })
        .await;
    }
    let login = |name| [("login", name), ("passcode", "secret")];
    let (mut watcher, connected) = Client::connect_with(&nodes[0].ws_url(), &login("bob")).await;
    assert_eq!(connected.get("user-name"), Some("bob"), "{connected:?}");
    watcher.subscribe("chat", "/topic/game_chat").await;
    let (mut alice, connected) = Client::connect_with(&nodes[1].ws_url(), &login("alice")).await;
    assert_eq!(connected.get("user-name"), Some("alice"), "{connected:?}");
    alice.subscribe("ack", "/user/queue/ack").await;
    warm_up(
        &mut alice,
        std::slice::from_mut(&mut watcher),
        "/topic/game_chat",
    )
    .await;

    alice
        .publish(
            "/app/v1/chat",
            r#"{"name": "Alice", "content": "across nodes"}"#,
        )
        .await;
    let chat = watcher.frame().await;
    let body: serde_json::Value = serde_json::from_slice(&chat.body).expect("JSON reply");
    assert_eq!(
        (body["user"].as_str(), body["content"].as_str()),
        (Some("alice"), Some("across nodes")),
        "{body}"
    );
    assert_eq!(alice.frame().await.body, "ok".as_bytes());

    let (mut banned, refused) = Client::connect_with(&nodes[0].ws_url(), &login("banned")).await;
    assert_eq!(refused.command, Command::Error, "{refused:?}");
    assert_eq!(refused.get("code"), Some("banned"));
    banned.closed().await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

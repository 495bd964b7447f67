//! `GET /metrics` in the Prometheus text format: Debian's `prometheus` scrapes
//! the broker on loopback with the read token while clients publish, and its
//! query API answers for `stomphub_connections` and the delivery rate;
//! `promtool check metrics` accepts a scrape. The read and write endpoints
//! take their tokens. Needs prometheus and promtool (scripts/test.sh installs them).

#[allow(
    dead_code,
    reason = "the cluster harness's helpers; this file needs three"
)]
mod common {
    pub mod cluster;
    pub mod http;
    pub mod process;
    pub mod server;
    pub mod stomp_client;
}

use common::cluster::{free_port, scratch};
use common::http::{get, request};
use common::server::TestServer;
use common::stomp_client::Client;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const READ_TOKEN: &str = "prometheus-reads-this";
const API_TOKEN: &str = "the-admin-token";

/// Prometheus started on loopback with a scrape of `target` every second;
/// killed by PID on drop.
struct Prometheus {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = scratch("prometheus");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: stomphub\n    metrics_path: /metrics\n\
                 \x20   authorization:\n      credentials: {READ_TOKEN}\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr: std::net::SocketAddr =
            format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        // Its HTTP API comes up after the storage opens.
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Prometheus { child, addr }
    }

    /// The values of an instant query's result vector.
    async fn query(&self, expression: &str) -> Vec<f64> {
        let query = serde_urlencoded::to_string([("query", expression)]).expect("encode");
        let response = get(self.addr, &format!("/api/v1/query?{query}")).await;
        if response.status != 200 {
            return Vec::new();
        }
        let answer = response.json();
        answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|sample| sample["value"][1].as_str()?.parse().ok())
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn metrics_with(addr: std::net::SocketAddr, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let response = request(addr, "GET", "/metrics", &headers, "").await;
    (response.status, response.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_connections_and_the_delivery_rate() {
    if common::cluster::skip_without(&["prometheus", "promtool"]) {
        return;
    }
    let server = TestServer::start_with(|config| {
        config.api.read_token = READ_TOKEN.into();
        config.api.token = API_TOKEN.into();
    })
    .await;
    // Before any session: families without a sample are left out, not fatal.
    let (status, idle) = metrics_with(server.addr, Some(READ_TOKEN)).await;
    assert_eq!(status, 200);
    for name in [
        "stomphub_sessions",
        "stomphub_users 0",
        "stomphub_queued_bytes_limit",
    ] {
        assert_eq!(
            idle.contains(name),
            name != "stomphub_sessions",
            "{name} in\n{idle}"
        );
    }
    let prometheus = Prometheus::start(server.addr);
    let mut subscribers = Vec::new();
    for _ in 0..5 {
        let mut client = Client::connect(&server.url()).await;
        client.subscribe("s", "/topic/metrics").await;
        subscribers.push(client);
    }
    let mut publisher = Client::connect(&server.url()).await;
    // Publishes for up to 30 s, until Prometheus has seen deliveries move.
    let started = Instant::now();
    let (mut connections, mut rate) = (Vec::new(), Vec::new());
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(30) {
        for _ in 0..50 {
            publisher
                .publish("/topic/metrics", &format!("m{sent}"))
                .await;
            sent += 1;
        }
        for subscriber in &mut subscribers {
            while subscriber
                .frame_within(Duration::from_millis(1))
                .await
                .is_some()
            {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        connections = prometheus.query("stomphub_connections").await;
        rate = prometheus
            .query("sum(rate(stomphub_deliveries_total[5s]))")
            .await;
        if connections.first().is_some_and(|n| *n >= 6.0) && rate.first().is_some_and(|r| *r > 0.0)
        {
            break;
        }
    }
    assert_eq!(
        connections,
        [6.0],
        "six STOMP connections, as Prometheus scraped them"
    );
    assert!(
        rate.first().is_some_and(|r| *r > 0.0),
        "deliveries per second as Prometheus computed them: {rate:?}"
    );
    eprintln!("Prometheus: stomphub_connections {connections:?}, delivery rate {rate:?}/s");

    // promtool accepts a scrape.
    let (status, scrape) = metrics_with(server.addr, Some(READ_TOKEN)).await;
    assert_eq!(status, 200);
    for name in [
        "stomphub_deliveries_total{transport=\"websocket\"}",
        "stomphub_messages_received_total{transport=\"websocket\"}",
        "stomphub_sessions{transport=\"websocket\"} 6",
        "stomphub_subscriptions 5",
        "stomphub_connect_duration_seconds_bucket",
        "stomphub_delivery_latency_seconds_count",
        "process_resident_memory_bytes",
    ] {
        assert!(scrape.contains(name), "{name} missing from\n{scrape}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("write the scrape");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The read token opens reads only; the API token opens both.
    assert_eq!(metrics_with(server.addr, None).await.0, 401);
    assert_eq!(metrics_with(server.addr, Some("wrong")).await.0, 401);
    assert_eq!(metrics_with(server.addr, Some(API_TOKEN)).await.0, 200);
    let read = format!("Bearer {READ_TOKEN}");
    let stats = request(
        server.addr,
        "GET",
        "/api/stats",
        &[("Authorization", &read)],
        "",
    )
    .await;
    assert_eq!(stats.status, 200);
    assert_eq!(get(server.addr, "/api/sessions").await.status, 401);
    let publish = request(
        server.addr,
        "POST",
        "/api/publish",
        &[
            ("Authorization", &read),
            ("Content-Type", "application/json"),
        ],
        r#"{"destination": "/topic/metrics", "body": "x"}"#,
    )
    .await;
    assert_eq!(publish.status, 401, "the read token does not publish");
}

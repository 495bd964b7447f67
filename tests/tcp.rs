//! STOMP over plain TCP (`[tcp]`), over real loopback sockets with a raw
//! client: the session rules of every transport (receipts, order, heart-beats,
//! transactions, limits, auth, admission), TLS, the PROXY protocol and who may
//! send it, traffic between TCP and WebSocket clients, and graceful shutdown.

mod common {
    pub mod auth;
    pub mod http;
    pub mod process;
    pub mod server;
    pub mod stomp_client;
    pub mod tcp_client;
    pub mod tls;
}

use common::server::TestServer;
use common::stomp_client::Client;
use common::tcp_client::{Event, TcpClient};
use proxy_header::{ProxiedAddress, ProxyHeader};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use stomphub::config::Config;
use stomphub::stomp::{Command, Frame};
use stomphub::{AppBuilder, Handshake, HandshakeInterceptor, HandshakeRequest, Rejection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server with the TCP listener on an ephemeral port, after `edit`.
async fn start(edit: impl FnOnce(&mut Config)) -> (TestServer, SocketAddr) {
    start_with_app(edit, AppBuilder::new()).await
}

async fn start_with_app(
    edit: impl FnOnce(&mut Config),
    app: AppBuilder,
) -> (TestServer, SocketAddr) {
    let server = TestServer::start_with_app(
        |config| {
            config.tcp.bind = Some("127.0.0.1:0".parse().expect("address"));
            edit(config);
        },
        app,
    )
    .await;
    let tcp = server.tcp.expect("the TCP listener");
    (server, tcp)
}

/// Waits until no frame arrives for `quiet`; fails on one.
async fn nothing_within<S>(client: &mut TcpClient<S>, quiet: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match client.event_within(quiet).await {
        None | Some(Event::HeartBeat) => {}
        Some(event) => panic!("expected nothing, got {event:?}"),
    }
}

fn body(frame: &Frame) -> String {
    String::from_utf8_lossy(&frame.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_arrive_in_order_after_a_subscribe_receipt() {
    let (server, tcp) = start(|_| {}).await;
    let mut subscriber = TcpClient::open(tcp).await;
    let connected = subscriber.handshake(&[]).await;
    assert_eq!(connected.get("version"), Some("1.2"), "{connected:?}");
    subscriber.subscribe("s1", "/topic/tcp").await;
    let mut publisher = TcpClient::connect(tcp).await;
    for n in 0..1000 {
        publisher.publish("/topic/tcp", &n.to_string()).await;
    }
    publisher
        .send(
            &Frame::new(Command::Send)
                .header("destination", "/topic/tcp")
                .header("receipt", "last")
                .body("done"),
        )
        .await;
    let receipt = publisher.frame().await;
    assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
    assert_eq!(receipt.get("receipt-id"), Some("last"));
    for n in 0..1000 {
        let message = subscriber.frame().await;
        assert_eq!(message.command, Command::Message, "{message:?}");
        assert_eq!(message.get("subscription"), Some("s1"));
        assert_eq!(message.get("destination"), Some("/topic/tcp"));
        assert_eq!(body(&message), n.to_string());
    }
    assert_eq!(body(&subscriber.frame().await), "done");
    let stats = common::http::get(server.addr, "/api/stats").await.json();
    assert_eq!(stats["transports"]["tcp"], 2, "{stats}");
    assert_eq!(stats["connections"], 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_beats_go_both_ways_and_a_silent_client_is_cut_after_three_intervals() {
    let (_server, tcp) = start(|config| {
        config.stomp.heartbeat = [200, 200];
        config.stomp.heartbeat_min_ms = 100;
    })
    .await;
    let mut beating = TcpClient::open(tcp).await;
    let connected = beating.handshake(&[("heart-beat", "200,200")]).await;
    assert_eq!(connected.get("heart-beat"), Some("200,200"));
    // For 1.5 s (over seven of the server's intervals) the client beats every
    // 100 ms and counts the server's "\n"s.
    let mut beats = 0;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        beating.send_raw(b"\n").await;
        match beating.event_within(Duration::from_millis(100)).await {
            Some(Event::HeartBeat) => beats += 1,
            None => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(beats >= 4, "only {beats} heart-beats from the server");
    beating.subscribe("alive", "/topic/beats").await;

    let mut silent = TcpClient::open(tcp).await;
    silent.handshake(&[("heart-beat", "200,200")]).await;
    let started = Instant::now();
    let message = silent.error_then_close().await;
    let waited = started.elapsed();
    assert!(message.contains("heart-beat"), "{message}");
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_secs(3),
        "cut after {waited:?}, expected about 3 x 200 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_delivered_and_aborted_ones_are_not() {
    let (_server, tcp) = start(|_| {}).await;
    let mut subscriber = TcpClient::connect(tcp).await;
    subscriber.subscribe("s", "/topic/tx").await;
    let mut publisher = TcpClient::connect(tcp).await;
    let send_in = |tx: &str, text: &str| {
        Frame::new(Command::Send)
            .header("destination", "/topic/tx")
            .header("transaction", tx)
            .body(text.to_owned())
    };
    publisher
        .send(&Frame::new(Command::Begin).header("transaction", "t1"))
        .await;
    publisher.send(&send_in("t1", "one")).await;
    publisher.send(&send_in("t1", "two")).await;
    nothing_within(&mut subscriber, Duration::from_millis(300)).await;
    publisher
        .send(&Frame::new(Command::Commit).header("transaction", "t1"))
        .await;
    assert_eq!(body(&subscriber.frame().await), "one");
    assert_eq!(body(&subscriber.frame().await), "two");

    publisher
        .send(&Frame::new(Command::Begin).header("transaction", "t2"))
        .await;
    publisher.send(&send_in("t2", "never")).await;
    publisher
        .send(
            &Frame::new(Command::Abort)
                .header("transaction", "t2")
                .header("receipt", "aborted"),
        )
        .await;
    assert_eq!(publisher.frame().await.get("receipt-id"), Some("aborted"));
    publisher.publish("/topic/tx", "after").await;
    assert_eq!(body(&subscriber.frame().await), "after");
}

/// A canary pair over TCP that must keep working while bad clients come and go.
struct Canary {
    subscriber: TcpClient,
    publisher: TcpClient,
    sent: u64,
}

impl Canary {
    async fn new(tcp: SocketAddr) -> Canary {
        let mut subscriber = TcpClient::connect(tcp).await;
        subscriber.subscribe("canary", "/topic/canary").await;
        Canary {
            subscriber,
            publisher: TcpClient::connect(tcp).await,
            sent: 0,
        }
    }

    async fn still_alive(&mut self, after: &str) {
        let text = self.sent.to_string();
        self.publisher.publish("/topic/canary", &text).await;
        assert_eq!(
            body(&self.subscriber.frame().await),
            text,
            "canary after {after}"
        );
        self.sent += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_gets_an_error_and_a_close_while_others_are_served() {
    let (_server, tcp) = start(|_| {}).await;
    let mut canary = Canary::new(tcp).await;
    let after_connect: [(&str, &[u8], &str); 4] = [
        (
            "an unknown command",
            b"PUBLISH\ndestination:/topic/x\n\n\0",
            "unknown command",
        ),
        (
            "a header without a colon",
            b"SEND\ndestination\n\nx\0",
            "has no ':'",
        ),
        (
            "a bad escape",
            b"SEND\ndestination:/topic/\\x\n\n\0",
            "undefined escape",
        ),
        (
            "a content-length that is no number",
            b"SEND\ndestination:/topic/x\ncontent-length:many\n\nx\0",
            "is not a byte count",
        ),
    ];
    for (what, bytes, expected) in after_connect {
        let mut bad = TcpClient::connect(tcp).await;
        bad.send_raw(bytes).await;
        let message = bad.error_then_close().await;
        assert!(message.contains(expected), "{what}: {message}");
        canary.still_alive(what).await;
    }
    // Before CONNECT: an HTTP client pointed at the STOMP port, and binary noise.
    for (what, bytes) in [
        (
            "an HTTP request",
            &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        ),
        ("binary noise", &[0xff, 0xfe, 0x00, 0x17, 0x03, 0x01][..]),
    ] {
        let mut bad = TcpClient::open(tcp).await;
        bad.send_raw(bytes).await;
        bad.error_then_close().await;
        canary.still_alive(what).await;
    }
    // A frame that is never finished is cut at limits.frame_timeout_ms; a
    // client that vanishes mid-frame is just gone.
    let mut vanishing = TcpClient::connect(tcp).await;
    vanishing
        .send_raw(b"SEND\ndestination:/topic/canary\n\nhal")
        .await;
    drop(vanishing);
    canary.still_alive("a client that vanished mid-frame").await;
}

/// A SEND with `header_bytes` of padding in a header and a body of `body_bytes`.
fn oversized(header_bytes: usize, body_bytes: usize) -> Vec<u8> {
    let mut frame = b"SEND\ndestination:/topic/canary\nx-pad:".to_vec();
    frame.resize(frame.len() + header_bytes, b'p');
    frame.extend_from_slice(b"\n\n");
    frame.resize(frame.len() + body_bytes, b'x');
    frame.push(0);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_over_the_size_limits_get_an_error_naming_the_key() {
    let (_server, tcp) = start(|_| {}).await;
    let mut canary = Canary::new(tcp).await;
    // With 4 KiB of headers the frame passes limits.max_frame_size (64 KiB)
    // while its body is still within limits.max_body_size (also 64 KiB).
    // 16 MiB is more than the socket buffers hold: the client is still
    // writing when the server has answered. The server reads and discards the
    // rest after its ERROR (a lingering close), so the write completes and
    // the ERROR is not lost to a reset.
    for (header_bytes, key) in [(4096, "limits.max_frame_size"), (0, "limits.max_body_size")] {
        let mut big = TcpClient::connect(tcp).await;
        big.send_raw(&oversized(header_bytes, 16 << 20)).await;
        let message = big.error_then_close().await;
        assert!(message.contains(key), "{message}");
        canary.still_alive(key).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_tokens_in_connect_authenticate_as_over_websocket() {
    let hash = stomphub::hash_password("wonderland").expect("hash");
    let (_server, tcp) = start(move |config| {
        config.auth.anonymous = false;
        config.auth.users = vec![stomphub::config::UserConfig {
            name: "alice".into(),
            password_hash: hash,
            roles: vec![],
        }];
        config.auth.jwt = Some(common::auth::hs256_config());
    })
    .await;
    let mut alice = TcpClient::open(tcp).await;
    let reply = alice
        .connect_with(&[("login", "alice"), ("passcode", "wonderland")])
        .await;
    assert_eq!(reply.get("user-name"), Some("alice"), "{reply:?}");
    let token = common::auth::hs256("carol", &[], 60);
    let mut carol = TcpClient::open(tcp).await;
    let reply = carol.connect_with(&[("passcode", &token)]).await;
    assert_eq!(reply.get("user-name"), Some("carol"), "{reply:?}");
    for credentials in [&[("login", "alice"), ("passcode", "wrong")][..], &[][..]] {
        let mut refused = TcpClient::open(tcp).await;
        let reply = refused.connect_with(credentials).await;
        assert_eq!(reply.command, Command::Error, "{credentials:?}: {reply:?}");
        refused.closed().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_admits_as_the_http_one_does_and_says_why_it_refuses() {
    let (_server, tcp) = start(|config| config.limits.max_connections_per_ip = 2).await;
    let mut first = TcpClient::connect(tcp).await;
    let _second = TcpClient::connect(tcp).await;
    let mut third = TcpClient::open(tcp).await;
    let message = third.error_then_close().await;
    assert!(
        message.contains("limits.max_connections_per_ip"),
        "{message}"
    );
    // Another address has its own places, and the first client is unaffected.
    let mut other = TcpClient::open_from(tcp, IpAddr::from([127, 0, 0, 2])).await;
    other.handshake(&[]).await;
    first.subscribe("still", "/topic/admitted").await;
}

/// Rejects clients from 127.0.0.3 and names everyone else's user; records what it saw.
struct TcpGate;

impl HandshakeInterceptor for TcpGate {
    fn before(
        &self,
        request: &HandshakeRequest<'_>,
        handshake: &mut Handshake,
    ) -> Result<(), Rejection> {
        if request.remote.ip() == IpAddr::from([127, 0, 0, 3]) {
            return Err(Rejection::new(
                axum::http::StatusCode::FORBIDDEN,
                "no TCP clients from 127.0.0.3",
            ));
        }
        let transport = handshake
            .attributes
            .get("transport")
            .cloned()
            .unwrap_or_default();
        handshake.user = Some(format!("{transport}-user{}", request.path));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_interceptors_run_for_tcp_connections() {
    let mut app = AppBuilder::new();
    app.handshake_interceptor(TcpGate);
    let (_server, tcp) = start_with_app(|_| {}, app).await;
    let mut admitted = TcpClient::open(tcp).await;
    let connected = admitted.handshake(&[]).await;
    assert_eq!(
        connected.get("user-name"),
        Some("tcp-user"),
        "{connected:?}"
    );
    let mut rejected = TcpClient::open_from(tcp, IpAddr::from([127, 0, 0, 3])).await;
    let message = rejected.error_then_close().await;
    assert_eq!(message, "no TCP clients from 127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_websocket_clients_reach_each_other() {
    let (server, tcp) = start(|_| {}).await;
    let mut tcp_subscriber = TcpClient::connect(tcp).await;
    tcp_subscriber.subscribe("t", "/topic/mixed").await;
    let mut ws_subscriber = Client::connect(&server.url()).await;
    ws_subscriber.subscribe("w", "/topic/mixed").await;

    let mut tcp_publisher = TcpClient::connect(tcp).await;
    tcp_publisher.publish("/topic/mixed", "from tcp").await;
    let mut ws_publisher = Client::connect(&server.url()).await;
    ws_publisher.publish("/topic/mixed", "from websocket").await;
    for expected in ["from tcp", "from websocket"] {
        assert_eq!(body(&tcp_subscriber.frame().await), expected);
        assert_eq!(
            String::from_utf8_lossy(&ws_subscriber.frame().await.body),
            expected
        );
    }
    let stats = common::http::get(server.addr, "/api/stats").await.json();
    assert_eq!(stats["transports"]["tcp"], 2, "{stats}");
    assert_eq!(stats["transports"]["websocket"], 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_what_is_queued_then_closes_and_stops_accepting() {
    let (server, tcp) = start(|_| {}).await;
    let mut subscriber = TcpClient::connect(tcp).await;
    subscriber.subscribe("s", "/topic/last-words").await;
    for n in 0..100 {
        server
            .template
            .convert_and_send("/topic/last-words", &n)
            .expect("publish");
    }
    server.handle.shutdown();
    for n in 0..100 {
        assert_eq!(body(&subscriber.frame().await), n.to_string());
    }
    subscriber.closed().await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the server stops in time")
        .expect("the server task");
    assert!(stopped.is_ok(), "{stopped:?}");
    assert!(
        tokio::net::TcpStream::connect(tcp).await.is_err(),
        "the TCP listener still accepts after shutdown"
    );
}

#[tokio::test]
async fn an_address_in_use_stops_the_start_naming_tcp_bind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut config = common::server::default_config();
    config.tcp.bind = Some(taken.local_addr().expect("address"));
    let error = stomphub::Server::bind(config).await.err().expect("refused");
    assert!(error.to_string().starts_with("tcp.bind"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_runs_over_tls_and_a_plain_client_changes_nothing() {
    let certificate = common::tls::certificate();
    let tls = certificate.config.clone();
    let (_server, tcp) = start(move |config| config.tcp.tls = Some(tls)).await;
    let mut subscriber = TcpClient::over(common::tls::connect(tcp, &certificate.der).await);
    subscriber.handshake(&[]).await;
    subscriber.subscribe("s", "/topic/secure").await;

    // Plain STOMP on the TLS port gets a TLS alert and the close, no CONNECTED.
    let mut plain = tokio::net::TcpStream::connect(tcp).await.expect("connect");
    plain.write_all(CONNECT).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"CONNECTED"),
        "plain STOMP was served on the TLS port"
    );

    let mut publisher = TcpClient::over(common::tls::connect(tcp, &certificate.der).await);
    publisher.handshake(&[]).await;
    publisher.publish("/topic/secure", "加密的").await;
    assert_eq!(body(&subscriber.frame().await), "加密的");
    // A frame over the limit still gets its ERROR through TLS.
    publisher.send_raw(&oversized(4096, 1 << 20)).await;
    let message = publisher.error_then_close().await;
    assert!(message.contains("limits.max_frame_size"), "{message}");
}

/// The bytes of a PROXY protocol v2 header naming `source` as the client.
fn proxy_v2(source: &str) -> Vec<u8> {
    let address = ProxiedAddress::stream(
        source.parse().expect("source"),
        "127.0.0.1:61613".parse().expect("destination"),
    );
    let mut header = Vec::new();
    ProxyHeader::with_address(address)
        .encode_v2(&mut header)
        .expect("encode");
    header
}

const CONNECT: &[u8] = b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0";

/// The `remote` of every session in `/api/sessions`, sorted.
async fn remotes(server: &TestServer) -> Vec<String> {
    let listed = common::http::get(server.addr, "/api/sessions").await.json();
    let mut remotes: Vec<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|session| session["remote"].as_str().unwrap_or_default().to_owned())
        .collect();
    remotes.sort();
    remotes
}

async fn proxied(tcp: SocketAddr, header: &[u8]) -> TcpClient {
    let mut client = TcpClient::open(tcp).await;
    // The header and CONNECT in one write, as a proxy that has buffered the
    // client's first bytes sends them.
    client.send_raw(&[header, CONNECT].concat()).await;
    let connected = client.frame().await;
    assert_eq!(connected.command, Command::Connected, "{connected:?}");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_protocol_header_names_the_client_for_sessions_and_limits() {
    let (server, tcp) = start(|config| {
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.tcp.proxy_protocol = true;
        config.limits.max_connections_per_ip = 2;
        config.limits.handshake_timeout_ms = 300;
    })
    .await;
    let _v2 = proxied(tcp, &proxy_v2("203.0.113.7:4242")).await;
    let _v1 = proxied(tcp, b"PROXY TCP4 198.51.100.9 127.0.0.1 5555 61613\r\n").await;
    // A LOCAL header (a proxy's own health check) names no one: the peer stands.
    let mut local = Vec::new();
    ProxyHeader::with_local()
        .encode_v2(&mut local)
        .expect("encode");
    let mut check = TcpClient::open(tcp).await;
    let check_addr = check.stream.local_addr().expect("address");
    check.send_raw(&[&local[..], CONNECT].concat()).await;
    assert_eq!(check.frame().await.command, Command::Connected);
    let mut expected = [
        "198.51.100.9:5555".to_owned(),
        "203.0.113.7:4242".to_owned(),
        check_addr.to_string(),
    ];
    expected.sort();
    assert_eq!(remotes(&server).await, expected);
    // The named address is the one limits.max_connections_per_ip counts: the
    // proxy's own is past it already, the client's is not until its third.
    let _again = proxied(tcp, &proxy_v2("203.0.113.7:4243")).await;
    let mut third = TcpClient::open(tcp).await;
    third
        .send_raw(&[&proxy_v2("203.0.113.7:4244")[..], CONNECT].concat())
        .await;
    let message = third.error_then_close().await;
    assert!(
        message.contains("limits.max_connections_per_ip"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_header_or_from_an_untrusted_peer_a_connection_is_refused() {
    let (server, tcp) = start(|config| {
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.tcp.proxy_protocol = true;
        config.limits.handshake_timeout_ms = 300;
    })
    .await;
    let mut canary = proxied(tcp, &proxy_v2("203.0.113.1:1")).await;
    canary.subscribe("c", "/topic/proxied").await;
    // STOMP straight away, a garbled header, a header cut short: closed unanswered.
    let mut garbled = proxy_v2("203.0.113.2:2");
    garbled[12] = 0x99;
    let cut = proxy_v2("203.0.113.3:3");
    for (what, bytes) in [
        ("no header", CONNECT),
        ("a garbled header", &garbled[..]),
        ("half a header", &cut[..20]),
    ] {
        let mut client = TcpClient::open(tcp).await;
        client.send_raw(bytes).await;
        let started = Instant::now();
        match client.event_within(Duration::from_secs(5)).await {
            Some(Event::Closed) => {}
            other => panic!("{what}: expected the connection closed, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3), "{what}");
    }
    // A peer outside server.trusted_proxies may not name anyone: refused with
    // an ERROR saying why, header or not.
    let mut untrusted = TcpClient::open_from(tcp, IpAddr::from([127, 0, 0, 2])).await;
    untrusted
        .send_raw(&[&proxy_v2("192.0.2.66:666")[..], CONNECT].concat())
        .await;
    let message = untrusted.error_then_close().await;
    assert!(message.contains("server.trusted_proxies"), "{message}");
    assert_eq!(remotes(&server).await, ["203.0.113.1:1"]);
    let mut publisher = proxied(tcp, &proxy_v2("203.0.113.4:4")).await;
    publisher.publish("/topic/proxied", "still here").await;
    assert_eq!(body(&canary.frame().await), "still here");
}

/// The binary as an operator runs it: the TCP listener's address is logged,
/// and each refused connection is a WARN saying why.
#[test]
fn the_listener_and_its_refusals_are_logged() {
    let dir = std::env::temp_dir().join(format!("stomphub-tcp-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        "[server]\nbind = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1\"]\n\
         [demo]\nprice_feed_ms = 0\n\
         [limits]\nhandshake_timeout_ms = 300\n\
         [tcp]\nbind = \"127.0.0.1:0\"\nproxy_protocol = true\n",
    )
    .expect("write config");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stomphub"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("STOMPHUB_BIND")
        .args(["--config", config.to_str().expect("utf-8"), "serve"]);
    let (child, _http, mut lines) = common::process::spawn_listening(&mut command);
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let line = lines.next().expect("a log line").expect("utf-8");
    let tcp: SocketAddr = line
        .split("listening on stomp://")
        .nth(1)
        .unwrap_or_else(|| panic!("not the TCP listener's line: {line}"))
        .trim()
        .parse()
        .expect("an address");

    let mut direct = std::net::TcpStream::connect(tcp).expect("connect");
    std::io::Write::write_all(&mut direct, CONNECT).expect("write");
    let peer = direct.local_addr().expect("address").to_string();
    let refused = lines
        .by_ref()
        .map(|line| line.expect("utf-8"))
        .find(|line| line.contains("connection refused") && line.contains(&peer))
        .expect("a refusal logged");
    assert!(refused.contains("WARN"), "{refused}");
    assert!(refused.contains("PROXY protocol header"), "{refused}");
    assert!(refused.contains("tcp.proxy_protocol"), "{refused}");
}

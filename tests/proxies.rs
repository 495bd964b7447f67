//! Clients behind trusted proxies, over real sockets: each forwarded client has
//! its own per-address cap and is the address `/api/sessions` and interceptors
//! see, while a peer that is not a trusted proxy cannot choose its address
//! with a header.

mod common {
    pub mod http;
    pub mod server;
    pub mod stomp_client;
}

use common::server::TestServer;
use common::stomp_client::Client;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stomphub::stomp::Command;
use stomphub::{AppBuilder, Handshake, HandshakeInterceptor, HandshakeRequest, Rejection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A STOMP session through a WebSocket opened with `headers` (the test plays
/// the proxy, from 127.0.0.1); the refusal's status and body otherwise.
async fn open(server: &TestServer, headers: &[(&str, &str)]) -> Result<Client, (u16, String)> {
    let mut client = Client::try_open(&server.url(), &["v12.stomp"], headers).await?;
    // CONNECTED: the session is listed by then.
    let connected = client
        .connect_stomp("localhost", &[])
        .await
        .unwrap_or_else(|error| panic!("CONNECT: {error}"));
    assert_eq!(connected.command, Command::Connected, "{connected:?}");
    Ok(client)
}

/// Like [`open`], retrying while a place is still refused: places come back
/// when the server has noticed a connection or session end.
async fn open_when_free(server: &TestServer, headers: &[(&str, &str)]) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open(server, headers).await {
            Ok(client) => return client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(refused) => panic!("still refused: {refused:?}"),
        }
    }
}

/// Opens an SSE stream with `header` and returns the status and the stream.
async fn open_sse(addr: SocketAddr, header: &str) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /sse/subscribe?destination=/topic/proxied HTTP/1.1\r\nHost: {addr}\r\n{header}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&buf[..n]);
    }
    // A refusal is short, and sent whole.
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf))
        .await
        .map(|read| read.map(|n| answer.extend_from_slice(&buf[..n])));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("a status");
    (status, answer, stream)
}

/// `(remote, remoteAddress attribute, transport)` of every session, sorted.
async fn sessions(server: &TestServer) -> Vec<(String, String, String)> {
    let listed = common::http::get(server.addr, "/api/sessions").await.json();
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let mut sessions: Vec<_> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|session| {
            (
                text(&session["remote"]),
                text(&session["attributes"]["remoteAddress"]),
                text(&session["attributes"]["transport"]),
            )
        })
        .collect();
    sessions.sort();
    sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_forwarded_client_has_its_own_per_address_cap() {
    let server = TestServer::start_with(|config| {
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.limits.max_connections_per_ip = 2;
    })
    .await;
    let xff = |client| [("X-Forwarded-For", client)];
    // Three connections from 127.0.0.1, over its cap of 2: the proxy is not the client.
    let first = open(&server, &xff("203.0.113.1")).await.expect("client 1");
    let _b = open(&server, &xff("203.0.113.2")).await.expect("client 2");
    let _c = open(&server, &xff("203.0.113.3")).await.expect("client 3");
    let _second = open(&server, &xff("203.0.113.1"))
        .await
        .expect("client 1 again");
    let (status, body) = open(&server, &xff("203.0.113.1"))
        .await
        .err()
        .expect("a third connection of client 1 is refused");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("limits.max_connections_per_ip"), "{body}");
    // An SSE stream of the same client counts in the same place.
    let (status, answer, _) = open_sse(server.addr, "X-Forwarded-For: 203.0.113.1").await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer.contains("limits.max_connections_per_ip"), "{answer}");
    let listed = sessions(&server).await;
    let remotes: Vec<&str> = listed.iter().map(|(remote, ..)| remote.as_str()).collect();
    assert_eq!(
        remotes,
        [
            "203.0.113.1:0",
            "203.0.113.1:0",
            "203.0.113.2:0",
            "203.0.113.3:0"
        ]
    );
    assert!(
        listed
            .iter()
            .all(|(remote, attribute, _)| remote == attribute),
        "{listed:?}"
    );
    // An open SSE stream holds its client's place as a WebSocket does.
    let (status, answer, _stream) = open_sse(server.addr, "X-Forwarded-For: 203.0.113.2").await;
    assert_eq!(status, 200, "{answer}");
    let (status, body) = open(&server, &xff("203.0.113.2"))
        .await
        .err()
        .expect("a WebSocket and a stream: client 2 is at its cap");
    assert_eq!(status, 429, "{body}");
    // The client's place comes back when one of its sessions ends.
    drop(first);
    open_when_free(&server, &xff("203.0.113.1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_header_from_an_untrusted_peer_changes_nothing() {
    let server = TestServer::start_with(|config| {
        // 127.0.0.1 is not in it: the test's headers are a client's claims.
        config.server.trusted_proxies = vec!["10.0.0.0/8".into()];
        // The third place is for the /api/sessions request.
        config.limits.max_connections_per_ip = 3;
    })
    .await;
    let _a = open(
        &server,
        &[
            ("X-Forwarded-For", "203.0.113.1"),
            ("Forwarded", "for=203.0.113.1"),
        ],
    )
    .await
    .expect("first");
    let _b = open(&server, &[("X-Forwarded-For", "10.1.2.3")])
        .await
        .expect("second");
    let listed = sessions(&server).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (remote, attribute, _) in &listed {
        assert!(remote.starts_with("127.0.0.1:"), "{listed:?}");
        assert_eq!(remote, attribute);
    }
    let _c = open_when_free(&server, &[("X-Forwarded-For", "203.0.113.3")]).await;
    // The cap of 127.0.0.1 applies, at accept, whatever the header says.
    let (status, body) = open(&server, &[("Forwarded", "for=203.0.113.4")])
        .await
        .err()
        .expect("the fourth connection from 127.0.0.1 is refused");
    assert_eq!(status, 503);
    assert!(
        body.is_empty() || body.contains("limits.max_connections_per_ip"),
        "{body}"
    );
}

/// Records the address each handshake interceptor call sees.
#[derive(Clone, Default)]
struct SeenRemotes(Arc<Mutex<Vec<SocketAddr>>>);

impl HandshakeInterceptor for SeenRemotes {
    fn before(
        &self,
        request: &HandshakeRequest<'_>,
        _handshake: &mut Handshake,
    ) -> Result<(), Rejection> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(request.remote);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_is_the_nearest_forwarded_hop_that_is_not_a_trusted_proxy() {
    let seen = SeenRemotes::default();
    let mut app = AppBuilder::new();
    app.handshake_interceptor(seen.clone());
    let server = TestServer::start_with_app(
        |config| config.server.trusted_proxies = vec!["127.0.0.1".into()],
        app,
    )
    .await;
    let _rfc7239 = open(&server, &[("Forwarded", r#"for="[2001:db8::1]:4711""#)])
        .await
        .expect("Forwarded");
    // 127.0.0.1 is a trusted proxy too: the client is the hop before it.
    let _chain = open(&server, &[("X-Forwarded-For", "1.2.3.4, 127.0.0.1")])
        .await
        .expect("a chain");
    let (status, answer, _stream) = open_sse(server.addr, "X-Forwarded-For: 198.51.100.9").await;
    assert_eq!(status, 200, "{answer}");
    // No usable header: the proxy stands for its client.
    let _garbage = open(&server, &[("X-Forwarded-For", "1.2.3.4, not-an-address")])
        .await
        .expect("garbage");
    let listed = sessions(&server).await;
    let sse = (
        "198.51.100.9:0".to_owned(),
        "198.51.100.9:0".to_owned(),
        "sse".to_owned(),
    );
    assert!(listed.contains(&sse), "{listed:?}");
    let websocket: Vec<&str> = listed
        .iter()
        .filter(|(_, _, transport)| transport == "websocket")
        .map(|(remote, ..)| remote.as_str())
        .collect();
    assert_eq!(websocket.len(), 3, "{listed:?}");
    assert_eq!(websocket[0], "1.2.3.4:0");
    assert!(websocket[1].starts_with("127.0.0.1:"), "{listed:?}");
    assert_eq!(websocket[2], "[2001:db8::1]:4711");
    let mut seen: Vec<String> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], "1.2.3.4:0", "{seen:?}");
    assert!(seen[1].starts_with("127.0.0.1:"), "{seen:?}");
    assert_eq!(
        seen[2..],
        ["198.51.100.9:0", "[2001:db8::1]:4711"],
        "{seen:?}"
    );
}

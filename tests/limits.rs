//! Overload limits over real sockets: connection caps answered with 503, idle
//! and slow handshakes cut at their deadline, the per-session frame rate (throttled), and
//! the server-wide cap on queued bytes with 1,000 clients that never read.

mod common {
    pub mod canary;
    pub mod http;
    pub mod server;
    pub mod stomp_client;
}

use common::canary::{Canary, rss_kib};
use common::server::TestServer;
use common::stomp_client::Client;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns how long that took.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_get_a_503_naming_the_limit() {
    let server = TestServer::start_with(|config| {
        config.limits.max_connections_per_ip = 4;
        config.limits.max_connections = Some(100);
    })
    .await;
    let mut canary = Canary::new(&server).await;
    let _third = Client::connect(&server.url()).await;
    let fourth = Client::connect(&server.url()).await;
    let refused = Client::try_open(&server.url(), &[], &[]).await;
    let (status, body) = refused.err().expect("the fifth connection is refused");
    assert_eq!(status, 503);
    assert!(
        body.is_empty() || body.contains("limits.max_connections_per_ip"),
        "{body}"
    );
    canary.still_alive("a refused connection").await;
    drop(fourth);
    // The place comes back when a connection closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::try_open(&server.url(), &[], &[]).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(refused) => panic!("still refused: {refused:?}"),
        }
    }
    let server = TestServer::start_with(|config| config.limits.max_connections = Some(2)).await;
    let _a = Client::connect(&server.url()).await;
    let _b = Client::connect(&server.url()).await;
    let (status, _) = Client::try_open(&server.url(), &[], &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_handshakes_are_cut_at_the_deadline() {
    let server = TestServer::start_with(|config| {
        config.limits.handshake_timeout_ms = 300;
        config.limits.max_pending_handshakes = 3;
    })
    .await;
    let mut canary = Canary::new(&server).await;
    // Says nothing at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Sends a header byte every 50 ms and never finishes (slowloris).
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let trickler = tokio::spawn(async move {
        trickle
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        for byte in b"X-Slow: ".iter().cycle() {
            if trickle.write_all(&[*byte]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if started.elapsed() > Duration::from_secs(5) {
                panic!("the trickling handshake was never cut off");
            }
        }
        unreachable!()
    });
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    // The fourth waiting connection is over max_pending_handshakes: closed at once.
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    let refused_in = closed_after(&mut fourth, Duration::from_secs(2)).await;
    assert!(refused_in < Duration::from_millis(250), "{refused_in:?}");
    let silent_for = closed_after(&mut silent, Duration::from_secs(3)).await;
    assert!(silent_for < Duration::from_secs(2), "{silent_for:?}");
    closed_after(&mut third, Duration::from_secs(3)).await;
    let trickled_for = trickler.await.unwrap();
    assert!(trickled_for < Duration::from_secs(2), "{trickled_for:?}");
    canary.still_alive("handshake floods").await;
    let stats = common::http::get(server.addr, "/api/stats").await.json();
    assert_eq!(stats["pending_handshakes"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_frame_rate_is_read_slower_and_never_cut_off() {
    let server = TestServer::start_with(|config| {
        config.limits.max_frames_per_second = 200;
        config.limits.frame_burst = 20;
    })
    .await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("s", "/topic/paced").await;
    for n in 0..100 {
        client.publish("/topic/paced", &n.to_string()).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for n in 0..100 {
        assert_eq!(client.frame().await.body, n.to_string().as_bytes());
    }
    let mut fast = Client::connect(&server.url()).await;
    fast.subscribe("s", "/topic/fast").await;
    // 100 frames in one WebSocket message: far over 200 per second. The
    // server reads them slower instead of cutting the client off.
    let started = Instant::now();
    fast.send_raw(&b"SEND\ndestination:/topic/fast\n\nx\0".repeat(100))
        .await;
    for _ in 0..100 {
        let frame = fast.frame().await;
        assert_eq!(
            frame.command,
            stomphub::stomp::Command::Message,
            "{frame:?}"
        );
    }
    // 19 of the burst were left after CONNECT and SUBSCRIBE; 81 at 200 a second.
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "not throttled: {:?}",
        started.elapsed()
    );
}

/// 1,000 subscribers stop reading while 16 KiB messages keep coming. Their own
/// queues (4 MiB each at most) would hold 4 GiB; the server-wide cap of 16 MiB
/// cuts them off once their writers stall, and a reading subscriber gets every
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_that_never_read_leave_memory_bounded() {
    const CAP: usize = 16 * 1024 * 1024;
    // The flood may add the cap plus transient batches being written. Without the
    // cap this test measured +78 MiB; with it +22 MiB.
    const BOUND_KIB: u64 = 40 * 1024;
    let server = TestServer::start_with(|config| {
        config.limits.max_queued_bytes_total = CAP;
        config.limits.max_frames_per_second = 0;
        config.limits.max_connections_per_ip = 0;
    })
    .await;
    let idle = rss_kib();
    let mut sleepers = Vec::new();
    for _ in 0..1000 {
        let mut client = Client::connect(&server.url()).await;
        client.subscribe("s", "/topic/flood").await;
        sleepers.push(client);
    }
    let mut reader = Client::connect(&server.url()).await;
    reader.subscribe("s", "/topic/flood").await;
    let mut publisher = Client::connect(&server.url()).await;
    let body = "x".repeat(16 * 1024);
    // Measured from here: the 2,000 sockets themselves (both ends live in this
    // test process, the clients with tungstenite's 128 KiB read buffers) are set-up cost.
    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let mut max_queued = 0;
    let started = Instant::now();
    for n in 0..400 {
        publisher.publish("/topic/flood", &body).await;
        let frame = reader.frame().await;
        assert_eq!(frame.body.len(), body.len(), "message {n}");
        if n % 50 == 0 {
            let stats = common::http::get(server.addr, "/api/stats").await.json();
            max_queued = max_queued.max(stats["queued_bytes"].as_u64().unwrap_or(0));
        }
    }
    sampler.abort();
    let grown = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    println!(
        "1,000 connections: +{} KiB (both ends); the flood: +{grown} KiB at most; queued bytes peaked at {max_queued}",
        before.saturating_sub(idle)
    );
    assert!(grown < BOUND_KIB, "RSS grew by {grown} KiB");
    // Counted per subscriber, the same shared message is counted 1,001 times,
    // so the counted peak passes the cap while the cut waits to see which
    // writers stalled (100 ms); what memory really holds is the RSS above.
    // The clients that stopped reading are cut, and the count falls back.
    loop {
        let stats = common::http::get(server.addr, "/api/stats").await.json();
        if stats["queued_bytes"].as_u64() < Some(CAP as u64) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(sleepers);
}

//! Hostile and broken clients over real WebSockets. Each bad input gets a clear
//! ERROR or a close; a canary subscriber keeps receiving every message; the
//! server's memory stays bounded.

mod common {
    pub mod canary;
    pub mod http;
    pub mod server;
    pub mod stomp_client;
}

use common::canary::{Canary, rss_kib};
use common::server::TestServer;
use common::stomp_client::{Client, Event};
use std::time::Duration;
use stomphub::stomp::{Command, Frame};
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Sends `bytes` on a new connection (after CONNECT when asked) and expects an
/// ERROR whose message contains `expected`, then the close.
async fn refused(server: &TestServer, connect_first: bool, bytes: &[u8], expected: &str) {
    let mut client = Client::open(&server.url(), &["v12.stomp"]).await;
    if connect_first {
        client.send_raw(b"CONNECT\naccept-version:1.2\n\n\0").await;
        assert_eq!(client.frame().await.command, Command::Connected);
    }
    client.send_raw(bytes).await;
    let message = loop {
        match client.event().await {
            Event::Frame(frame) if frame.command == Command::Error => {
                break frame.get("message").unwrap_or_default().to_owned();
            }
            Event::Frame(_) | Event::HeartBeat => continue,
            Event::Closed(close) => panic!("closed without an ERROR for {expected:?}: {close:?}"),
        }
    };
    assert!(
        message.contains(expected),
        "{message:?} should contain {expected:?}"
    );
    client.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_refused_and_nobody_else_notices() {
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;
    let long_line = format!("SEND\ndestination:/topic/a\nx:{}\n\n\0", "y".repeat(10_000));
    let many_headers = format!("SEND\n{}\n\0", "h:v\n".repeat(10_000));
    // Within the WebSocket message limit (max_frame_size and a little room
    // for heart-beats), over the body limit.
    let huge_body = format!("SEND\ndestination:/topic/a\n\n{}\0", "z".repeat(66_000));
    let huge_message = format!("SEND\ndestination:/topic/a\n\n{}\0", "z".repeat(70_000));
    let declared = "SEND\ndestination:/topic/a\ncontent-length:999999\n\n".to_owned();
    let cases: Vec<(bool, Vec<u8>, &str)> = vec![
        (false, b"\x00\x01\x02garbage\xff\xfe".to_vec(), "unknown command"),
        (false, vec![0xAB; 10_000], "unknown command"),
        (true, long_line.into_bytes(), "max_header_line"),
        (true, many_headers.into_bytes(), "max_headers"),
        // Whole in one message, the body is measured first (fed slowly, see below,
        // the frame passes its limit a few bytes before the body does).
        (true, huge_body.into_bytes(), "exceeds limits.max_body_size"),
        (
            true,
            huge_message.into_bytes(),
            "70028 bytes, over the 65536 bytes of limits.max_frame_size",
        ),
        (true, declared.into_bytes(), "max_body_size"),
        (true, b"SEND\ndestination:/topic/a\\x\n\n\0".to_vec(), "undefined escape"),
        (true, b"SEND\nno-colon-here\n\n\0".to_vec(), "has no ':'"),
        (false, b"CON\0NECT\n\n\0".to_vec(), "unknown command"),
        (true, b"SEND\ndestination:/topic/\xc3\x28\n\n\0".to_vec(), "not valid UTF-8"),
        (true, b"CONNECT\naccept-version:1.2\n\n\0".to_vec(), "already connected"),
        (false, b"SEND\ndestination:/topic/a\n\n\0".to_vec(), "expected CONNECT"),
        (true, b"SUBSCRIBE\ndestination:/topic/a\n\n\0".to_vec(), "requires a 'id' header"),
        (
            true,
            b"SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\0SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\0".to_vec(),
            "already in use",
        ),
        (true, b"COMMIT\ntransaction:none\n\n\0".to_vec(), "unknown transaction"),
        (true, b"ACK\n\n\0".to_vec(), "requires a 'id' header"),
        (true, b"ACK\nid:42\n\n\0".to_vec(), "ACK for unknown message \"42\""),
        (
            true,
            b"SUBSCRIBE\nid:1\ndestination:/topic/a\nack:client\n\n\0NACK\nid:999999\n\n\0".to_vec(),
            "no message was sent with that id",
        ),
        (true, b"SEND\ncontent-length:x\n\n\0".to_vec(), "content-length"),
        (true, b"\rX".to_vec(), "carriage return"),
        (true, b"SUBSCRIBE\nid:1\ndestination:/topic/a\n\nbody\0".to_vec(), "must not have a body"),
    ];
    for (connect_first, bytes, expected) in cases {
        refused(&server, connect_first, &bytes, expected).await;
        canary.still_alive(expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_fed_slowly_is_cut_at_the_limit() {
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_raw(b"SEND\ndestination:/topic/a\n\n").await;
    let chunk = vec![b'x'; 4096];
    let mut refused = false;
    for _ in 0..64 {
        if client
            .sender
            .send_message(Message::Binary(Bytes::from(chunk.clone())))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        if let Some(Event::Frame(frame)) = client.event_within(Duration::from_millis(5)).await {
            assert!(
                frame
                    .get("message")
                    .unwrap()
                    .contains("exceeds limits.max_frame_size"),
                "{frame:?}"
            );
            refused = true;
            break;
        }
    }
    assert!(refused, "a 256 KiB body without NUL must be refused");
    canary.still_alive("endless body").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_split_at_every_byte_still_arrives() {
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("s", "/topic/bytes").await;
    let frame = b"SEND\ndestination:/topic/bytes\ncontent-length:5\n\nhe\0lo\0";
    for byte in frame {
        client.send_raw(std::slice::from_ref(byte)).await;
    }
    assert_eq!(client.frame().await.body.as_ref(), b"he\0lo");
    canary.still_alive("byte-split frame").await;
}

/// A client sending a frame every microsecond: 20,000 SENDs in messages of 100
/// frames. Past the default burst (2,000) at 1,000 frames per second it is cut
/// off with an ERROR naming the limit; everyone else keeps receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_frames_is_throttled_and_does_not_starve_others() {
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;
    let mut flooder = Client::connect(&server.url()).await;
    // 4,000 frames at once against 1,000 a second (burst 2,000): the server
    // reads the rest two seconds slower instead of cutting the flooder off.
    let batch: Vec<u8> = b"SEND\ndestination:/topic/void\n\nx\0".repeat(100);
    let flood = tokio::spawn(async move {
        for _ in 0..40 {
            let message = Message::Binary(Bytes::from(batch.clone()));
            flooder.sender.send_message(message).await.expect("send");
        }
        flooder
    });
    for _ in 0..20 {
        canary.still_alive("flood").await;
    }
    let mut flooder = flood.await.unwrap();
    flooder
        .send(
            Frame::new(Command::Send)
                .header("destination", "/topic/void")
                .header("receipt", "all-read"),
        )
        .await;
    let receipt = flooder.frame().await;
    assert_eq!(receipt.get("receipt-id"), Some("all-read"), "{receipt:?}");
    canary.still_alive("after the flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connects_and_disconnects_leave_the_server_as_it_was() {
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;
    let before = rss_kib();
    let url = server.url();
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..625 {
                let mut client = Client::open(&url, &[]).await;
                if (worker + n) % 2 == 0 {
                    client.send_raw(b"CONNECT\naccept-version:1.2\n\n\0").await;
                    let _ = client.frame_within(Duration::from_secs(5)).await;
                }
                // Half say nothing and just go: abrupt closes, as a flaky network would.
                drop(client);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    canary.still_alive("10,000 connections").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = common::http::get(server.addr, "/api/stats").await.json();
        if stats["connections"] == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections not released: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "test process grew by {grown} KiB over 10,000 connections"
    );
}

/// The WebSocket framing itself arriving one TCP segment per byte: handshake,
/// frame header, mask and payload. The server reassembles and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_split_at_every_byte_still_arrive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let handshake = format!(
        "GET /endpoint-websocket HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: v12.stomp\r\n\r\n",
        server.addr
    );
    let payload = b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0";
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    for byte in handshake.as_bytes().iter().chain(&frame) {
        tcp.write_all(std::slice::from_ref(byte)).await.unwrap();
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.windows(10).any(|w| w == b"CONNECTED\n") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .expect("CONNECTED in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    canary.still_alive("byte-split WebSocket framing").await;
}

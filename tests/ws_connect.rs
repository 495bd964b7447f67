//! Over real WebSockets: subprotocol and version negotiation, heart-beats,
//! protocol errors, and graceful shutdown.

mod common {
    pub mod server;
    pub mod stomp_client;
}

use common::server::TestServer;
use common::stomp_client::{Client, Event};
use std::time::Duration;
use stomphub::stomp::{Command, Frame};
use tokio_tungstenite::tungstenite::Message;

/// Sends `text` as one WebSocket text message, the way browser clients send frames.
async fn send_text(client: &mut Client, text: &str) {
    client
        .sender
        .send_message(Message::text(text))
        .await
        .expect("send");
}

#[tokio::test]
async fn the_newest_offered_subprotocol_is_selected_and_none_is_accepted() {
    let server = TestServer::start().await;
    for (offered, expected) in [
        (
            &["v10.stomp", "v11.stomp", "v12.stomp"][..],
            Some("v12.stomp"),
        ),
        (&["v10.stomp", "v11.stomp"][..], Some("v11.stomp")),
        (&["v10.stomp"][..], Some("v10.stomp")),
        (&[][..], None),
    ] {
        let client = Client::open(&server.url(), offered).await;
        assert_eq!(client.protocol.as_deref(), expected, "offered {offered:?}");
    }
}

#[tokio::test]
async fn every_stomp_version_can_connect() {
    let server = TestServer::start().await;
    for (accept, expected) in [
        (Some("1.0"), "1.0"),
        (Some("1.1"), "1.1"),
        (Some("1.2"), "1.2"),
        (Some("1.1,1.2"), "1.2"),
        (None, "1.0"),
    ] {
        let mut client = Client::open(&server.url(), &[]).await;
        let mut connect = Frame::new(Command::Connect).header("host", "localhost");
        if let Some(accept) = accept {
            connect.headers.push("accept-version", accept);
        }
        client.send(connect).await;
        let connected = client.frame().await;
        assert_eq!(connected.command, Command::Connected);
        assert_eq!(
            connected.get("version"),
            Some(expected),
            "accept-version {accept:?}"
        );
        assert!(connected.get("session").is_some_and(|id| !id.is_empty()));
        assert!(
            connected
                .get("server")
                .is_some_and(|s| s.starts_with("stomphub/"))
        );
    }
}

#[tokio::test]
async fn the_stomp_command_connects_like_connect_and_text_frames_work() {
    let server = TestServer::start().await;
    let mut client = Client::open(&server.url(), &["v12.stomp"]).await;
    send_text(
        &mut client,
        "STOMP\naccept-version:1.2\nhost:localhost\n\n\0",
    )
    .await;
    // No heart-beat header is 0,0: the answer says what was negotiated, none.
    assert_eq!(client.frame().await.get("heart-beat"), Some("0,0"));
}

#[tokio::test]
async fn the_server_sends_heart_beats_and_drops_a_silent_client() {
    let server = TestServer::start_with(|config| config.stomp.heartbeat = [200, 200]).await;
    let mut client = Client::open(&server.url(), &["v12.stomp"]).await;
    client
        .send(
            Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "200,200"),
        )
        .await;
    assert_eq!(client.frame().await.command, Command::Connected);
    let started = std::time::Instant::now();
    let mut heart_beats = 0;
    let error = loop {
        match client.event().await {
            Event::HeartBeat => heart_beats += 1,
            Event::Frame(frame) => break frame,
            Event::Closed(close) => panic!("closed without ERROR: {close:?}"),
        }
    };
    let elapsed = started.elapsed();
    assert!(heart_beats >= 1, "server heart-beats seen: {heart_beats}");
    assert_eq!(error.command, Command::Error);
    assert!(
        error
            .get("message")
            .unwrap()
            .contains("no heart-beat or frame from the client for 600 ms")
    );
    assert!(
        elapsed >= Duration::from_millis(550),
        "timed out after {elapsed:?}, before 3 x 200 ms"
    );
    client.closed().await;
}

#[tokio::test]
async fn a_client_that_heart_beats_stays_connected() {
    let server = TestServer::start_with(|config| config.stomp.heartbeat = [200, 200]).await;
    let mut client = Client::open(&server.url(), &["v12.stomp"]).await;
    client
        .send(
            Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "200,0"),
        )
        .await;
    assert_eq!(client.frame().await.command, Command::Connected);
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        send_text(&mut client, "\n").await;
    }
    client.subscribe("alive", "/topic/still-here").await;
}

#[tokio::test]
async fn protocol_errors_end_only_the_offending_session() {
    let server = TestServer::start().await;
    let mut canary = Client::connect(&server.url()).await;
    canary.subscribe("c", "/topic/canary").await;
    let cases: [(&[u8], &str); 9] = [
        (b"SEND\ndestination:/topic/a\n\n\0", "expected CONNECT or STOMP as the first frame, got SEND"),
        (b"CONNECT\naccept-version:1.2\n\n\0FLY\n\n\0", "unknown command \"FLY\""),
        (b"CONNECT\naccept-version:1.2\n\n\0SUBSCRIBE\ndestination:/topic/a\n\n\0", "SUBSCRIBE frame requires a 'id' header"),
        (
            b"CONNECT\naccept-version:1.2\n\n\0SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\0SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\0",
            "subscription id \"1\" is already in use",
        ),
        (b"CONNECT\naccept-version:1.2\n\n\0COMMIT\ntransaction:nope\n\n\0", "unknown transaction \"nope\""),
        (b"CONNECT\naccept-version:1.2\n\n\0SEND\ndestination:/queue/x\n\nb\0", "destination \"/queue/x\" has no configured prefix"),
        (b"CONNECT\naccept-version:1.2\n\n\0SEND\ndestination:/app/no/such\n\nb\0", "no handler for application destination \"/app/no/such\""),
        (b"CONNECT\naccept-version:1.2\n\n\0CONNECT\naccept-version:1.2\n\n\0", "already connected"),
        (b"CONNECT\naccept-version:1.2\n\n\0SEND\ndestination:/topic/a\\q\n\n\0", "undefined escape \"\\\\q\""),
    ];
    for (bytes, expected) in cases {
        let mut client = Client::open(&server.url(), &["v12.stomp"]).await;
        client.send_raw(bytes).await;
        let message = loop {
            let frame = client.frame().await;
            if frame.command == Command::Error {
                break frame.get("message").unwrap().to_owned();
            }
        };
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
        client.closed().await;
    }
    let mut publisher = Client::connect(&server.url()).await;
    publisher.publish("/topic/canary", "still serving").await;
    assert_eq!(canary.frame().await.body.as_ref(), b"still serving");
}

#[tokio::test]
async fn an_error_answers_the_receipt_of_the_offending_frame() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    client
        .send(
            Frame::new(Command::Send)
                .header("destination", "/nowhere")
                .header("receipt", "r-9"),
        )
        .await;
    let error = client.frame().await;
    assert_eq!(error.command, Command::Error);
    assert_eq!(error.get("receipt-id"), Some("r-9"));
}

#[tokio::test]
async fn a_client_that_never_connects_is_dropped_after_connect_timeout() {
    let server = TestServer::start_with(|config| config.limits.connect_timeout_ms = 300).await;
    let mut client = Client::open(&server.url(), &[]).await;
    let message = client.error_then_close().await;
    assert!(
        message.contains("no CONNECT frame within 300 ms"),
        "{message}"
    );
}

#[tokio::test]
async fn disconnect_with_receipt_is_answered_then_closed() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    client
        .send(Frame::new(Command::Disconnect).header("receipt", "77"))
        .await;
    assert_eq!(client.frame().await.get("receipt-id"), Some("77"));
    client.closed().await;
}

#[tokio::test]
async fn shutdown_flushes_and_closes_every_session_with_going_away() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(Client::connect(&server.url()).await);
    }
    server.handle.shutdown();
    for client in &mut clients {
        let close = client.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
        assert_eq!(close.reason.as_str(), "server shutting down");
    }
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "server stops cleanly: {stopped:?}"
    );
}

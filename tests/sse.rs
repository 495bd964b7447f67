//! Server-sent events with a real HTTP client reading the stream.

mod common {
    pub mod http;
    pub mod server;
    pub mod sse;
    pub mod stomp_client;
}

use common::http::{get, request};
use common::server::TestServer;
use common::sse::{SseClient, SseItem};
use common::stomp_client::Client;
use std::time::Duration;
use stomphub::config::HistoryConfig;
use stomphub::stomp::{Command, Frame};

fn history(destination: &str, max_messages: usize) -> HistoryConfig {
    HistoryConfig {
        destination: destination.into(),
        max_messages,
        max_age_ms: 0,
    }
}

#[tokio::test]
async fn events_arrive_live_with_the_configured_headers() {
    let server = TestServer::start().await;
    let mut stream =
        SseClient::open(server.addr, "/sse/subscribe?destination=/topic/news", None).await;
    assert_eq!(stream.status, 200);
    let head = stream.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"));
    assert!(head.contains("cache-control: no-cache"));
    assert!(head.contains("x-accel-buffering: no"));
    assert_eq!(
        stream.next_within(Duration::from_secs(5)).await,
        Some(SseItem::Retry(3000))
    );
    let mut stomp = Client::connect(&server.url()).await;
    stomp.subscribe("s", "/topic/news").await;
    server
        .template
        .convert_and_send("/topic/news", &serde_json::json!({"headline": "股票行情"}))
        .unwrap();
    let (_, event, data) = stream.event().await;
    assert_eq!(event, "message");
    assert_eq!(data, r#"{"headline":"股票行情"}"#);
    assert_eq!(
        stomp.frame().await.body.as_ref(),
        data.as_bytes(),
        "STOMP and SSE get the same message"
    );
}

#[tokio::test]
async fn multi_line_bodies_become_several_data_lines() {
    let server = TestServer::start().await;
    let mut stream =
        SseClient::open(server.addr, "/sse/subscribe?destination=/topic/text", None).await;
    stream.next_within(Duration::from_secs(5)).await;
    let mut stomp = Client::connect(&server.url()).await;
    stomp.publish("/topic/text", "first\nsecond\r\nthird").await;
    let (_, _, data) = stream.event().await;
    assert_eq!(data, "first\nsecond\nthird");
}

#[tokio::test]
async fn user_streams_carry_messages_sent_to_that_user() {
    // Names are claims here, as with STOMP `login`; tests/auth.rs opens user streams with tokens.
    let server = TestServer::start_with(|config| config.stomp.user_from_login = true).await;
    let mut alice = SseClient::open(server.addr, "/sse/users/alice", None).await;
    let mut bob = SseClient::open(server.addr, "/sse/users/bob", None).await;
    for stream in [&mut alice, &mut bob] {
        stream.next_within(Duration::from_secs(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = server
        .template
        .convert_and_send_to_user(
            "alice",
            "/queue/payment",
            &serde_json::json!({"status": "paid"}),
        )
        .unwrap();
    assert_eq!(sent, 1);
    let (_, _, data) = alice.event().await;
    assert_eq!(data, r#"{"status":"paid"}"#);
    assert!(matches!(
        bob.next_within(Duration::from_millis(300)).await,
        None | Some(SseItem::Comment(_))
    ));
}

#[tokio::test]
async fn idle_streams_get_ping_comments() {
    let server = TestServer::start_with(|config| {
        config.sse.heartbeat_ms = 200;
    })
    .await;
    let mut stream =
        SseClient::open(server.addr, "/sse/subscribe?destination=/topic/idle", None).await;
    let mut pings = 0;
    while let Some(item) = stream.next_within(Duration::from_millis(700)).await {
        if item == SseItem::Comment("ping".into()) {
            pings += 1;
            if pings == 2 {
                break;
            }
        }
    }
    assert_eq!(pings, 2);
}

#[tokio::test]
async fn non_broker_destinations_are_refused_with_403() {
    let server = TestServer::start().await;
    for destination in ["/app/v1/chat", "/queue/x", "/user/queue/x"] {
        let response = get(
            server.addr,
            &format!("/sse/subscribe?destination={destination}"),
        )
        .await;
        assert_eq!(response.status, 403, "{destination}");
        assert!(
            response.json()["error"]
                .as_str()
                .unwrap()
                .contains("not a broker destination")
        );
    }
    assert_eq!(get(server.addr, "/sse/subscribe").await.status, 400);
}

/// Reads events, checking each body is the next number, until `until` is reached or `limit` events were read.
async fn read_numbers(
    stream: &mut SseClient,
    next: &mut u64,
    until: u64,
    limit: usize,
) -> Option<String> {
    let mut last_id = None;
    for _ in 0..limit {
        if *next > until {
            break;
        }
        let (id, event, data) = stream.event().await;
        assert_eq!(event, "message", "unexpected {event}: {data}");
        assert_eq!(data.parse::<u64>().unwrap(), *next, "lost or duplicated");
        *next += 1;
        last_id = id;
    }
    last_id
}

#[tokio::test]
async fn replay_after_last_event_id_loses_and_repeats_nothing_across_100_reconnects() {
    let server = TestServer::start_with(|config| {
        config.history = vec![history("/topic/feed", 10_000)];
    })
    .await;
    const TOTAL: u64 = 3_000;
    let template = server.template.clone();
    let publisher = tokio::spawn(async move {
        for n in 0..TOTAL {
            template
                .send(
                    "/topic/feed",
                    &Default::default(),
                    stomphub::Payload::text(n.to_string()),
                )
                .unwrap();
            if n % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let mut next = 0;
    let mut last_id: Option<String> = None;
    // Start from the beginning of the history, as a client that saw nothing yet.
    let mut first = true;
    for _ in 0..100 {
        let path = "/sse/subscribe?destination=/topic/feed";
        let mut stream = SseClient::open(
            server.addr,
            path,
            if first { Some("0") } else { last_id.as_deref() },
        )
        .await;
        first = false;
        if let Some(id) = read_numbers(&mut stream, &mut next, TOTAL - 1, 20).await {
            last_id = Some(id);
        }
    }
    let mut stream = SseClient::open(
        server.addr,
        "/sse/subscribe?destination=/topic/feed",
        last_id.as_deref(),
    )
    .await;
    read_numbers(&mut stream, &mut next, TOTAL - 1, usize::MAX).await;
    assert_eq!(next, TOTAL);
    publisher.await.unwrap();
}

#[tokio::test]
async fn a_resume_beyond_the_kept_history_says_history_gone() {
    let server = TestServer::start_with(|config| {
        config.history = vec![history("/topic/short", 3)];
    })
    .await;
    let publish = |n: u64| {
        server
            .template
            .send(
                "/topic/short",
                &Default::default(),
                stomphub::Payload::text(n.to_string()),
            )
            .unwrap();
    };
    publish(0);
    let mut stream = SseClient::open(
        server.addr,
        "/sse/subscribe?destination=/topic/short",
        Some("0"),
    )
    .await;
    let (id, _, data) = stream.event().await;
    let id = id.expect("an event id");
    let (epoch, seq) = id.split_once('-').expect("<epoch>-<n>");
    assert_eq!((seq, data.as_str()), ("1", "0"));
    drop(stream);
    for n in 1..=10 {
        publish(n);
    }
    let mut stream = SseClient::open(
        server.addr,
        "/sse/subscribe?destination=/topic/short",
        Some(&format!("{epoch}-1")),
    )
    .await;
    let (_, event, data) = stream.event().await;
    assert_eq!(event, "history-gone");
    assert_eq!(data, r#"{"destination":"/topic/short"}"#);
    let kept: Vec<String> = [
        stream.event().await,
        stream.event().await,
        stream.event().await,
    ]
    .into_iter()
    .map(|(_, _, data)| data)
    .collect();
    assert_eq!(kept, ["8", "9", "10"]);
    // A destination without history cannot be resumed at all.
    let mut stream = SseClient::open(
        server.addr,
        "/sse/subscribe?destination=/topic/none",
        Some("5"),
    )
    .await;
    assert_eq!(stream.event().await.1, "history-gone");
}

#[tokio::test]
async fn stomp_subscribers_can_resume_from_the_same_history() {
    let server = TestServer::start_with(|config| {
        config.history = vec![history("/topic/shared", 100)];
    })
    .await;
    let mut early = Client::connect(&server.url()).await;
    early.subscribe("s", "/topic/shared").await;
    let mut publisher = Client::connect(&server.url()).await;
    for n in 1..=5 {
        publisher.publish("/topic/shared", &n.to_string()).await;
    }
    let mut positions = Vec::new();
    for _ in 0..5 {
        let frame = early.frame().await;
        positions.push(frame.get("seq").expect("a seq header").to_owned());
    }
    let resume = |since: String| async {
        let mut late = Client::connect(&server.url()).await;
        late.send(
            Frame::new(Command::Subscribe)
                .header("id", "s")
                .header("destination", "/topic/shared")
                .header("since", since)
                .header("receipt", "ok"),
        )
        .await;
        let mut got = Vec::new();
        loop {
            let frame = late.frame().await;
            match frame.command {
                Command::Receipt => return got,
                _ if frame.get("history-gone") == Some("true") => got.push("gone".into()),
                _ => got.push(String::from_utf8(frame.body.to_vec()).unwrap()),
            }
        }
    };
    // The position of message 3, as its seq header said.
    assert_eq!(resume(positions[2].clone()).await, ["4", "5"]);
    // A bare number names no epoch: it cannot be trusted, so everything kept
    // comes after history-gone, never a silent skip.
    let bare = resume("3".into()).await;
    assert_eq!(bare, ["gone", "1", "2", "3", "4", "5"]);
}

#[tokio::test]
async fn sessions_of_both_transports_are_listed_and_can_be_closed_through_the_api() {
    let server = TestServer::start_with(|config| {
        config.api.token = "t".into();
    })
    .await;
    let mut stream =
        SseClient::open(server.addr, "/sse/subscribe?destination=/topic/a", None).await;
    let _stomp = Client::connect(&server.url()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // With a token set, reads take it too: they show users and addresses.
    assert_eq!(get(server.addr, "/api/stats").await.status, 401);
    let token = [("Authorization", "Bearer t")];
    let stats = request(server.addr, "GET", "/api/stats", &token, "")
        .await
        .json();
    assert_eq!(stats["transports"]["sse"], 1);
    assert_eq!(stats["transports"]["websocket"], 1);
    let sessions = request(server.addr, "GET", "/api/sessions", &token, "")
        .await
        .json();
    let sse_id = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["transport"] == "sse")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    let path = format!("/api/sessions/{sse_id}");
    assert_eq!(
        request(server.addr, "DELETE", &path, &[], "").await.status,
        401
    );
    let closed = request(
        server.addr,
        "DELETE",
        &path,
        &[("Authorization", "Bearer t")],
        "",
    )
    .await;
    assert_eq!(closed.status, 200);
    let (_, event, data) = stream.event().await;
    assert_eq!(event, "broker-error");
    assert!(data.contains("closed through the HTTP API"));
    assert_eq!(
        stream.next_within(Duration::from_secs(5)).await,
        None,
        "the stream ends"
    );
    let missing = request(
        server.addr,
        "DELETE",
        &path,
        &[("Authorization", "Bearer t")],
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_slow_sse_consumer_is_cut_off_while_others_keep_receiving() {
    let server = TestServer::start_with(|config| {
        config.limits.outbound_queue_bytes = 64 * 1024;
        // Once its socket is full nothing polls the stream; the write-stall guard ends it.
        config.limits.send_time_limit_ms = 1_000;
    })
    .await;
    // Opened and never read again.
    let _slow = SseClient::open(server.addr, "/sse/subscribe?destination=/topic/flood", None).await;
    let mut fast =
        SseClient::open(server.addr, "/sse/subscribe?destination=/topic/flood", None).await;
    fast.next_within(Duration::from_secs(5)).await;
    let body = "x".repeat(16 * 1024);
    for n in 0..1_000 {
        server
            .template
            .send(
                "/topic/flood",
                &Default::default(),
                stomphub::Payload::text(format!("{n:04}{body}")),
            )
            .unwrap();
        let (_, _, data) = fast.event().await;
        assert_eq!(&data[..4], format!("{n:04}"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = get(server.addr, "/api/stats").await.json();
        if stats["transports"]["sse"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow SSE consumer still connected: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `Last-Event-ID` of another epoch is answered with history-gone; the
/// stream then stands at the start of the current epoch for that destination,
/// so the ids it sends no longer carry the foreign position.
#[tokio::test]
async fn after_a_foreign_epoch_the_ids_start_over() {
    let server = TestServer::start_with(|config| {
        config.history = vec![history("/topic/**", 10)];
    })
    .await;
    let path = "/sse/subscribe?destination=/topic/left&destination=/topic/right";
    let mut stream = SseClient::open(server.addr, path, Some("abc-5.0")).await;
    let (_, event, _) = stream.event().await;
    assert_eq!(event, "history-gone");
    server
        .template
        .send(
            "/topic/right",
            &Default::default(),
            stomphub::Payload::text("r1"),
        )
        .unwrap();
    let (id, _, data) = stream.event().await;
    assert_eq!(data, "r1");
    let id = id.expect("an id");
    let (left, _) = id.split_once('.').expect("two positions");
    assert_eq!(left, "0", "{id}: the foreign position is not kept");
}

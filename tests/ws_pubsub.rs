//! Over real WebSockets: publish/subscribe, fan-out, ordering, patterns,
//! transactions and the slow-consumer policy.

mod common {
    pub mod server;
    pub mod stomp_client;
}

use common::server::TestServer;
use common::stomp_client::{Client, Event};
use std::time::Duration;
use stomphub::stomp::{Command, Frame};

const SEED_TEXT: &str = "服务端主动推送技术☞WebSocket：弹幕，网页聊天系统，实时监控，股票行情推送";

#[tokio::test]
async fn a_message_carries_its_headers_and_utf8_body_to_the_subscriber() {
    let server = TestServer::start().await;
    let mut subscriber = Client::connect(&server.url()).await;
    subscriber.subscribe("sub-0", "/topic/game_chat").await;
    let mut publisher = Client::connect(&server.url()).await;
    publisher
        .send(
            Frame::new(Command::Send)
                .header("destination", "/topic/game_chat")
                .header("content-type", "text/plain;charset=UTF-8")
                .header("x-from", "玩家1")
                .header("subscription", "forged")
                .body(SEED_TEXT),
        )
        .await;
    let message = subscriber.frame().await;
    assert_eq!(message.command, Command::Message);
    assert_eq!(message.get("destination"), Some("/topic/game_chat"));
    assert_eq!(message.get("subscription"), Some("sub-0"));
    assert_eq!(
        message.get("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(
        message.get("content-length"),
        Some(SEED_TEXT.len().to_string().as_str())
    );
    assert_eq!(message.get("x-from"), Some("玩家1"));
    assert!(message.get("message-id").is_some_and(|id| !id.is_empty()));
    assert_eq!(std::str::from_utf8(&message.body).unwrap(), SEED_TEXT);
}

#[tokio::test]
async fn one_publish_fans_out_to_a_hundred_subscribers() {
    let server = TestServer::start().await;
    let mut subscribers = Vec::new();
    for n in 0..100 {
        let mut client = Client::connect(&server.url()).await;
        client.subscribe(&format!("s{n}"), "/topic/game_chat").await;
        subscribers.push(client);
    }
    let mut publisher = Client::connect(&server.url()).await;
    for n in 0..5 {
        publisher
            .publish("/topic/game_chat", &format!("round {n}"))
            .await;
    }
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        for n in 0..5 {
            let message = subscriber.frame().await;
            assert_eq!(
                message.body,
                format!("round {n}").as_bytes(),
                "subscriber {index}"
            );
            assert_eq!(
                message.get("subscription"),
                Some(format!("s{index}").as_str())
            );
        }
    }
}

#[tokio::test]
async fn ten_thousand_messages_from_one_publisher_arrive_complete_and_in_order() {
    // As fast as the socket allows: far past the default frame rate, which is not under test here.
    let server = TestServer::start_with(|config| config.limits.max_frames_per_second = 0).await;
    let mut subscriber = Client::connect(&server.url()).await;
    subscriber.subscribe("all", "/topic/sequence").await;
    let mut publisher = Client::connect(&server.url()).await;
    let sending = tokio::spawn(async move {
        for n in 0..10_000 {
            publisher.publish("/topic/sequence", &n.to_string()).await;
        }
        publisher
    });
    for expected in 0..10_000u32 {
        let message = subscriber.frame().await;
        let got: u32 = std::str::from_utf8(&message.body).unwrap().parse().unwrap();
        assert_eq!(got, expected, "out of order or lost");
    }
    sending.await.unwrap();
    assert!(
        subscriber
            .frame_within(Duration::from_millis(200))
            .await
            .is_none(),
        "no duplicates"
    );
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("x", "/topic/a").await;
    client.publish("/topic/a", "before").await;
    assert_eq!(client.frame().await.body.as_ref(), b"before");
    client
        .send(
            Frame::new(Command::Unsubscribe)
                .header("id", "x")
                .header("receipt", "gone"),
        )
        .await;
    assert_eq!(client.frame().await.get("receipt-id"), Some("gone"));
    client.publish("/topic/a", "after").await;
    assert!(
        client
            .frame_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn pattern_subscriptions_match_like_spring() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("star", "/topic/game.*").await;
    client.subscribe("deep", "/topic/**").await;
    client.subscribe("single", "/chat/single/{id}").await;
    let mut publisher = Client::connect(&server.url()).await;
    publisher.publish("/topic/game.chat", "1").await;
    publisher.publish("/topic/other/deep", "2").await;
    publisher.publish("/chat/single/2", "3").await;
    publisher.publish("/chat/group/2", "4").await;
    let mut seen = Vec::new();
    while let Some(frame) = client.frame_within(Duration::from_millis(300)).await {
        seen.push((
            frame.get("subscription").unwrap().to_owned(),
            String::from_utf8(frame.body.to_vec()).unwrap(),
        ));
    }
    seen.sort();
    let expected: Vec<(String, String)> =
        [("deep", "1"), ("deep", "2"), ("single", "3"), ("star", "1")]
            .iter()
            .map(|(s, b)| (s.to_string(), b.to_string()))
            .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn point_to_point_chat_reaches_only_that_user() {
    let server = TestServer::start().await;
    let mut user1 = Client::connect(&server.url()).await;
    user1.subscribe("me", "/chat/single/1").await;
    let mut user2 = Client::connect(&server.url()).await;
    user2.subscribe("me", "/chat/single/2").await;
    user1.publish("/chat/single/2", "1 sent: 你好").await;
    assert_eq!(user2.frame().await.body, "1 sent: 你好".as_bytes());
    assert!(
        user1
            .frame_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn receipts_are_sent_for_every_frame_that_asks() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    let frames = [
        Frame::new(Command::Subscribe)
            .header("id", "1")
            .header("destination", "/topic/r")
            .header("ack", "client-individual"),
        // The first message of a fresh server: message-id 1, acknowledged below.
        Frame::new(Command::Send).header("destination", "/topic/r"),
        Frame::new(Command::Begin).header("transaction", "t"),
        Frame::new(Command::Ack)
            .header("id", "1")
            .header("transaction", "t"),
        Frame::new(Command::Nack).header("id", "1"),
        Frame::new(Command::Abort).header("transaction", "t"),
        Frame::new(Command::Unsubscribe).header("id", "1"),
    ];
    for (n, frame) in frames.into_iter().enumerate() {
        let command = frame.command;
        client.send(frame.header("receipt", format!("r{n}"))).await;
        let mut reply = client.frame().await;
        if reply.command == Command::Message {
            assert_eq!(reply.get("ack"), Some("1"));
            reply = client.frame().await;
        }
        assert_eq!(reply.command, Command::Receipt, "{command}");
        assert_eq!(
            reply.get("receipt-id"),
            Some(format!("r{n}").as_str()),
            "{command}"
        );
    }
}

#[tokio::test]
async fn transactions_publish_on_commit_and_drop_on_abort_or_disconnect() {
    let server = TestServer::start().await;
    let mut subscriber = Client::connect(&server.url()).await;
    subscriber.subscribe("s", "/topic/tx").await;
    let mut sender = Client::connect(&server.url()).await;
    let in_tx = |body: &str, tx: &str| {
        Frame::new(Command::Send)
            .header("destination", "/topic/tx")
            .header("transaction", tx)
            .body(body.to_owned())
    };
    sender
        .send(Frame::new(Command::Begin).header("transaction", "a"))
        .await;
    sender.send(in_tx("a1", "a")).await;
    sender.send(in_tx("a2", "a")).await;
    assert!(
        subscriber
            .frame_within(Duration::from_millis(200))
            .await
            .is_none(),
        "held until COMMIT"
    );
    sender
        .send(Frame::new(Command::Commit).header("transaction", "a"))
        .await;
    assert_eq!(subscriber.frame().await.body.as_ref(), b"a1");
    assert_eq!(subscriber.frame().await.body.as_ref(), b"a2");

    sender
        .send(Frame::new(Command::Begin).header("transaction", "b"))
        .await;
    sender.send(in_tx("b1", "b")).await;
    sender
        .send(Frame::new(Command::Abort).header("transaction", "b"))
        .await;
    sender
        .send(Frame::new(Command::Begin).header("transaction", "c"))
        .await;
    sender.send(in_tx("c1", "c")).await;
    sender
        .send(Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    assert_eq!(sender.frame().await.get("receipt-id"), Some("bye"));
    assert!(
        subscriber
            .frame_within(Duration::from_millis(300))
            .await
            .is_none(),
        "aborted and disconnected transactions are dropped"
    );
}

#[tokio::test]
async fn a_consumer_that_never_reads_is_cut_off_while_a_fast_one_gets_everything() {
    let server = TestServer::start_with(|config| {
        config.limits.outbound_queue_bytes = 128 * 1024;
        config.limits.outbound_queue_grace_ms = 50;
    })
    .await;
    let mut slow = Client::connect(&server.url()).await;
    slow.subscribe("slow", "/topic/flood").await;
    let mut fast = Client::connect(&server.url()).await;
    fast.subscribe("fast", "/topic/flood").await;
    let mut publisher = Client::connect(&server.url()).await;
    // 32 MiB in all: far beyond what loopback socket buffers hold for a client
    // that never reads. The publisher is paced by the fast subscriber so that
    // only the non-reading one can fall behind.
    const COUNT: usize = 2_000;
    const BATCH: usize = 4;
    let body = "x".repeat(16 * 1024);
    for batch in 0..COUNT / BATCH {
        for n in batch * BATCH..(batch + 1) * BATCH {
            publisher
                .publish("/topic/flood", &format!("{n:06}{body}"))
                .await;
        }
        for n in batch * BATCH..(batch + 1) * BATCH {
            let frame = fast.frame().await;
            assert_eq!(
                frame.command,
                Command::Message,
                "{:?}",
                frame.get("message")
            );
            assert_eq!(
                &frame.body[..6],
                format!("{n:06}").as_bytes(),
                "fast subscriber lost or reordered"
            );
        }
    }

    // The slow client now reads what its socket held; the stream must end with
    // the server's ERROR or close, long before all messages were delivered.
    let mut received = 0;
    let mut saw_error = None;
    let ended = loop {
        match slow.event_within(Duration::from_secs(10)).await {
            Some(Event::Frame(frame)) if frame.command == Command::Message => received += 1,
            Some(Event::Frame(frame)) => saw_error = frame.get("message").map(str::to_owned),
            Some(Event::HeartBeat) => {}
            Some(Event::Closed(close)) => break close,
            None => panic!("slow consumer was not disconnected (received {received})"),
        }
    };
    assert!(
        received < COUNT,
        "slow consumer received {received} of {COUNT}"
    );
    let message = saw_error.expect("an ERROR frame before the close");
    assert!(
        message.starts_with(
            "slow consumer: outbound queue stayed over limits.outbound_queue_bytes = 131072 \
             for longer than limits.outbound_queue_grace_ms = 50"
        ),
        "{message}"
    );
    let close = ended.expect("a close frame");
    assert_eq!(close.reason.as_str(), "slow consumer");
    // The server keeps serving.
    let mut after = Client::connect(&server.url()).await;
    after.subscribe("after", "/topic/flood").await;
    after.publish("/topic/flood", "still here").await;
    assert_eq!(after.frame().await.body.as_ref(), b"still here");
}

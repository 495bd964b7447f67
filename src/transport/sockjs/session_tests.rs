use super::*;
use crate::transport::sockjs::frame::{ANOTHER_CONNECTION, GO_AWAY, INTERRUPTED};

const HEARTBEAT: Duration = Duration::from_secs(25);
const DELAY: Duration = Duration::from_secs(5);

fn session(messages: usize) -> (Arc<Shared>, HttpWire, Arc<Registry>) {
    let registry = Arc::new(Registry::default());
    let (shared, inbound) = Shared::new(
        "s1".into(),
        IpAddr::from([127, 0, 0, 1]),
        CacheLimits {
            messages,
            bytes: 1 << 20,
        },
    );
    let caps = SessionCaps {
        total: 10,
        per_client: 10,
    };
    assert!(matches!(registry.insert(&shared, caps), Registered::New));
    let wire = HttpWire::new(shared.clone(), inbound, DELAY, &registry);
    (shared, wire, registry)
}

fn literal(text: &str) -> String {
    let mut out = String::new();
    frame::push_json_string(text, &mut out);
    out
}

#[tokio::test(start_paused = true)]
async fn a_receiver_gets_open_then_everything_waiting_then_heart_beats() {
    let (shared, mut wire, _registry) = session(100);
    let receiving = shared.receive().unwrap();
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Open);
    wire.queue(vec![literal("one"), literal("two\n")])
        .await
        .unwrap();
    assert_eq!(
        receiving.next(HEARTBEAT).await,
        Event::Messages(r#"a["one","two\n"]"#.into())
    );
    let started = Instant::now();
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Heartbeat);
    assert_eq!(started.elapsed(), HEARTBEAT);
}

#[tokio::test(start_paused = true)]
async fn a_second_receiver_is_told_another_is_open_and_the_first_keeps_going() {
    let (shared, mut wire, _registry) = session(100);
    let first = shared.receive().unwrap();
    assert_eq!(shared.receive().unwrap_err(), ANOTHER_CONNECTION);
    assert_eq!(first.next(HEARTBEAT).await, Event::Open);
    wire.queue(vec![literal("x")]).await.unwrap();
    assert_eq!(
        first.next(HEARTBEAT).await,
        Event::Messages(r#"a["x"]"#.into())
    );
    first.finish();
    // Finished normally: the next request may receive.
    assert!(shared.receive().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_closed_session_hands_out_what_was_left_then_its_close_frame() {
    let (shared, mut wire, registry) = session(100);
    shared.receive().unwrap().finish();
    wire.queue(vec![literal("ERROR")]).await.unwrap();
    wire.close(Some(CloseReason {
        code: CloseReason::TOO_BIG,
        reason: "message too large",
    }))
    .await;
    drop(wire);
    let receiving = shared.receive().unwrap();
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Open);
    assert_eq!(
        receiving.next(HEARTBEAT).await,
        Event::Messages(r#"a["ERROR"]"#.into())
    );
    let closed = CloseFrame {
        code: 1009,
        reason: "message too large",
    };
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Closed(closed));
    receiving.finish();
    assert_eq!(shared.receive().unwrap_err(), closed);
    // The id is forgotten one disconnect delay after the session ended.
    assert!(registry.get("s1").is_some());
    tokio::time::sleep(DELAY + Duration::from_millis(1)).await;
    assert!(registry.get("s1").is_none());
}

#[tokio::test(start_paused = true)]
async fn an_aborted_receiver_ends_the_session_with_connection_interrupted() {
    let (shared, mut wire, _registry) = session(100);
    let receiving = shared.receive().unwrap();
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Open);
    drop(receiving);
    assert!(matches!(wire.receive().await, Ok(Received::Closed)));
    wire.close(None).await;
    assert_eq!(shared.receive().unwrap_err(), INTERRUPTED);
}

#[tokio::test(start_paused = true)]
async fn a_session_nobody_receives_for_the_disconnect_delay_is_closed() {
    let (shared, mut wire, _registry) = session(100);
    shared.receive().unwrap().finish();
    let started = Instant::now();
    assert!(matches!(wire.receive().await, Ok(Received::Closed)));
    assert_eq!(started.elapsed(), DELAY);
    wire.close(None).await;
    assert_eq!(shared.receive().unwrap_err(), GO_AWAY);
}

#[tokio::test(start_paused = true)]
async fn while_a_request_receives_the_session_stays_however_long() {
    let (shared, mut wire, _registry) = session(100);
    let receiving = shared.receive().unwrap();
    let read = tokio::time::timeout(DELAY * 10, wire.receive()).await;
    assert!(
        read.is_err(),
        "the wire waited for the client, as it should"
    );
    drop(receiving);
}

#[tokio::test(start_paused = true)]
async fn client_messages_reach_the_wire_in_order() {
    let (shared, mut wire, _registry) = session(100);
    let _receiving = shared.receive().unwrap();
    assert!(shared.deliver(Ok("CONNECT\n\n\0".into())).await);
    assert!(shared.deliver(Ok("SEND".into())).await);
    for expected in ["CONNECT\n\n\0", "SEND"] {
        match wire.receive().await {
            Ok(Received::Data(data)) => assert_eq!(data, expected),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_holds_the_writer_until_a_request_takes_it() {
    let (shared, mut wire, _registry) = session(2);
    let receiving = shared.receive().unwrap();
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Open);
    let messages: Vec<String> = (0..5).map(|i| literal(&i.to_string())).collect();
    let writer = tokio::spawn(async move {
        wire.queue(messages).await.unwrap();
        wire
    });
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match receiving.next(HEARTBEAT).await {
            Event::Messages(frame) => {
                let batch: Vec<String> = serde_json::from_str(&frame[1..]).unwrap();
                assert!(batch.len() <= 2, "the cache holds two: {batch:?}");
                seen.extend(batch);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["0", "1", "2", "3", "4"]);
    writer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_writer_waiting_on_a_client_that_stopped_polling_fails_after_the_delay() {
    let (shared, mut wire, _registry) = session(1);
    shared.receive().unwrap().finish();
    let started = Instant::now();
    let result = wire.queue(vec![literal("a"), literal("b")]).await;
    assert!(result.is_err());
    assert_eq!(started.elapsed(), DELAY);
}

#[test]
fn normal_ends_and_shutdown_say_go_away_others_their_reason() {
    assert_eq!(close_frame(None), GO_AWAY);
    for code in [CloseReason::NORMAL, CloseReason::AWAY] {
        let reason = CloseReason { code, reason: "x" };
        assert_eq!(close_frame(Some(reason)), GO_AWAY);
    }
    let slow = CloseReason {
        code: CloseReason::POLICY,
        reason: "slow consumer",
    };
    assert_eq!(
        close_frame(Some(slow)).encode(),
        r#"c[1008,"slow consumer"]"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_cut_drops_the_cache_so_its_error_goes_at_once() {
    let (shared, mut wire, _registry) = session(2);
    shared.receive().unwrap().finish();
    wire.queue(vec![literal("a"), literal("b")]).await.unwrap();
    wire.discard_unsent();
    let started = Instant::now();
    wire.queue(vec![literal("ERROR")]).await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    let receiving = shared.receive().unwrap();
    assert_eq!(receiving.next(HEARTBEAT).await, Event::Open);
    assert_eq!(
        receiving.next(HEARTBEAT).await,
        Event::Messages(r#"a["ERROR"]"#.into())
    );
}

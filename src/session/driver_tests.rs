//! The connection rules of the driver over an in-memory wire: channels for the
//! client's bytes and for what the server writes, and a paused clock, so every
//! deadline is exact and no test waits in real time.

use super::*;
use crate::app::handler::Message;
use crate::app::session_info::Handshake;
use crate::app::{AppBuilder, AppRuntime, AppSettings};
use crate::broker::Broker;
use crate::broker::destination::Prefixes;
use crate::broker::outbound::Outbound;
use crate::session::SessionConfig;
use crate::session::encode_outgoing;
use crate::stomp::{Command, Frame, Headers};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Semaphore, mpsc};

/// What the server did to the wire, in order.
#[derive(Debug, Clone, PartialEq)]
enum Written {
    Frame(Frame),
    HeartBeat,
    KeepAlive,
    Close(Option<CloseReason>),
}

struct TestWire {
    inbound: mpsc::Receiver<Result<Vec<u8>, WireError>>,
    written: mpsc::UnboundedSender<Written>,
    /// Each batch takes one permit: no permits is a client that stopped reading.
    writable: Arc<Semaphore>,
    /// A transport keep-alive of its own, as SockJS's `h`.
    keepalive: Option<Duration>,
}

impl Wire for TestWire {
    type Chunk = Vec<u8>;

    async fn receive(&mut self) -> Result<Received<Vec<u8>>, WireError> {
        match self.inbound.recv().await {
            Some(Ok(bytes)) => Ok(Received::Data(bytes)),
            Some(Err(error)) => Err(error),
            None => Ok(Received::Closed),
        }
    }

    async fn send(&mut self, batch: &[Outgoing], version: Version) -> Result<(), WireError> {
        let permit = self.writable.acquire().await.map_err(WireError::new)?;
        permit.forget();
        for item in batch {
            let mut bytes = BytesMut::new();
            encode_outgoing(item, version, &mut bytes);
            let mut decoder = crate::stomp::Decoder::new(limits());
            decoder.set_version(version);
            decoder.feed(&bytes);
            match decoder.decode() {
                Ok(Some(crate::stomp::Decoded::Frame(frame))) => {
                    let _ = self.written.send(Written::Frame(frame));
                }
                other => panic!("the driver wrote invalid STOMP: {other:?}"),
            }
        }
        Ok(())
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        let _ = self.written.send(Written::HeartBeat);
        Ok(())
    }

    async fn send_keepalive(&mut self) -> Result<(), WireError> {
        let _ = self.written.send(Written::KeepAlive);
        Ok(())
    }

    async fn close(&mut self, reason: Option<CloseReason>) {
        let _ = self.written.send(Written::Close(reason));
    }

    fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }
}

fn limits() -> Limits {
    Limits {
        max_frame_size: 64 * 1024,
        max_headers: 32,
        max_header_line: 1024,
        max_body_size: 32 * 1024,
    }
}

fn rules() -> ConnectionRules {
    ConnectionRules {
        connect_timeout: Duration::from_millis(500),
        send_time_limit: Duration::from_millis(2_000),
        frame_timeout: Duration::from_millis(30_000),
        frame_rate: None,
        codec: limits(),
    }
}

const QUEUE_LIMIT: usize = 8 * 1024;

fn session_config() -> SessionConfig {
    SessionConfig {
        heartbeat: (10_000, 10_000),
        heartbeat_min_ms: 1_000,
        max_subscriptions: 8,
        max_transactions: 2,
        max_transaction_bytes: 1024,
    }
}

fn app(builder: AppBuilder) -> Arc<AppRuntime> {
    let broker = Broker::new(Prefixes::new(vec!["/app".into()], vec!["/topic".into()]));
    let settings = AppSettings {
        user_from_login: true,
        max_pending_app_messages: 1,
        auth: Default::default(),
        access: Default::default(),
        proxy: None,
    };
    Arc::new(builder.build(broker, None, settings))
}

/// A client on the other side of the in-memory wire, and the driver's task.
struct Harness {
    client: mpsc::Sender<Result<Vec<u8>, WireError>>,
    written: mpsc::UnboundedReceiver<Written>,
    writable: Arc<Semaphore>,
    shutdown: CancellationToken,
    driver: tokio::task::JoinHandle<End>,
}

impl Harness {
    fn start(app: Arc<AppRuntime>) -> Harness {
        Harness::start_with(app, rules())
    }

    fn start_with(app: Arc<AppRuntime>, rules: ConnectionRules) -> Harness {
        Harness::start_configured(app, rules, session_config())
    }

    fn start_configured(
        app: Arc<AppRuntime>,
        rules: ConnectionRules,
        config: SessionConfig,
    ) -> Harness {
        Harness::start_over(app, rules, config, None)
    }

    fn start_over(
        app: Arc<AppRuntime>,
        rules: ConnectionRules,
        config: SessionConfig,
        keepalive: Option<Duration>,
    ) -> Harness {
        let (client, inbound) = mpsc::channel(1);
        let (written_tx, written) = mpsc::unbounded_channel();
        let writable = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
        let shutdown = CancellationToken::new();
        let config = Arc::new(config);
        let outbound = Arc::new(Outbound::new(QUEUE_LIMIT));
        let mut session = Session::new(Handshake::default(), app, outbound, config);
        let wire = TestWire {
            inbound,
            written: written_tx,
            writable: writable.clone(),
            keepalive,
        };
        let token = shutdown.clone();
        let meter = Arc::new(crate::telemetry::Telemetry::new()).connection("websocket");
        let driver =
            tokio::spawn(
                async move { drive(&mut session, wire, Arc::new(rules), &token, meter).await },
            );
        Harness {
            client,
            written,
            writable,
            shutdown,
            driver,
        }
    }

    async fn send(&self, frame: Frame) {
        let mut bytes = BytesMut::new();
        crate::stomp::encode(&frame, Version::V1_2, &mut bytes);
        self.send_bytes(&bytes).await;
    }

    async fn send_bytes(&self, bytes: &[u8]) {
        self.client
            .send(Ok(bytes.to_vec()))
            .await
            .expect("driver reads");
    }

    async fn connect(&mut self, heart_beat: &str) {
        self.send(
            Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", heart_beat),
        )
        .await;
        assert_eq!(self.next_frame().await.command, Command::Connected);
    }

    /// What the driver wrote next. Under the paused clock a driver that waits
    /// for nothing would hang the test; the limit turns that into a failure.
    async fn next(&mut self) -> Written {
        tokio::time::timeout(Duration::from_secs(3_600), self.written.recv())
            .await
            .expect("the driver wrote within an hour of paused time")
            .expect("the driver wrote")
    }

    async fn next_frame(&mut self) -> Frame {
        match self.next().await {
            Written::Frame(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The ERROR the connection ends with, its close, and why the driver stopped.
    async fn ends_with_error(mut self, close: CloseReason) -> (Frame, End) {
        let error = loop {
            match self.next().await {
                Written::Frame(frame) if frame.command == Command::Error => break frame,
                Written::Frame(_) | Written::HeartBeat | Written::KeepAlive => {}
                Written::Close(reason) => panic!("closed ({reason:?}) without an ERROR"),
            }
        };
        assert_eq!(self.next().await, Written::Close(Some(close)));
        (error, self.driver.await.expect("driver task"))
    }
}

fn policy(reason: &'static str) -> CloseReason {
    CloseReason {
        code: CloseReason::POLICY,
        reason,
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_connects_gets_an_error_and_a_policy_close() {
    let harness = Harness::start(app(AppBuilder::new()));
    let started = tokio::time::Instant::now();
    let (error, end) = harness
        .ends_with_error(policy("heart-beat or connect timeout"))
        .await;
    assert!(
        error
            .get("message")
            .unwrap()
            .contains("no CONNECT frame within 500 ms")
    );
    assert_eq!(end, End::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_transport_keep_alive_does_not_hold_back_the_stomp_heart_beat() {
    let keepalive = Some(Duration::from_secs(2));
    let mut harness =
        Harness::start_over(app(AppBuilder::new()), rules(), session_config(), keepalive);
    harness.connect("0,5000").await;
    let started = tokio::time::Instant::now();
    let mut seen = Vec::new();
    while !seen.contains(&Written::HeartBeat) && seen.len() < 10 {
        seen.push(harness.next().await);
    }
    // Keep-alives at 2 s and 4 s; the STOMP heart-beat still at 5 s, as negotiated.
    assert_eq!(
        seen,
        [Written::KeepAlive, Written::KeepAlive, Written::HeartBeat]
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_cut_after_three_missed_heart_beats_and_is_sent_heart_beats() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("1000,1000").await;
    let started = tokio::time::Instant::now();
    // The server sends every second while it has nothing else to write.
    assert_eq!(harness.next().await, Written::HeartBeat);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let (error, end) = harness
        .ends_with_error(policy("heart-beat or connect timeout"))
        .await;
    assert!(
        error
            .get("message")
            .unwrap()
            .contains("no heart-beat or frame from the client for 3000 ms"),
        "{error:?}"
    );
    assert_eq!(end, End::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_as_a_slow_consumer() {
    let runtime = app(AppBuilder::new());
    let mut harness = Harness::start(runtime.clone());
    harness.connect("0,0").await;
    harness
        .send(
            Frame::new(Command::Subscribe)
                .header("id", "0")
                .header("destination", "/topic/prices"),
        )
        .await;
    // The subscription is registered once the driver has handled the frame.
    while runtime.broker.subscription_counts().is_empty() {
        tokio::task::yield_now().await;
    }
    harness.writable.forget_permits(Semaphore::MAX_PERMITS);
    let body = Bytes::from(vec![b'x'; 1024]);
    for _ in 0..(QUEUE_LIMIT / 1024 + 2) {
        runtime
            .broker
            .publish("/topic/prices", &Headers::new(), body.clone());
        tokio::task::yield_now().await;
    }
    // The stalled write ends, the client can read again and is told why.
    harness.writable.add_permits(16);
    let (error, end) = harness.ends_with_error(policy("slow consumer")).await;
    assert!(
        error.get("message").unwrap().starts_with("slow consumer"),
        "{error:?}"
    );
    assert!(matches!(end, End::SlowConsumer(_)), "{end:?}");
    assert!(
        runtime
            .broker
            .subscription_counts()
            .iter()
            .all(|(_, n)| *n == 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_that_stalls_past_the_send_time_limit_is_a_slow_consumer() {
    let harness = Harness::start(app(AppBuilder::new()));
    harness.writable.forget_permits(Semaphore::MAX_PERMITS);
    harness
        .send(Frame::new(Command::Connect).header("accept-version", "1.2"))
        .await;
    let started = tokio::time::Instant::now();
    let end = loop {
        if harness.driver.is_finished() {
            break harness.driver.await.expect("driver task");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        end,
        End::SlowConsumer("a write took longer than send_time_limit_ms = 2000".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(2_000));
}

#[tokio::test(start_paused = true)]
async fn a_fast_sender_to_slow_handlers_is_read_slower_and_loses_nothing() {
    let gate = Arc::new(Semaphore::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let mut builder = AppBuilder::new();
    let (open, count) = (gate.clone(), handled.clone());
    builder.message_mapping("/work", move |_m: Message<String>| {
        let (open, count) = (open.clone(), count.clone());
        async move {
            open.acquire().await.expect("gate").forget();
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let mut harness = Harness::start(app(builder));
    harness.connect("0,0").await;
    const SENDS: usize = 20;
    let client = harness.client.clone();
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for _ in 0..SENDS {
                let mut bytes = BytesMut::new();
                let frame = Frame::new(Command::Send)
                    .header("destination", "/app/work")
                    .body("job");
                crate::stomp::encode(&frame, Version::V1_2, &mut bytes);
                client.send(Ok(bytes.to_vec())).await.expect("driver reads");
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    // One job runs, one waits in the worker's queue, one is held by the
    // session, and the wire holds one more: the rest wait in the client.
    let accepted = sent.load(Ordering::SeqCst);
    assert!(
        accepted < 6,
        "the driver kept reading: {accepted} of {SENDS} sends accepted"
    );
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    gate.add_permits(SENDS);
    sender.await.expect("sender");
    while handled.load(Ordering::SeqCst) < SENDS {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!harness.driver.is_finished(), "the sender was not cut off");
    harness.send_bytes(b"DISCONNECT\nreceipt:bye\n\n\0").await;
    let receipt = harness.next_frame().await;
    assert_eq!(receipt.command, Command::Receipt);
}

#[tokio::test(start_paused = true)]
async fn a_protocol_error_is_answered_with_an_error_then_a_normal_close() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    harness
        .send(Frame::new(Command::Subscribe).header("id", "1"))
        .await;
    let close = CloseReason {
        code: CloseReason::NORMAL,
        reason: "session ended",
    };
    let (error, end) = harness.ends_with_error(close).await;
    assert!(
        error.get("message").unwrap().contains("destination"),
        "{error:?}"
    );
    assert_eq!(end, End::Session);
}

#[tokio::test(start_paused = true)]
async fn bytes_that_are_not_stomp_end_the_session_with_an_error() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    harness.send_bytes(b"HELLO\n\n\0").await;
    let close = CloseReason {
        code: CloseReason::NORMAL,
        reason: "session ended",
    };
    let (_, end) = harness.ends_with_error(close).await;
    assert_eq!(end, End::Session);
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_and_says_the_server_is_going_away() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    harness.shutdown.cancel();
    assert_eq!(
        harness.next().await,
        Written::Close(Some(CloseReason {
            code: CloseReason::AWAY,
            reason: "server shutting down",
        }))
    );
    assert_eq!(harness.driver.await.expect("driver task"), End::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_closes_ends_the_session_without_a_close_reason() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    let Harness {
        client,
        mut written,
        driver,
        ..
    } = harness;
    drop(client);
    assert_eq!(driver.await.expect("driver task"), End::ClientClosed);
    assert_eq!(written.recv().await, Some(Written::Close(None)));
}

#[tokio::test(start_paused = true)]
async fn a_sender_over_the_frame_rate_is_read_slower_and_loses_nothing() {
    let runtime = app(AppBuilder::new());
    let mut harness = Harness::start_with(
        runtime.clone(),
        ConnectionRules {
            frame_rate: Some(FrameRate {
                per_second: 10,
                burst: 3,
            }),
            ..rules()
        },
    );
    harness.connect("0,0").await;
    harness
        .send(
            Frame::new(Command::Subscribe)
                .header("id", "0")
                .header("destination", "/topic/feed"),
        )
        .await;
    // CONNECT and SUBSCRIBE took two of the burst's three frames.
    let started = tokio::time::Instant::now();
    const SENDS: usize = 21;
    let client = harness.client.clone();
    tokio::spawn(async move {
        for n in 0..SENDS {
            let mut bytes = BytesMut::new();
            let frame = Frame::new(Command::Send)
                .header("destination", "/topic/feed")
                .body(n.to_string());
            crate::stomp::encode(&frame, Version::V1_2, &mut bytes);
            client.send(Ok(bytes.to_vec())).await.expect("driver reads");
        }
    });
    for n in 0..SENDS {
        let message = harness.next_frame().await;
        assert_eq!(message.command, Command::Message);
        assert_eq!(message.body.as_ref(), n.to_string().as_bytes(), "in order");
    }
    // One frame from the burst, then 20 at 10 per second.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1_990) && elapsed <= Duration::from_millis(2_100),
        "{elapsed:?}"
    );
    assert!(!harness.driver.is_finished(), "throttled, not cut off");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_client_is_not_judged_silent_while_the_driver_is_not_reading() {
    let mut harness = Harness::start_configured(
        app(AppBuilder::new()),
        ConnectionRules {
            frame_rate: Some(FrameRate {
                per_second: 1,
                burst: 2,
            }),
            ..rules()
        },
        SessionConfig {
            heartbeat_min_ms: 100,
            ..session_config()
        },
    );
    // 100 ms heart-beats: 300 ms of silence would end the session, and each
    // throttle lasts a second.
    harness.connect("100,100").await;
    for n in 0..6 {
        harness
            .send(
                Frame::new(Command::Send)
                    .header("destination", "/topic/x")
                    .header("receipt", n.to_string()),
            )
            .await;
    }
    for n in 0..6 {
        let receipt = loop {
            match harness.next().await {
                Written::Frame(frame) => break frame,
                Written::HeartBeat | Written::KeepAlive => {}
                Written::Close(reason) => panic!("closed: {reason:?}"),
            }
        };
        assert_eq!(receipt.get("receipt-id"), Some(n.to_string().as_str()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_frame_left_unfinished_gets_an_error_at_the_frame_timeout_without_heart_beats() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    let started = tokio::time::Instant::now();
    harness
        .send_bytes(b"SEND\ndestination:/topic/a\ncontent-length:100\n\nonly part")
        .await;
    let (error, end) = harness
        .ends_with_error(policy("frame not completed in time"))
        .await;
    assert_eq!(
        error.get("message"),
        Some("a frame was begun but not completed within 30000 ms (limits.frame_timeout_ms)")
    );
    assert_eq!(end, End::FrameTimeout);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_frame_that_keeps_arriving_is_still_bound_by_the_frame_timeout() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    let started = tokio::time::Instant::now();
    harness
        .send_bytes(b"SEND\ndestination:/topic/a\ncontent-length:1000\n\n")
        .await;
    // A byte every 10 s keeps the connection busy but never finishes the frame.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if harness.driver.is_finished() {
            break;
        }
        let _ = harness.client.try_send(Ok(b"x".to_vec()));
    }
    let (_, end) = harness
        .ends_with_error(policy("frame not completed in time"))
        .await;
    assert_eq!(end, End::FrameTimeout);
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn complete_frames_keep_no_frame_deadline_running() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    // Two halves of one frame, 20 s apart, then a whole frame 20 s later: no
    // single frame took 30 s, so the session lives.
    harness.send_bytes(b"SEND\ndestination:/topic/a\n").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    harness.send_bytes(b"receipt:1\n\n\0").await;
    assert_eq!(harness.next_frame().await.get("receipt-id"), Some("1"));
    tokio::time::sleep(Duration::from_secs(20)).await;
    harness
        .send(
            Frame::new(Command::Send)
                .header("destination", "/topic/a")
                .header("receipt", "2"),
        )
        .await;
    assert_eq!(harness.next_frame().await.get("receipt-id"), Some("2"));
}

#[tokio::test(start_paused = true)]
async fn a_message_over_the_size_limit_gets_an_error_naming_the_key_and_close_1009() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    harness
        .client
        .send(Err(WireError::TooLarge {
            size: 1 << 20,
            limit: 66_560,
        }))
        .await
        .expect("reads");
    let close = CloseReason {
        code: CloseReason::TOO_BIG,
        reason: "message too large",
    };
    let (error, end) = harness.ends_with_error(close).await;
    assert_eq!(
        error.get("message"),
        Some("message too large: 1048576 bytes, over the 65536 bytes of limits.max_frame_size")
    );
    assert_eq!(end, End::TooLarge);
}

#[tokio::test(start_paused = true)]
async fn invalid_utf8_gets_an_error_and_close_1007() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness.connect("0,0").await;
    harness
        .client
        .send(Err(WireError::InvalidUtf8))
        .await
        .expect("reads");
    let close = CloseReason {
        code: CloseReason::INVALID_DATA,
        reason: "invalid UTF-8",
    };
    let (error, end) = harness.ends_with_error(close).await;
    assert!(
        error.get("message").unwrap().contains("not valid UTF-8"),
        "{error:?}"
    );
    assert_eq!(end, End::InvalidUtf8);
}

#[tokio::test(start_paused = true)]
async fn a_connect_asking_for_one_second_heart_beats_gets_them() {
    let mut harness = Harness::start(app(AppBuilder::new()));
    harness
        .send(
            Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "1000,1000"),
        )
        .await;
    let connected = harness.next_frame().await;
    assert_eq!(connected.get("heart-beat"), Some("1000,1000"));
    let started = tokio::time::Instant::now();
    assert_eq!(harness.next().await, Written::HeartBeat);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

//! Session state machine tests, without sockets: frames in, queued frames out.

use super::*;
use crate::app::session_info::Handshake;
use crate::app::{AppBuilder, AppSettings};
use crate::broker::destination::Prefixes;
use crate::stomp::{Decoded, Decoder, Limits};
use bytes::BytesMut;

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        heartbeat: (10_000, 10_000),
        heartbeat_min_ms: 1_000,
        max_subscriptions: 4,
        max_transactions: 2,
        max_transaction_bytes: 1024,
    })
}

fn app_with(builder: AppBuilder) -> Arc<AppRuntime> {
    let broker = Broker::new(Prefixes::new(
        vec!["/app".into()],
        vec!["/topic".into(), "/chat".into()],
    ));
    let settings = AppSettings {
        user_from_login: true,
        max_pending_app_messages: 4,
        auth: Default::default(),
        access: Default::default(),
        proxy: None,
    };
    Arc::new(builder.build(broker, None, settings))
}

fn broker() -> Arc<AppRuntime> {
    app_with(AppBuilder::new())
}

struct Client {
    session: Session,
    outbound: Arc<Outbound>,
}

impl Client {
    fn new(app: &Arc<AppRuntime>, id: u64) -> Client {
        let outbound = Arc::new(Outbound::new(64 * 1024));
        let handshake = Handshake {
            session: id,
            ..Handshake::default()
        };
        let session = Session::new(handshake, app.clone(), outbound.clone(), config());
        Client { session, outbound }
    }

    fn connected(app: &Arc<AppRuntime>, id: u64) -> Client {
        Client::as_user(app, id, "")
    }

    fn as_user(app: &Arc<AppRuntime>, id: u64, login: &str) -> Client {
        let mut client = Client::new(app, id);
        client.send(
            Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("login", login),
        );
        client.received();
        client
    }

    fn send(&mut self, frame: Frame) -> Flow {
        self.session.handle(frame)
    }

    /// Everything queued for this client, decoded as the client would.
    fn received(&mut self) -> Vec<Frame> {
        let mut items = Vec::new();
        self.outbound.drain_into(&mut items);
        let version = self.session.version().unwrap_or_default();
        let mut bytes = BytesMut::new();
        for item in &items {
            encode_outgoing(item, version, &mut bytes);
        }
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(version);
        decoder.feed(&bytes);
        let mut frames = Vec::new();
        while let Some(Decoded::Frame(frame)) = decoder.decode().unwrap() {
            frames.push(frame);
        }
        frames
    }

    fn error_message(&mut self) -> String {
        let frames = self.received();
        let last = frames.last().expect("a reply");
        assert_eq!(last.command, Command::Error);
        last.get("message").unwrap().to_owned()
    }
}

fn subscribe(id: &str, destination: &str) -> Frame {
    Frame::new(Command::Subscribe)
        .header("id", id)
        .header("destination", destination)
}

fn send(destination: &str, body: &str) -> Frame {
    Frame::new(Command::Send)
        .header("destination", destination)
        .body(body.to_owned())
}

#[test]
fn connect_negotiates_the_highest_common_version_and_heart_beats() {
    let broker = broker();
    let mut client = Client::new(&broker, 1);
    let flow = client.send(
        Frame::new(Command::Connect)
            .header("accept-version", "1.0,1.1,1.2")
            .header("heart-beat", "5000,20000"),
    );
    assert_eq!(flow, Flow::Continue);
    let reply = &client.received()[0];
    assert_eq!(reply.command, Command::Connected);
    assert_eq!(reply.get("version"), Some("1.2"));
    // The client's ask (cx = 5 s) is faster than the server's 10 s and above
    // the 1 s floor, so it is honoured; the answer says what was negotiated.
    assert_eq!(reply.get("heart-beat"), Some("20000,5000"));
    assert_eq!(reply.get("session"), Some(client.session.id()));
    let hb = client.session.heartbeat();
    assert_eq!(
        hb.send_every,
        Some(std::time::Duration::from_millis(20_000))
    );
    assert_eq!(
        hb.expect_every,
        Some(std::time::Duration::from_millis(5_000))
    );
}

#[test]
fn a_connect_without_accept_version_is_stomp_1_0_without_heart_beats() {
    let broker = broker();
    let mut client = Client::new(&broker, 1);
    client.send(Frame::new(Command::Connect).header("heart-beat", "1000,1000"));
    let reply = &client.received()[0];
    assert_eq!(reply.get("version"), Some("1.0"));
    assert_eq!(reply.get("heart-beat"), None);
    assert_eq!(client.session.heartbeat(), heartbeat::HeartBeat::default());
}

#[test]
fn unsupported_versions_are_refused_with_the_supported_list() {
    let broker = broker();
    let mut client = Client::new(&broker, 1);
    assert_eq!(
        client.send(Frame::new(Command::Connect).header("accept-version", "2.0")),
        Flow::Close
    );
    let reply = &client.received()[0];
    assert_eq!(reply.command, Command::Error);
    assert_eq!(reply.get("version"), Some("1.0,1.1,1.2"));
}

#[test]
fn frames_before_connect_and_a_second_connect_are_errors() {
    let broker = broker();
    let mut client = Client::new(&broker, 1);
    assert_eq!(client.send(send("/topic/a", "x")), Flow::Close);
    assert!(client.error_message().contains("expected CONNECT"));
    let mut client = Client::connected(&broker, 2);
    assert_eq!(client.send(Frame::new(Command::Connect)), Flow::Close);
    assert!(client.error_message().contains("already connected"));
}

#[test]
fn publish_reaches_every_subscriber_with_its_own_subscription_header() {
    let broker = broker();
    let mut alice = Client::connected(&broker, 1);
    let mut bob = Client::connected(&broker, 2);
    alice.send(subscribe("a-1", "/topic/game_chat"));
    bob.send(subscribe("b-1", "/topic/game_chat"));
    alice.send(
        send("/topic/game_chat", "你好")
            .header("x-custom", "kept")
            .header("message-id", "forged"),
    );
    for (client, id) in [(&mut alice, "a-1"), (&mut bob, "b-1")] {
        let frames = client.received();
        assert_eq!(frames.len(), 1);
        let message = &frames[0];
        assert_eq!(message.command, Command::Message);
        assert_eq!(message.get("subscription"), Some(id));
        assert_eq!(message.get("destination"), Some("/topic/game_chat"));
        assert_eq!(message.get("x-custom"), Some("kept"));
        assert_ne!(message.get("message-id"), Some("forged"));
        assert_eq!(message.body.as_ref(), "你好".as_bytes());
    }
}

#[test]
fn receipts_follow_the_frame_and_disconnect_closes() {
    let broker = broker();
    let mut client = Client::connected(&broker, 1);
    client.send(subscribe("s", "/topic/a").header("receipt", "r-1"));
    assert_eq!(client.received()[0].get("receipt-id"), Some("r-1"));
    assert_eq!(
        client.send(Frame::new(Command::Disconnect).header("receipt", "bye")),
        Flow::Close
    );
    assert_eq!(client.received()[0].get("receipt-id"), Some("bye"));
}

#[test]
fn transactions_hold_sends_until_commit_and_drop_them_on_abort() {
    let broker = broker();
    let mut listener = Client::connected(&broker, 1);
    listener.send(subscribe("s", "/topic/tx"));
    let mut sender = Client::connected(&broker, 2);
    sender.send(Frame::new(Command::Begin).header("transaction", "t1"));
    sender.send(send("/topic/tx", "one").header("transaction", "t1"));
    sender.send(send("/topic/tx", "two").header("transaction", "t1"));
    assert!(listener.received().is_empty());
    sender.send(Frame::new(Command::Commit).header("transaction", "t1"));
    let bodies: Vec<_> = listener.received().into_iter().map(|f| f.body).collect();
    assert_eq!(bodies, ["one", "two"]);

    sender.send(Frame::new(Command::Begin).header("transaction", "t2"));
    sender.send(send("/topic/tx", "dropped").header("transaction", "t2"));
    sender.send(Frame::new(Command::Abort).header("transaction", "t2"));
    assert!(listener.received().is_empty());
    assert_eq!(
        sender.send(Frame::new(Command::Commit).header("transaction", "t2")),
        Flow::Close
    );
    assert!(
        sender
            .error_message()
            .contains("unknown transaction \"t2\"")
    );
}

#[test]
fn a_transaction_over_its_byte_limit_is_an_error() {
    let broker = broker();
    let mut client = Client::connected(&broker, 1);
    client.send(Frame::new(Command::Begin).header("transaction", "t"));
    let big = "x".repeat(2000);
    assert_eq!(
        client.send(send("/topic/a", &big).header("transaction", "t")),
        Flow::Close
    );
    assert!(client.error_message().contains("more than 1024 bytes"));
}

#[test]
fn destination_errors_name_the_destination() {
    let broker = broker();
    let cases = [
        (send("/queue/x", "b"), "has no configured prefix"),
        (
            send("/app/v1/chat", "b"),
            "no handler for application destination \"/app/v1/chat\"",
        ),
        (send("/topic/*", "b"), "is a pattern"),
        (subscribe("s", "relative"), "must start with '/'"),
        (
            Frame::new(Command::Subscribe).header("destination", "/topic/a"),
            "requires a 'id' header",
        ),
        (Frame::new(Command::Send), "requires a 'destination' header"),
        (
            subscribe("s", "/topic/a").header("ack", "sometimes"),
            "unknown ack mode",
        ),
        (Frame::new(Command::Message), "is a server frame"),
    ];
    for (index, (frame, expected)) in cases.into_iter().enumerate() {
        let mut client = Client::connected(&broker, index as u64);
        assert_eq!(client.send(frame), Flow::Close);
        let message = client.error_message();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
}

#[test]
fn duplicate_ids_and_the_subscription_limit_are_enforced() {
    let broker = broker();
    let mut client = Client::connected(&broker, 1);
    client.send(subscribe("same", "/topic/a"));
    assert_eq!(client.send(subscribe("same", "/topic/b")), Flow::Close);
    assert!(client.error_message().contains("already in use"));

    let mut client = Client::connected(&broker, 2);
    for n in 0..4 {
        assert_eq!(
            client.send(subscribe(&n.to_string(), "/topic/a")),
            Flow::Continue
        );
    }
    assert_eq!(client.send(subscribe("4", "/topic/a")), Flow::Close);
}

#[test]
fn ending_a_session_removes_its_subscriptions() {
    let broker = broker();
    let mut client = Client::connected(&broker, 1);
    client.send(subscribe("s", "/topic/a"));
    client.send(subscribe("p", "/topic/**"));
    assert_eq!(broker.broker.subscription_counts().len(), 2);
    drop(client);
    assert!(broker.broker.subscription_counts().is_empty());
}

#[test]
fn client_ack_mode_adds_an_ack_header_in_1_2() {
    let broker = broker();
    let mut client = Client::connected(&broker, 1);
    client.send(subscribe("s", "/topic/a").header("ack", "client-individual"));
    client.send(send("/topic/a", "x"));
    let message = &client.received()[0];
    assert_eq!(message.get("ack"), message.get("message-id"));
    assert_eq!(
        client.send(Frame::new(Command::Ack).header("id", "1")),
        Flow::Continue
    );
    assert_eq!(client.send(Frame::new(Command::Ack)), Flow::Close);
}

#[test]
fn user_destinations_resolve_per_session_and_reach_every_session_of_the_user() {
    let app = broker();
    let mut alice_phone = Client::as_user(&app, 1, "alice");
    let mut alice_laptop = Client::as_user(&app, 2, "alice");
    let mut bob = Client::as_user(&app, 3, "bob");
    for client in [&mut alice_phone, &mut alice_laptop, &mut bob] {
        client.send(subscribe("q", "/user/queue/reply"));
    }
    // Bob guessing Alice's session key subscribes to a key under his own session.
    bob.send(subscribe("steal", "/user/00000001/queue/reply"));
    let delivered = app
        .template
        .convert_and_send_to_user("alice", "/queue/reply", &"hi")
        .unwrap();
    assert_eq!(delivered, 2);
    for client in [&mut alice_phone, &mut alice_laptop] {
        let message = &client.received()[0];
        assert_eq!(message.get("destination"), Some("/user/queue/reply"));
        assert_eq!(message.body.as_ref(), b"\"hi\"");
    }
    assert!(bob.received().is_empty());
    // A client may SEND to another user's queue by name, as in Spring.
    bob.send(send("/user/alice/queue/reply", "from bob"));
    assert_eq!(alice_phone.received()[0].body.as_ref(), b"from bob");
}

#[test]
fn events_fire_in_order_and_disconnect_exactly_once() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut builder = AppBuilder::new();
    let log = seen.clone();
    builder.on_event(move |event| {
        log.lock().unwrap().push((
            event.kind,
            event.destination.clone(),
            event.headers.get("passcode").map(str::to_owned),
        ));
    });
    let app = app_with(builder);
    let mut client = Client::new(&app, 9);
    client.send(
        Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("passcode", "secret"),
    );
    client.send(subscribe("s", "/topic/a"));
    client.send(Frame::new(Command::Unsubscribe).header("id", "s"));
    client.session.end("test over");
    client.session.end("again");
    drop(client);
    let kinds: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(k, d, p)| (*k, d.clone(), p.clone()))
        .collect();
    use crate::app::events::EventKind::*;
    assert_eq!(
        kinds,
        [
            (Connect, None, None),
            (Connected, None, None),
            (Subscribe, Some("/topic/a".into()), None),
            (Unsubscribe, Some("/topic/a".into()), None),
            (Disconnect, None, None),
        ]
    );
}

#[test]
fn a_session_that_never_connected_fires_no_disconnect() {
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut builder = AppBuilder::new();
    let count = seen.clone();
    builder.on_event(move |_| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let app = app_with(builder);
    drop(Client::new(&app, 1));
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_claimed_handshake_user_is_not_authenticated() {
    let app = broker();
    let outbound = Arc::new(Outbound::new(64 * 1024));
    let handshake = Handshake {
        session: 1,
        user: Some("alice".into()),
        user_is_claimed: true,
        ..Handshake::default()
    };
    let mut session = Session::new(handshake, app, outbound, config());
    session.handle(Frame::new(Command::Connect).header("accept-version", "1.2"));
    assert_eq!(session.info().user.as_deref(), Some("alice"));
    assert!(!session.info().authenticated);
}

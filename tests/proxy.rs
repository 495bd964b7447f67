//! `[proxy]` and `[[route]] proxy` against a real HTTP application: the demo
//! backend of examples/proxy-backend (Python's http.server), started by each
//! test on a free loopback port. Connects, subscriptions and publishes judged
//! by the application, `/app` SENDs answered by it, its roles used by
//! `[[acl]]`, and an application that is down, slow or garbled answered with
//! a clear ERROR while a canary keeps receiving.

mod common {
    pub mod canary;
    pub mod http;
    pub mod proxy_backend;
    pub mod server;
    pub mod sse;
    pub mod stomp_client;
}

use common::canary::Canary;
use common::http::get;
use common::proxy_backend::Backend;
use common::server::TestServer;
use common::sse::SseClient;
use common::stomp_client::Client;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stomphub::config::{AclRuleConfig, EndpointConfig, RouteConfig};
use stomphub::stomp::{Command as Stomp, Frame};
use stomphub::{
    AppBuilder, ChannelInterceptor, Event, EventKind, HandlerError, Message, OutboundMessage,
    SessionInfo,
};

async fn connect_as(server: &TestServer, login: &str, passcode: &str) -> (Client, Frame) {
    Client::connect_with(&server.url(), &[("login", login), ("passcode", passcode)]).await
}

async fn user(server: &TestServer, login: &str) -> Client {
    let (client, connected) = connect_as(server, login, "secret").await;
    assert_eq!(connected.command, Stomp::Connected, "{connected:?}");
    assert_eq!(connected.get("user-name"), Some(login));
    client
}

/// The ERROR a refused frame gets, then the close; the ERROR is returned.
async fn refused(client: &mut Client) -> Frame {
    let frame = client.frame().await;
    assert_eq!(frame.command, Stomp::Error, "{frame:?}");
    client.closed().await;
    frame
}

/// What a fresh session of alice is told when it publishes `body` to `destination`
/// and is refused.
async fn publish_refused(server: &TestServer, destination: &str, body: &str) -> String {
    let mut client = user(server, "alice").await;
    client.publish(destination, body).await;
    let error = refused(&mut client).await;
    error.get("message").unwrap_or_default().to_owned()
}

fn subscribe_frame(id: &str, destination: &str) -> Frame {
    Frame::new(Stomp::Subscribe)
        .header("id", id)
        .header("destination", destination)
        .header("receipt", format!("r-{id}"))
}

#[tokio::test]
async fn the_application_decides_who_connects_and_names_users() {
    let backend = Backend::start();
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut app = AppBuilder::new();
    let seen = events.clone();
    app.on_event(move |event: &Event| {
        if event.kind == EventKind::Connected {
            let data = event.session.data.as_deref().cloned();
            seen.lock()
                .unwrap()
                .push((event.session.user.clone(), data));
        }
    });
    let server = TestServer::start_with_app(|config| backend.configure(config), app).await;

    let (mut banned, error) = connect_as(&server, "banned", "secret").await;
    assert_eq!(error.command, Stomp::Error, "{error:?}");
    assert_eq!(error.get("message"), Some("user banned is not welcome"));
    assert_eq!(error.get("code"), Some("banned"));
    banned.closed().await;

    let (mut wrong, error) = connect_as(&server, "alice", "guess").await;
    assert_eq!(error.get("message"), Some("wrong login or passcode"));
    wrong.closed().await;

    let _alice = user(&server, "alice").await;
    // No login: the application lets the session in anonymously.
    let (_anonymous, connected) = Client::connect_with(&server.url(), &[]).await;
    assert_eq!(connected.command, Stomp::Connected);
    assert_eq!(connected.get("user-name"), None);

    let seen = events.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        (
            Some("alice".to_owned()),
            Some(serde_json::json!({"greeting": "hello alice"}))
        ),
        "events see the application's user and data"
    );
    assert_eq!(seen[1], (None, None));
}

#[tokio::test]
async fn subscriptions_are_refused_or_greeted_by_the_application() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| backend.configure(config)).await;
    let mut alice = user(&server, "alice").await;

    alice.send(subscribe_frame("w", "/topic/welcome")).await;
    let welcome = alice.frame().await;
    assert_eq!(welcome.command, Stomp::Message, "{welcome:?}");
    assert_eq!(welcome.body, "welcome alice".as_bytes());
    assert_eq!(welcome.get("subscription"), Some("w"));
    let receipt = alice.frame().await;
    assert_eq!(receipt.get("receipt-id"), Some("r-w"), "{receipt:?}");

    alice
        .send(subscribe_frame("s", "/topic/secret/plans"))
        .await;
    let error = refused(&mut alice).await;
    assert_eq!(
        error.get("message"),
        Some("no access to /topic/secret/plans")
    );
    assert_eq!(error.get("code"), Some("forbidden"));
    assert_eq!(error.get("receipt-id"), Some("r-s"));
}

#[tokio::test]
async fn roles_from_the_connect_answer_are_used_by_acl_rules() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| {
        backend.configure(config);
        config.acl.push(AclRuleConfig {
            destination: "/topic/admin/**".into(),
            subscribe: Some(vec!["role:admin".into()]),
            send: None,
        });
    })
    .await;
    let mut admin = user(&server, "admin").await;
    admin.subscribe("a", "/topic/admin/audit").await;
    let mut member = user(&server, "alice").await;
    member
        .send(subscribe_frame("a", "/topic/admin/audit"))
        .await;
    let error = refused(&mut member).await;
    let message = error.get("message").unwrap_or_default();
    assert!(message.contains("/topic/admin/audit"), "{message}");
}

#[tokio::test]
async fn publishes_are_rewritten_or_refused_by_the_application() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| backend.configure(config)).await;
    let mut listener = user(&server, "bob").await;
    listener.subscribe("shout", "/topic/shout").await;
    let mut alice = user(&server, "alice").await;
    alice.publish("/topic/shout", "hello").await;
    let message = listener.frame().await;
    assert_eq!(message.body, "HELLO".as_bytes());
    assert_eq!(message.get("shouted"), Some("yes"));

    alice.publish("/topic/readonly/news", "x").await;
    let error = refused(&mut alice).await;
    assert_eq!(error.get("message"), Some("read-only destination"));
}

#[tokio::test]
async fn app_sends_are_answered_by_the_application_beside_rust_handlers() {
    let backend = Backend::start();
    let mut app = AppBuilder::new();
    app.message_mapping("/v2/rust", |message: Message<String>| async move {
        Ok::<_, HandlerError>(format!("rust saw {}", message.payload))
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    app.channel_interceptor(Stamp(seen.clone()));
    let server = TestServer::start_with_app(|config| backend.configure(config), app).await;
    let mut watcher = user(&server, "bob").await;
    watcher.subscribe("chat", "/topic/game_chat").await;
    watcher.subscribe("rust", "/topic/v2/rust").await;
    let mut alice = user(&server, "alice").await;
    alice.subscribe("ack", "/user/queue/ack").await;

    alice
        .publish("/app/v1/chat", r#"{"name": "Alice", "content": "hi all"}"#)
        .await;
    let chat = watcher.frame().await;
    let body: serde_json::Value = serde_json::from_slice(&chat.body).expect("JSON reply");
    assert_eq!(body["name"], "Alice");
    assert_eq!(body["content"], "hi all");
    assert_eq!(body["user"], "alice");
    let ack = alice.frame().await;
    assert_eq!(ack.body, "ok".as_bytes(), "{ack:?}");

    alice.publish("/app/v2/rust", "this").await;
    assert_eq!(watcher.frame().await.body, "rust saw this".as_bytes());
    // Interceptors saw the proxied SEND going in and stamped the reply going out.
    assert!(seen.lock().unwrap().contains(&"/app/v1/chat".to_owned()));
    assert_eq!(chat.get("x-stamped"), Some("yes"));
}

/// Records inbound SEND destinations and stamps every published message.
struct Stamp(Arc<Mutex<Vec<String>>>);

impl ChannelInterceptor for Stamp {
    fn inbound(&self, _session: &SessionInfo, frame: Frame) -> Option<Frame> {
        if frame.command == Stomp::Send
            && let Some(destination) = frame.get("destination")
        {
            self.0.lock().unwrap().push(destination.to_owned());
        }
        Some(frame)
    }

    fn outbound(&self, mut message: OutboundMessage) -> Option<OutboundMessage> {
        message.headers.set("x-stamped", "yes");
        Some(message)
    }
}

#[tokio::test]
async fn a_thousand_proxied_sends_are_answered_in_order() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| {
        backend.configure(config);
        config.limits.max_frames_per_second = 0;
    })
    .await;
    let mut watcher = user(&server, "bob").await;
    watcher.subscribe("echo", "/topic/echo").await;
    let mut alice = user(&server, "alice").await;
    for seq in 0..1000 {
        alice
            .send(
                Frame::new(Stomp::Send)
                    .header("destination", "/app/v1/echo")
                    .header("seq", seq.to_string())
                    .body(format!("message {seq}")),
            )
            .await;
    }
    for seq in 0..1000 {
        let frame = watcher.frame().await;
        assert_eq!(frame.get("seq"), Some(seq.to_string().as_str()));
        assert_eq!(frame.body, format!("message {seq}").as_bytes());
    }
}

/// Each broken application gets the client an ERROR naming the key, and the
/// broker keeps serving the canary, which the application lets through.
#[tokio::test]
async fn an_application_down_slow_or_garbled_is_a_clear_error() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| {
        config.proxy.timeout_ms = 300;
        config.proxy.connect = backend.at("/stomp/connect");
        config.proxy.subscribe = backend.at("/garbage/stomp/subscribe");
        config.proxy.subscribe_destinations = vec!["/topic/judged/**".into()];
        config.proxy.publish = backend.at("/slow/stomp/publish");
        config.proxy.publish_destinations = vec!["/topic/judged/**".into()];
        config
            .routes
            .push(backend.route("/v1/broken", "/status500/stomp/app"));
        config
            .routes
            .push(backend.route("/v1/moved", "/redirect/stomp/app"));
        // Nothing listens on port 9 (discard) here: the connection is refused.
        config.routes.push(RouteConfig {
            proxy: Some("http://127.0.0.1:9/stomp/app".into()),
            ..backend.route("/v1/down", "")
        });
    })
    .await;
    let mut canary = Canary::new(&server).await;

    let mut client = user(&server, "alice").await;
    client.send(subscribe_frame("g", "/topic/judged/x")).await;
    let error = refused(&mut client).await;
    let message = error.get("message").unwrap_or_default();
    assert!(
        message.starts_with(
            "proxy.subscribe: the application's answer is not the JSON of docs/proxy.md"
        ) && !message.contains("http://"),
        "{message}"
    );
    canary.still_alive("a garbled subscribe answer").await;
    // A wildcard that may reach a judged destination is judged too.
    let mut client = user(&server, "alice").await;
    client.send(subscribe_frame("all", "/topic/**")).await;
    let error = refused(&mut client).await;
    let message = error.get("message").unwrap_or_default();
    assert!(
        message.starts_with("proxy.subscribe: the application's answer is not"),
        "{message}"
    );
    client = user(&server, "alice").await;
    client.subscribe("other", "/chat/**").await;

    let message = publish_refused(&server, "/topic/judged/x", "slow").await;
    assert_eq!(
        message,
        "proxy.publish: the application did not answer within 300 ms (proxy.timeout_ms)"
    );
    canary.still_alive("a slow publish answer").await;

    let message = publish_refused(&server, "/app/v1/broken", "x").await;
    assert_eq!(
        message,
        "application handler failed: route.proxy: the application answered HTTP 500"
    );
    canary.still_alive("an application answering 500").await;

    // A redirect is not followed: it would turn the call into a GET.
    let message = publish_refused(&server, "/app/v1/moved", "x").await;
    assert_eq!(
        message,
        "application handler failed: route.proxy: the application answered HTTP 302"
    );

    let message = publish_refused(&server, "/app/v1/down", "x").await;
    assert!(
        message.starts_with(
            "application handler failed: route.proxy: the application cannot be reached: Connection refused"
        ),
        "{message}"
    );
    canary.still_alive("an application that is down").await;
}

#[tokio::test]
async fn a_connect_to_an_application_that_is_down_is_refused_with_the_reason() {
    let server = TestServer::start_with(|config| {
        config.proxy.connect = "http://127.0.0.1:9/stomp/connect".into();
        config.proxy.retries = 2;
    })
    .await;
    let (mut client, error) = Client::connect_with(&server.url(), &[]).await;
    assert_eq!(error.command, Stomp::Error, "{error:?}");
    let message = error.get("message").unwrap_or_default();
    assert!(
        message.starts_with("proxy.connect: the application cannot be reached: Connection refused"),
        "{message}"
    );
    client.closed().await;
    // The refusal took three tries, not a hang.
    tokio::time::timeout(Duration::from_secs(5), async {
        let (_, again) = Client::connect_with(&server.url(), &[]).await;
        assert_eq!(again.command, Stomp::Error);
    })
    .await
    .expect("a refused connect does not hang");
}

/// SSE streams are sessions too: their subscriptions are the application's to
/// judge, and a refusal or a failure is the HTTP answer.
#[tokio::test]
async fn sse_streams_are_judged_with_a_status_for_each_outcome() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| backend.configure(config)).await;
    let path = |destination: &str| format!("/sse/subscribe?destination={destination}");
    let refused = SseClient::open(server.addr, &path("/topic/secret/x"), None).await;
    assert_eq!(refused.status, 403, "{}", refused.head);
    let mut allowed = SseClient::open(server.addr, &path("/topic/news"), None).await;
    assert_eq!(allowed.status, 200, "{}", allowed.head);
    server
        .template
        .convert_and_send("/topic/news", "fresh")
        .unwrap();
    let (_, _, data) = allowed.event().await;
    assert_eq!(data, "\"fresh\"");

    let slow = TestServer::start_with(|config| {
        config.proxy.subscribe = backend.at("/slow/stomp/subscribe");
        config.proxy.timeout_ms = 300;
    })
    .await;
    let late = SseClient::open(slow.addr, &path("/topic/news"), None).await;
    assert_eq!(late.status, 504, "{}", late.head);
}

/// With every slot taken by a slow call, the next call's ERROR says that its
/// time went to waiting for a slot, and names proxy.max_in_flight.
#[tokio::test]
async fn a_call_that_waited_for_a_slot_says_so() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| {
        config.proxy.publish = backend.at("/slow/stomp/publish");
        config.proxy.timeout_ms = 600;
        config.proxy.max_in_flight = 1;
    })
    .await;
    let mut first = Client::connect(&server.url()).await;
    let mut second = Client::connect(&server.url()).await;
    first.publish("/topic/a", "x").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    second.publish("/topic/a", "y").await;
    let first = refused(&mut first).await;
    let first = first.get("message").unwrap_or_default();
    assert!(first.ends_with("(proxy.timeout_ms)"), "{first}");
    let second = refused(&mut second).await;
    let second = second.get("message").unwrap_or_default();
    assert!(
        second.contains("ms of it waiting for a free slot (proxy.max_in_flight)"),
        "{second}"
    );
}

/// A plain WebSocket endpoint's synthetic subscriptions are judged before the
/// upgrade (a refusal is a 403 with the application's words), and a text
/// published from an accepted socket goes through the publish call.
#[tokio::test]
async fn plain_endpoint_sockets_are_judged_too() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Error, Message as Ws};
    let backend = Backend::start();
    let server = TestServer::start_with(|config| {
        backend.configure(config);
        let endpoint = |path: &str| EndpointConfig {
            path: path.into(),
            user: None,
            on_open: None,
            reply: None,
            publish: None,
            subscribe: Vec::new(),
        };
        config.websocket.endpoints.push(EndpointConfig {
            subscribe: vec!["/topic/secret/room".into()],
            ..endpoint("/ws/secret")
        });
        config.websocket.endpoints.push(EndpointConfig {
            publish: Some("/topic/shout".into()),
            ..endpoint("/ws/shout")
        });
    })
    .await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws/secret", server.addr)).await {
        Err(Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert_eq!(body, "no access to /topic/secret/room");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let mut listener = user(&server, "bob").await;
    listener.subscribe("shout", "/topic/shout").await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/shout", server.addr))
            .await
            .expect("upgrade");
    socket.send(Ws::text("quiet words")).await.expect("send");
    assert_eq!(listener.frame().await.body, "QUIET WORDS".as_bytes());
    let _ = socket.close(None).await;
    while socket.next().await.is_some() {}
}

/// Frames inside a transaction are judged as they are sent; what COMMIT
/// publishes is what the application allowed and rewrote.
#[tokio::test]
async fn transactional_sends_are_judged_when_sent() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| backend.configure(config)).await;
    let mut listener = user(&server, "bob").await;
    listener.subscribe("shout", "/topic/shout").await;
    let mut alice = user(&server, "alice").await;
    alice
        .send(Frame::new(Stomp::Begin).header("transaction", "t1"))
        .await;
    alice
        .send(
            Frame::new(Stomp::Send)
                .header("destination", "/topic/shout")
                .header("transaction", "t1")
                .body("held"),
        )
        .await;
    assert!(
        listener
            .frame_within(Duration::from_millis(200))
            .await
            .is_none(),
        "nothing before COMMIT"
    );
    alice
        .send(Frame::new(Stomp::Commit).header("transaction", "t1"))
        .await;
    assert_eq!(listener.frame().await.body, "HELD".as_bytes());
    alice
        .send(Frame::new(Stomp::Begin).header("transaction", "t2"))
        .await;
    alice
        .send(
            Frame::new(Stomp::Send)
                .header("destination", "/topic/readonly/x")
                .header("transaction", "t2")
                .body("no"),
        )
        .await;
    let error = refused(&mut alice).await;
    assert_eq!(error.get("message"), Some("read-only destination"));
}

/// An answer is for the frame it judged: an interceptor that rewrites the
/// destination afterwards gets the frame refused, not waved through.
#[tokio::test]
async fn an_answer_is_not_applied_to_a_rewritten_frame() {
    struct Redirect;
    impl ChannelInterceptor for Redirect {
        fn inbound(&self, _session: &SessionInfo, mut frame: Frame) -> Option<Frame> {
            if frame.get("destination") == Some("/topic/shout") {
                frame.headers.set("destination", "/topic/secret/plans");
            }
            Some(frame)
        }
    }
    let backend = Backend::start();
    let mut app = AppBuilder::new();
    app.channel_interceptor(Redirect);
    let server = TestServer::start_with_app(|config| backend.configure(config), app).await;
    let mut alice = user(&server, "alice").await;
    alice.send(subscribe_frame("s", "/topic/shout")).await;
    let error = refused(&mut alice).await;
    let message = error.get("message").unwrap_or_default();
    assert!(
        message.starts_with("proxy.subscribe: the application was not asked about this frame")
            && message.contains("ChannelInterceptor"),
        "{message}"
    );
}

/// Patterns are for broker destinations: one under an application prefix is
/// refused before any handler or the application sees it.
#[tokio::test]
async fn a_pattern_subscription_to_an_app_destination_is_refused() {
    let backend = Backend::start();
    let mut app = AppBuilder::new();
    app.subscribe_mapping("/room/{id}", |_message: Message<String>| async move {
        Ok::<_, HandlerError>("room state".to_owned())
    });
    let server = TestServer::start_with_app(|config| backend.configure(config), app).await;
    let mut alice = user(&server, "alice").await;
    alice.send(subscribe_frame("r", "/app/room/x{")).await;
    let error = refused(&mut alice).await;
    let message = error.get("message").unwrap_or_default();
    assert!(message.contains("is a pattern"), "{message}");
}

/// The initial message of a subscribe answer reaches an SSE stream too.
#[tokio::test]
async fn an_sse_stream_gets_the_initial_message() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| backend.configure(config)).await;
    let mut stream = SseClient::open(
        server.addr,
        "/sse/subscribe?destination=/topic/welcome",
        None,
    )
    .await;
    assert_eq!(stream.status, 200, "{}", stream.head);
    let (_, _, data) = stream.event().await;
    assert_eq!(data, "welcome anonymous");
}

/// A claimed name (an SSE user stream) stands only when the application names
/// it; `[auth] anonymous = false` still refuses a session the application
/// admits without a user.
#[tokio::test]
async fn claims_and_anonymous_sessions_follow_the_application_and_auth() {
    let backend = Backend::start();
    let server = TestServer::start_with(|config| {
        backend.configure(config);
        config.auth.anonymous = false;
    })
    .await;
    let stream = get(server.addr, "/sse/users/alice").await;
    assert_eq!(stream.status, 401, "{}", stream.body);
    let (mut nobody, error) = Client::connect_with(&server.url(), &[]).await;
    assert_eq!(error.command, Stomp::Error, "{error:?}");
    nobody.closed().await;
    user(&server, "alice").await;

    let open = TestServer::start_with(|config| backend.configure(config)).await;
    let stream = get(open.addr, "/sse/users/alice").await;
    assert_eq!(stream.status, 403, "{}", stream.body);
    assert!(
        stream.body.contains("did not accept user"),
        "{}",
        stream.body
    );
}

/// `[proxy] headers` carry a shared secret: an application that answers only
/// callers who know it answers the broker, and refuses a broker without it.
#[tokio::test]
async fn a_shared_secret_in_the_calls_headers_reaches_the_application() {
    let backend = Backend::start_with(&["--secret", "s3cret"]);
    let server = TestServer::start_with(|config| {
        backend.configure(config);
        config
            .proxy
            .headers
            .insert("X-Stomphub-Secret".into(), "s3cret".into());
    })
    .await;
    user(&server, "alice").await;
    let stranger = TestServer::start_with(|config| backend.configure(config)).await;
    let (mut client, error) = connect_as(&stranger, "alice", "secret").await;
    assert_eq!(
        error.get("message"),
        Some("proxy.connect: the application answered HTTP 401")
    );
    client.closed().await;
}

//! Plain WebSocket endpoints (`[[websocket.endpoint]]`, the seeds'
//! `@ServerEndpoint`s) with the repository's broker.toml: open text, replies,
//! messages to one user and to everyone, STOMP and plain sockets talking to
//! each other, online counts, and bad input answered with a close code while a
//! canary keeps receiving. tests/node/endpoints*.test.js use browsers and `ws`.

mod common {
    pub mod canary;
    pub mod http;
    pub mod server;
    pub mod stomp_client;
}

use common::canary::Canary;
use common::http::get;
use common::server::TestServer;
use common::stomp_client::Client;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use stomphub::config::EndpointConfig;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(addr: SocketAddr, path: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .unwrap_or_else(|error| panic!("open {path}: {error}"));
    socket
}

/// The next text message; panics on anything else or after 10 s.
async fn text(socket: &mut Socket) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return text.to_string(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The close frame the server sends; panics after 10 s.
async fn closed(socket: &mut Socket) -> CloseFrame {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn say(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).await.expect("send");
}

async fn endpoint_sessions(addr: SocketAddr, path: &str) -> u64 {
    get(addr, "/api/stats").await.json()["endpoints"][path]["sessions"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {path} in /api/stats endpoints"))
}

async fn wait_for_sessions(addr: SocketAddr, path: &str, expected: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while endpoint_sessions(addr, path).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path}: {} sessions, expected {expected}",
            endpoint_sessions(addr, path).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_seeds_sockets_greet_reply_and_count_who_is_online() {
    let server = TestServer::start().await;
    assert_eq!(endpoint_sessions(server.addr, "/socket/{id}").await, 0);
    let mut seven = open(server.addr, "/socket/7").await;
    assert_eq!(text(&mut seven).await, "-连接已建立-");
    say(&mut seven, "hello 你好").await;
    assert_eq!(text(&mut seven).await, "hello 你好");
    let mut asset = open(server.addr, "/ws/asset").await;
    assert_eq!(text(&mut asset).await, "连接成功");
    say(&mut asset, "x").await;
    assert_eq!(text(&mut asset).await, "收到消息，消息内容：x");
    let mut eight = open(server.addr, "/socket/8").await;
    assert_eq!(text(&mut eight).await, "-连接已建立-");
    assert_eq!(endpoint_sessions(server.addr, "/socket/{id}").await, 2);
    assert_eq!(endpoint_sessions(server.addr, "/ws/asset").await, 1);

    let sessions = get(server.addr, "/api/sessions").await.json();
    let seven_session = sessions
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["attributes"]["path.id"] == "7")
        .expect("socket 7 in /api/sessions");
    assert_eq!(seven_session["user"], "7");
    assert_eq!(seven_session["attributes"]["transport"], "plain-websocket");
    assert_eq!(seven_session["attributes"]["endpoint"], "/socket/{id}");

    seven.close(None).await.expect("close");
    eight.close(None).await.expect("close");
    wait_for_sessions(server.addr, "/socket/{id}", 0).await;
}

#[tokio::test]
async fn one_user_everyone_and_stomp_clients_reach_plain_sockets() {
    let server = TestServer::start().await;
    let mut seven = open(server.addr, "/socket/7").await;
    text(&mut seven).await;
    let mut eight = open(server.addr, "/socket/8").await;
    text(&mut eight).await;
    // The seeds' HTTP triggers: sendToMessageById(7, ...), then broadcastInfo.
    let trigger = get(server.addr, "/v1/chat/single?from=1&to=7&content=hi").await;
    assert_eq!(trigger.status, 200, "{trigger:?}");
    let body: serde_json::Value = serde_json::from_str(&text(&mut seven).await).expect("JSON");
    assert_eq!(body["content"], "1 sent: hi");
    let trigger = get(server.addr, "/v1/chat/http?from=1&to=7&content=all").await;
    assert_eq!(trigger.status, 200, "{trigger:?}");
    for socket in [&mut seven, &mut eight] {
        let body: serde_json::Value = serde_json::from_str(&text(socket).await).expect("JSON");
        assert_eq!(body["content"], "all");
    }
    // A STOMP client sending to user 7 directly, then to everyone.
    let mut stomp = Client::connect(&server.url()).await;
    stomp.publish("/chat/single/7", "from stomp").await;
    assert_eq!(text(&mut seven).await, "from stomp");
    stomp.publish("/topic/game_chat", "to everyone").await;
    assert_eq!(text(&mut seven).await, "to everyone");
    // Eight got only the message to everyone.
    assert_eq!(text(&mut eight).await, "to everyone");
}

#[tokio::test]
async fn a_plain_socket_and_a_stomp_client_exchange_messages_both_ways() {
    let server = TestServer::start_with(|config| {
        config.websocket.endpoints.push(EndpointConfig {
            path: "/room/{name}".into(),
            user: Some("{name}".into()),
            on_open: None,
            reply: None,
            publish: Some("/topic/room".into()),
            subscribe: vec!["/topic/room".into(), "/user/queue/notes".into()],
        });
    })
    .await;
    let mut stomp = Client::connect(&server.url()).await;
    stomp.subscribe("room", "/topic/room").await;
    let mut ann = open(server.addr, "/room/ann").await;
    // Ann's own message comes back through the topic she is subscribed to.
    say(&mut ann, "hello from a plain socket").await;
    assert_eq!(text(&mut ann).await, "hello from a plain socket");
    let frame = stomp.frame().await;
    assert_eq!(&frame.body[..], b"hello from a plain socket");
    assert_eq!(frame.get("content-type"), Some("text/plain;charset=UTF-8"));
    stomp.publish("/topic/room", "hello from STOMP").await;
    assert_eq!(text(&mut ann).await, "hello from STOMP");
    stomp.frame().await;
    // The path's user is the session's user: /user destinations reach it.
    server
        .template
        .convert_and_send_to_user("ann", "/queue/notes", "a note")
        .expect("sent");
    assert_eq!(text(&mut ann).await, "\"a note\"");
}

#[tokio::test]
async fn a_broadcast_reaches_200_sockets_with_none_lost() {
    let server = TestServer::start().await;
    let mut sockets = Vec::new();
    for _ in 0..200 {
        let mut socket = open(server.addr, "/ws/asset").await;
        text(&mut socket).await;
        sockets.push(socket);
    }
    wait_for_sessions(server.addr, "/ws/asset", 200).await;
    for n in 0..20 {
        server
            .template
            .convert_and_send("/topic/asset", &format!("broadcast {n}"))
            .expect("published");
    }
    for (index, socket) in sockets.iter_mut().enumerate() {
        for n in 0..20 {
            assert_eq!(
                text(socket).await,
                format!("\"broadcast {n}\""),
                "socket {index}"
            );
        }
    }
}

#[tokio::test]
async fn bad_input_gets_a_close_code_and_a_reason_and_nobody_else_notices() {
    let server = TestServer::start().await;
    let mut canary = Canary::new(&server).await;

    let mut socket = open(server.addr, "/ws/asset").await;
    text(&mut socket).await;
    socket
        .send(Message::Binary(Bytes::from_static(b"\x00\x01")))
        .await
        .expect("send");
    let frame = closed(&mut socket).await;
    assert_eq!(frame.code, CloseCode::Unsupported, "{frame:?}");
    assert!(frame.reason.contains("text"), "{frame:?}");
    canary.still_alive("a binary message").await;

    let mut socket = open(server.addr, "/ws/asset").await;
    text(&mut socket).await;
    say(&mut socket, &"x".repeat(70_000)).await;
    let frame = closed(&mut socket).await;
    assert_eq!(frame.code, CloseCode::Size, "{frame:?}");
    assert!(frame.reason.contains("limits.max_frame_size"), "{frame:?}");
    canary.still_alive("a message over the limit").await;

    // Text that is not UTF-8, written as a raw frame.
    let mut socket = open(server.addr, "/ws/asset").await;
    text(&mut socket).await;
    socket
        .send(Message::Frame(
            tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
                Bytes::from_static(b"\xff\xfe"),
                tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                    tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
                ),
                true,
            ),
        ))
        .await
        .expect("send");
    let frame = closed(&mut socket).await;
    assert_eq!(frame.code, CloseCode::Invalid, "{frame:?}");
    canary.still_alive("invalid UTF-8").await;

    for (path, status) in [
        ("/socket/", 404),
        ("/socket/7/8", 404),
        ("/nowhere", 404),
        ("/socket/*", 400),
        ("/socket/a,b", 400),
    ] {
        let refused = tokio_tungstenite::connect_async(format!("ws://{}{path}", server.addr)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{path}");
            }
            other => panic!("{path}: expected HTTP {status}, got {other:?}"),
        }
    }
    canary.still_alive("refused handshakes").await;
}

#[tokio::test]
async fn graceful_shutdown_closes_plain_sockets_with_1001() {
    let server = TestServer::start().await;
    let mut socket = open(server.addr, "/socket/9").await;
    text(&mut socket).await;
    server.handle.shutdown();
    let frame = closed(&mut socket).await;
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
}

#[tokio::test]
async fn acl_and_tokens_apply_at_the_handshake() {
    let server = TestServer::start_with(|config| {
        config.acl.push(
            toml::from_str(
                r#"
                destination = "/topic/asset"
                subscribe = ["authenticated"]
                "#,
            )
            .expect("an acl rule"),
        );
    })
    .await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws/asset", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("access denied"), "{body}");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // /socket/{id} names its user, which counts as authenticated for its own subscriptions.
    let mut socket = open(server.addr, "/socket/3").await;
    assert_eq!(text(&mut socket).await, "-连接已建立-");
}

#[tokio::test]
async fn a_publish_an_acl_refuses_closes_the_socket_with_1008_saying_why() {
    let server = TestServer::start_with(|config| {
        config.websocket.endpoints.push(EndpointConfig {
            path: "/locked".into(),
            user: None,
            on_open: None,
            reply: None,
            publish: Some("/topic/locked".into()),
            subscribe: vec![],
        });
        config.acl.push(
            toml::from_str(
                r#"
                destination = "/topic/locked"
                send = []
                "#,
            )
            .expect("an acl rule"),
        );
    })
    .await;
    let mut canary = Canary::new(&server).await;
    let mut socket = open(server.addr, "/locked").await;
    say(&mut socket, "let me in").await;
    let frame = closed(&mut socket).await;
    assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
    assert!(frame.reason.contains("access denied"), "{frame:?}");
    canary.still_alive("a refused publish").await;
}

/// The seeds' `WebSocketServer` class in code: `@OnOpen`, `@OnMessage`,
/// `@OnClose`, `sendToMessageById`, `broadcastInfo` and `getOnlineCount`.
struct Seeds {
    closed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl stomphub::SocketHandler for Seeds {
    fn on_open(&self, socket: &stomphub::Socket) {
        let online = socket.online();
        socket
            .send(&format!("welcome {}, {online} online", socket.vars["id"]))
            .expect("sent");
    }

    fn on_message(&self, socket: &stomphub::Socket, text: &str) {
        match text.split_once(':') {
            Some(("to", rest)) => {
                let (user, message) = rest.split_once(' ').expect("to:USER TEXT");
                socket.send_to_user(user, message).expect("sent");
            }
            Some(("all", message)) => {
                socket.broadcast(message).expect("sent");
            }
            _ => {
                socket.send(&format!("you said {text}")).expect("sent");
            }
        }
    }

    fn on_close(&self, socket: &stomphub::Socket) {
        self.closed
            .lock()
            .expect("lock")
            .push(socket.vars["id"].clone());
    }
}

#[tokio::test]
async fn a_handler_in_code_sends_to_its_socket_a_user_and_everyone() {
    let closed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut app = stomphub::AppBuilder::new();
    app.websocket_endpoint(
        EndpointConfig {
            path: "/seeds/{id}".into(),
            user: Some("{id}".into()),
            on_open: None,
            reply: None,
            publish: None,
            subscribe: vec![],
        },
        Seeds {
            closed: closed.clone(),
        },
    );
    let server = TestServer::start_with_app(|_| {}, app).await;
    let mut one = open(server.addr, "/seeds/1").await;
    assert_eq!(text(&mut one).await, "welcome 1, 1 online");
    let mut two = open(server.addr, "/seeds/2").await;
    assert_eq!(text(&mut two).await, "welcome 2, 2 online");
    say(&mut one, "hello").await;
    assert_eq!(text(&mut one).await, "you said hello");
    say(&mut one, "to:2 psst").await;
    assert_eq!(text(&mut two).await, "psst");
    say(&mut two, "all:everyone").await;
    assert_eq!(text(&mut one).await, "everyone");
    assert_eq!(text(&mut two).await, "everyone");
    assert_eq!(endpoint_sessions(server.addr, "/seeds/{id}").await, 2);
    one.close(None).await.expect("close");
    wait_for_sessions(server.addr, "/seeds/{id}", 1).await;
    assert_eq!(*closed.lock().expect("lock"), ["1"]);
}

#[tokio::test]
async fn idle_sockets_are_pinged_and_foreign_origins_refused() {
    let server = TestServer::start_with(|config| config.stomp.heartbeat = [300, 10_000]).await;
    let mut socket = open(server.addr, "/ws/asset").await;
    assert_eq!(text(&mut socket).await, "连接成功");
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        Ok(Some(Ok(Message::Ping(_)))) => {}
        other => panic!("expected a ping, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws/asset", server.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "origin",
        "https://evil.example".parse().expect("header value"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403);
        }
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn where_credentials_are_checked_a_path_cannot_name_the_user() {
    let server = TestServer::start_with(|config| {
        config.auth.users.push(
            toml::from_str(
                r#"
                name = "alice"
                password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$2Nfqc3lr4JX4VBU1WzWHqRGPwTJHJa4WXmvaw2AqZcY"
                "#,
            )
            .expect("a user"),
        );
    })
    .await;
    match tokio_tungstenite::connect_async(format!("ws://{}/socket/alice", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("bearer token"), "{body}");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // An endpoint that names no user stays open to anonymous sockets.
    let mut asset = open(server.addr, "/ws/asset").await;
    assert_eq!(text(&mut asset).await, "连接成功");
}

#[tokio::test]
async fn a_socket_that_only_gets_replies_is_still_held_to_the_frame_rate() {
    let server = TestServer::start_with(|config| {
        config.limits.max_frames_per_second = 20;
        config.limits.frame_burst = 5;
    })
    .await;
    let mut socket = open(server.addr, "/ws/asset").await;
    text(&mut socket).await;
    let started = tokio::time::Instant::now();
    for n in 0..45 {
        say(&mut socket, &n.to_string()).await;
    }
    for n in 0..45 {
        assert_eq!(text(&mut socket).await, format!("收到消息，消息内容：{n}"));
    }
    // 40 messages past the burst at 20 per second: read no faster than that.
    assert!(
        started.elapsed() >= Duration::from_millis(1_800),
        "{:?}",
        started.elapsed()
    );
}

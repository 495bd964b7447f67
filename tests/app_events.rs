//! Events, handshake and channel interceptors, and broker.toml routes over real WebSockets.

mod common {
    pub mod server;
    pub mod stomp_client;
}

use common::server::TestServer;
use common::stomp_client::Client;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stomphub::AppBuilder;
use stomphub::EventKind;
use stomphub::config::RouteConfig;
use stomphub::stomp::{Command, Frame};
use stomphub::{
    ChannelInterceptor, HandshakeInterceptor, HandshakeRequest, OutboundMessage, Rejection,
};
use stomphub::{Handshake, SessionInfo};

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: EventKind,
    session: String,
    recorded_session: Option<String>,
    room: Option<String>,
    destination: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn recording(app: &mut AppBuilder) -> Log {
    let log: Log = Arc::default();
    let sink = log.clone();
    app.on_event(move |event| {
        sink.lock().unwrap().push(Seen {
            kind: event.kind,
            session: event.session.id.clone(),
            recorded_session: event.session.attributes.get("sessionId").cloned(),
            room: event.session.attributes.get("room").cloned(),
            destination: event.destination.clone(),
        });
    });
    log
}

/// Rejects `?deny=1` with 403 and records `?room=` as an attribute.
struct RoomInterceptor;

impl HandshakeInterceptor for RoomInterceptor {
    fn before(
        &self,
        request: &HandshakeRequest<'_>,
        handshake: &mut Handshake,
    ) -> Result<(), Rejection> {
        if request.query("deny").is_some() {
            return Err(Rejection::new(
                axum::http::StatusCode::FORBIDDEN,
                "denied by RoomInterceptor",
            ));
        }
        if let Some(room) = request.query("room") {
            handshake.attributes.insert("room".into(), room);
        }
        Ok(())
    }
}

/// Drops SEND frames marked `x-drop`, and stamps every outbound message.
struct Filter;

impl ChannelInterceptor for Filter {
    fn inbound(&self, _session: &SessionInfo, frame: Frame) -> Option<Frame> {
        (frame.get("x-drop").is_none()).then_some(frame)
    }

    fn outbound(&self, mut message: OutboundMessage) -> Option<OutboundMessage> {
        message.headers.push("x-stamped", "yes");
        Some(message)
    }
}

async fn wait_for(log: &Log, count: usize) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = log.lock().unwrap().clone();
        if seen.len() >= count || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_event_fires_once_in_order_with_the_handshake_attributes() {
    let mut app = AppBuilder::new();
    let log = recording(&mut app);
    app.handshake_interceptor(RoomInterceptor);
    let server = TestServer::start_with_app(|_| {}, app).await;
    let mut client = Client::connect(&format!("{}?room=lobby", server.url())).await;
    client.subscribe("s", "/topic/game_chat").await;
    client
        .send(
            Frame::new(Command::Unsubscribe)
                .header("id", "s")
                .header("receipt", "u"),
        )
        .await;
    assert_eq!(client.frame().await.command, Command::Receipt);
    client.send(Frame::new(Command::Disconnect)).await;
    client.closed().await;
    let seen = wait_for(&log, 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.lock().unwrap().len(), 5, "no further events: {seen:#?}");
    let kinds: Vec<_> = seen
        .iter()
        .map(|s| (s.kind, s.destination.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Connect, None),
            (EventKind::Connected, None),
            (EventKind::Subscribe, Some("/topic/game_chat".into())),
            (EventKind::Unsubscribe, Some("/topic/game_chat".into())),
            (EventKind::Disconnect, None),
        ]
    );
    for event in &seen {
        assert_eq!(
            event.recorded_session.as_deref(),
            Some(event.session.as_str())
        );
        assert_eq!(event.room.as_deref(), Some("lobby"));
    }
}

#[tokio::test]
async fn disconnect_fires_once_on_abrupt_close_and_on_heart_beat_timeout() {
    let mut app = AppBuilder::new();
    let log = recording(&mut app);
    let server =
        TestServer::start_with_app(|config| config.stomp.heartbeat = [200, 200], app).await;
    let client = Client::connect(&server.url()).await;
    drop(client); // the TCP connection goes away without DISCONNECT or a close frame
    let mut silent = Client::open(&server.url(), &["v12.stomp"]).await;
    silent
        .send(
            Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "200,0"),
        )
        .await;
    assert_eq!(silent.frame().await.command, Command::Connected);
    let seen = wait_for(&log, 6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let disconnects: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.kind == EventKind::Disconnect)
        .map(|s| s.session.clone())
        .collect();
    assert_eq!(disconnects.len(), 2, "{seen:#?}");
    assert_ne!(disconnects[0], disconnects[1]);
}

#[tokio::test]
async fn a_handshake_interceptor_can_reject_with_403() {
    let mut app = AppBuilder::new();
    app.handshake_interceptor(RoomInterceptor);
    let server = TestServer::start_with_app(|_| {}, app).await;
    let url = format!("{}?deny=1", server.url());
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            assert_eq!(body.as_deref(), Some("denied by RoomInterceptor"));
        }
        other => panic!(
            "expected a 403 rejection, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    Client::connect(&server.url()).await;
}

#[tokio::test]
async fn a_channel_interceptor_drops_inbound_frames_and_stamps_outbound_messages() {
    let mut app = AppBuilder::new();
    app.channel_interceptor(Filter);
    let server = TestServer::start_with_app(|_| {}, app).await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("s", "/topic/filtered").await;
    client
        .send(
            Frame::new(Command::Send)
                .header("destination", "/topic/filtered")
                .header("x-drop", "1")
                .header("receipt", "never")
                .body("dropped"),
        )
        .await;
    client.publish("/topic/filtered", "kept").await;
    let message = client.frame().await;
    assert_eq!(
        message.body.as_ref(),
        b"kept",
        "the dropped frame got neither delivery nor receipt"
    );
    assert_eq!(message.get("x-stamped"), Some("yes"));
}

#[tokio::test]
async fn broker_toml_routes_forward_without_code() {
    let server = TestServer::start_with(|config| {
        config.stomp.user_from_login = true;
        config.routes = vec![
            RouteConfig {
                from: "/v1/echo/{room}".into(),
                to: Some("/topic/echo/{room}".into()),
                to_user: None,
                all_sessions: true,
                proxy: None,
            },
            RouteConfig {
                from: "/v1/note".into(),
                to: None,
                to_user: Some("/queue/notes".into()),
                all_sessions: true,
                proxy: None,
            },
        ];
    })
    .await;
    let mut client = Client::connect_as(&server.url(), Some("carol")).await;
    client.subscribe("echo", "/topic/echo/7").await;
    client.subscribe("notes", "/user/queue/notes").await;
    client
        .send(
            Frame::new(Command::Send)
                .header("destination", "/app/v1/echo/7")
                .header("content-type", "application/json")
                .body(r#"{"x":1}"#),
        )
        .await;
    let echoed = client.frame().await;
    assert_eq!(echoed.get("destination"), Some("/topic/echo/7"));
    assert_eq!(echoed.get("content-type"), Some("application/json"));
    assert_eq!(echoed.body.as_ref(), br#"{"x":1}"#);
    client.publish("/app/v1/note", "remember").await;
    let note = client.frame().await;
    assert_eq!(note.get("destination"), Some("/user/queue/notes"));
    assert_eq!(note.body.as_ref(), b"remember");
}

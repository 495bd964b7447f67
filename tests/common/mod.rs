//! Test harness: the real server on an ephemeral loopback port with the
//! repository's broker.toml, and a raw STOMP client over tokio-tungstenite.

#![allow(dead_code)]

pub mod auth;
pub mod canary;
pub mod cluster;
pub mod http;
pub mod process;
pub mod sse;

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use stomphub::AppBuilder;
use stomphub::MessagingTemplate;
use stomphub::config::Config;
use stomphub::stomp::{Command, Decoded, Decoder, Frame, Limits, Version, encode_to_vec};
use stomphub::{Server, ServerError, ShutdownHandle};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn default_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker.toml");
    let mut config = Config::load(&path).expect("repository broker.toml is valid");
    config.server.bind = "127.0.0.1:0".parse().expect("address");
    // The demo price feed would put unasked-for messages on /topic/** subscriptions.
    config.demo.price_feed_ms = 0;
    config
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ShutdownHandle,
    pub template: MessagingTemplate,
    pub task: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_with_app(edit, AppBuilder::new()).await
    }

    pub async fn start_with_app(edit: impl FnOnce(&mut Config), app: AppBuilder) -> TestServer {
        let mut config = default_config();
        edit(&mut config);
        config.validate().expect("test config is valid");
        let server = Server::bind_with(config, app).await.expect("bind");
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let template = server.template();
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            handle,
            template,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/endpoint-websocket", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a read saw.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    HeartBeat,
    Closed(Option<CloseFrame>),
}

pub struct Client {
    pub ws: Ws,
    decoder: Decoder,
    pub protocol: Option<String>,
    pending: std::collections::VecDeque<Event>,
}

impl Client {
    /// Opens the WebSocket, offering `protocols`, without sending CONNECT.
    pub async fn open(url: &str, protocols: &[&str]) -> Client {
        Client::try_open(url, protocols, &[])
            .await
            .unwrap_or_else(|(status, body)| panic!("handshake refused with {status}: {body}"))
    }

    /// Opens the WebSocket with extra request headers; a refused handshake
    /// gives its HTTP status and body.
    pub async fn try_open(
        url: &str,
        protocols: &[&str],
        headers: &[(&str, &str)],
    ) -> Result<Client, (u16, String)> {
        let mut request = url.into_client_request().expect("request");
        if !protocols.is_empty() {
            let offered = HeaderValue::from_str(&protocols.join(", ")).expect("header");
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", offered);
        }
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let (ws, response) =
            match tokio_tungstenite::connect_async_with_config(request, None, true).await {
                Ok(done) => done,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    let body = response
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    return Err((response.status().as_u16(), body));
                }
                Err(error) => panic!("websocket handshake: {error}"),
            };
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Client {
            ws,
            decoder: Decoder::new(Limits {
                max_frame_size: 1 << 24,
                max_body_size: 1 << 24,
                ..Limits::default()
            }),
            protocol,
            pending: Default::default(),
        })
    }

    /// Opens (with `url`'s query) and sends CONNECT with `headers`; returns the
    /// client and the server's first frame (CONNECTED or ERROR).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> (Client, Frame) {
        let mut client = Client::open(url, &["v12.stomp"]).await;
        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", "localhost")
            .header("heart-beat", "0,0");
        for (name, value) in headers {
            connect.headers.push(*name, *value);
        }
        client.send(connect).await;
        let reply = client.frame().await;
        (client, reply)
    }

    /// Opens and completes CONNECT as a STOMP 1.2 client without heart-beats.
    pub async fn connect(url: &str) -> Client {
        Client::connect_as(url, None).await
    }

    /// Like [`Client::connect`], sending `login` (the user name when `user_from_login` is on).
    pub async fn connect_as(url: &str, login: Option<&str>) -> Client {
        let mut client = Client::open(url, &["v12.stomp"]).await;
        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", "localhost")
            .header("heart-beat", "0,0");
        if let Some(login) = login {
            connect.headers.push("login", login);
        }
        client.send(connect).await;
        let connected = client.frame().await;
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        client
    }

    pub async fn send(&mut self, frame: Frame) {
        let bytes = encode_to_vec(&frame, Version::V1_2);
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(Bytes::copy_from_slice(bytes)))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next frame, heart-beat or close; panics after [`WAIT`].
    pub async fn event(&mut self) -> Event {
        self.event_within(WAIT).await.expect("an event in time")
    }

    pub async fn event_within(&mut self, limit: Duration) -> Option<Event> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(message) => message,
            };
            let data: Vec<u8> = match message {
                Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                Some(Ok(Message::Binary(data))) => data.to_vec(),
                Some(Ok(Message::Close(frame))) => return Some(Event::Closed(frame)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Event::Closed(None)),
            };
            self.decoder.feed(&data);
            while let Some(item) = self.decoder.decode().expect("server sends valid STOMP") {
                self.pending.push_back(match item {
                    Decoded::Frame(frame) => Event::Frame(frame),
                    Decoded::HeartBeat => Event::HeartBeat,
                });
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
        }
    }

    /// The next frame, skipping heart-beats; panics on close or timeout.
    pub async fn frame(&mut self) -> Frame {
        loop {
            match self.event().await {
                Event::Frame(frame) => return frame,
                Event::HeartBeat => continue,
                Event::Closed(close) => {
                    panic!("connection closed while waiting for a frame: {close:?}")
                }
            }
        }
    }

    /// A frame if one arrives within `limit`.
    pub async fn frame_within(&mut self, limit: Duration) -> Option<Frame> {
        loop {
            match self.event_within(limit).await? {
                Event::Frame(frame) => return Some(frame),
                Event::HeartBeat => continue,
                Event::Closed(_) => return None,
            }
        }
    }

    /// Waits for an ERROR frame and then the close; returns the ERROR's message header.
    pub async fn error_then_close(&mut self) -> String {
        let frame = self.frame().await;
        assert_eq!(frame.command, Command::Error, "{frame:?}");
        self.closed().await;
        frame.get("message").unwrap_or_default().to_owned()
    }

    /// Waits until the server closes the connection; returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match self.event().await {
                Event::Closed(close) => return close,
                _ => continue,
            }
        }
    }

    /// SUBSCRIBE with a receipt, so the subscription is in place on return.
    pub async fn subscribe(&mut self, id: &str, destination: &str) {
        let receipt = format!("sub-{id}");
        self.send(
            Frame::new(Command::Subscribe)
                .header("id", id)
                .header("destination", destination)
                .header("receipt", receipt.clone()),
        )
        .await;
        let reply = self.frame().await;
        assert_eq!(reply.command, Command::Receipt, "{reply:?}");
        assert_eq!(reply.get("receipt-id"), Some(receipt.as_str()));
    }

    pub async fn publish(&mut self, destination: &str, body: &str) {
        self.send(
            Frame::new(Command::Send)
                .header("destination", destination)
                .body(body.to_owned()),
        )
        .await;
    }
}

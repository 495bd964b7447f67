//! The one STOMP-over-WebSocket client of this repository, for the integration
//! tests and the load generator alike.
//!
//! There is one copy of this file. Integration tests mount it as
//! `mod common { pub mod stomp_client; }`; `bench/src/lib.rs` mounts the same
//! file with `#[path = "../../tests/common/stomp_client.rs"]`. So it may only use
//! crates both packages depend on, and nothing else under `tests/common`.
//!
//! One connection, two faces. The fallible half ([`Client::handshake`],
//! [`Client::connect_stomp`], [`subscribe`], [`Sender`], [`Receiver`]) reports
//! errors, because a load generator must count a broken connection instead of
//! dying. The panicking helpers on [`Client`] are what tests want: an unexpected
//! answer fails the test where it happens. The hot path stays as load
//! generation needs it: [`Sender::feed`] queues a frame without flushing so a
//! publisher can batch, and received messages reach the decoder without being
//! copied into a buffer of their own first.

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use stomphub::stomp::{
    Command, Decoded, Decoder, Frame, Limits, Version, encode, encoded_len_hint,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the panicking helpers wait for what they expect.
pub const WAIT: Duration = Duration::from_secs(10);

/// Bound on each step of setting up a connection (handshake, CONNECTED, a
/// receipt); generous because the load generator opens thousands at once.
const SETUP_LIMIT: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
pub enum Error {
    /// The server refused the WebSocket upgrade with this HTTP status and body.
    Refused { status: u16, body: String },
    /// No connection, a broken or closed one, or no answer in time.
    Connection(String),
    /// The server sent something that is not STOMP, or not the answer asked for.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused { status, body } => write!(f, "handshake refused with {status}: {body}"),
            Error::Connection(message) | Error::Protocol(message) => f.write_str(message),
        }
    }
}

/// The load generator reports every failure as text.
impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

/// What a read saw.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    HeartBeat,
    Closed(Option<CloseFrame>),
}

/// The writing half of a connection.
pub struct Sender {
    sink: SplitSink<Ws, Message>,
}

/// The reading half of a connection.
pub struct Receiver {
    stream: SplitStream<Ws>,
    decoder: Decoder,
    /// Decoded but not yet handed out: one WebSocket message may hold several frames.
    pending: VecDeque<Event>,
}

/// One connection. The halves are separate so that one task may publish while
/// another reads.
pub struct Client {
    pub sender: Sender,
    pub receiver: Receiver,
    /// The subprotocol the server chose.
    #[allow(dead_code, reason = "only the subprotocol test reads it")]
    pub protocol: Option<String>,
}

/// Opens TCP to `authority`, from the local address `source` when given (the
/// load generator spreads connections over 127.0.0.x to get past the ephemeral
/// port range of one address).
#[allow(
    dead_code,
    reason = "the load generator's other transports call it; tests need not"
)]
pub async fn tcp(authority: &str, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(authority).await;
    };
    let remote = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(remote).await
}

impl Client {
    /// Opens the WebSocket to `url` (`ws://` only) offering `protocols`, with
    /// extra request `headers`, from `source` when given. No STOMP is sent yet.
    pub async fn handshake(
        url: &str,
        protocols: &[&str],
        headers: &[(&str, &str)],
        source: Option<IpAddr>,
    ) -> Result<Client, Error> {
        let bad = |what: &dyn fmt::Display| Error::Connection(format!("{url}: {what}"));
        let mut request = url.into_client_request().map_err(|e| bad(&e))?;
        if request.uri().scheme_str() != Some("ws") {
            return Err(bad(&"only ws:// URLs are supported"));
        }
        let authority = match (request.uri().host(), request.uri().port_u16()) {
            (Some(host), port) => format!("{host}:{}", port.unwrap_or(80)),
            (None, _) => return Err(bad(&"no host")),
        };
        if !protocols.is_empty() {
            let offered = HeaderValue::from_str(&protocols.join(", ")).map_err(|e| bad(&e))?;
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", offered);
        }
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
            let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
            request.headers_mut().insert(name, value);
        }
        let open = async {
            let tcp = tcp(&authority, source).await.map_err(|e| bad(&e))?;
            // Frames are small and latency is measured: no Nagle delay.
            tcp.set_nodelay(true).map_err(|e| bad(&e))?;
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
                .await
                .map_err(|error| match error {
                    tungstenite::Error::Http(response) => Error::Refused {
                        status: response.status().as_u16(),
                        body: response
                            .body()
                            .as_deref()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .unwrap_or_default(),
                    },
                    other => bad(&other),
                })
        };
        let (ws, response) = tokio::time::timeout(SETUP_LIMIT, open)
            .await
            .map_err(|_| bad(&"handshake timed out"))??;
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (sink, stream) = ws.split();
        Ok(Client {
            sender: Sender { sink },
            receiver: Receiver {
                stream,
                // The server's own limits are smaller; these only stop a runaway.
                decoder: Decoder::new(Limits {
                    max_frame_size: 1 << 24,
                    max_body_size: 1 << 24,
                    ..Limits::default()
                }),
                pending: VecDeque::new(),
            },
            protocol,
        })
    }

    /// Sends CONNECT for STOMP 1.2 without heart-beats, for virtual host `host`,
    /// with `headers` added, and returns the server's answer (CONNECTED or ERROR).
    pub async fn connect_stomp(
        &mut self,
        host: &str,
        headers: &[(&str, &str)],
    ) -> Result<Frame, Error> {
        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", host)
            .header("heart-beat", "0,0");
        for (name, value) in headers {
            connect.headers.push(*name, *value);
        }
        self.sender.send(&connect).await?;
        tokio::time::timeout(SETUP_LIMIT, self.receiver.next_frame())
            .await
            .map_err(|_| Error::Connection("no answer to CONNECT in time".into()))?
    }
}

/// SUBSCRIBE with a receipt, so the subscription is in place when this returns.
pub async fn subscribe(
    sender: &mut Sender,
    receiver: &mut Receiver,
    id: &str,
    destination: &str,
) -> Result<(), Error> {
    let receipt = format!("sub-{id}");
    sender
        .send(
            &Frame::new(Command::Subscribe)
                .header("id", id)
                .header("destination", destination)
                .header("receipt", receipt.as_str()),
        )
        .await?;
    let reply = tokio::time::timeout(SETUP_LIMIT, receiver.next_frame())
        .await
        .map_err(|_| {
            Error::Connection(format!("no receipt for SUBSCRIBE {destination} in time"))
        })??;
    if reply.command == Command::Receipt && reply.get("receipt-id") == Some(receipt.as_str()) {
        Ok(())
    } else {
        Err(Error::Protocol(format!(
            "SUBSCRIBE {destination} answered with {reply:?}"
        )))
    }
}

impl Sender {
    /// Queues `frame` without flushing, so a publisher can batch. It goes as a
    /// text message when it is UTF-8, as browser clients send it (the broker
    /// takes both kinds alike), else as binary.
    pub async fn feed(&mut self, frame: &Frame) -> Result<(), Error> {
        let mut buffer = BytesMut::with_capacity(encoded_len_hint(frame));
        encode(frame, Version::V1_2, &mut buffer);
        let bytes = buffer.freeze();
        let message = match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        };
        self.sink.feed(message).await.map_err(connection)
    }

    pub async fn flush(&mut self) -> Result<(), Error> {
        self.sink.flush().await.map_err(connection)
    }

    pub async fn send(&mut self, frame: &Frame) -> Result<(), Error> {
        self.feed(frame).await?;
        self.flush().await
    }

    /// Sends one WebSocket message as it is, for input that is not a well-formed frame.
    pub async fn send_message(&mut self, message: Message) -> Result<(), Error> {
        self.sink.send(message).await.map_err(connection)
    }

    /// Sends a WebSocket close: a polite goodbye, where dropping would just cut the TCP connection.
    #[allow(dead_code, reason = "bench/ closes politely; tests just drop")]
    pub async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

fn connection(error: tungstenite::Error) -> Error {
    Error::Connection(error.to_string())
}

impl Receiver {
    /// The next frame, heart-beat or close. Cancel-safe: what arrived stays
    /// queued, so this may race a timer or a stop signal.
    pub async fn next_event(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let data = match self.stream.next().await {
                Some(Ok(Message::Text(text))) => Bytes::from(text),
                Some(Ok(Message::Binary(data))) => data,
                Some(Ok(Message::Close(close))) => return Ok(Event::Closed(close)),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(connection(error)),
                None => return Ok(Event::Closed(None)),
            };
            self.decoder.feed(&data);
            while let Some(item) = self
                .decoder
                .decode()
                .map_err(|e| Error::Protocol(format!("invalid STOMP from the server: {e}")))?
            {
                self.pending.push_back(match item {
                    Decoded::Frame(frame) => Event::Frame(frame),
                    Decoded::HeartBeat => Event::HeartBeat,
                });
            }
        }
    }

    /// The next frame, skipping heart-beats; the end of the connection is an error.
    pub async fn next_frame(&mut self) -> Result<Frame, Error> {
        loop {
            match self.next_event().await? {
                Event::Frame(frame) => return Ok(frame),
                Event::HeartBeat => continue,
                Event::Closed(Some(close)) => {
                    return Err(Error::Connection(format!(
                        "closed by the server: {} {}",
                        close.code, close.reason
                    )));
                }
                Event::Closed(None) => return Err(Error::Connection("connection ended".into())),
            }
        }
    }
}

/// The helpers tests use: each panics on what the test did not expect.
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
        match Client::handshake(url, protocols, headers, None).await {
            Ok(client) => Ok(client),
            Err(Error::Refused { status, body }) => Err((status, body)),
            Err(error) => panic!("websocket handshake: {error}"),
        }
    }

    /// Opens (with `url`'s query) and sends CONNECT with `headers`; returns the
    /// client and the server's first frame (CONNECTED or ERROR).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> (Client, Frame) {
        let mut client = Client::open(url, &["v12.stomp"]).await;
        let reply = client
            .connect_stomp("localhost", headers)
            .await
            .unwrap_or_else(|error| panic!("CONNECT: {error}"));
        (client, reply)
    }

    /// Opens and completes CONNECT as a STOMP 1.2 client without heart-beats.
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn connect(url: &str) -> Client {
        Client::connect_as(url, None).await
    }

    /// Like [`Client::connect`], sending `login` (the user name when `user_from_login` is on).
    pub async fn connect_as(url: &str, login: Option<&str>) -> Client {
        let login = login.map(|login| ("login", login));
        let (client, connected) = Client::connect_with(url, login.as_slice()).await;
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        client
    }

    pub async fn send(&mut self, frame: Frame) {
        self.sender.send(&frame).await.expect("send");
    }

    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.sender
            .send_message(Message::Binary(Bytes::copy_from_slice(bytes)))
            .await
            .expect("send");
    }

    /// The next frame, heart-beat or close; panics after [`WAIT`].
    pub async fn event(&mut self) -> Event {
        self.event_within(WAIT).await.expect("an event in time")
    }

    /// An event if one arrives within `limit`; a broken connection reads as closed.
    pub async fn event_within(&mut self, limit: Duration) -> Option<Event> {
        match tokio::time::timeout(limit, self.receiver.next_event()).await {
            Err(_) => None,
            Ok(Ok(event)) => Some(event),
            Ok(Err(Error::Connection(_))) => Some(Event::Closed(None)),
            Ok(Err(error)) => panic!("{error}"),
        }
    }

    /// The next frame, skipping heart-beats; panics on close or after [`WAIT`].
    pub async fn frame(&mut self) -> Frame {
        match tokio::time::timeout(WAIT, self.receiver.next_frame()).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(error)) => panic!("no frame: {error}"),
            Err(_) => panic!("no frame within {WAIT:?}"),
        }
    }

    /// A frame if one arrives within `limit` before the connection closes.
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn frame_within(&mut self, limit: Duration) -> Option<Frame> {
        match tokio::time::timeout(limit, self.receiver.next_frame()).await {
            Ok(Ok(frame)) => Some(frame),
            Ok(Err(Error::Protocol(error))) => panic!("{error}"),
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Waits for an ERROR frame and then the close; returns the ERROR's message header.
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn error_then_close(&mut self) -> String {
        let frame = self.frame().await;
        assert_eq!(frame.command, Command::Error, "{frame:?}");
        self.closed().await;
        frame.get("message").unwrap_or_default().to_owned()
    }

    /// Waits until the server closes the connection; returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            if let Event::Closed(close) = self.event().await {
                return close;
            }
        }
    }

    /// SUBSCRIBE with a receipt, so the subscription is in place on return.
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn subscribe(&mut self, id: &str, destination: &str) {
        subscribe(&mut self.sender, &mut self.receiver, id, destination)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }

    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn publish(&mut self, destination: &str, body: &str) {
        self.send(
            Frame::new(Command::Send)
                .header("destination", destination)
                .body(body.to_owned()),
        )
        .await;
    }
}

//! A raw STOMP-over-TCP client for tests: frames go out as the bytes the
//! codec encodes (or as any bytes a test wants), and what comes back is read
//! through the codec. Generic over the stream, so the same client speaks over
//! TLS. Its helpers panic on what a test did not expect.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use stomphub::stomp::{Command, Decoded, Decoder, Frame, Limits, Version, encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the helpers wait for what they expect.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a read saw.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    HeartBeat,
    /// The server closed the connection (or reset it).
    Closed,
}

pub struct TcpClient<S = TcpStream> {
    pub stream: S,
    decoder: Decoder,
    /// Decoded but not yet handed out: one read may hold several frames.
    pending: VecDeque<Event>,
}

impl TcpClient<TcpStream> {
    /// A connection to `addr`; nothing is sent yet.
    pub async fn open(addr: SocketAddr) -> TcpClient<TcpStream> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        TcpClient::over(stream)
    }

    /// A connection from the local address `source` (another 127.0.0.x).
    pub async fn open_from(addr: SocketAddr, source: std::net::IpAddr) -> TcpClient<TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(source, 0)).expect("bind");
        TcpClient::over(socket.connect(addr).await.expect("connect"))
    }

    /// Opens and completes CONNECT as a STOMP 1.2 client without heart-beats.
    pub async fn connect(addr: SocketAddr) -> TcpClient<TcpStream> {
        let mut client = TcpClient::open(addr).await;
        client.handshake(&[]).await;
        client
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TcpClient<S> {
    pub fn over(stream: S) -> TcpClient<S> {
        TcpClient {
            stream,
            // The server's own limits are smaller; these only stop a runaway.
            decoder: Decoder::new(Limits {
                max_frame_size: 1 << 24,
                max_body_size: 1 << 24,
                ..Limits::default()
            }),
            pending: VecDeque::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    pub async fn send(&mut self, frame: &Frame) {
        let mut out = bytes::BytesMut::new();
        encode(frame, Version::V1_2, &mut out);
        self.send_raw(&out).await;
    }

    /// Sends CONNECT (1.2, no heart-beats unless `headers` ask) and returns the answer.
    pub async fn connect_with(&mut self, headers: &[(&str, &str)]) -> Frame {
        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", "localhost");
        if !headers.iter().any(|(name, _)| *name == "heart-beat") {
            connect.headers.push("heart-beat", "0,0");
        }
        for (name, value) in headers {
            connect.headers.push(*name, *value);
        }
        self.send(&connect).await;
        self.frame().await
    }

    /// CONNECT that must be answered with CONNECTED.
    pub async fn handshake(&mut self, headers: &[(&str, &str)]) -> Frame {
        let connected = self.connect_with(headers).await;
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        connected
    }

    /// The next frame, heart-beat or close, if one comes within `limit`.
    pub async fn event_within(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .ok()?;
            let n = match read {
                Ok(0) | Err(_) => return Some(Event::Closed),
                Ok(n) => n,
            };
            self.decoder.feed(&buf[..n]);
            while let Some(item) = self
                .decoder
                .decode()
                .unwrap_or_else(|error| panic!("invalid STOMP from the server: {error}"))
            {
                self.pending.push_back(match item {
                    Decoded::Frame(frame) => Event::Frame(frame),
                    Decoded::HeartBeat => Event::HeartBeat,
                });
            }
        }
    }

    /// The next frame, skipping heart-beats; panics on close or after [`WAIT`].
    pub async fn frame(&mut self) -> Frame {
        loop {
            match self.event_within(WAIT).await {
                Some(Event::Frame(frame)) => return frame,
                Some(Event::HeartBeat) => continue,
                Some(Event::Closed) => panic!("the server closed the connection"),
                None => panic!("no frame within {WAIT:?}"),
            }
        }
    }

    /// Waits until the server closes the connection, skipping anything before.
    pub async fn closed(&mut self) {
        loop {
            match self.event_within(WAIT).await {
                Some(Event::Closed) => return,
                Some(_) => continue,
                None => panic!("not closed within {WAIT:?}"),
            }
        }
    }

    /// An ERROR frame, then the close; returns the ERROR's message header.
    pub async fn error_then_close(&mut self) -> String {
        let frame = self.frame().await;
        assert_eq!(frame.command, Command::Error, "{frame:?}");
        self.closed().await;
        frame.get("message").unwrap_or_default().to_owned()
    }

    /// SUBSCRIBE with a receipt, so the subscription is in place on return.
    pub async fn subscribe(&mut self, id: &str, destination: &str) {
        let receipt = format!("sub-{id}");
        self.send(
            &Frame::new(Command::Subscribe)
                .header("id", id)
                .header("destination", destination)
                .header("receipt", receipt.as_str()),
        )
        .await;
        let reply = self.frame().await;
        assert_eq!(reply.command, Command::Receipt, "{reply:?}");
        assert_eq!(reply.get("receipt-id"), Some(receipt.as_str()));
    }

    pub async fn publish(&mut self, destination: &str, body: &str) {
        self.send(
            &Frame::new(Command::Send)
                .header("destination", destination)
                .body(body.to_owned()),
        )
        .await;
    }
}

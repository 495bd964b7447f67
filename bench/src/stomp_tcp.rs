//! STOMP over plain TCP, the protocol's own transport: STOMP 1.2 frames,
//! NUL-terminated, straight on a socket, as stomp.py, Go and Ruby clients
//! and Spring's StompBrokerRelay speak it. Used for fan-out subscribers and
//! idle connections, so the broker's cost per delivery and per connection
//! can be set beside STOMP over WebSocket.
//!
//! The client is written here on a tokio `TcpStream` rather than taken from
//! the tests' STOMP client, which speaks WebSocket only; what arrives is read
//! with the broker's own decoder, which also skips the server's `\n`
//! heart-beats (none are asked for: CONNECT says `heart-beat:0,0`).

use crate::client::{self, Target};
use crate::subscribers::{self, BodySource, SubscriberTask};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use stomphub::stomp::{Command, Decoded, Decoder, Frame, Limits, Version, encode_to_vec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Bound on each step of setting up a connection, as for the WebSocket ones.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// STOMP's conventional port, for a URL that names none.
pub const DEFAULT_PORT: u16 = 61613;
/// Read at most this much at once: enough for dozens of fan-out messages,
/// small enough that thousands of idle connections do not hold much.
const READ_SIZE: usize = 16 * 1024;

/// `host:port` of a `stomp://host[:port][/]` URL, refused unless the host is
/// loopback: the load generator sends traffic nowhere else. IPv6 hosts are
/// written in brackets (`stomp://[::1]:61613`).
pub fn authority(url: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{url}: {why}");
    let rest = url
        .strip_prefix("stomp://")
        .ok_or_else(|| bad("expected stomp://host:port"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad(
            "expected stomp://host:port, with no path, query or user",
        ));
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in the host"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("expected :port after the ]"))?,
            ),
        };
        (format!("[{host}]"), port)
    } else {
        match rest.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(bad("an IPv6 host goes in brackets: stomp://[::1]:61613"));
            }
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (rest.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("no host"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
    };
    if !client::is_loopback_host(&host) {
        return Err(bad("the load generator only targets loopback addresses"));
    }
    Ok(format!("{host}:{port}"))
}

/// Bytes from the server in, frames out. Bytes may be cut anywhere; frames
/// are kept until asked for, so one read may bring several.
pub struct FrameReader {
    decoder: Decoder,
    frames: VecDeque<Frame>,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            // The server's own limits are smaller; these only stop a runaway.
            decoder: Decoder::new(Limits {
                max_frame_size: 1 << 24,
                max_body_size: 1 << 24,
                ..Limits::default()
            }),
            frames: VecDeque::new(),
        }
    }
}

impl FrameReader {
    /// Takes bytes as they came; heart-beats are dropped.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.decoder.feed(bytes);
        while let Some(item) = self
            .decoder
            .decode()
            .map_err(|e| format!("invalid STOMP from the server: {e}"))?
        {
            if let Decoded::Frame(frame) = item {
                self.frames.push_back(frame);
            }
        }
        Ok(())
    }

    pub fn next_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }
}

/// A MESSAGE's body; `None` for another frame the broker may send (a
/// RECEIPT); an ERROR ends the connection, as the broker closes it after one.
pub fn body_of(frame: Frame) -> Result<Option<Bytes>, String> {
    match frame.command {
        Command::Message => Ok(Some(frame.body)),
        Command::Error => Err(format!(
            "ERROR from the server: {}",
            frame.get("message").unwrap_or("(no message header)")
        )),
        _ => Ok(None),
    }
}

/// One STOMP-over-TCP connection.
pub struct StompTcp {
    stream: TcpStream,
    /// Reused for every read, so a read needs no allocation of its own.
    input: BytesMut,
    reader: FrameReader,
}

async fn within<T>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(SETUP_LIMIT, step)
        .await
        .map_err(|_| format!("no {what} within {SETUP_LIMIT:?}"))?
}

impl StompTcp {
    /// Opens TCP to `url` (`stomp://`, loopback only), from `source` when
    /// given, and CONNECTs as a STOMP 1.2 client without heart-beats, with
    /// `target`'s virtual host and credentials.
    pub async fn connect(
        url: &str,
        target: &Target,
        source: Option<IpAddr>,
    ) -> Result<Self, String> {
        let authority = authority(url)?;
        let stream = within("TCP connection", client::tcp(&authority, source)).await?;
        let mut connection = StompTcp {
            stream,
            input: BytesMut::new(),
            reader: FrameReader::default(),
        };
        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", target.host.as_str())
            .header("heart-beat", "0,0");
        for (name, value) in [("login", &target.login), ("passcode", &target.passcode)] {
            if let Some(value) = value {
                connect.headers.push(name, value.as_str());
            }
        }
        connection.send(&connect).await?;
        let reply = within("answer to CONNECT", connection.next_frame()).await?;
        if reply.command != Command::Connected {
            return Err(format!("CONNECT refused: {:?}", reply.get("message")));
        }
        Ok(connection)
    }

    /// SUBSCRIBE with a receipt, so the subscription is in place on return.
    pub async fn subscribe(&mut self, id: &str, destination: &str) -> Result<(), String> {
        let receipt = format!("sub-{id}");
        let subscribe = Frame::new(Command::Subscribe)
            .header("id", id)
            .header("destination", destination)
            .header("receipt", receipt.as_str());
        self.send(&subscribe).await?;
        let reply = within("receipt for SUBSCRIBE", self.next_frame()).await?;
        if reply.command == Command::Receipt && reply.get("receipt-id") == Some(receipt.as_str()) {
            Ok(())
        } else {
            Err(format!("SUBSCRIBE {destination} answered with {reply:?}"))
        }
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        self.stream
            .write_all(&encode_to_vec(frame, Version::V1_2))
            .await
            .map_err(|e| format!("sending {}: {e}", frame.command.as_str()))
    }

    /// The next frame. Cancel-safe, as [`BodySource`] asks: `read_buf` takes
    /// nothing from the socket unless it completes, and decoded frames wait
    /// in the reader.
    pub async fn next_frame(&mut self) -> Result<Frame, String> {
        loop {
            if let Some(frame) = self.reader.next_frame() {
                return Ok(frame);
            }
            self.input.clear();
            self.input.reserve(READ_SIZE);
            let read = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(|e| format!("reading: {e}"))?;
            if read == 0 {
                return Err("connection ended by the server".into());
            }
            self.reader.feed(&self.input)?;
        }
    }

    /// DISCONNECT, then the end of the connection: the broker ends the
    /// session at once. No receipt is awaited; closing thousands of idle
    /// connections should not wait for thousands of round trips.
    pub async fn close(mut self) {
        let _ = self.send(&Frame::new(Command::Disconnect)).await;
        let _ = self.stream.shutdown().await;
    }
}

impl BodySource for StompTcp {
    async fn next_body(&mut self) -> Result<Option<Bytes>, String> {
        body_of(self.next_frame().await?)
    }
}

/// `count` STOMP-over-TCP subscribers of `destination` at `url`, each
/// subscribed (receipt received) before the next connects.
#[allow(
    clippy::too_many_arguments,
    reason = "the scenario's settings, passed through"
)]
pub async fn start(
    url: &str,
    target: &Target,
    destination: &str,
    count: usize,
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> Result<Vec<SubscriberTask>, String> {
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let mut subscriber = StompTcp::connect(url, target, None).await?;
        subscriber
            .subscribe(&format!("bench-{index}"), destination)
            .await?;
        tasks.push(subscribers::spawn(
            subscriber,
            publishers,
            expected_per_publisher,
            stop,
            base,
        ));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn urls_name_a_loopback_host_and_a_port() {
        for (url, expected) in [
            ("stomp://127.0.0.1:61613", "127.0.0.1:61613"),
            ("stomp://127.0.0.1:18093/", "127.0.0.1:18093"),
            ("stomp://localhost", "localhost:61613"),
            ("stomp://[::1]:1234", "[::1]:1234"),
            ("stomp://[::1]", "[::1]:61613"),
            ("stomp://127.1.2.3:9", "127.1.2.3:9"),
        ] {
            assert_eq!(authority(url).as_deref(), Ok(expected), "{url}");
        }
        for url in [
            "tcp://127.0.0.1:61613",
            "ws://127.0.0.1:8080/x",
            "stomp://10.0.0.1:61613",
            "stomp://example.com:61613",
            "stomp://127.0.0.1:0",
            "stomp://127.0.0.1:65536",
            "stomp://127.0.0.1:x",
            "stomp://127.0.0.1:",
            "stomp://:61613",
            "stomp://",
            "stomp://[]:1",
            "stomp://::1:61613",
            "stomp://[::1:61613",
            "stomp://[::1]x",
            "stomp://127.0.0.1:61613/queue",
            "stomp://user@127.0.0.1:61613",
            "stomp://127.0.0.1:61613?x=1",
        ] {
            assert!(authority(url).is_err(), "{url}");
        }
    }

    const CONNECTED: &[u8] = b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0";
    const MESSAGE: &[u8] =
        b"MESSAGE\ndestination:/topic/t\nsubscription:bench-0\nmessage-id:1\ncontent-length:5\n\n0:0:7\0";

    #[test]
    fn frames_come_out_of_bytes_cut_anywhere_with_heart_beats_between() {
        let mut stream = Vec::new();
        for part in [CONNECTED, b"\n", b"\r\n", MESSAGE, b"\n", MESSAGE] {
            stream.extend_from_slice(part);
        }
        for cut in 0..=stream.len() {
            let mut reader = FrameReader::default();
            reader.feed(&stream[..cut]).unwrap();
            reader.feed(&stream[cut..]).unwrap();
            let commands: Vec<_> = std::iter::from_fn(|| reader.next_frame())
                .map(|frame| frame.command)
                .collect();
            assert_eq!(
                commands,
                [Command::Connected, Command::Message, Command::Message],
                "cut at {cut}"
            );
        }
        let mut reader = FrameReader::default();
        assert!(reader.feed(b"NOT-A-COMMAND\n\n\0").is_err());
    }

    #[test]
    fn messages_are_bodies_errors_end_the_connection() {
        let mut reader = FrameReader::default();
        reader.feed(MESSAGE).unwrap();
        reader
            .feed(b"RECEIPT\nreceipt-id:x\n\n\0ERROR\nmessage:slow consumer\n\n\0")
            .unwrap();
        let message = reader.next_frame().unwrap();
        assert_eq!(body_of(message), Ok(Some(Bytes::from_static(b"0:0:7"))));
        assert_eq!(body_of(reader.next_frame().unwrap()), Ok(None));
        let error = body_of(reader.next_frame().unwrap()).unwrap_err();
        assert!(error.contains("slow consumer"), "{error}");
    }

    /// Against a stand-in broker that answers in pieces: the client sends
    /// CONNECT with heart-beat 0,0 and a receipted SUBSCRIBE, then reads
    /// the MESSAGE bodies.
    #[tokio::test]
    async fn connects_subscribes_and_reads_from_a_stand_in_broker() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("stomp://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut reader = FrameReader::default();
            let mut next = async |socket: &mut TcpStream| loop {
                if let Some(frame) = reader.next_frame() {
                    return frame;
                }
                let mut buffer = [0; 1024];
                let read = socket.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the client hung up");
                reader.feed(&buffer[..read]).unwrap();
            };
            let connect = next(&mut socket).await;
            assert_eq!(connect.command, Command::Connect);
            assert_eq!(connect.get("heart-beat"), Some("0,0"));
            assert_eq!(connect.get("accept-version"), Some("1.2"));
            let (first, rest) = CONNECTED.split_at(7);
            socket.write_all(first).await.unwrap();
            socket.flush().await.unwrap();
            socket.write_all(rest).await.unwrap();
            let subscribe = next(&mut socket).await;
            assert_eq!(subscribe.command, Command::Subscribe);
            assert_eq!(subscribe.get("destination"), Some("/topic/t"));
            let receipt = format!(
                "RECEIPT\nreceipt-id:{}\n\n\0\n",
                subscribe.get("receipt").unwrap()
            );
            socket.write_all(receipt.as_bytes()).await.unwrap();
            socket.write_all(MESSAGE).await.unwrap();
            socket.write_all(b"\n").await.unwrap();
            socket.write_all(MESSAGE).await.unwrap();
            let disconnect = next(&mut socket).await;
            assert_eq!(disconnect.command, Command::Disconnect);
        });
        let target = Target {
            subprotocol: None,
            url: String::new(),
            host: "localhost".into(),
            login: None,
            passcode: None,
        };
        let mut subscriber = StompTcp::connect(&url, &target, None).await.unwrap();
        subscriber.subscribe("bench-0", "/topic/t").await.unwrap();
        for _ in 0..2 {
            assert_eq!(
                subscriber.next_body().await,
                Ok(Some(Bytes::from_static(b"0:0:7")))
            );
        }
        subscriber.close().await;
        server.await.unwrap();
    }
}

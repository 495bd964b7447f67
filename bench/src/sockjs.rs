//! SockJS subscribers for the fan-out scenario, as a page running
//! `Stomp.over(new SockJS(url))` would be: over the `websocket` transport, or
//! over `xhr_streaming` (what sockjs-client falls back to where WebSockets are
//! blocked), spoken as HTTP/1.1 on a plain TCP socket. Each carries one STOMP
//! session whose frames travel as JSON strings in SockJS frames (`o`, `h`,
//! `a[...]`, `c[...]`), read back with the broker's own STOMP decoder.
//!
//! The HTTP side is written by hand rather than taken from an HTTP client
//! crate: it needs one request shape and one response shape (a chunked
//! stream), must hand over frames as they arrive, and must see exactly where
//! a streaming response ends (at `[sockjs] stream_bytes_limit`) to open the
//! next one, as sockjs-client does.

use crate::client::{self, Target};
use crate::stomp_tcp::FrameReader;
use crate::subscribers::{self, BodySource, SubscriberTask};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};
use stomphub::stomp::{Command, Frame, Version, encode_to_vec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Bound on each step of setting up a subscriber, as for the STOMP ones.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// The broker's response heads are a few hundred bytes; far more is not it.
const MAX_HEAD: usize = 16 * 1024;
/// A chunk-size line is a few hex digits; far more is not HTTP.
const MAX_SIZE_LINE: usize = 1024;

/// One SockJS frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum SockJsFrame {
    Open,
    Heartbeat,
    /// The messages of an `a[...]` frame: here, each one STOMP frame.
    Messages(Vec<String>),
    Close {
        code: u16,
        reason: String,
    },
}

/// Reads one SockJS frame: its first letter says which; an `a` array of
/// strings or a `c` pair `[code, reason]` follows as JSON.
pub fn parse_frame(text: &[u8]) -> Result<SockJsFrame, String> {
    let bad = || {
        let shown = &text[..text.len().min(80)];
        format!("not a SockJS frame: {:?}", String::from_utf8_lossy(shown))
    };
    match text.split_first() {
        Some((b'o', [])) => Ok(SockJsFrame::Open),
        // `h`, and the 2048 of them that start an xhr-streaming response,
        // which sockjs-client takes for a heartbeat as well.
        Some((b'h', rest)) if rest.iter().all(|&b| b == b'h') => Ok(SockJsFrame::Heartbeat),
        Some((b'a', json)) => serde_json::from_slice(json)
            .map(SockJsFrame::Messages)
            .map_err(|_| bad()),
        Some((b'c', json)) => serde_json::from_slice::<(u16, String)>(json)
            .map(|(code, reason)| SockJsFrame::Close { code, reason })
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A STOMP frame as a SockJS client sends it: a JSON array of one string.
pub fn client_message(frame: &Frame) -> Result<String, String> {
    let stomp = String::from_utf8(encode_to_vec(frame, Version::V1_2))
        .map_err(|_| "SockJS carries text: this STOMP frame is not UTF-8".to_owned())?;
    serde_json::to_string(&[stomp]).map_err(|e| e.to_string())
}

/// The STOMP side of a SockJS session: SockJS frames in, STOMP frames out,
/// through the same frame reader as STOMP over TCP (each message is STOMP bytes).
#[derive(Default)]
pub struct StompOverSockJs {
    reader: FrameReader,
}

impl StompOverSockJs {
    /// Takes one SockJS frame; a close frame ends the session, as an error.
    pub fn take(&mut self, frame: SockJsFrame) -> Result<(), String> {
        match frame {
            SockJsFrame::Open | SockJsFrame::Heartbeat => Ok(()),
            SockJsFrame::Messages(messages) => messages
                .iter()
                .try_for_each(|message| self.reader.feed(message.as_bytes())),
            SockJsFrame::Close { code, reason } => Err(format!(
                "SockJS session closed by the server: {code} {reason}"
            )),
        }
    }

    pub fn next_frame(&mut self) -> Option<Frame> {
        self.reader.next_frame()
    }
}

/// What the two transports have in common: send a client message, read the
/// next SockJS frame.
pub(crate) trait Session: Sized + Send + 'static {
    /// Opens the transport for SockJS session `session` of server `server`
    /// on `target`'s endpoint; no STOMP is said yet.
    async fn open(target: &Target, server: &str, session: &str) -> Result<Self, String>;
    async fn send(&mut self, message: String) -> Result<(), String>;
    /// The next SockJS frame. Cancel-safe, as [`BodySource`] asks, except
    /// while a new xhr-streaming request is being made.
    async fn next_sockjs(&mut self) -> Result<SockJsFrame, String>;
    fn stomp(&mut self) -> &mut StompOverSockJs;
}

async fn next_frame<S: Session>(session: &mut S) -> Result<Frame, String> {
    loop {
        if let Some(frame) = session.stomp().next_frame() {
            return Ok(frame);
        }
        let frame = session.next_sockjs().await?;
        session.stomp().take(frame)?;
    }
}

async fn within<T>(what: &str, step: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(SETUP_LIMIT, step)
        .await
        .map_err(|_| format!("no {what} within {SETUP_LIMIT:?}"))?
}

/// Waits for the open frame, CONNECTs (STOMP 1.2, no heart-beats: SockJS
/// has its own), and SUBSCRIBEs with a receipt, so the subscription is in
/// place on return.
async fn connect_and_subscribe<S: Session>(
    session: &mut S,
    target: &Target,
    id: &str,
    destination: &str,
) -> Result<(), String> {
    within("SockJS open frame", async {
        loop {
            match session.next_sockjs().await? {
                SockJsFrame::Open => return Ok(()),
                SockJsFrame::Heartbeat => continue,
                other => return Err(format!("expected the SockJS open frame, got {other:?}")),
            }
        }
    })
    .await?;
    let mut connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("host", target.host.as_str())
        .header("heart-beat", "0,0");
    for (name, value) in [("login", &target.login), ("passcode", &target.passcode)] {
        if let Some(value) = value {
            connect.headers.push(name, value.as_str());
        }
    }
    session.send(client_message(&connect)?).await?;
    let reply = within("answer to CONNECT", next_frame(session)).await?;
    if reply.command != Command::Connected {
        return Err(format!("CONNECT refused: {:?}", reply.get("message")));
    }
    let receipt = format!("sub-{id}");
    let subscribe = Frame::new(Command::Subscribe)
        .header("id", id)
        .header("destination", destination)
        .header("receipt", receipt.as_str());
    session.send(client_message(&subscribe)?).await?;
    let reply = within("receipt for SUBSCRIBE", next_frame(session)).await?;
    if reply.command == Command::Receipt && reply.get("receipt-id") == Some(receipt.as_str()) {
        Ok(())
    } else {
        Err(format!("SUBSCRIBE {destination} answered with {reply:?}"))
    }
}

/// One SockJS subscriber of transport `S` per destination, connected to
/// `targets` in turn, each ready (CONNECTED and subscription receipted) before
/// the next is opened.
pub(crate) async fn start<S: Session + BodySource>(
    targets: &[Target],
    destinations: &[String],
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> Result<Vec<SubscriberTask>, String> {
    // Session ids must be unique per client, also across runs on one broker.
    let run = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    let mut tasks = Vec::with_capacity(destinations.len());
    for (index, destination) in destinations.iter().enumerate() {
        let target = &targets[index % targets.len()];
        // Server ids only group sessions for sticky load balancing.
        let server = format!("{:03}", index % 1000);
        let session_id = format!("bench-{}-{run}-{index}", std::process::id());
        let mut session =
            within("SockJS connection", S::open(target, &server, &session_id)).await?;
        connect_and_subscribe(&mut session, target, &format!("bench-{index}"), destination).await?;
        tasks.push(subscribers::spawn(
            session,
            publishers,
            expected_per_publisher,
            stop,
            base,
        ));
    }
    Ok(tasks)
}

async fn message_body<S: Session>(session: &mut S) -> Result<Option<Bytes>, String> {
    let frame = next_frame(session).await?;
    Ok((frame.command == Command::Message).then_some(frame.body))
}

/// `{endpoint}/{server}/{session}/` of `target`, checked to be on loopback.
fn session_url(target: &Target, server: &str, session: &str) -> Result<String, String> {
    client::only_loopback(&target.url)?;
    Ok(format!(
        "{}/{server}/{session}/",
        target.url.trim_end_matches('/')
    ))
}

async fn tcp(authority: &str) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("{authority}: {e}"))?;
    // Frames are small and latency is measured: no Nagle delay.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

/// The SockJS `websocket` transport: a text message per SockJS frame.
pub struct WebSocketSubscriber {
    ws: WebSocketStream<TcpStream>,
    stomp: StompOverSockJs,
}

impl Session for WebSocketSubscriber {
    async fn open(target: &Target, server: &str, session: &str) -> Result<Self, String> {
        let url = format!("{}websocket", session_url(target, server, session)?);
        let socket = tcp(client::authority(&url)?).await?;
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), socket)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(WebSocketSubscriber {
            ws,
            stomp: StompOverSockJs::default(),
        })
    }

    async fn send(&mut self, message: String) -> Result<(), String> {
        self.ws
            .send(Message::text(message))
            .await
            .map_err(|e| e.to_string())
    }

    async fn next_sockjs(&mut self) -> Result<SockJsFrame, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return parse_frame(text.as_bytes()),
                Some(Ok(Message::Close(close))) => {
                    return Err(format!("WebSocket closed by the server: {close:?}"));
                }
                // Pings (tungstenite answers them) and pongs.
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("WebSocket ended".into()),
            }
        }
    }

    fn stomp(&mut self) -> &mut StompOverSockJs {
        &mut self.stomp
    }
}

impl BodySource for WebSocketSubscriber {
    async fn next_body(&mut self) -> Result<Option<Bytes>, String> {
        message_body(self).await
    }
}

/// An HTTP/1.1 request; `close` asks the server to end the connection after
/// answering, which is how a one-off request knows its answer is complete.
fn post(path: &str, authority: &str, body: &str, close: bool) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// What the reader needs of a response head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    chunked: bool,
    close: bool,
}

/// Parses a response head (status line and headers, without the blank line).
fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3)?.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 response: {text:?}"))?;
    let mut parsed = Head {
        status,
        chunked: false,
        close: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => parsed.chunked = value.contains("chunked"),
            "connection" => parsed.close = value.contains("close"),
            _ => {}
        }
    }
    Ok(parsed)
}

/// Where a [`StreamingResponse`] is in its response: the head, then the
/// chunked body (RFC 9112 §7.1): size line, data, CRLF, ..., `0` and trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Head,
    Size,
    Data(usize),
    DataEnd,
    Trailers,
    Ended,
}

/// One xhr-streaming response read as it arrives: the head, the chunked body,
/// and the body split at `\n` into SockJS frames. Bytes may arrive cut
/// anywhere; the broker happens to write one frame per chunk, but proxies and
/// TCP need not keep that, so nothing here relies on it.
#[derive(Debug)]
pub struct StreamingResponse {
    /// Bytes from the socket not parsed yet.
    input: BytesMut,
    part: Part,
    /// Body bytes not yet split into frames.
    body: BytesMut,
    /// The server closes the connection after this response.
    close_after: bool,
}

impl Default for StreamingResponse {
    fn default() -> Self {
        StreamingResponse {
            input: BytesMut::with_capacity(64 * 1024),
            part: Part::Head,
            body: BytesMut::new(),
            close_after: false,
        }
    }
}

impl StreamingResponse {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// The whole response has been read.
    pub fn ended(&self) -> bool {
        self.part == Part::Ended
    }

    /// Reads the next response on the same connection.
    fn restart(&mut self) {
        self.part = Part::Head;
        self.close_after = false;
    }

    /// The next complete line of the body (a SockJS frame, without its `\n`);
    /// `None` when more bytes are needed or the response has ended.
    pub fn next_line(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(end) = self.body.iter().position(|&b| b == b'\n') {
                let line = self.body.split_to(end + 1).freeze();
                return Ok(Some(line.slice(..end)));
            }
            match self.part {
                Part::Head => {
                    let Some(end) = find(&self.input, b"\r\n\r\n") else {
                        return self.more(MAX_HEAD, "response head");
                    };
                    let head = self.input.split_to(end + 4);
                    let parsed = parse_head(&head[..end])?;
                    if parsed.status != 200 {
                        return Err(format!(
                            "xhr_streaming answered {}",
                            String::from_utf8_lossy(&head).trim_end()
                        ));
                    }
                    // The broker streams with chunked encoding; a body of
                    // known length would be some other answer.
                    if !parsed.chunked {
                        return Err("xhr_streaming answered without chunked encoding".into());
                    }
                    self.close_after = parsed.close;
                    self.part = Part::Size;
                }
                Part::Size => {
                    let Some(end) = find(&self.input, b"\r\n") else {
                        return self.more(MAX_SIZE_LINE, "chunk size line");
                    };
                    let line = self.input.split_to(end + 2);
                    // A size may carry `;name=value` extensions: none matter here.
                    let size = std::str::from_utf8(&line[..end])
                        .ok()
                        .and_then(|line| line.split(';').next())
                        .and_then(|hex| usize::from_str_radix(hex.trim(), 16).ok())
                        .ok_or_else(|| format!("bad chunk size line {:?}", &line[..end]))?;
                    self.part = if size == 0 {
                        Part::Trailers
                    } else {
                        Part::Data(size)
                    };
                }
                Part::Data(left) => {
                    if self.input.is_empty() {
                        return Ok(None);
                    }
                    let take = left.min(self.input.len());
                    self.body.extend_from_slice(&self.input.split_to(take));
                    self.part = if take == left {
                        Part::DataEnd
                    } else {
                        Part::Data(left - take)
                    };
                }
                Part::DataEnd => {
                    if self.input.len() < 2 {
                        return Ok(None);
                    }
                    if self.input[..2] != *b"\r\n" {
                        return Err("a chunk not followed by CRLF".into());
                    }
                    self.input.advance(2);
                    self.part = Part::Size;
                }
                Part::Trailers => {
                    let Some(end) = find(&self.input, b"\r\n") else {
                        return self.more(MAX_HEAD, "trailer");
                    };
                    self.input.advance(end + 2);
                    // Trailer lines until an empty one, which ends the response.
                    if end == 0 {
                        if !self.body.is_empty() {
                            return Err("the response ended inside a SockJS frame".into());
                        }
                        self.part = Part::Ended;
                    }
                }
                Part::Ended => return Ok(None),
            }
        }
    }

    /// `None` (wait for more), unless what is waiting is already too long.
    fn more(&self, limit: usize, what: &str) -> Result<Option<Bytes>, String> {
        if self.input.len() > limit {
            Err(format!("{what} over {limit} bytes"))
        } else {
            Ok(None)
        }
    }
}

/// The SockJS `xhr_streaming` transport: frames arrive on a long POST
/// response, one per line; the client's messages go in separate `xhr_send`
/// POSTs. When a response ends at the server's byte limit, the next one
/// goes on for the same session, on the same connection unless the server
/// said it closes it.
pub struct XhrStreamingSubscriber {
    authority: String,
    /// `{endpoint}/{server}/{session}/`: the transports' names follow.
    session_path: String,
    stream: TcpStream,
    response: StreamingResponse,
    stomp: StompOverSockJs,
}

/// The path and `host:port` of a `ws://host:port/path` URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let authority = client::authority(url)?;
    let path = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_prefix(authority))
        .ok_or_else(|| format!("{url}: expected ws://host:port/..."))?;
    Ok((authority.to_owned(), path.to_owned()))
}

impl XhrStreamingSubscriber {
    fn streaming_request(&self) -> String {
        let path = format!("{}xhr_streaming", self.session_path);
        post(&path, &self.authority, "", false)
    }

    /// Asks for the next streaming response (see the type's documentation).
    async fn reopen(&mut self) -> Result<(), String> {
        if self.response.close_after {
            self.stream = tcp(&self.authority).await?;
        }
        self.response.restart();
        let request = self.streaming_request();
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("xhr_streaming request: {e}"))
    }
}

impl Session for XhrStreamingSubscriber {
    async fn open(target: &Target, server: &str, session: &str) -> Result<Self, String> {
        let (authority, session_path) = split_url(&session_url(target, server, session)?)?;
        let stream = tcp(&authority).await?;
        let mut subscriber = XhrStreamingSubscriber {
            authority,
            session_path,
            stream,
            response: StreamingResponse::default(),
            stomp: StompOverSockJs::default(),
        };
        let request = subscriber.streaming_request();
        subscriber
            .stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("xhr_streaming request: {e}"))?;
        Ok(subscriber)
    }

    /// One `xhr_send` on a connection of its own, which the server closes
    /// after answering; 204 means the session took the message.
    async fn send(&mut self, message: String) -> Result<(), String> {
        let path = format!("{}xhr_send", self.session_path);
        let mut socket = tcp(&self.authority).await?;
        let request = post(&path, &self.authority, &message, true);
        socket
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("xhr_send: {e}"))?;
        let mut answer = Vec::new();
        // `Connection: close`: the answer ends with the connection; `take`
        // bounds what a misbehaving server could make this read.
        (&mut socket)
            .take(MAX_HEAD as u64)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("xhr_send: {e}"))?;
        let head_end = find(&answer, b"\r\n\r\n").unwrap_or(answer.len());
        match parse_head(&answer[..head_end])? {
            Head { status: 204, .. } => Ok(()),
            _ => Err(format!(
                "xhr_send answered {}",
                String::from_utf8_lossy(&answer).trim_end()
            )),
        }
    }

    async fn next_sockjs(&mut self) -> Result<SockJsFrame, String> {
        loop {
            if let Some(line) = self.response.next_line()? {
                return parse_frame(&line);
            }
            if self.response.ended() {
                self.reopen().await?;
                continue;
            }
            self.response.input.reserve(64 * 1024);
            let read = self
                .stream
                .read_buf(&mut self.response.input)
                .await
                .map_err(|e| format!("xhr_streaming: {e}"))?;
            if read == 0 {
                return Err("xhr_streaming: the connection ended inside a response".into());
            }
        }
    }

    fn stomp(&mut self) -> &mut StompOverSockJs {
        &mut self.stomp
    }
}

impl BodySource for XhrStreamingSubscriber {
    async fn next_body(&mut self) -> Result<Option<Bytes>, String> {
        message_body(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE_A: &str =
        "MESSAGE\ndestination:/topic/t\nsubscription:0\nmessage-id:1\ncontent-length:3\n\nabc\0";
    const MESSAGE_B: &str =
        "MESSAGE\ndestination:/topic/t\nsubscription:0\nmessage-id:2\n\nd\"e\n\0";

    /// A whole xhr-streaming response as the broker sends it: the prelude, the
    /// open frame, an `a` frame of two STOMP messages, a heartbeat, one frame
    /// in two chunks (which the broker does not do, but a proxy may), the end.
    fn response() -> Vec<u8> {
        let prelude = format!("{}\n", "h".repeat(2048));
        let messages = format!(
            "a{}\n",
            serde_json::to_string(&[MESSAGE_A, MESSAGE_B]).unwrap()
        );
        let (first, second) = messages.split_at(20);
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/javascript;charset=UTF-8\r\n\
            Transfer-Encoding: chunked\r\ndate: x\r\n\r\n"
            .to_vec();
        for chunk in [prelude.as_str(), "o\n", &messages, "h\n", first, second] {
            out.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
        }
        // A chunk extension, then the end and no trailers.
        out.extend_from_slice(b"4;x=y\r\nh\nh\n\r\n0\r\n\r\n");
        out
    }

    fn lines(parser: &mut StreamingResponse, into: &mut Vec<String>) {
        while let Some(line) = parser.next_line().expect("a valid response") {
            into.push(String::from_utf8(line.to_vec()).unwrap());
        }
    }

    fn expected_lines() -> Vec<String> {
        let messages = format!(
            "a{}",
            serde_json::to_string(&[MESSAGE_A, MESSAGE_B]).unwrap()
        );
        let mut expected = vec!["h".repeat(2048), "o".into(), messages.clone(), "h".into()];
        expected.extend([messages, "h".into(), "h".into()]);
        expected
    }

    #[test]
    fn a_response_split_anywhere_reads_the_same() {
        let response = response();
        // Cut in two at every place: inside the head, a size line, a CRLF, a frame.
        for cut in 0..=response.len() {
            let mut parser = StreamingResponse::default();
            let mut got = Vec::new();
            parser.feed(&response[..cut]);
            lines(&mut parser, &mut got);
            assert!(!parser.ended() || cut == response.len(), "cut {cut}");
            parser.feed(&response[cut..]);
            lines(&mut parser, &mut got);
            assert_eq!(got, expected_lines(), "cut at {cut}");
            assert!(parser.ended(), "cut at {cut}");
        }
        // And one byte at a time.
        let mut parser = StreamingResponse::default();
        let mut got = Vec::new();
        for byte in &response {
            parser.feed(std::slice::from_ref(byte));
            lines(&mut parser, &mut got);
        }
        assert_eq!(got, expected_lines());
        assert!(parser.ended());
    }

    #[test]
    fn the_next_response_on_the_connection_reads_after_a_restart() {
        let mut parser = StreamingResponse::default();
        let mut got = Vec::new();
        parser.feed(&response());
        lines(&mut parser, &mut got);
        assert!(parser.ended() && !parser.close_after);
        parser.restart();
        parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\ntransfer-encoding: chunked\r\n\r\n2\r\no\n\r\n");
        got.clear();
        lines(&mut parser, &mut got);
        assert_eq!(got, ["o"]);
        assert!(!parser.ended() && parser.close_after);
    }

    #[test]
    fn refusals_and_broken_framing_are_errors() {
        let refused = |bytes: &[u8]| {
            let mut parser = StreamingResponse::default();
            parser.feed(bytes);
            parser.next_line().unwrap_err()
        };
        assert!(
            refused(b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nno\n").contains("404")
        );
        assert!(refused(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\no\n").contains("chunked"));
        assert!(
            refused(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
                .contains("size")
        );
        assert!(
            refused(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\noX\r\n")
                .contains("CRLF")
        );
        assert!(
            refused(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\no\r\n0\r\n\r\n")
                .contains("inside")
        );
        assert!(refused(&[b'x'; MAX_HEAD + 1]).contains("head"));
    }

    #[test]
    fn sockjs_frames() {
        assert_eq!(parse_frame(b"o"), Ok(SockJsFrame::Open));
        assert_eq!(parse_frame(b"h"), Ok(SockJsFrame::Heartbeat));
        assert_eq!(
            parse_frame("h".repeat(2048).as_bytes()),
            Ok(SockJsFrame::Heartbeat)
        );
        assert_eq!(
            parse_frame(br#"a["CONNECTED\nversion:1.2\n\n\u0000","x\ud83d\ude00"]"#),
            Ok(SockJsFrame::Messages(vec![
                "CONNECTED\nversion:1.2\n\n\0".into(),
                "x😀".into()
            ]))
        );
        assert_eq!(
            parse_frame(br#"c[3000,"Go away!"]"#),
            Ok(SockJsFrame::Close {
                code: 3000,
                reason: "Go away!".into()
            })
        );
        for bad in [
            &b""[..],
            b"oo",
            b"hx",
            b"a[1]",
            b"a[\"x\"",
            b"c[1]",
            b"m\"x\"",
            b"x",
        ] {
            assert!(
                parse_frame(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn stomp_frames_come_out_of_sockjs_messages() {
        let mut stomp = StompOverSockJs::default();
        let line = format!(
            "a{}",
            serde_json::to_string(&[MESSAGE_A, MESSAGE_B]).unwrap()
        );
        stomp.take(parse_frame(line.as_bytes()).unwrap()).unwrap();
        stomp.take(SockJsFrame::Heartbeat).unwrap();
        let first = stomp.next_frame().unwrap();
        assert_eq!(
            (first.command, &first.body[..]),
            (Command::Message, &b"abc"[..])
        );
        let second = stomp.next_frame().unwrap();
        assert_eq!(&second.body[..], b"d\"e\n");
        assert!(stomp.next_frame().is_none());
        assert!(
            stomp
                .take(SockJsFrame::Close {
                    code: 1002,
                    reason: "Connection interrupted".into()
                })
                .unwrap_err()
                .contains("1002")
        );
    }

    #[test]
    fn client_messages_are_json_arrays_of_one_stomp_frame() {
        let frame = Frame::new(Command::Subscribe)
            .header("id", "0")
            .header("destination", "/topic/t");
        assert_eq!(
            client_message(&frame).unwrap(),
            r#"["SUBSCRIBE\nid:0\ndestination:/topic/t\n\n\u0000"]"#
        );
    }

    #[test]
    fn urls() {
        let target = Target {
            subprotocol: None,
            url: "ws://127.0.0.1:8080/endpoint-websocket".into(),
            host: "localhost".into(),
            login: None,
            passcode: None,
        };
        let session = session_url(&target, "000", "s1").unwrap();
        assert_eq!(session, "ws://127.0.0.1:8080/endpoint-websocket/000/s1/");
        assert_eq!(
            split_url(&session).unwrap(),
            (
                "127.0.0.1:8080".to_owned(),
                "/endpoint-websocket/000/s1/".to_owned()
            )
        );
        let remote = Target {
            url: "ws://10.0.0.1:8080/endpoint-websocket".into(),
            ..target
        };
        assert!(session_url(&remote, "000", "s1").is_err());
    }
}

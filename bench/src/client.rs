//! A small STOMP client over tokio-tungstenite for load generation: connect,
//! subscribe with a receipt, send frames, and decode what arrives.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use stomphub::stomp::{Command, Decoded, Decoder, Frame, Limits, Version, encode};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// CONNECT `host` header (RabbitMQ wants its virtual host, `/`).
    pub host: String,
    pub login: Option<String>,
    pub passcode: Option<String>,
}

pub struct Sender {
    sink: SplitSink<Ws, Message>,
}

pub struct Receiver {
    stream: SplitStream<Ws>,
    decoder: Decoder,
    pending: std::collections::VecDeque<Frame>,
}

const HANDSHAKE_LIMIT: Duration = Duration::from_secs(30);

fn only_loopback(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "{url}: the load generator only targets loopback addresses"
        ))
    }
}

/// Opens a WebSocket and completes CONNECT.
pub async fn connect(target: &Target) -> Result<(Sender, Receiver), String> {
    connect_from(target, None).await
}

async fn tcp_from(authority: &str, source: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(authority).await;
    };
    let remote = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(ip, 0))?;
    socket.connect(remote).await
}

/// Like [`connect`], from the local address `source` when given.
pub async fn connect_from(
    target: &Target,
    source: Option<std::net::IpAddr>,
) -> Result<(Sender, Receiver), String> {
    only_loopback(&target.url)?;
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v12.stomp, v11.stomp, v10.stomp"),
    );
    let authority = crate::sse_client::authority(&target.url)?;
    let open = async {
        let tcp = tcp_from(authority, source)
            .await
            .map_err(|e| format!("{authority}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
            .await
            .map_err(|e| format!("{}: {e}", target.url))
    };
    let (ws, _) = tokio::time::timeout(HANDSHAKE_LIMIT, open)
        .await
        .map_err(|_| format!("{}: handshake timed out", target.url))??;
    let (sink, stream) = ws.split();
    let mut sender = Sender { sink };
    let limits = Limits {
        max_frame_size: 1 << 24,
        max_body_size: 1 << 24,
        ..Limits::default()
    };
    let mut receiver = Receiver {
        stream,
        decoder: Decoder::new(limits),
        pending: Default::default(),
    };
    let mut connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("host", target.host.clone())
        .header("heart-beat", "0,0");
    if let Some(login) = &target.login {
        connect.headers.push("login", login.clone());
    }
    if let Some(passcode) = &target.passcode {
        connect.headers.push("passcode", passcode.clone());
    }
    sender.send(&connect).await?;
    let reply = tokio::time::timeout(HANDSHAKE_LIMIT, receiver.next_frame())
        .await
        .map_err(|_| "no CONNECTED in time".to_owned())??;
    if reply.command != Command::Connected {
        return Err(format!("CONNECT refused: {:?}", reply.get("message")));
    }
    Ok((sender, receiver))
}

impl Sender {
    /// Queues a frame without flushing.
    pub async fn feed(&mut self, frame: &Frame) -> Result<(), String> {
        let mut buffer = bytes::BytesMut::with_capacity(stomphub::stomp::encoded_len_hint(frame));
        encode(frame, Version::V1_2, &mut buffer);
        let bytes = buffer.freeze();
        let message = match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        };
        self.sink.feed(message).await.map_err(|e| e.to_string())
    }

    pub async fn flush(&mut self) -> Result<(), String> {
        self.sink.flush().await.map_err(|e| e.to_string())
    }

    pub async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        self.feed(frame).await?;
        self.flush().await
    }

    /// Sends raw bytes as one binary message (for malformed input).
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        self.sink
            .send(Message::Binary(Bytes::from(bytes)))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

impl Receiver {
    /// The next STOMP frame (heart-beats skipped); an error when the connection ends.
    pub async fn next_frame(&mut self) -> Result<Frame, String> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(frame);
            }
            let data = match self.stream.next().await {
                Some(Ok(Message::Text(text))) => Bytes::from(text),
                Some(Ok(Message::Binary(data))) => data,
                Some(Ok(Message::Close(close))) => {
                    return Err(format!("closed by the broker: {close:?}"));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("connection ended".into()),
            };
            self.decoder.feed(&data);
            while let Some(item) = self.decoder.decode().map_err(|e| e.to_string())? {
                if let Decoded::Frame(frame) = item {
                    self.pending.push_back(frame);
                }
            }
        }
    }
}

/// Subscribes and waits for the receipt, so publishing may start right after.
pub async fn subscribe(
    sender: &mut Sender,
    receiver: &mut Receiver,
    id: &str,
    destination: &str,
) -> Result<(), String> {
    let receipt = format!("subscribed-{id}");
    sender
        .send(
            &Frame::new(Command::Subscribe)
                .header("id", id)
                .header("destination", destination)
                .header("receipt", receipt.clone()),
        )
        .await?;
    let reply = tokio::time::timeout(HANDSHAKE_LIMIT, receiver.next_frame())
        .await
        .map_err(|_| "no receipt for SUBSCRIBE in time".to_owned())??;
    match reply.command {
        Command::Receipt if reply.get("receipt-id") == Some(receipt.as_str()) => Ok(()),
        _ => Err(format!("SUBSCRIBE failed: {:?}", reply.get("message"))),
    }
}

#[cfg(test)]
mod tests {
    use super::only_loopback;

    #[test]
    fn only_loopback_targets_are_allowed() {
        assert!(only_loopback("ws://127.0.0.1:8080/endpoint-websocket").is_ok());
        assert!(only_loopback("ws://localhost:15674/ws").is_ok());
        assert!(only_loopback("ws://[::1]:8080/x").is_ok());
        assert!(only_loopback("ws://10.0.0.1:8080/x").is_err());
        assert!(only_loopback("wss://127.0.0.1/x").is_err());
    }
}

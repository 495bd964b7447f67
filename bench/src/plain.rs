//! Plain WebSocket subscribers, for the broker's `[[websocket.endpoint]]`
//! sockets: a page's bare `new WebSocket(url)`. The broker subscribes such a
//! socket to its endpoint's destinations during the handshake, so the client
//! says nothing at all; each delivery arrives as one text message holding
//! only the body (binary when the body is not UTF-8), with no STOMP framing.
//! Comparing these with STOMP subscribers shows what the framing and the
//! STOMP session cost the broker.

use crate::client;
use crate::subscribers::{self, BodySource, SubscriberTask};
use bytes::Bytes;
use futures_util::StreamExt;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Bound on opening one socket, as for the STOMP connections: generous,
/// because the `conns` scenario opens thousands at once.
const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// One socket on a plain endpoint.
pub struct PlainSubscriber {
    ws: WebSocketStream<TcpStream>,
}

impl PlainSubscriber {
    /// Opens `url` (`ws://`, loopback only), from `source` when given. The
    /// broker subscribes the session before it answers the upgrade, so every
    /// message published after this returns reaches the socket.
    pub async fn open(url: &str, source: Option<IpAddr>) -> Result<Self, String> {
        client::only_loopback(url)?;
        let open = async {
            let socket = client::tcp(client::authority(url)?, source).await?;
            let (ws, _) = tokio_tungstenite::client_async(url, socket)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            Ok(PlainSubscriber { ws })
        };
        tokio::time::timeout(SETUP_LIMIT, open)
            .await
            .map_err(|_| format!("{url}: no WebSocket handshake within {SETUP_LIMIT:?}"))?
    }

    /// A WebSocket close, so the broker ends the session at once rather
    /// than when it notices the TCP connection gone.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// What one message from a plain endpoint is: a delivery's body, nothing
/// (control messages; tungstenite answers the broker's keep-alive pings by
/// itself), or the end of the socket.
pub fn body_of(message: Message) -> Result<Option<Bytes>, String> {
    match message {
        Message::Text(text) => Ok(Some(Bytes::from(text))),
        Message::Binary(data) => Ok(Some(data)),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
        Message::Close(close) => Err(match close {
            Some(close) => format!("closed by the server: {} {}", close.code, close.reason),
            None => "closed by the server".to_owned(),
        }),
    }
}

impl BodySource for PlainSubscriber {
    async fn next_body(&mut self) -> Result<Option<Bytes>, String> {
        // `StreamExt::next` on a WebSocketStream is cancel-safe: a message is
        // handed out whole or stays buffered.
        match self.ws.next().await {
            Some(Ok(message)) => body_of(message),
            Some(Err(error)) => Err(error.to_string()),
            None => Err("WebSocket ended".into()),
        }
    }
}

/// `count` sockets on the plain endpoint at `url`, opened one after another.
pub async fn start(
    url: &str,
    count: usize,
    publishers: usize,
    expected_per_publisher: u64,
    stop: &watch::Receiver<bool>,
    base: Instant,
) -> Result<Vec<SubscriberTask>, String> {
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let subscriber = PlainSubscriber::open(url, None).await?;
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
    use futures_util::SinkExt;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn text_and_binary_messages_are_bodies_control_messages_are_not() {
        assert_eq!(
            body_of(Message::text("0:1:2:xx")),
            Ok(Some(Bytes::from_static(b"0:1:2:xx")))
        );
        assert_eq!(
            body_of(Message::binary(vec![0xff, 0])),
            Ok(Some(Bytes::from_static(&[0xff, 0])))
        );
        assert_eq!(body_of(Message::Ping(Bytes::new())), Ok(None));
        assert_eq!(body_of(Message::Pong(Bytes::new())), Ok(None));
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "shutting down".into(),
        }));
        assert!(body_of(close).unwrap_err().contains("1001 shutting down"));
        assert!(body_of(Message::Close(None)).is_err());
    }

    #[test]
    fn only_loopback_urls_are_opened() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for url in ["ws://10.0.0.1:8080/bench/plain", "http://127.0.0.1/x"] {
            let refused = runtime.block_on(PlainSubscriber::open(url, None));
            assert!(refused.is_err(), "{url}");
        }
    }

    /// Against a stand-in endpoint: bodies come through as they were sent,
    /// a ping in between is skipped, and the close ends the stream.
    #[tokio::test]
    async fn reads_bodies_from_a_plain_endpoint() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/bench/plain", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
            for message in [
                Message::text("0:0:5:x"),
                Message::Ping(Bytes::new()),
                Message::binary(b"0:1:6:\xff".to_vec()),
            ] {
                ws.send(message).await.unwrap();
            }
            ws.close(None).await.unwrap();
        });
        let mut subscriber = PlainSubscriber::open(&url, None).await.unwrap();
        let mut bodies = Vec::new();
        let end = loop {
            match subscriber.next_body().await {
                Ok(Some(body)) => bodies.push(body),
                Ok(None) => continue,
                Err(end) => break end,
            }
        };
        assert_eq!(bodies, [&b"0:0:5:x"[..], b"0:1:6:\xff"]);
        assert!(end.contains("closed"), "{end}");
        server.await.unwrap();
    }
}

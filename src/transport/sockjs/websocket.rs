//! SockJS's `websocket` transport: the opening `o`, client messages as JSON
//! arrays of strings, each batch of STOMP frames as one `a[...]` message,
//! `h` keep-alives, and the `c[...]` frame before the WebSocket close.

use super::frame::{self, MessageError};
use super::session::{close_frame, push_literal};
use crate::broker::outbound::Outgoing;
use crate::session::driver::{CloseReason, Received, Wire, WireError};
use crate::stomp::Version;
use axum::extract::ws::{CloseFrame as WsCloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::BytesMut;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;

pub struct SockJsWebSocketWire {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    /// Messages of a client frame not yet handed to the driver.
    unread: VecDeque<String>,
    heartbeat: Duration,
    /// The longest STOMP message one string may hold.
    message_limit: usize,
}

impl SockJsWebSocketWire {
    /// Sends the open frame; the session starts after it.
    pub async fn open(
        mut socket: WebSocket,
        heartbeat: Duration,
        message_limit: usize,
    ) -> Result<Self, WireError> {
        socket
            .send(Message::Text(Utf8Bytes::from_static(frame::OPEN)))
            .await
            .map_err(WireError::new)?;
        let (sink, stream) = socket.split();
        Ok(SockJsWebSocketWire {
            sink,
            stream,
            unread: VecDeque::new(),
            heartbeat,
            message_limit,
        })
    }

    async fn write(&mut self, text: String) -> Result<(), WireError> {
        self.sink
            .send(Message::Text(text.into()))
            .await
            .map_err(WireError::new)
    }

    /// Queues the messages of one client frame; an error the driver answers.
    fn read_frame(&mut self, payload: &[u8]) -> Result<(), WireError> {
        match frame::parse_messages(payload) {
            Ok(messages) => {
                if let Some(size) = messages
                    .iter()
                    .map(String::len)
                    .find(|size| *size > self.message_limit)
                {
                    return Err(WireError::TooLarge {
                        size,
                        limit: self.message_limit,
                    });
                }
                self.unread.extend(messages);
                Ok(())
            }
            // An empty WebSocket message carries nothing.
            Err(MessageError::Empty) => Ok(()),
            Err(MessageError::BrokenJson) => Err(WireError::Malformed(
                "a SockJS message must be a JSON array of strings".into(),
            )),
        }
    }
}

impl Wire for SockJsWebSocketWire {
    type Chunk = String;

    async fn receive(&mut self) -> Result<Received<String>, WireError> {
        if let Some(message) = self.unread.pop_front() {
            return Ok(Received::Data(message));
        }
        match self.stream.next().await {
            Some(Ok(Message::Text(text))) => {
                self.read_frame(text.as_bytes())?;
                Ok(match self.unread.pop_front() {
                    Some(message) => Received::Data(message),
                    None => Received::Control,
                })
            }
            Some(Ok(Message::Binary(_))) => Err(WireError::Malformed(
                "SockJS messages are text; a binary WebSocket message was sent".into(),
            )),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Received::Control),
            Some(Ok(Message::Close(_))) | None => Ok(Received::Closed),
            Some(Err(error)) => Err(super::super::websocket::read_error(error)),
        }
    }

    async fn send(&mut self, batch: &[Outgoing], version: Version) -> Result<(), WireError> {
        // Straight into the one `a[...]` message: no string per frame.
        let mut buf = BytesMut::new();
        let mut out = String::from("a[");
        for (index, item) in batch.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            push_literal(item, version, &mut buf, &mut out);
        }
        out.push(']');
        self.write(out).await
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        self.write(r#"a["\n"]"#.to_owned()).await
    }

    async fn send_keepalive(&mut self) -> Result<(), WireError> {
        self.write(frame::HEARTBEAT.to_owned()).await
    }

    async fn close(&mut self, reason: Option<CloseReason>) {
        let closed = close_frame(reason);
        let _ = self.write(closed.encode()).await;
        let _ = self
            .sink
            .send(Message::Close(Some(WsCloseFrame {
                code: closed.code,
                reason: Utf8Bytes::from_static(closed.reason),
            })))
            .await;
        let _ = self.sink.close().await;
    }

    fn keepalive(&self) -> Option<Duration> {
        Some(self.heartbeat)
    }
}

//! STOMP over WebSocket: the upgrade (subprotocol choice, buffer sizes), and
//! the [`Wire`] that carries STOMP bytes in WebSocket messages and closes with
//! a close code. The session driver does everything else.

use crate::broker::outbound::Outgoing;
use crate::hub::Hub;
use crate::session::driver::{CloseReason, Received, Wire, WireError};
use crate::session::encode_outgoing;
use crate::stomp::Version;
use crate::transport::handshake::Admitted;
use crate::transport::listener::RemoteAddr;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;

/// STOMP subprotocols, newest first: the first one the client offers wins.
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Picks the newest STOMP subprotocol among the client's offers, if any.
pub fn choose_subprotocol<'a>(
    offered: impl Iterator<Item = &'a HeaderValue>,
) -> Option<&'static str> {
    let offered: Vec<&str> = offered
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    SUBPROTOCOLS
        .into_iter()
        .find(|known| offered.contains(known))
}

/// `GET {endpoint}` with `Upgrade: websocket`.
pub async fn upgrade(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    uri: Uri,
    headers: HeaderMap,
    mut ws: WebSocketUpgrade,
) -> Response {
    if hub.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let Admitted {
        handshake,
        remote,
        place,
    } = match super::handshake::run(&hub, &uri, &headers, peer, "websocket") {
        Ok(admitted) => admitted,
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(protocol) = choose_subprotocol(ws.requested_protocols()) {
        ws.set_selected_protocol(HeaderValue::from_static(protocol));
    }
    let settings = &hub.settings.websocket;
    let message_limit = message_limit(hub.sessions.rules().codec.max_frame_size);
    let ws = ws
        .read_buffer_size(settings.read_buffer_size)
        .write_buffer_size(settings.write_buffer_size)
        .max_message_size(message_limit)
        .max_frame_size(message_limit);
    let token = hub.lifecycle.tracker.token();
    ws.on_upgrade(move |socket| async move {
        super::run_session(&hub, handshake, WebSocketWire::new(socket), remote).await;
        drop(place);
        drop(token);
    })
}

/// The largest WebSocket message for frames of up to `max_frame_size`: room
/// for the frame plus the end-of-line heart-beats a client may append, so the
/// user knows one number, and a frame just over it still reaches the decoder,
/// whose ERROR says the same as the one for a larger message.
pub(super) fn message_limit(max_frame_size: usize) -> usize {
    max_frame_size.saturating_add(1024)
}

/// A read error the client caused, told apart from a broken connection so
/// that the driver can answer it with an ERROR and a close code.
pub(super) fn read_error(error: axum::Error) -> WireError {
    let error = error.into_inner();
    match error.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
            size,
            max_size,
        })) => WireError::TooLarge {
            size: *size,
            limit: *max_size,
        },
        Some(tungstenite::Error::Utf8(_)) => WireError::InvalidUtf8,
        _ => WireError::new(error),
    }
}

/// A STOMP connection over one WebSocket.
struct WebSocketWire {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
}

impl WebSocketWire {
    fn new(socket: WebSocket) -> Self {
        let (sink, stream) = socket.split();
        WebSocketWire { sink, stream }
    }
}

/// The STOMP bytes of a text or binary message.
struct Payload(Message);

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        match &self.0 {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => &[],
        }
    }
}

fn ws_message(bytes: Bytes) -> Message {
    // Text frames when possible: browsers hand text to stompjs without a decode step.
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes),
    }
}

impl Wire for WebSocketWire {
    type Chunk = Payload;

    async fn receive(&mut self) -> Result<Received<Payload>, WireError> {
        match self.stream.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                Ok(Received::Data(Payload(message)))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Received::Control),
            Some(Ok(Message::Close(_))) | None => Ok(Received::Closed),
            Some(Err(error)) => Err(read_error(error)),
        }
    }

    async fn send(&mut self, batch: &[Outgoing], version: Version) -> Result<(), WireError> {
        // One WebSocket message per STOMP frame: clients parse a message as frames.
        for item in batch {
            let mut buf = BytesMut::new();
            encode_outgoing(item, version, &mut buf);
            self.sink
                .feed(ws_message(buf.freeze()))
                .await
                .map_err(WireError::new)?;
        }
        self.sink.flush().await.map_err(WireError::new)
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        self.sink
            .send(Message::Text(Utf8Bytes::from_static("\n")))
            .await
            .map_err(WireError::new)
    }

    async fn close(&mut self, reason: Option<CloseReason>) {
        if let Some(CloseReason { code, reason }) = reason {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = self.sink.send(Message::Close(Some(frame))).await;
        }
        let _ = self.sink.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_offered_stomp_subprotocol_wins() {
        let offered = [
            HeaderValue::from_static("v10.stomp, v12.stomp"),
            HeaderValue::from_static("v11.stomp"),
        ];
        assert_eq!(choose_subprotocol(offered.iter()), Some("v12.stomp"));
        let offered = [HeaderValue::from_static("v11.stomp,v10.stomp")];
        assert_eq!(choose_subprotocol(offered.iter()), Some("v11.stomp"));
        let offered = [HeaderValue::from_static("mqtt")];
        assert_eq!(choose_subprotocol(offered.iter()), None);
        assert_eq!(choose_subprotocol([].iter()), None);
    }
}

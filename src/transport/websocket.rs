//! STOMP over WebSocket: the upgrade (subprotocol choice, buffer sizes) and one
//! task per connection that reads frames into its [`Session`] and writes the
//! session's outbound queue in batches, with heart-beats and timeouts.

use crate::app::session_info::Handshake;
use crate::security::Authenticator;
use crate::server::ServerState;
use crate::broker::outbound::{Closed, Outgoing};
use crate::session::{Flow, Session, SessionError, encode_outgoing, error_frame};
use crate::stomp::{Decoded, Decoder, Version, encode};
use crate::transport::listener::RemoteAddr;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

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
    State(state): State<Arc<ServerState>>,
    ConnectInfo(RemoteAddr(remote)): ConnectInfo<RemoteAddr>,
    uri: Uri,
    headers: HeaderMap,
    mut ws: WebSocketUpgrade,
) -> Response {
    if state.shutdown.is_cancelled() {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let handshake = match super::handshake::run(&state, &uri, &headers, remote, "websocket") {
        Ok(handshake) => handshake,
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(protocol) = choose_subprotocol(ws.requested_protocols()) {
        ws.set_selected_protocol(HeaderValue::from_static(protocol));
    }
    let settings = &state.config.websocket;
    let ws = ws
        .read_buffer_size(settings.read_buffer_size)
        .write_buffer_size(settings.write_buffer_size)
        .max_message_size(settings.max_message_size)
        .max_frame_size(settings.max_message_size);
    let token = state.tracker.token();
    ws.on_upgrade(move |socket| async move {
        run(socket, state, handshake, remote).await;
        drop(token);
    })
}

/// Why a connection ended; decides the WebSocket close code and the log line.
#[derive(Debug)]
enum End {
    /// The session asked to close (DISCONNECT or a protocol error, already answered).
    Session,
    ClientClosed,
    ReadFailed(String),
    WriteFailed(String),
    SlowConsumer(String),
    Timeout,
    Shutdown,
}

impl End {
    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            End::Session => (close_code::NORMAL, "session ended"),
            End::Timeout => (close_code::POLICY, "heart-beat or connect timeout"),
            End::SlowConsumer(_) => (close_code::POLICY, "slow consumer"),
            End::Shutdown => (close_code::AWAY, "server shutting down"),
            End::ClientClosed | End::ReadFailed(_) | End::WriteFailed(_) => return None,
        };
        Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Session => f.write_str("session ended (DISCONNECT or protocol error)"),
            End::ClientClosed => f.write_str("client closed the connection"),
            End::ReadFailed(why) => write!(f, "read failed: {why}"),
            End::WriteFailed(why) => write!(f, "write failed: {why}"),
            End::SlowConsumer(why) => write!(f, "slow consumer: {why}"),
            End::Timeout => f.write_str("heart-beat or connect timeout"),
            End::Shutdown => f.write_str("server shutting down"),
        }
    }
}

type Sink = SplitSink<WebSocket, Message>;

fn ws_message(bytes: Bytes) -> Message {
    // Text frames when possible: browsers hand text to stompjs without a decode step.
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes),
    }
}

struct Writer {
    sink: Sink,
    batch: Vec<Outgoing>,
    send_time_limit: Duration,
    last_write: Instant,
}

impl Writer {
    /// Writes everything queued and flushes once. Errors on a dead or too slow socket.
    async fn write_queued(&mut self, session: &Session) -> Result<Option<Closed>, End> {
        let closed = session.outbound().drain_into(&mut self.batch);
        if let Some(Closed::Overflow(overflow)) = closed {
            self.batch.clear();
            return Err(End::SlowConsumer(overflow.to_string()));
        }
        if self.batch.is_empty() {
            return Ok(closed);
        }
        let version = session.version().unwrap_or(Version::V1_2);
        let batch = std::mem::take(&mut self.batch);
        let sink = &mut self.sink;
        let write = async move {
            for item in &batch {
                let mut buf = BytesMut::new();
                encode_outgoing(item, version, &mut buf);
                sink.feed(ws_message(buf.freeze())).await?;
            }
            sink.flush().await?;
            Ok::<_, axum::Error>(batch)
        };
        // Race the write against its time limit and against the queue
        // overflowing meanwhile: a stalled socket must not keep a slow
        // consumer alive for the whole send_time_limit.
        let outbound = session.outbound();
        let deadline = tokio::time::sleep(self.send_time_limit);
        tokio::pin!(write, deadline);
        let mut woken = false;
        let result = loop {
            tokio::select! {
                result = &mut write => break result,
                _ = &mut deadline => {
                    return Err(End::SlowConsumer(format!(
                        "a write took longer than send_time_limit_ms = {}",
                        self.send_time_limit.as_millis()
                    )));
                }
                _ = outbound.ready() => {
                    if let Some(overflow) = outbound.overflow() {
                        return Err(End::SlowConsumer(format!(
                            "{overflow} while a write was stalled"
                        )));
                    }
                    // New items, not overflow: later pushes see a non-empty
                    // queue and stay quiet, except the one that overflows.
                    woken = true;
                }
            }
        };
        if woken {
            // The wake-up was for new items; hand it back to the main loop.
            outbound.wake();
        }
        match result {
            Ok(mut batch) => {
                batch.clear();
                self.batch = batch;
                self.last_write = Instant::now();
                Ok(closed)
            }
            Err(error) => Err(End::WriteFailed(error.to_string())),
        }
    }

    async fn heart_beat(&mut self) -> Result<(), End> {
        let send = async {
            self.sink
                .send(Message::Text(Utf8Bytes::from_static("\n")))
                .await
        };
        match timeout(self.send_time_limit, send).await {
            Ok(Ok(())) => {
                self.last_write = Instant::now();
                Ok(())
            }
            Ok(Err(error)) => Err(End::WriteFailed(error.to_string())),
            Err(_) => Err(End::SlowConsumer("heart-beat write timed out".into())),
        }
    }

    /// Best effort: what is queued, then a close frame, within send_time_limit.
    /// The queue's memory is already released, so waiting costs only a socket.
    async fn finish(&mut self, session: &Session, end: &End) {
        let _ = timeout(self.send_time_limit, async {
            match end {
                End::Session | End::Timeout | End::Shutdown => {
                    let _ = self.write_queued(session).await;
                }
                // The queue is closed and was dropped: tell the client directly.
                End::SlowConsumer(why) => {
                    let frame = error_frame(&SessionError::SlowConsumer(why.clone()), None, None);
                    let version = session.version().unwrap_or(Version::V1_2);
                    let mut buf = BytesMut::new();
                    encode(&frame, version, &mut buf);
                    let _ = self.sink.send(ws_message(buf.freeze())).await;
                }
                End::ClientClosed | End::ReadFailed(_) | End::WriteFailed(_) => {}
            }
            if let Some(frame) = end.close_frame() {
                let _ = self.sink.send(Message::Close(Some(frame))).await;
            }
            let _ = self.sink.close().await;
        })
        .await;
    }
}

/// Feeds one WebSocket message to the decoder and the session. Stops decoding
/// while the session's handlers are behind, so a fast sender is slowed, not cut off.
async fn receive(
    decoder: &mut Decoder,
    session: &mut Session,
    data: &[u8],
    shutdown: &CancellationToken,
    auth: &Arc<Authenticator>,
) -> Result<Flow, End> {
    decoder.feed(data);
    loop {
        match decoder.decode() {
            Ok(Some(Decoded::Frame(frame))) => {
                if session.checks_credentials_of(&frame) {
                    // A password check takes tens of milliseconds: off the async workers.
                    let verdict = tokio::select! {
                        verdict = auth.connect_async(&frame.headers) => verdict,
                        _ = shutdown.cancelled() => return Err(End::Shutdown),
                    };
                    session.set_credentials(verdict);
                }
                let flow = session.handle(frame);
                if let Some(version) = session.version() {
                    decoder.set_version(version);
                }
                if flow == Flow::Close {
                    return Ok(Flow::Close);
                }
                if session.is_waiting_for_app() {
                    tokio::select! {
                        _ = session.wait_for_app() => {}
                        _ = shutdown.cancelled() => return Err(End::Shutdown),
                    }
                }
            }
            Ok(Some(Decoded::HeartBeat)) => {}
            Ok(None) => return Ok(Flow::Continue),
            Err(error) => return Ok(session.fail(&SessionError::Decode(error))),
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn run(socket: WebSocket, state: Arc<ServerState>, handshake: Handshake, remote: SocketAddr) {
    let config = &state.config;
    let mut session = state.new_session(handshake);
    tracing::info!(session = session.id(), %remote, "connected");
    state.connections.fetch_add(1, Ordering::Relaxed);
    let (sink, stream) = socket.split();
    let mut writer = Writer {
        sink,
        batch: Vec::new(),
        send_time_limit: config.send_time_limit(),
        last_write: Instant::now(),
    };
    let end = serve(&mut session, &state, stream, &mut writer).await;
    writer.finish(&session, &end).await;
    session.end(&end.to_string());
    state.connections.fetch_sub(1, Ordering::Relaxed);
    match &end {
        End::SlowConsumer(_) => {
            tracing::warn!(session = session.id(), %remote, reason = %end, "disconnected")
        }
        _ => tracing::info!(session = session.id(), %remote, reason = %end, "disconnected"),
    }
}

async fn serve(
    session: &mut Session,
    state: &ServerState,
    mut stream: SplitStream<WebSocket>,
    writer: &mut Writer,
) -> End {
    let mut decoder = Decoder::new(state.config.codec_limits());
    let auth = &state.app.settings.auth;
    let connect_deadline =
        Instant::now() + Duration::from_millis(state.config.limits.connect_timeout_ms);
    let mut last_read = Instant::now();
    loop {
        let heartbeat = session.heartbeat();
        let read_deadline = match session.version() {
            None => Some(connect_deadline),
            Some(_) => heartbeat.read_timeout().map(|limit| last_read + limit),
        };
        let send_deadline = heartbeat.send_every.map(|every| writer.last_write + every);
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => return End::Shutdown,
            _ = session.outbound().ready() => {
                match writer.write_queued(session).await {
                    Err(end) => return end,
                    Ok(Some(Closed::Requested)) => return End::Session,
                    Ok(_) => {}
                }
            }
            message = stream.next() => {
                last_read = Instant::now();
                let received = match message {
                    Some(Ok(Message::Text(text))) => receive(&mut decoder, session, text.as_bytes(), &state.shutdown, auth).await,
                    Some(Ok(Message::Binary(data))) => receive(&mut decoder, session, &data, &state.shutdown, auth).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Flow::Continue),
                    Some(Ok(Message::Close(_))) | None => return End::ClientClosed,
                    Some(Err(error)) => return End::ReadFailed(error.to_string()),
                };
                let flow = match received {
                    Ok(flow) => flow,
                    Err(end) => return end,
                };
                if flow == Flow::Close {
                    return End::Session;
                }
            }
            _ = sleep_until_some(read_deadline) => {
                let error = match session.version() {
                    None => SessionError::ConnectTimeout(state.config.limits.connect_timeout_ms.into()),
                    Some(_) => SessionError::HeartBeatTimeout(heartbeat.read_timeout().unwrap_or_default().as_millis()),
                };
                session.fail(&error);
                return End::Timeout;
            }
            _ = sleep_until_some(send_deadline) => {
                if let Err(end) = writer.heart_beat().await {
                    return end;
                }
            }
        }
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

//! Plain WebSocket endpoints (`[[websocket.endpoint]]`, the seeds'
//! `@ServerEndpoint` classes): a socket is a session subscribed to the
//! endpoint's destinations whose deliveries go out as bare text frames; each
//! text it sends is answered with the reply text and published as a STOMP
//! SEND would be, through the same ACLs, interceptors and rate.

use crate::app::router::fill;
use crate::app::socket::{SOCKET_QUEUE, Socket, SocketHandler};
use crate::broker::outbound::Outgoing;
use crate::config::{EndpointConfig, MESSAGE_PLACEHOLDER};
use crate::hub::Hub;
use crate::session::driver::{CloseReason, Received, Wire, WireError};
use crate::session::{Flow, Session};
use crate::stomp::{Command, Frame, Version, encode};
use crate::transport::handshake::Admitted;
use crate::transport::listener::RemoteAddr;
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// What `/api/sessions` and events call these sessions' transport.
pub const TRANSPORT: &str = "plain-websocket";

/// Room for the headers of the SEND frame a message becomes: a message may
/// be this much shorter than `limits.max_frame_size`.
const SEND_OVERHEAD: usize = 512;

/// One route per configured endpoint.
pub fn routes(endpoints: &[EndpointConfig]) -> Router<Arc<Hub>> {
    endpoints.iter().fold(Router::new(), |router, endpoint| {
        let endpoint = Arc::new(endpoint.clone());
        let path = endpoint.path.clone();
        router.route(
            &path,
            get(
                move |hub: State<Arc<Hub>>,
                      peer: ConnectInfo<RemoteAddr>,
                      vars: Path<HashMap<String, String>>,
                      uri: Uri,
                      headers: HeaderMap,
                      ws: WebSocketUpgrade| {
                    upgrade(hub, peer, endpoint.clone(), vars, uri, headers, ws)
                },
            ),
        )
    })
}

/// A path variable fills destinations and the user name: it may not
/// change their shape (`/`, wildcards, user-name separators).
fn check_variable(name: &str, value: &str) -> Result<(), String> {
    let bad = value.is_empty()
        || value.len() > 128
        || value == "."
        || value == ".."
        || value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "/*?{},".contains(c));
    if bad {
        return Err(format!(
            "path variable {{{name}}} = {value:?} must be 1 to 128 characters without '/', '*', '?', '{{', '}}', ',' or white space"
        ));
    }
    Ok(())
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

async fn upgrade(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    endpoint: Arc<EndpointConfig>,
    Path(vars): Path<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if hub.is_shutting_down() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    for (name, value) in &vars {
        if let Err(message) = check_variable(name, value) {
            return refuse(StatusCode::BAD_REQUEST, message);
        }
    }
    let Admitted {
        mut handshake,
        remote,
        place,
    } = match super::handshake::run(&hub, &uri, &headers, peer, TRANSPORT) {
        Ok(admitted) => admitted,
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(template) = &endpoint.user {
        let user = fill(template, &vars);
        match &handshake.user {
            Some(verified) if *verified != user => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!("{verified:?} may not open the socket of user {user:?}"),
                );
            }
            Some(_) => {}
            // Where credentials are checked, a name in the path proves nothing.
            None if hub.auth().checks_credentials() => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "the socket of user {user:?} needs that user's bearer token (?{}=...)",
                        hub.auth().query_parameter()
                    ),
                );
            }
            None => {
                handshake.user = Some(user);
                handshake.user_is_claimed = true;
            }
        }
    }
    let attributes = &mut handshake.attributes;
    attributes.insert("endpoint".into(), endpoint.path.clone());
    for (name, value) in &vars {
        attributes.insert(format!("path.{name}"), value.clone());
    }
    let user = handshake.user.clone();
    let mut session = hub.sessions.open(handshake);
    let handled = hub.app.socket_handlers.contains_key(&endpoint.path);
    if let Err((status, reason)) = subscribe(&mut session, &endpoint, &vars, handled).await {
        return refuse(status, reason);
    }
    let rules = hub.sessions.rules();
    let message_limit = rules
        .codec
        .max_body_size
        .min(rules.codec.max_frame_size.saturating_sub(SEND_OVERHEAD));
    let settings = &hub.settings.websocket;
    let ws = ws
        .read_buffer_size(settings.read_buffer_size)
        .write_buffer_size(settings.write_buffer_size)
        .max_message_size(message_limit)
        .max_frame_size(message_limit);
    let on_open = endpoint.on_open.as_deref().map(|text| fill(text, &vars));
    let handler = hub.app.socket_handlers.get(&endpoint.path).map(|handler| {
        let socket = Socket::new(
            session.id().to_owned(),
            user,
            endpoint.path.clone(),
            vars.clone(),
            hub.app.clone(),
        );
        (handler.clone(), socket)
    });
    let wire_settings = PlainSettings {
        reply: endpoint.reply.as_deref().map(|text| fill(text, &vars)),
        publish: endpoint.publish.as_deref().map(|text| fill(text, &vars)),
        keepalive: hub.settings.ping_every,
        handler: handler.clone(),
    };
    let token = hub.lifecycle.tracker.token();
    tracing::debug!(session = session.id(), %remote, endpoint = %endpoint.path, "plain WebSocket opened");
    ws.on_upgrade(move |mut socket| async move {
        let opened = match on_open {
            Some(text) => socket.send(Message::Text(text.into())).await.is_ok(),
            None => true,
        };
        if opened {
            if let Some((handler, socket)) = &handler {
                handler.on_open(socket);
            }
            let wire = PlainWire::new(socket, wire_settings);
            let end = super::drive_session(&hub, &mut session, wire).await;
            super::log_end(&session, remote, &end);
            if let Some((handler, socket)) = &handler {
                handler.on_close(socket);
            }
        } else {
            session.end("the socket closed before it opened");
        }
        drop(place);
        drop(token);
    })
}

/// The synthetic CONNECT and one SUBSCRIBE per destination (and the
/// handler's queue when `handled`); a refusal (an `[[acl]]` rule,
/// authentication) is the HTTP answer, before the upgrade.
async fn subscribe(
    session: &mut Session,
    endpoint: &EndpointConfig,
    vars: &HashMap<String, String>,
    handled: bool,
) -> Result<(), (StatusCode, String)> {
    let connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("heart-beat", "0,0");
    let mut flow = session.handle_after_app(connect).await;
    for (index, destination) in endpoint.subscribe.iter().enumerate() {
        if flow == Flow::Close {
            break;
        }
        let subscribe = Frame::new(Command::Subscribe)
            .header("id", index.to_string())
            .header("destination", fill(destination, vars));
        flow = session.handle_after_app(subscribe).await;
    }
    if flow != Flow::Close && handled {
        // Where a handler's `Socket::send` and `send_to_user` arrive; only
        // with a handler: a destination per session costs an idle socket memory.
        let own = Frame::new(Command::Subscribe)
            .header("id", "socket")
            .header("destination", format!("/user{SOCKET_QUEUE}"));
        flow = session.handle_internal(own);
    }
    if flow == Flow::Close {
        return Err(super::refusal(session));
    }
    Ok(())
}

struct PlainSettings {
    /// The reply template with the path variables filled in.
    reply: Option<String>,
    /// Where messages are published, filled in.
    publish: Option<String>,
    /// A ping after this long without a write; dead peers show as failed writes.
    keepalive: Option<Duration>,
    /// The endpoint's code, when registered with `AppBuilder::websocket_endpoint`.
    handler: Option<(Arc<dyn SocketHandler>, Socket)>,
}

/// A plain socket as a session's wire.
struct PlainWire {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    settings: PlainSettings,
    /// Replies not written yet: written before the next read, so that a
    /// read cancelled by the driver never loses or repeats one.
    replies: VecDeque<Utf8Bytes>,
    /// The last ERROR's text: the close reason, since a plain socket has no ERROR frame.
    error: Option<String>,
}

impl PlainWire {
    fn new(socket: WebSocket, settings: PlainSettings) -> Self {
        let (sink, stream) = socket.split();
        PlainWire {
            sink,
            stream,
            settings,
            replies: VecDeque::new(),
            error: None,
        }
    }

    /// `feed` either queues a message whole or not at all, and each is
    /// dropped from `replies` only once fed: safe to cancel.
    async fn write_replies(&mut self) -> Result<(), WireError> {
        if self.replies.is_empty() {
            return Ok(());
        }
        while let Some(reply) = self.replies.front() {
            self.sink
                .feed(Message::Text(reply.clone()))
                .await
                .map_err(WireError::new)?;
            self.replies.pop_front();
        }
        self.sink.flush().await.map_err(WireError::new)
    }

    /// The next thing the client sent, with replies written first.
    async fn read(&mut self) -> Result<Received<BytesMut>, WireError> {
        self.write_replies().await?;
        match self.stream.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Some((handler, socket)) = &self.settings.handler {
                    handler.on_message(socket, &text);
                }
                if let Some(reply) = &self.settings.reply {
                    let reply = reply.replace(MESSAGE_PLACEHOLDER, text.as_str());
                    self.replies.push_back(reply.into());
                }
                Ok(match &self.settings.publish {
                    Some(destination) => Received::Data(Self::send_frame(destination, &text)),
                    // Handled here; a reply goes out as the driver reads again.
                    None => Received::Message,
                })
            }
            Some(Ok(Message::Binary(_))) => Err(WireError::Unsupported(
                "this endpoint takes text messages; a binary message was sent".into(),
            )),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Received::Control),
            Some(Ok(Message::Close(_))) | None => Ok(Received::Closed),
            Some(Err(error)) => Err(super::websocket::read_error(error)),
        }
    }

    /// The SEND a message becomes, as STOMP bytes for the driver's decoder.
    fn send_frame(destination: &str, text: &str) -> BytesMut {
        let frame = Frame::new(Command::Send)
            .header("destination", destination)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(Bytes::copy_from_slice(text.as_bytes()));
        let mut out = BytesMut::with_capacity(text.len() + 96);
        encode(&frame, Version::V1_2, &mut out);
        out
    }
}

impl Wire for PlainWire {
    type Chunk = BytesMut;

    async fn receive(&mut self) -> Result<Received<BytesMut>, WireError> {
        let received = self.read().await;
        if let (Err(error), Some((handler, socket))) = (&received, &self.settings.handler) {
            handler.on_error(socket, &error.to_string());
        }
        received
    }

    async fn send(&mut self, batch: &[Outgoing], _version: Version) -> Result<(), WireError> {
        self.write_replies().await?;
        for item in batch {
            let message = match item {
                Outgoing::Delivery { message, .. } => {
                    // The body every subscriber shares: a count, not a copy.
                    let body = message.body().clone();
                    match Utf8Bytes::try_from(body.clone()) {
                        Ok(text) => Message::Text(text),
                        Err(_) => Message::Binary(body),
                    }
                }
                Outgoing::Frame(frame) if frame.command == Command::Error => {
                    self.error = frame.get("message").map(str::to_owned);
                    continue;
                }
                // CONNECTED, RECEIPT and history notices mean nothing on a plain socket.
                Outgoing::Frame(_) | Outgoing::HistoryGone { .. } => continue,
            };
            self.sink.feed(message).await.map_err(WireError::new)?;
        }
        self.sink.flush().await.map_err(WireError::new)
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        self.sink
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(WireError::new)
    }

    async fn close(&mut self, reason: Option<CloseReason>) {
        let _ = self.write_replies().await;
        if let Some(CloseReason { code, reason }) = reason {
            let frame = match self.error.take() {
                // The session ended on an ERROR (an `[[acl]]` refusal of a
                // publish): without ERROR frames, the close says it.
                Some(error) => CloseFrame {
                    code: if code == CloseReason::NORMAL {
                        CloseReason::POLICY
                    } else {
                        code
                    },
                    reason: close_reason(&error).into(),
                },
                None => CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                },
            };
            let _ = self.sink.send(Message::Close(Some(frame))).await;
        }
        let _ = self.sink.close().await;
    }

    fn keepalive(&self) -> Option<Duration> {
        self.settings.keepalive
    }
}

/// A close reason fits in 123 bytes (RFC 6455, 5.5): cut at a character boundary.
fn close_reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_may_not_reshape_destinations() {
        assert!(check_variable("id", "7").is_ok());
        assert!(check_variable("id", "张三").is_ok());
        for bad in [
            "", "a/b", "*", "**", "a?", "{x}", "a,b", "a b", ".", "..", "\n",
        ] {
            assert!(check_variable("id", bad).is_err(), "{bad:?}");
        }
        assert!(check_variable("id", &"x".repeat(129)).is_err());
    }

    #[test]
    fn close_reasons_are_cut_on_a_character() {
        let long = "错".repeat(60);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(&cut));
        assert_eq!(close_reason("short"), "short");
    }

    #[test]
    fn messages_become_sends_that_keep_their_bytes() {
        let bytes = PlainWire::send_frame("/topic/x", "a\0b:c\n");
        let mut decoder = crate::stomp::Decoder::new(crate::stomp::Limits::default());
        decoder.feed(&bytes);
        match decoder.decode() {
            Ok(Some(crate::stomp::Decoded::Frame(frame))) => {
                assert_eq!(frame.command, Command::Send);
                assert_eq!(frame.get("destination"), Some("/topic/x"));
                assert_eq!(&frame.body[..], b"a\0b:c\n");
            }
            other => panic!("{other:?}"),
        }
    }
}

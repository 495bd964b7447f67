//! Server-sent events: `GET /sse/subscribe?destination=...` and `GET /sse/users/{user}`.
//!
//! A stream is an ordinary `Session` fed a synthetic CONNECT and one SUBSCRIBE
//! per destination, so limits, events, `/api/sessions` and the slow-consumer
//! policy are the STOMP ones; only the writer differs: it encodes deliveries as
//! `text/event-stream`. The event `id` lists, per destination, the last history
//! position sent (`18c4f2a9e01-12.0.18c4f2a9e01-7`, see [`Position`]), so one
//! `Last-Event-ID` positions every destination of the stream for replay.

use crate::broker::destination::{self, Route};
use crate::broker::outbound::Outgoing;
use crate::broker::user_destination::EVERY_USER_DESTINATION;
use crate::hub::Hub;
use crate::session::Flow;
use crate::session::driver::{CloseReason, Received, Wire, WireError};
use crate::stomp::{Command, Frame, Position, Version};
use crate::transport::handshake::Admitted;
use crate::transport::listener::RemoteAddr;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

/// `Last-Event-ID` (header, or `last_event_id` in the query for pages that open a new EventSource).
fn last_event_id(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query
                .iter()
                .find(|(k, _)| k == "last_event_id")
                .map(|(_, v)| v.clone())
        })
        .filter(|id| !id.is_empty())
}

/// Positions from a `Last-Event-ID`; `None` when it does not fit these destinations.
fn parse_positions(id: &str, count: usize) -> Option<Vec<Position>> {
    let positions: Vec<Position> = id
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (positions.len() == count).then_some(positions)
}

pub async fn subscribe(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query: Vec<(String, String)> =
        match serde_urlencoded::from_str(uri.query().unwrap_or_default()) {
            Ok(query) => query,
            Err(error) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("invalid query string: {error}"),
                );
            }
        };
    let destinations: Vec<String> = query
        .iter()
        .filter(|(key, _)| key == "destination")
        .map(|(_, value)| value.clone())
        .collect();
    if destinations.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "at least one `destination` query parameter is required",
        );
    }
    let max_destinations = hub.settings.sse.max_destinations;
    if destinations.len() > max_destinations {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "a stream may have at most {max_destinations} destinations (sse.max_destinations)"
            ),
        );
    }
    for destination in &destinations {
        if let Err(error) = destination::validate(destination) {
            return refuse(StatusCode::BAD_REQUEST, error.to_string());
        }
        if hub.broker().prefixes().route(destination) != Route::Broker {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "{destination:?} is not a broker destination; SSE streams may read only those"
                ),
            );
        }
    }
    let last_id = last_event_id(&headers, &query);
    open(hub, peer, uri, headers, None, destinations, last_id).await
}

/// `GET /sse/users/{user}`: every `convert_and_send_to_user` message for `user`.
pub async fn user_stream(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(user): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if user.is_empty() || user.contains('/') {
        return refuse(StatusCode::BAD_REQUEST, "invalid user name");
    }
    open(
        hub,
        peer,
        uri,
        headers,
        Some(user),
        vec![EVERY_USER_DESTINATION.to_owned()],
        None,
    )
    .await
}

/// The SSE routes, when `sse.enabled`.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/sse/subscribe", get(subscribe))
        .route("/sse/users/{user}", get(user_stream))
}

async fn open(
    hub: Arc<Hub>,
    peer: std::net::SocketAddr,
    uri: Uri,
    headers: HeaderMap,
    user: Option<String>,
    destinations: Vec<String>,
    last_id: Option<String>,
) -> Response {
    if hub.is_shutting_down() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let Admitted {
        mut handshake,
        remote,
        place,
    } = match super::handshake::run(&hub, &uri, &headers, peer, "sse") {
        Ok(admitted) => admitted,
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(user) = user.clone() {
        match &handshake.user {
            Some(verified) if *verified == user => {}
            Some(verified) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!("{verified:?} may not read the stream of user {user:?}"),
                );
            }
            None if (hub.app.settings.user_from_login && !hub.auth().checks_credentials())
                || hub
                    .app
                    .settings
                    .proxy
                    .as_ref()
                    .is_some_and(|p| p.judges_connect()) =>
            {
                // Names are claims on this server, as with STOMP `login`; with
                // `[proxy] connect` the application must name it to keep it.
                handshake.user = Some(user);
                handshake.user_is_claimed = true;
            }
            None => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "the stream of user {user:?} needs that user's bearer token (?{}=...)",
                        hub.auth().query_parameter()
                    ),
                );
            }
        }
    }
    let mut session = hub.sessions.open(handshake);
    let connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("heart-beat", "0,0");
    let mut flow = session.handle_after_app(connect).await;
    // With `[proxy] connect` a claimed name stands only when the application
    // named it; a stream that would quietly carry nobody's messages is refused.
    if flow != Flow::Close
        && let Some(user) = &user
        && session.info().user.as_deref() != Some(user.as_str())
    {
        session.end("the application did not name the stream's user");
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "the application ([proxy] connect) did not accept user {user:?} for this stream"
            ),
        );
    }
    let since = last_id
        .as_deref()
        .map(|id| parse_positions(id, destinations.len()));
    let mut positions = Vec::with_capacity(destinations.len());
    let mut leases = Vec::new();
    for (index, destination) in destinations.iter().enumerate() {
        if flow == Flow::Close {
            break;
        }
        let after = match &since {
            Some(Some(from)) => Some(from[index]),
            _ => None,
        };
        leases.extend(load_shared_history(&hub, destination, after).await);
        let mut subscribe = Frame::new(Command::Subscribe)
            .header("id", index.to_string())
            .header("destination", destination.clone());
        if let Some(Some(from)) = &since {
            subscribe.headers.push("since", from[index].to_string());
        }
        flow = session.handle_after_app(subscribe).await;
        let head = hub.broker().history_head(destination).unwrap_or_default();
        positions.push(match &since {
            // A position of another epoch was answered with history-gone:
            // from now on the stream stands at the start of the current
            // epoch, so a reconnect before its next message is not told
            // again. Not the head: replayed messages of this epoch may still
            // be queued behind another destination's events.
            Some(Some(from)) if from[index].epoch.is_known() && from[index].epoch != head.epoch => {
                Position::default()
            }
            Some(Some(from)) => from[index],
            _ => head,
        });
    }
    // Registered subscriptions now keep their channels; the leases may go.
    drop(leases);
    if flow == Flow::Close {
        let (status, reason) = super::refusal(&session);
        return refuse(status, reason);
    }
    tracing::debug!(session = session.id(), %remote, "sse stream opened");
    let settings = &hub.settings.sse;
    let mut preamble = BytesMut::new();
    preamble.put_slice(
        format!(
            "retry: {}\n: stomphub session {}\n\n",
            settings.retry_ms,
            session.id()
        )
        .as_bytes(),
    );
    // A Last-Event-ID that does not fit this stream cannot be resumed: say so for every destination.
    if let Some(None) = since {
        for destination in &destinations {
            put_history_gone(destination, &mut preamble);
        }
    }
    // The driver writes into the response body; a full channel is a client
    // that does not read, which the driver's slow-consumer rules judge.
    let (chunks, body) = mpsc::channel::<Bytes>(2);
    let wire = SseWire {
        chunks,
        positions,
        event: settings.event.clone(),
        keepalive: Duration::from_millis(settings.heartbeat_ms),
        ended_with_error: false,
    };
    let token = hub.lifecycle.tracker.token();
    tokio::spawn(async move {
        let end = super::drive_session(&hub, &mut session, wire).await;
        super::log_end(&session, remote, &end);
        drop(place);
        drop(token);
    });
    let body = futures_util::stream::once(std::future::ready(preamble.freeze()))
        .chain(futures_util::stream::unfold(body, |mut body| async move {
            body.recv().await.map(|chunk| (chunk, body))
        }))
        .map(Ok::<_, Infallible>);
    event_stream(Response::new(Body::from_stream(body)))
}

/// `response` as an event stream: its type, no caching, and no buffering by
/// nginx (`X-Accel-Buffering`), so each event goes out at once.
pub(crate) fn event_stream(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// An event stream as a wire: deliveries become `text/event-stream` events,
/// and nothing is ever read; the client leaving shows as the body going away.
struct SseWire {
    chunks: mpsc::Sender<Bytes>,
    /// Per destination, the last history position sent: the event `id`.
    positions: Vec<Position>,
    event: String,
    keepalive: Duration,
    /// A `broker-error` event was written; the close need not write another.
    ended_with_error: bool,
}

/// Writes `data:` lines; every line break form (CRLF, LF, CR) starts a new line.
fn put_data(body: &[u8], out: &mut BytesMut) {
    let text = String::from_utf8_lossy(body);
    let mut rest = text.as_ref();
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        out.put_slice(b"data: ");
        out.put_slice(&rest.as_bytes()[..end]);
        out.put_u8(b'\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
}

/// The event telling a page that messages it asked for are no longer kept.
/// With a cluster, a client may resume here after reading another node: brings
/// `destination`'s ring up to date from Redis before the replaying subscribe.
/// Without Redis the ring is all there is, and a gap shows as history-gone.
async fn load_shared_history(
    hub: &Hub,
    destination: &str,
    after: Option<Position>,
) -> Option<crate::cluster::Lease> {
    let broker = hub.broker();
    let cluster = hub.cluster.as_ref()?;
    if destination::is_pattern(destination) || !broker.keeps_history(destination) {
        return None;
    }
    match cluster.prepare_replay(destination, after).await {
        Ok((lease, fetched)) => {
            broker.merge_shared_history(destination, fetched);
            Some(lease)
        }
        Err(error) => {
            tracing::info!(%error, destination, "replaying from this node's history only");
            None
        }
    }
}

fn put_history_gone(destination: &str, out: &mut BytesMut) {
    out.put_slice(b"event: history-gone\n");
    put_data(
        serde_json::json!({ "destination": destination })
            .to_string()
            .as_bytes(),
        out,
    );
    out.put_u8(b'\n');
}

impl SseWire {
    fn put_id(&self, out: &mut BytesMut) {
        out.put_slice(b"id: ");
        for (index, position) in self.positions.iter().enumerate() {
            if index > 0 {
                out.put_u8(b'.');
            }
            out.put_slice(position.to_string().as_bytes());
        }
        out.put_u8(b'\n');
    }

    fn encode(&mut self, item: &Outgoing, out: &mut BytesMut) {
        match item {
            Outgoing::Delivery {
                message,
                subscription,
                ..
            } => {
                let index = subscription
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.positions.len());
                if let (Some(index), Some(seq)) = (index, message.seq()) {
                    self.positions[index] = seq;
                }
                self.put_id(out);
                let event = match self.event.as_str() {
                    "destination" => message.headers().get("destination").unwrap_or("message"),
                    name => name,
                };
                out.put_slice(b"event: ");
                out.put_slice(event.as_bytes());
                out.put_u8(b'\n');
                put_data(message.body(), out);
                out.put_u8(b'\n');
            }
            Outgoing::HistoryGone { destination, .. } => put_history_gone(destination, out),
            Outgoing::Frame(frame) if frame.command == Command::Error => {
                out.put_slice(b"event: broker-error\n");
                put_data(frame.get("message").unwrap_or_default().as_bytes(), out);
                out.put_u8(b'\n');
                self.ended_with_error = true;
            }
            // CONNECTED and RECEIPT frames have no meaning on an event stream.
            Outgoing::Frame(_) => {}
        }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), WireError> {
        self.chunks
            .send(chunk)
            .await
            .map_err(|_| WireError::Io("the client closed the event stream".into()))
    }
}

impl Wire for SseWire {
    type Chunk = [u8; 0];

    async fn receive(&mut self) -> Result<Received<[u8; 0]>, WireError> {
        self.chunks.closed().await;
        Ok(Received::Closed)
    }

    async fn send(&mut self, batch: &[Outgoing], _version: Version) -> Result<(), WireError> {
        let mut out = BytesMut::new();
        for item in batch {
            self.encode(item, &mut out);
        }
        if out.is_empty() {
            return Ok(());
        }
        self.write(out.freeze()).await
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        self.write(Bytes::from_static(b": ping\n\n")).await
    }

    async fn close(&mut self, reason: Option<CloseReason>) {
        if let Some(CloseReason { code, reason }) = reason
            && code != CloseReason::NORMAL
            && !self.ended_with_error
        {
            let notice = format!("event: broker-error\ndata: {reason}\n\n");
            let _ = self.write(Bytes::from(notice)).await;
        }
    }

    fn keepalive(&self) -> Option<Duration> {
        Some(self.keepalive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_break_starts_a_data_line() {
        let mut out = BytesMut::new();
        put_data(b"one\ntwo\r\nthree\rfour", &mut out);
        assert_eq!(&out[..], b"data: one\ndata: two\ndata: three\ndata: four\n");
        let mut out = BytesMut::new();
        put_data(b"", &mut out);
        assert_eq!(&out[..], b"data: \n");
    }

    #[test]
    fn last_event_ids_must_fit_the_destinations() {
        let at = |text: &str| text.parse::<Position>().unwrap();
        assert_eq!(
            parse_positions("a1-12.0.a1-7", 3),
            Some(vec![at("a1-12"), at("0"), at("a1-7")])
        );
        assert_eq!(parse_positions("12", 2), None);
        assert_eq!(parse_positions("x", 1), None);
    }
}

//! SockJS on the STOMP endpoint (Spring's `withSockJS()`, sockjs-protocol
//! 0.3.3 as sockjs-client 1.x speaks it): the greeting, `/info`, the iframe
//! page, the raw `/websocket`, and per session `/{server}/{session}/{transport}`.
//! Each SockJS session carries one STOMP session through the session driver.

mod frame;
mod receiver;
mod session;
mod websocket;

use crate::hub::Hub;
use crate::security::origin::OriginPolicy;
use crate::transport::handshake::Admitted;
use crate::transport::listener::RemoteAddr;
use crate::transport::websocket::{message_limit, upgrade as stomp_upgrade};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use receiver::Kind;
use session::{CacheLimits, HttpWire, Registered, Registry, Shared};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use websocket::SockJsWebSocketWire;

/// A year: how long `iframe.html` and CORS preflights may be cached, as
/// sockjs-protocol asks.
const CACHE_FOR: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the SockJS handlers share.
struct SockJs {
    hub: Arc<Hub>,
    registry: Arc<Registry>,
    iframe: IframePage,
}

struct IframePage {
    html: String,
    etag: String,
}

impl IframePage {
    fn new(client_library_url: &str) -> Self {
        // The client library bootstraps the iframe once loaded
        // (`_sockjs_onload`); `document.domain` lets a page of a parent
        // domain talk to it.
        let html = format!(
            "<!doctype html>\n<html>\n<head>\n\
             <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n\
             <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
             <script>\n  document.domain = document.domain;\n  \
             _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};\n</script>\n\
             <script src=\"{client_library_url}\"></script>\n\
             </head>\n<body>\n<p>stomphub SockJS iframe: it relays messages for pages on other origins.</p>\n\
             </body>\n</html>\n"
        );
        let mut hasher = std::hash::DefaultHasher::new();
        html.hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        IframePage { html, etag }
    }
}

/// The SockJS routes under `endpoint`, including the endpoint itself, where
/// a WebSocket upgrade is plain STOMP and a plain GET the SockJS greeting.
pub fn routes(hub: Arc<Hub>, endpoint: &str) -> Router<Arc<Hub>> {
    let settings = &hub.settings.sockjs;
    let sockjs = Arc::new(SockJs {
        iframe: IframePage::new(&settings.client_library_url),
        registry: Arc::new(Registry::default()),
        hub: hub.clone(),
    });
    let base = endpoint.trim_end_matches('/');
    let session = format!("{base}/{{server}}/{{session}}");
    Router::new()
        .route(endpoint, get(entry))
        .route(&format!("{base}/"), get(greeting))
        .route(&format!("{base}/info"), get(info))
        .route(&format!("{base}/websocket"), get(raw_websocket))
        .route(&format!("{base}/{{page}}"), get(iframe))
        .route(&format!("{session}/websocket"), get(websocket_transport))
        .route(&format!("{session}/xhr"), post(xhr))
        .route(&format!("{session}/xhr_streaming"), post(xhr_streaming))
        .route(&format!("{session}/xhr_send"), post(xhr_send))
        .route(&format!("{session}/eventsource"), get(eventsource))
        .route(&format!("{session}/htmlfile"), get(htmlfile))
        .route(&format!("{session}/jsonp"), get(jsonp))
        .route(&format!("{session}/jsonp_send"), post(jsonp_send))
        .route(&format!("{session}/{{transport}}"), any(unknown_transport))
        .layer(cors(hub.origins.clone()))
        .layer(middleware::from_fn(finish_cors))
        .with_state(sockjs)
}

/// CORS with credentials: sockjs-client sends cookies on its cross-origin
/// XHRs. Only for the origins `server.allowed_origins` admits. The layer
/// answers every `OPTIONS`; `finish_cors` makes it the protocol's.
fn cors(origins: OriginPolicy) -> CorsLayer {
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, request: &Parts| {
        let host = request.headers.get("host").and_then(|v| v.to_str().ok());
        origin
            .to_str()
            .is_ok_and(|origin| origins.allows(origin, host))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(CACHE_FOR)
}

pub(super) fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate, max-age=0"),
    );
}

fn cache_for_a_year(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    if let Ok(expires) =
        HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now() + CACHE_FOR))
    {
        headers.insert(header::EXPIRES, expires);
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    Refused::not_found().into_response()
}

/// Why a SockJS request was refused: its HTTP status and a message saying why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Refused {
    status: StatusCode,
    message: String,
}

impl Refused {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refused {
            status,
            message: message.into(),
        }
    }

    fn not_found() -> Self {
        Refused::new(
            StatusCode::NOT_FOUND,
            "Not found: no such SockJS session or transport.\n",
        )
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        text(self.status, self.message)
    }
}

/// sockjs-protocol's CORS on top of the CORS layer's: preflights are `204`
/// and cacheable for a year; a page from `file://` (origin `null`) that the
/// origin policy admits is answered `*`, since browsers take an echoed
/// `null` as a refusal; a client without `Origin` gets `*`.
async fn finish_cors(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let star = match &origin {
        None => true,
        Some(origin) => {
            origin.as_bytes() == b"null"
                && headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        }
    };
    if star {
        // Browsers refuse `*` with credentials; such a page sends no cookies.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    if preflight && response.status().is_success() {
        *response.status_mut() = StatusCode::NO_CONTENT;
        cache_for_a_year(response.headers_mut());
    }
    response
}

/// The transports of session URLs, `{server}/{session}/{transport}`.
const SESSION_TRANSPORTS: [&str; 8] = [
    "websocket",
    "xhr",
    "xhr_send",
    "xhr_streaming",
    "eventsource",
    "htmlfile",
    "jsonp",
    "jsonp_send",
];

/// Answers `404` for a transport's URL without exactly two valid ids before
/// it, whatever the method. For the whole `router`, static files included
/// (call it after the fallback is set): routing would answer `405`, or hand a
/// URL with an empty segment to the static files.
pub fn guard_session_urls<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    endpoint: &str,
) -> Router<S> {
    let base: Arc<str> = format!("{}/", endpoint.trim_end_matches('/')).into();
    router.layer(middleware::from_fn(move |request, next| {
        reject_bad_session_urls(base.clone(), request, next)
    }))
}

async fn reject_bad_session_urls(base: Arc<str>, request: Request, next: Next) -> Response {
    if let Some(rest) = request.uri().path().strip_prefix(&*base) {
        let segments: Vec<&str> = rest.split('/').collect();
        let names_a_transport = segments.len() > 1
            && segments
                .last()
                .is_some_and(|last| SESSION_TRANSPORTS.contains(last));
        let well_formed =
            matches!(segments[..], [server, session, _] if valid_ids(server, session));
        if names_a_transport && !well_formed {
            return not_found();
        }
    }
    next.run(request).await
}

async fn unknown_transport() -> Response {
    not_found()
}

/// Server and session ids: non-empty path segments without dots.
fn valid_ids(server: &str, session: &str) -> bool {
    [server, session]
        .iter()
        .all(|id| !id.is_empty() && !id.contains('.'))
}

async fn entry(
    State(sockjs): State<Arc<SockJs>>,
    connect_info: ConnectInfo<RemoteAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => stomp_upgrade(State(sockjs.hub.clone()), connect_info, uri, headers, ws).await,
        Err(_) => greeting().await,
    }
}

async fn greeting() -> Response {
    text(StatusCode::OK, "Welcome to SockJS!\n")
}

async fn info(State(sockjs): State<Arc<SockJs>>) -> Response {
    // The client mixes this into cookie-less iframe ids; it need not be secret.
    let entropy = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now()) as u32;
    let body = serde_json::json!({
        "websocket": sockjs.hub.settings.sockjs.websocket,
        "cookie_needed": false,
        "origins": ["*:*"],
        "entropy": entropy,
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    no_cache(response.headers_mut());
    response
}

async fn iframe(
    State(sockjs): State<Arc<SockJs>>,
    Path(page): Path<String>,
    headers: HeaderMap,
) -> Response {
    // `iframe.html`, or with a version the client adds to bust caches (`iframe-1.6.1.html`).
    if !(page.starts_with("iframe") && page.ends_with(".html")) {
        return not_found();
    }
    let page = &sockjs.iframe;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == page.etag.as_bytes());
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
            page.html.clone(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&page.etag) {
        headers.insert(header::ETAG, etag);
    }
    cache_for_a_year(headers);
    response
}

async fn raw_websocket(
    State(sockjs): State<Arc<SockJs>>,
    connect_info: ConnectInfo<RemoteAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !sockjs.hub.settings.sockjs.websocket {
        return not_found();
    }
    match ws {
        Ok(ws) => stomp_upgrade(State(sockjs.hub.clone()), connect_info, uri, headers, ws).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// The admission of a new SockJS session: the handshake of every transport,
/// with the sub-transport recorded for `/api/sessions` and `/api/stats`.
fn admit(
    hub: &Hub,
    uri: &Uri,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    transport: &'static str,
) -> Result<Admitted, Refused> {
    if hub.is_shutting_down() {
        return Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        ));
    }
    let mut admitted = super::handshake::run(hub, uri, headers, peer, "sockjs")
        .map_err(|rejection| Refused::new(rejection.status, rejection.message))?;
    admitted
        .handshake
        .attributes
        .insert("sockjs_transport".into(), transport.into());
    Ok(admitted)
}

async fn websocket_transport(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path((server, session)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let hub = &sockjs.hub;
    if !hub.settings.sockjs.websocket || !valid_ids(&server, &session) {
        return not_found();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let Admitted {
        handshake,
        remote,
        place,
    } = match admit(hub, &uri, &headers, peer, "websocket") {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let message_limit = message_limit(hub.sessions.rules().codec.max_frame_size);
    let settings = &hub.settings.websocket;
    // JSON escaping may make a STOMP frame up to six times longer (`\u0000`).
    let ws = ws
        .read_buffer_size(settings.read_buffer_size)
        .write_buffer_size(settings.write_buffer_size)
        .max_message_size(message_limit.saturating_mul(6))
        .max_frame_size(message_limit.saturating_mul(6));
    let heartbeat = hub.settings.sockjs.heartbeat();
    let hub = hub.clone();
    let token = hub.lifecycle.tracker.token();
    ws.on_upgrade(move |socket| async move {
        match SockJsWebSocketWire::open(socket, heartbeat, message_limit).await {
            Ok(wire) => super::run_session(&hub, handshake, wire, remote).await,
            Err(error) => {
                tracing::debug!(%remote, %error, "SockJS WebSocket closed before it opened")
            }
        }
        drop(place);
        drop(token);
    })
}

/// The session `id` names, opened by this request when it is new.
fn find_or_open(
    sockjs: &SockJs,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    transport: &'static str,
) -> Result<Arc<Shared>, Refused> {
    if let Some(shared) = sockjs.registry.get(id) {
        return Ok(shared);
    }
    let hub = &sockjs.hub;
    let Admitted {
        handshake,
        remote,
        place,
    } = admit(hub, uri, headers, peer, transport)?;
    let settings = &hub.settings.sockjs;
    let cache = CacheLimits {
        messages: settings.message_cache_size,
        bytes: hub.sessions.queue_limits().soft_bytes,
    };
    let (shared, inbound) = Shared::new(id.to_owned(), cache);
    // Sessions outlive the requests of polling clients, so the listener's
    // connection cap cannot count them: the registry applies the same number.
    let limit = hub.admission.max_total();
    match sockjs.registry.insert(&shared, limit) {
        Registered::New => {}
        Registered::Taken(existing) => return Ok(existing),
        Registered::Full => {
            tracing::warn!(%remote, limit, "SockJS session refused: limit reached");
            return Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{limit} SockJS sessions are open, the most limits.max_connections allows"),
            ));
        }
    }
    let wire = HttpWire::new(
        shared.clone(),
        inbound,
        settings.disconnect_delay(),
        &sockjs.registry,
    );
    let hub = hub.clone();
    let token = hub.lifecycle.tracker.token();
    tokio::spawn(async move {
        super::run_session(&hub, handshake, wire, remote).await;
        drop(place);
        drop(token);
    });
    Ok(shared)
}

/// `server.allowed_origins`, as for the WebSocket endpoint.
fn check_origin(hub: &Hub, headers: &HeaderMap) -> Result<(), Refused> {
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    hub.origins
        .check(header(header::ORIGIN), header(header::HOST))
        .map_err(|message| Refused::new(StatusCode::FORBIDDEN, message))
}

/// A receiving request: frames of the session, opened here if it is new.
fn receive(
    sockjs: &SockJs,
    peer: std::net::SocketAddr,
    (server, session): (String, String),
    uri: &Uri,
    headers: &HeaderMap,
    kind: Kind,
) -> Response {
    if !valid_ids(&server, &session) {
        return not_found();
    }
    // Every request of a session, not only the one that opened it.
    if let Err(refused) = check_origin(&sockjs.hub, headers) {
        return refused.into_response();
    }
    let shared = match find_or_open(sockjs, &session, uri, headers, peer, kind.name()) {
        Ok(shared) => shared,
        Err(refused) => return refused.into_response(),
    };
    let settings = &sockjs.hub.settings.sockjs;
    match shared.receive() {
        Ok(receiving) => receiver::stream(
            kind,
            receiving,
            settings.heartbeat(),
            settings.stream_bytes_limit,
        ),
        Err(closed) => receiver::refuse(&kind, closed),
    }
}

async fn xhr(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    receive(&sockjs, peer, ids, &uri, &headers, Kind::Xhr)
}

async fn xhr_streaming(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    receive(&sockjs, peer, ids, &uri, &headers, Kind::XhrStreaming)
}

async fn eventsource(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    receive(&sockjs, peer, ids, &uri, &headers, Kind::EventSource)
}

/// The `c` query parameter the script transports call back; a 500 naming
/// the problem otherwise, as sockjs-protocol asks.
fn callback(uri: &Uri) -> Result<String, Refused> {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let callback = query
        .into_iter()
        .find(|(key, _)| key == "c")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            Refused::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "\"callback\" parameter required",
            )
        })?;
    if !receiver::valid_callback(&callback) {
        return Err(Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid \"callback\" parameter",
        ));
    }
    Ok(callback)
}

async fn htmlfile(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match callback(&uri) {
        Ok(callback) => receive(
            &sockjs,
            peer,
            ids,
            &uri,
            &headers,
            Kind::HtmlFile { callback },
        ),
        Err(refused) => refused.into_response(),
    }
}

async fn jsonp(
    State(sockjs): State<Arc<SockJs>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(ids): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match callback(&uri) {
        Ok(callback) => receive(&sockjs, peer, ids, &uri, &headers, Kind::Jsonp { callback }),
        Err(refused) => refused.into_response(),
    }
}

async fn xhr_send(
    State(sockjs): State<Arc<SockJs>>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match send(&sockjs, ids, &headers, body, false).await {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
            no_cache(response.headers_mut());
            response
        }
        Err(refused) => refused.into_response(),
    }
}

async fn jsonp_send(
    State(sockjs): State<Arc<SockJs>>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    match send(&sockjs, ids, &headers, body, form).await {
        Ok(()) => {
            let mut response = text(StatusCode::OK, "ok");
            no_cache(response.headers_mut());
            response
        }
        Err(refused) => refused.into_response(),
    }
}

/// Hands the messages of a sending request to its session, in order; the
/// request waits while the session is behind, which slows the client.
async fn send(
    sockjs: &SockJs,
    (server, session): (String, String),
    headers: &HeaderMap,
    body: Body,
    form: bool,
) -> Result<(), Refused> {
    if !valid_ids(&server, &session) {
        return Err(Refused::not_found());
    }
    let hub = &sockjs.hub;
    check_origin(hub, headers)?;
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(shared) = sockjs.registry.get(&session) else {
        return Err(Refused::not_found());
    };
    // Sent while the session ended: dropped, as the protocol says, so that
    // the client learns of the end from its close frame, not a failed send.
    if shared.is_closed() {
        return Ok(());
    }
    let max_frame_size = hub.sessions.rules().codec.max_frame_size;
    let limit = message_limit(max_frame_size);
    let body_limit = send_body_limit(max_frame_size);
    let payload = match axum::body::to_bytes(body, body_limit).await {
        Ok(payload) => payload,
        Err(_) => {
            let size = header(header::CONTENT_LENGTH)
                .and_then(|v| v.parse().ok())
                .unwrap_or(body_limit + 1);
            shared
                .deliver(Err(crate::session::driver::WireError::TooLarge {
                    size,
                    limit,
                }))
                .await;
            return Err(Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a SockJS send may carry at most {body_limit} bytes; raise limits.max_frame_size for larger frames"
                ),
            ));
        }
    };
    let payload = if form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&payload)
            .unwrap_or_default()
            .into_iter()
            .find(|(key, _)| key == "d")
            .map(|(_, value)| value.into_bytes())
            .unwrap_or_default()
    } else {
        payload.to_vec()
    };
    let messages = frame::parse_messages(&payload)
        .map_err(|error| Refused::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    for message in messages {
        if message.len() > limit {
            let size = message.len();
            shared
                .deliver(Err(crate::session::driver::WireError::TooLarge {
                    size,
                    limit,
                }))
                .await;
            return Err(Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a message of {size} bytes is over the {max_frame_size} bytes of limits.max_frame_size"
                ),
            ));
        }
        if !shared.deliver(Ok(message)).await {
            break;
        }
    }
    Ok(())
}

/// sockjs-client sends everything queued while a send was under way in one
/// request, so a body holds several frames, each up to six times longer
/// once JSON-escaped: room for a burst, and a bound on a request's memory.
fn send_body_limit(max_frame_size: usize) -> usize {
    message_limit(max_frame_size)
        .saturating_mul(6)
        .max(1024 * 1024)
}

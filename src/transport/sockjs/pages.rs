//! The answers that need no session: the greeting, `/info`, the iframe page,
//! and the endpoint's own WebSocket upgrades (plain STOMP).

use super::SockJs;
use super::http::{cache_for_a_year, no_cache};
use crate::transport::listener::RemoteAddr;
use crate::transport::websocket::upgrade as stomp_upgrade;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

/// The iframe page, built once from `sockjs.client_library_url`.
pub(super) struct IframePage {
    html: String,
    etag: String,
}

impl IframePage {
    pub(super) fn new(client_library_url: &str) -> Self {
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

pub(super) async fn entry(
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

pub(super) async fn greeting() -> Response {
    super::text(StatusCode::OK, "Welcome to SockJS!\n")
}

pub(super) async fn info(State(sockjs): State<Arc<SockJs>>) -> Response {
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

pub(super) async fn iframe(
    State(sockjs): State<Arc<SockJs>>,
    Path(page): Path<String>,
    headers: HeaderMap,
) -> Response {
    // `iframe.html`, or with a version the client adds to bust caches (`iframe-1.6.1.html`).
    if !(page.starts_with("iframe") && page.ends_with(".html")) {
        return super::not_found();
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

pub(super) async fn raw_websocket(
    State(sockjs): State<Arc<SockJs>>,
    connect_info: ConnectInfo<RemoteAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !sockjs.hub.settings.sockjs.websocket {
        return super::not_found();
    }
    match ws {
        Ok(ws) => stomp_upgrade(State(sockjs.hub.clone()), connect_info, uri, headers, ws).await,
        Err(rejection) => rejection.into_response(),
    }
}

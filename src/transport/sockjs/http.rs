//! The HTTP rules every SockJS request follows: CORS with credentials for
//! the allowed origins, caching (none for sessions, a year for static
//! answers), and the shape of session URLs.

use crate::security::origin::OriginPolicy;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tower_http::cors::{AllowHeaders, CorsLayer};

/// A year: how long `iframe.html` and CORS preflights may be cached, as
/// sockjs-protocol asks.
const CACHE_FOR: Duration = Duration::from_secs(365 * 24 * 3600);

/// CORS with credentials: sockjs-client sends cookies on its cross-origin
/// XHRs. Only for the origins `server.allowed_origins` admits. The layer
/// answers every `OPTIONS`; `finish_cors` makes it the protocol's.
pub(super) fn cors(origins: OriginPolicy) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(crate::transport::handshake::allowed_origins(origins))
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

pub(super) fn cache_for_a_year(headers: &mut HeaderMap) {
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

/// sockjs-protocol's CORS on top of the CORS layer's: preflights are `204`
/// and cacheable for a year; a page from `file://` (origin `null`) that the
/// origin policy admits is answered `*`, since browsers take an echoed
/// `null` as a refusal; a client without `Origin` gets `*`.
pub(super) async fn finish_cors(request: Request, next: Next) -> Response {
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
            matches!(segments[..], [server, session, _] if super::valid_ids(server, session));
        if names_a_transport && !well_formed {
            return super::not_found();
        }
    }
    next.run(request).await
}

//! SockJS on the STOMP endpoint (Spring's `withSockJS()`, sockjs-protocol
//! 0.3.3 as sockjs-client 1.x speaks it): the greeting, `/info`, the iframe
//! page, the raw `/websocket`, and per session `/{server}/{session}/{transport}`.
//! Each SockJS session carries one STOMP session through the session driver.

mod frame;
mod http;
mod open;
mod pages;
mod receiver;
mod send;
mod session;
mod websocket;

pub use http::guard_session_urls;

use crate::hub::Hub;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, any, get, post};
use http::{cors, finish_cors};
use open::{callback, receiving, websocket_transport};
use pages::{IframePage, entry, greeting, iframe, info, raw_websocket};
use receiver::Kind;
use send::{jsonp_send, xhr_send};
use session::Registry;
use std::sync::Arc;

/// What the SockJS handlers share.
struct SockJs {
    hub: Arc<Hub>,
    registry: Arc<Registry>,
    iframe: IframePage,
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
        .route(
            &format!("{session}/xhr"),
            receiving(MethodFilter::POST, |_| Ok(Kind::Xhr)),
        )
        .route(
            &format!("{session}/xhr_streaming"),
            receiving(MethodFilter::POST, |_| Ok(Kind::XhrStreaming)),
        )
        .route(&format!("{session}/xhr_send"), post(xhr_send))
        .route(
            &format!("{session}/eventsource"),
            receiving(MethodFilter::GET, |_| Ok(Kind::EventSource)),
        )
        .route(
            &format!("{session}/htmlfile"),
            receiving(MethodFilter::GET, |uri| {
                callback(uri).map(|callback| Kind::HtmlFile { callback })
            }),
        )
        .route(
            &format!("{session}/jsonp"),
            receiving(MethodFilter::GET, |uri| {
                callback(uri).map(|callback| Kind::Jsonp { callback })
            }),
        )
        .route(&format!("{session}/jsonp_send"), post(jsonp_send))
        .route(&format!("{session}/{{transport}}"), any(unknown_transport))
        .layer(cors(hub.origins.clone()))
        .layer(middleware::from_fn(finish_cors))
        .with_state(sockjs)
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

async fn unknown_transport() -> Response {
    not_found()
}

/// Server and session ids: non-empty path segments without dots, and short
/// (sockjs-client's are 3 and 8 characters): a registry key is kept a while.
fn valid_ids(server: &str, session: &str) -> bool {
    [server, session]
        .iter()
        .all(|id| !id.is_empty() && id.len() <= 64 && !id.contains('.'))
}

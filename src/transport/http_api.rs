//! The HTTP API: publish to a destination or a user (`POST`, bearer token when
//! configured), and read stats and sessions (`GET`). Errors are JSON `{"error": ...}`.

use super::api_access::{authorize_read, authorize_write};
use super::listener::RemoteAddr;
use crate::app::handler::{JSON, Payload, TEXT};
use crate::cluster::{EndpointStats, NodeStats, SessionSummary, SubscriptionSummary};
use crate::hub::Hub;
use crate::stomp::Headers;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error(
        "missing or wrong bearer token: send [api] token (or, for reads, [api] read_token) as Authorization: Bearer"
    )]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
        };
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// `body` is sent as text when it is a JSON string, otherwise as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    destination: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: serde_json::Value,
    #[serde(default)]
    content_type: Option<String>,
}

impl PublishRequest {
    fn into_parts(self) -> Result<(String, Headers, Payload), ApiError> {
        let (body, default_type) = match self.body {
            serde_json::Value::String(text) => (text.into_bytes(), TEXT),
            other => (
                serde_json::to_vec(&other).map_err(|e| ApiError::BadRequest(e.to_string()))?,
                JSON,
            ),
        };
        let content_type = self
            .content_type
            .map(Cow::Owned)
            .unwrap_or(Cow::Borrowed(default_type));
        let headers: Headers = self.headers.into_iter().collect();
        Ok((
            self.destination,
            headers,
            Payload {
                body: body.into(),
                content_type,
            },
        ))
    }
}

fn parse<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| {
        ApiError::BadRequest(format!("invalid request body: {}", rejection.body_text()))
    })
}

async fn publish(
    State(state): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    headers: HeaderMap,
    body: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize_write(&state, &headers, None, peer)?;
    let (destination, headers, payload) = parse(body)?.into_parts()?;
    let deliveries = state
        .app
        .template
        .send(&destination, &headers, payload)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(
        serde_json::json!({ "destination": destination, "deliveries": deliveries }),
    ))
}

async fn publish_to_user(
    State(state): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize_write(&state, &headers, None, peer)?;
    let (destination, headers, payload) = parse(body)?.into_parts()?;
    let deliveries = state
        .app
        .template
        .send_to_user(&user, &destination, &headers, payload)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let sessions = state.app.users.sessions_of(&user).len();
    Ok(Json(
        serde_json::json!({ "user": user, "destination": destination, "sessions": sessions, "deliveries": deliveries }),
    ))
}

/// `?scope=cluster` asks for every node's view instead of this node's.
/// Other query parameters (cache busters) are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScopeQuery {
    #[serde(default)]
    scope: Option<String>,
    /// The read token, for pages that cannot send headers.
    #[serde(default)]
    pub(crate) token: Option<String>,
}

impl ScopeQuery {
    fn cluster_wide(&self) -> Result<bool, ApiError> {
        match self.scope.as_deref() {
            None | Some("node") => Ok(false),
            Some("cluster") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "scope {other:?} is not known; use node or cluster"
            ))),
        }
    }
}

async fn stats(
    State(state): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers, query.token.as_deref())?;
    if query.cluster_wide()? {
        return super::cluster_api::cluster_stats(&state).await;
    }
    Ok(Json(stats_view(&state)).into_response())
}

pub(crate) fn stats_view(state: &Hub) -> NodeStats {
    let counters = state.broker().counters();
    let mut transports = BTreeMap::new();
    let mut endpoints: BTreeMap<String, EndpointStats> = state
        .settings
        .websocket
        .endpoints
        .iter()
        .map(|endpoint| (endpoint.path.clone(), EndpointStats::default()))
        .collect();
    for info in state.app.directory.list() {
        let attributes = &info.attributes;
        if let Some(stats) = attributes
            .get("endpoint")
            .and_then(|path| endpoints.get_mut(path))
        {
            stats.sessions += 1;
        }
        let mut transport = attributes.get("transport").cloned().unwrap_or_default();
        // SockJS sessions count per sub-transport: "sockjs/xhr_streaming".
        if let Some(sub) = attributes.get("sockjs_transport") {
            transport = format!("{transport}/{sub}");
        }
        *transports.entry(transport).or_default() += 1;
    }
    NodeStats {
        connections: state.lifecycle.connections.load(Ordering::Relaxed),
        tcp_connections: state.admission.open(),
        max_connections: Some(state.admission.max_total()),
        pending_handshakes: state.admission.pending(),
        queued_bytes: state.sessions.queued().used(),
        max_queued_bytes_total: state.sessions.queued().limit(),
        sessions: state.app.directory.len(),
        transports,
        users: state.app.users.user_count(),
        messages_in: counters.messages_in.load(Ordering::Relaxed),
        deliveries: counters.deliveries.load(Ordering::Relaxed),
        subscriptions: state.broker().subscription_counts().into_iter().collect(),
        endpoints,
        cluster: state.cluster.as_ref().map(|cluster| cluster.status()),
    }
}

async fn sessions(
    State(state): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ScopeQuery>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers, query.token.as_deref())?;
    if query.cluster_wide()? {
        return super::cluster_api::cluster_sessions(&state).await;
    }
    Ok(Json(session_views(&state)).into_response())
}

pub(crate) fn session_views(state: &Hub) -> Vec<SessionSummary> {
    state
        .app
        .directory
        .list()
        .into_iter()
        .map(|info| SessionSummary {
            id: info.id.clone(),
            user: info.user.clone(),
            remote: info.remote.map(|addr| addr.to_string()),
            connected_since: info
                .connected_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            subscriptions: info
                .subscriptions()
                .into_iter()
                .map(|(id, destination)| SubscriptionSummary { id, destination })
                .collect(),
            attributes: info.attributes.clone(),
        })
        .collect()
}

/// `DELETE /api/sessions/{id}`: ends a session of either transport (the seeds' `close/{userId}`).
async fn close_session(
    State(state): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize_write(&state, &headers, None, peer)?;
    if state
        .app
        .directory
        .close(&id, "closed through the HTTP API")
    {
        Ok(Json(serde_json::json!({ "closed": id })))
    } else {
        Err(ApiError::NotFound(format!("no session {id:?}")))
    }
}

/// `POST /api/reload`: reads the configuration file again (as `SIGHUP` does).
async fn reload(
    State(state): State<Arc<Hub>>,
    ConnectInfo(RemoteAddr(peer)): ConnectInfo<RemoteAddr>,
    headers: HeaderMap,
) -> Result<Json<crate::hub::ReloadReport>, ApiError> {
    authorize_write(&state, &headers, None, peer)?;
    let hub = state.clone();
    // Reading files and parsing keys: off the async workers.
    let outcome = tokio::task::spawn_blocking(move || hub.reload())
        .await
        .map_err(|error| ApiError::Unavailable(format!("the reload did not finish: {error}")))?;
    match outcome {
        Ok(report) => Ok(Json(report)),
        Err(error @ crate::hub::ReloadError::NoSource) => {
            Err(ApiError::Conflict(error.to_string()))
        }
        Err(error) => Err(ApiError::BadRequest(error.to_string())),
    }
}

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/api/publish", post(publish))
        .route("/api/users/{user}/publish", post(publish_to_user))
        .route("/api/stats", get(stats))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", axum::routing::delete(close_session))
        .route("/metrics", get(super::metrics_api::metrics))
        .route("/api/stats/stream", get(super::admin_api::stats_stream))
        .route("/api/reload", post(reload))
        .route("/health", get(super::cluster_api::health))
        .route("/ready", get(super::cluster_api::ready))
}

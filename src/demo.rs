//! The seeds' demo (a Spring `GameInfoController`), written with the library API:
//! `/app/v1/chat` -> `/topic/game_chat`, `/app/v1/chat/single` -> `/chat/single/{to}`,
//! and the HTTP triggers `GET /v1/chat/http` and `GET /v1/chat/single`.

use crate::app::AppBuilder;
use crate::app::handler::{HandlerError, Json, Message};
use crate::app::template::MessagingTemplate;
use crate::hub::Hub;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The seeds' `InMessage`.
#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    pub content: String,
}

/// The seeds' `OutMessage`: the content and when it was sent (ms since the epoch).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutMessage {
    pub content: String,
    pub time: u64,
}

impl OutMessage {
    pub fn new(content: impl Into<String>) -> Self {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        OutMessage {
            content: content.into(),
            time,
        }
    }
}

pub const GAME_CHAT: &str = "/topic/game_chat";
/// Where the demo price feed publishes.
pub const PRICE_TOPIC: &str = "/topic/price";

fn single_chat_destination(to: &str) -> Result<String, HandlerError> {
    if to.is_empty()
        || to.contains(['/', '*', '?', '{', '}'])
        || to.chars().any(char::is_whitespace)
    {
        return Err(HandlerError::new(format!(
            "`to` must be a user id, got {to:?}"
        )));
    }
    Ok(format!("/chat/single/{to}"))
}

/// Registers the demo's `/app` handlers.
pub fn register(app: &mut AppBuilder) {
    app.message_mapping("/v1/chat", |message: Message<Json<InMessage>>| async move {
        Ok(Json(OutMessage::new(message.payload.0.content)))
    })
    .send_to(GAME_CHAT);
    app.message_mapping(
        "/v1/chat/single",
        |message: Message<Json<InMessage>>| async move {
            let InMessage { from, to, content } = message.payload.0;
            let destination = single_chat_destination(&to)?;
            message
                .template
                .convert_and_send(
                    &destination,
                    &OutMessage::new(format!("{from} sent: {content}")),
                )
                .map_err(|e| HandlerError::new(e.to_string()))?;
            Ok(())
        },
    );
}

#[derive(Debug, Deserialize)]
struct Trigger {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    content: String,
}

fn publish(template: &MessagingTemplate, destination: &str, message: &OutMessage) -> Response {
    match template.convert_and_send(destination, message) {
        Ok(_) => axum::Json(message).into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}

/// `GET /v1/chat/http?from=&to=&content=`: publishes to `/topic/game_chat` and returns the message.
async fn chat_http(
    State(template): State<MessagingTemplate>,
    Query(trigger): Query<Trigger>,
) -> Response {
    publish(&template, GAME_CHAT, &OutMessage::new(trigger.content))
}

/// `GET /v1/chat/single?from=&to=&content=`: sends `"{from} sent: {content}"` to `/chat/single/{to}`.
async fn chat_single(
    State(template): State<MessagingTemplate>,
    Query(trigger): Query<Trigger>,
) -> Response {
    match single_chat_destination(&trigger.to) {
        Ok(destination) => publish(
            &template,
            &destination,
            &OutMessage::new(format!("{} sent: {}", trigger.from, trigger.content)),
        ),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": error.message })),
        )
            .into_response(),
    }
}

pub fn http_routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/v1/chat/http", get(chat_http))
        .route("/v1/chat/single", get(chat_single))
}

/// One tick of the demo price feed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PriceTick {
    /// Counts up by one per tick, so a page can see a gap or a repeat.
    pub tick: u64,
    pub prices: std::collections::BTreeMap<String, f64>,
}

/// Publishes a random walk of a few prices to `/topic/price` every `every` until `stop` fires.
pub async fn run_price_feed(
    template: MessagingTemplate,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut prices: Vec<(&str, f64)> = vec![
        ("BTC", 64_000.0),
        ("ETH", 3_200.0),
        ("AAPL", 190.0),
        ("TSLA", 240.0),
    ];
    // A small linear congruential generator: the feed needs variety, not randomness.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for tick in 1.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        for (_, price) in prices.iter_mut() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let step = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.01;
            *price = (*price * (1.0 + step) * 100.0).round() / 100.0;
        }
        let message = PriceTick {
            tick,
            prices: prices
                .iter()
                .map(|(name, price)| (name.to_string(), *price))
                .collect(),
        };
        if let Err(error) = template.convert_and_send(PRICE_TOPIC, &message) {
            tracing::warn!(%error, "price feed stopped");
            return;
        }
    }
}

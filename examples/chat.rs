//! Embedding stomphub as a library: two handlers, an event listener and a
//! background task publishing through the `MessagingTemplate`.
//!
//! Run with `cargo run --example chat`, then point a STOMP client at
//! `ws://127.0.0.1:8080/endpoint-websocket`: SEND `{"name":"Ann"}` to
//! `/app/hello` and subscribe to `/topic/greetings`; SEND `7` to
//! `/app/room/7/join` and subscribe to `/user/queue/rooms`.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use stomphub::AppBuilder;
use stomphub::EventKind;
use stomphub::config::Config;
use stomphub::{HandlerError, Json, Message};
use stomphub::{Server, shutdown_signal};

#[derive(Deserialize)]
struct Hello {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    text: String,
}

/// `@MessageMapping("/hello") @SendTo("/topic/greetings")`
async fn hello(message: Message<Json<Hello>>) -> Result<Json<Greeting>, HandlerError> {
    let name = message.payload.0.name;
    if name.trim().is_empty() {
        return Err(HandlerError::new("name must not be empty"));
    }
    Ok(Json(Greeting {
        text: format!("Hello, {name}!"),
    }))
}

/// `@MessageMapping("/room/{id}/join") @SendToUser("/queue/rooms")`
async fn join(message: Message<String>) -> Result<String, HandlerError> {
    Ok(format!(
        "session {} joined room {}",
        message.session.id, message.vars["id"]
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let mut config = Config::default();
    // The example brings its own handlers; the seeds' demo handlers stay off.
    config.demo.enabled = false;

    let mut app = AppBuilder::new();
    app.message_mapping("/hello", hello)
        .send_to("/topic/greetings");
    app.message_mapping("/room/{id}/join", join)
        .send_to_session("/queue/rooms");
    app.on_event(|event| {
        if matches!(event.kind, EventKind::Connected | EventKind::Disconnect) {
            tracing::info!(kind = ?event.kind, session = %event.session.id, "session event");
        }
    });

    let server = Server::bind_with(config, app).await?;
    let template = server.template();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let _ = template.convert_and_send(
                "/topic/greetings",
                &Greeting {
                    text: "tick".into(),
                },
            );
        }
    });
    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        handle.shutdown();
    });
    tracing::info!("listening on {}", server.local_addr());
    server.run().await?;
    Ok(())
}

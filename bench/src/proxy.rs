//! The `proxy` scenario: `/app` SENDs answered by an HTTP application through
//! `[[route]] proxy`. The generator serves that application itself (axum on
//! loopback, answering each `message` call with the body as a reply to the
//! sender), so what is measured is the broker's proxy path, not a slow app.
//! Each session keeps `window` SENDs in flight and times each reply.
//! Pointed at a route without `proxy` (`to_user`), the same run is the baseline.

use crate::client::{self, Target};
use crate::report::{Measurement, ProcessFigures};
use crate::stats::Latency;
use crate::stomp_client::subscribe;
use axum::Json;
use axum::routing::post;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stomphub::stomp::{Command, Frame};

#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub target: Target,
    /// Where the generator serves the application; broker.toml's route names it.
    pub app_bind: SocketAddr,
    /// The `/app` destination SENDs go to.
    pub destination: String,
    /// What the sessions subscribe to for replies (`/user` + the reply destination).
    pub reply_destination: String,
    pub sessions: usize,
    /// SENDs per session.
    pub messages: u64,
    /// SENDs in flight per session.
    pub window: u64,
    pub body_size: usize,
    pub max_duration: Duration,
    pub broker_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct ProxyReport {
    pub scenario: &'static str,
    pub destination: String,
    pub sessions: usize,
    pub window: u64,
    pub sent: u64,
    pub replies: u64,
    /// Replies that came back out of order within their session.
    pub reordered: u64,
    pub app_calls: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub latency: Latency,
    pub broker: Option<ProcessFigures>,
    /// This process: the sessions and the application it serves.
    pub generator: ProcessFigures,
}

/// The application: every `message` call is answered with its body, back to the sender.
async fn serve_app(
    bind: SocketAddr,
    reply_to: String,
) -> Result<std::sync::Arc<std::sync::atomic::AtomicU64>, String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/stomp/app",
        post(move |Json(call): Json<Value>| {
            counted.fetch_add(1, Ordering::Relaxed);
            let reply = json!({"replies": [{
                "destination": reply_to,
                "sender": true,
                "body": call.get("body").cloned().unwrap_or(Value::Null),
            }]});
            async move { Json(reply) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("the application cannot listen on {bind}: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(calls)
}

/// One session's closed loop: `window` SENDs out, one more per reply.
async fn session(
    options: std::sync::Arc<ProxyOptions>,
    base: Instant,
) -> Result<(Histogram<u64>, u64, u64, u64), String> {
    let (mut sender, mut receiver) = client::connect(&options.target).await?;
    subscribe(
        &mut sender,
        &mut receiver,
        "replies",
        &format!("/user{}", options.reply_destination),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut latency =
        Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let padding = "x".repeat(options.body_size.saturating_sub(24));
    let (mut sent, mut received, mut reordered, mut next_expected) = (0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    while received < options.messages && started.elapsed() < options.max_duration {
        while sent < options.messages && sent - received < options.window {
            let sent_ns = base.elapsed().as_nanos() as u64;
            let frame = Frame::new(Command::Send)
                .header("destination", options.destination.as_str())
                .body(format!("{sent} {sent_ns} {padding}"));
            sender.send(&frame).await.map_err(|e| e.to_string())?;
            sent += 1;
        }
        let frame = match tokio::time::timeout(Duration::from_secs(10), receiver.next_frame()).await
        {
            Ok(Ok(frame)) => frame,
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err("no reply within 10 s".into()),
        };
        if frame.command != Command::Message {
            return Err(format!(
                "expected a reply, got {:?}: {:?}",
                frame.command,
                frame.get("message")
            ));
        }
        let text = String::from_utf8_lossy(&frame.body);
        let mut fields = text.split(' ');
        let sequence: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or("a reply without its sequence")?;
        let sent_ns: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or("a reply without its time")?;
        if sequence != next_expected {
            reordered += 1;
        }
        next_expected = sequence + 1;
        let _ = latency.record((base.elapsed().as_nanos() as u64).saturating_sub(sent_ns));
        received += 1;
    }
    sender.close().await;
    Ok((latency, sent, received, reordered))
}

pub async fn run(options: ProxyOptions) -> Result<ProxyReport, String> {
    client::only_loopback(&options.target.url)?;
    if !options.app_bind.ip().is_loopback() {
        return Err(format!(
            "--app-bind {} is not a loopback address",
            options.app_bind
        ));
    }
    let calls = serve_app(options.app_bind, options.reply_destination.clone()).await?;
    let base = Instant::now();
    let options = std::sync::Arc::new(options);
    let measurement = Measurement::start(options.broker_pid);
    let tasks: Vec<_> = (0..options.sessions)
        .map(|_| tokio::spawn(session(options.clone(), base)))
        .collect();
    let mut latency =
        Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let (mut sent, mut replies, mut reordered) = (0, 0, 0);
    for task in tasks {
        let (histogram, s, r, o) = task.await.map_err(|e| e.to_string())??;
        let _ = latency.add(&histogram);
        sent += s;
        replies += r;
        reordered += o;
    }
    let (seconds, broker, generator) = measurement.finish();
    Ok(ProxyReport {
        scenario: "proxy",
        destination: options.destination.clone(),
        sessions: options.sessions,
        window: options.window,
        sent,
        replies,
        reordered,
        app_calls: calls.load(std::sync::atomic::Ordering::Relaxed),
        seconds,
        messages_per_second: replies as f64 / seconds,
        latency: Latency::of(&latency),
        broker,
        generator,
    })
}

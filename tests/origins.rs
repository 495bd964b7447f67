//! Origins: same-origin by default, `server.allowed_origins` patterns, 403 for
//! the rest on the WebSocket and SSE, and CORS answers on the HTTP API.

mod common {
    pub mod http;
    pub mod server;
    pub mod sse;
    pub mod stomp_client;
}

use common::http;
use common::server::TestServer;
use common::sse::SseClient;
use common::stomp_client::Client;

#[tokio::test]
async fn foreign_origins_are_refused_by_default() {
    let server = TestServer::start().await;
    let same = format!("http://{}", server.addr);
    assert!(
        Client::try_open(&server.url(), &[], &[("Origin", &same)])
            .await
            .is_ok()
    );
    // Non-browser clients send no Origin and are not restricted by it.
    assert!(Client::try_open(&server.url(), &[], &[]).await.is_ok());
    let (status, body) = Client::try_open(&server.url(), &[], &[("Origin", "http://evil.test")])
        .await
        .err()
        .expect("a foreign origin is refused");
    assert_eq!(status, 403);
    assert!(body.contains("server.allowed_origins"), "{body}");
    let response = http::request(
        server.addr,
        "GET",
        "/sse/subscribe?destination=/topic/price",
        &[("Origin", "http://evil.test")],
        "",
    )
    .await;
    assert_eq!(response.status, 403, "{response:?}");
    let stream =
        SseClient::open(server.addr, "/sse/subscribe?destination=/topic/price", None).await;
    assert_eq!(stream.status, 200);
}

#[tokio::test]
async fn allowed_origin_patterns_admit_pages_and_get_cors_answers() {
    let server = TestServer::start_with(|config| {
        config.server.allowed_origins = vec!["https://*.example.com".into()];
    })
    .await;
    let page = "https://app.example.com";
    assert!(
        Client::try_open(&server.url(), &[], &[("Origin", page)])
            .await
            .is_ok()
    );
    let (status, _) = Client::try_open(
        &server.url(),
        &[],
        &[("Origin", "https://example.com.evil.test")],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(status, 403);
    let preflight = http::request(
        server.addr,
        "OPTIONS",
        "/api/publish",
        &[
            ("Origin", page),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    let headers = preflight.headers.to_ascii_lowercase();
    assert!(
        headers.contains("access-control-allow-origin: https://app.example.com"),
        "{headers}"
    );
    assert!(
        headers.contains("access-control-allow-headers"),
        "{headers}"
    );
    let stats = http::request(server.addr, "GET", "/api/stats", &[("Origin", page)], "").await;
    assert!(
        stats
            .headers
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example.com")
    );
    let foreign = http::request(
        server.addr,
        "GET",
        "/api/stats",
        &[("Origin", "https://evil.test")],
        "",
    )
    .await;
    assert!(
        !foreign
            .headers
            .to_ascii_lowercase()
            .contains("access-control-allow-origin")
    );
}

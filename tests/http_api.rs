//! The seeds' demo and the HTTP API, with the default broker.toml.

mod common {
    pub mod http;
    pub mod server;
    pub mod stomp_client;
}

use common::http::{get, post_json, request};
use common::server::TestServer;
use common::stomp_client::Client;
use std::time::Duration;
use stomphub::stomp::{Command, Frame};

#[tokio::test]
async fn the_seeds_chat_handler_publishes_content_and_time_to_game_chat() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("chat", "/topic/game_chat").await;
    let mut admin = Client::connect(&server.url()).await;
    admin
        .send(
            Frame::new(Command::Send)
                .header("destination", "/app/v1/chat")
                .body(r#"{"content":"哇哈哈"}"#),
        )
        .await;
    let message = client.frame().await;
    let out: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(out["content"], "哇哈哈");
    assert!(out["time"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
}

#[tokio::test]
async fn the_single_chat_handler_reaches_only_that_user() {
    let server = TestServer::start().await;
    let mut user2 = Client::connect(&server.url()).await;
    user2.subscribe("me", "/chat/single/2").await;
    let mut user3 = Client::connect(&server.url()).await;
    user3.subscribe("me", "/chat/single/3").await;
    let mut user1 = Client::connect(&server.url()).await;
    user1
        .send(
            Frame::new(Command::Send)
                .header("destination", "/app/v1/chat/single")
                .body(r#"{"from":"1","to":"2","content":"你好"}"#),
        )
        .await;
    let out: serde_json::Value = serde_json::from_slice(&user2.frame().await.body).unwrap();
    assert_eq!(out["content"], "1 sent: 你好");
    assert!(
        user3
            .frame_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn the_http_triggers_publish_and_return_the_message() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("chat", "/topic/game_chat").await;
    client.subscribe("me", "/chat/single/2").await;
    let response = get(
        server.addr,
        "/v1/chat/http?from=1&to=2&content=%E5%93%87%E5%93%88%E5%93%88",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["content"], "哇哈哈");
    let pushed: serde_json::Value = serde_json::from_slice(&client.frame().await.body).unwrap();
    assert_eq!(pushed["content"], "哇哈哈");

    let response = get(server.addr, "/v1/chat/single?from=1&to=2&content=hi").await;
    assert_eq!(response.status, 200);
    let pushed: serde_json::Value = serde_json::from_slice(&client.frame().await.body).unwrap();
    assert_eq!(pushed["content"], "1 sent: hi");

    let response = get(server.addr, "/v1/chat/single?from=1&to=a/b&content=x").await;
    assert_eq!(response.status, 400);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("must be a user id")
    );
    let response = get(server.addr, "/v1/chat/http?from=1").await;
    assert_eq!(response.status, 400, "content is required");
}

#[tokio::test]
async fn the_publish_api_needs_the_token_and_valid_json() {
    let server = TestServer::start_with(|config| config.api.token = "s3cret".into()).await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("p", "/topic/price").await;

    let body = r#"{"destination":"/topic/price","headers":{"x-source":"api"},"body":{"BTC":1}}"#;
    let response = post_json(server.addr, "/api/publish", None, body).await;
    assert_eq!(response.status, 401);
    assert!(
        response
            .headers
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    let response = post_json(server.addr, "/api/publish", Some("wrong"), body).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.json()["error"],
        "missing or wrong bearer token: send [api] token (or, for reads, [api] read_token) as Authorization: Bearer"
    );

    let response = post_json(server.addr, "/api/publish", Some("s3cret"), body).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["deliveries"], 1);
    let message = client.frame().await;
    assert_eq!(message.get("content-type"), Some("application/json"));
    assert_eq!(message.get("x-source"), Some("api"));
    assert_eq!(message.body.as_ref(), br#"{"BTC":1}"#);

    let text = r#"{"destination":"/topic/price","body":"plain text"}"#;
    post_json(server.addr, "/api/publish", Some("s3cret"), text).await;
    let message = client.frame().await;
    assert_eq!(
        message.get("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(message.body.as_ref(), b"plain text");

    let response = post_json(server.addr, "/api/publish", Some("s3cret"), "{not json").await;
    assert_eq!(response.status, 400);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body")
    );
    let response = post_json(
        server.addr,
        "/api/publish",
        Some("s3cret"),
        r#"{"destination":"/queue/x","body":1}"#,
    )
    .await;
    assert_eq!(response.status, 400);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("not a broker destination")
    );
}

#[tokio::test]
async fn the_user_publish_api_reaches_every_session_of_the_user() {
    let server = TestServer::start_with(|config| config.stomp.user_from_login = true).await;
    let url = server.url();
    let mut first = Client::connect_as(&url, Some("7")).await;
    let mut second = Client::connect_as(&url, Some("7")).await;
    for client in [&mut first, &mut second] {
        client.subscribe("pay", "/user/queue/payment").await;
    }
    let response = post_json(
        server.addr,
        "/api/users/7/publish",
        None,
        r#"{"destination":"/queue/payment","body":{"status":"paid"}}"#,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["sessions"], 2);
    for client in [&mut first, &mut second] {
        let message = client.frame().await;
        assert_eq!(message.get("destination"), Some("/user/queue/payment"));
        assert_eq!(message.body.as_ref(), br#"{"status":"paid"}"#);
    }
}

#[tokio::test]
async fn stats_and_sessions_describe_the_connected_clients() {
    let server = TestServer::start_with(|config| config.stomp.user_from_login = true).await;
    let mut client = Client::connect_as(&server.url(), Some("alice")).await;
    client.subscribe("chat", "/topic/game_chat").await;
    client.publish("/topic/game_chat", "x").await;
    client.frame().await;

    let stats = get(server.addr, "/api/stats").await.json();
    assert_eq!(stats["connections"], 1);
    assert_eq!(stats["sessions"], 1);
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["subscriptions"]["/topic/game_chat"], 1);
    assert!(stats["messages_in"].as_u64().unwrap() >= 1);

    let sessions = get(server.addr, "/api/sessions").await.json();
    let session = &sessions[0];
    assert_eq!(session["user"], "alice");
    assert!(
        session["remote"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        session["subscriptions"][0]["destination"],
        "/topic/game_chat"
    );
    assert_eq!(session["attributes"]["sessionId"], session["id"]);
    assert!(session["connected_since"].as_u64().unwrap() > 0);

    client
        .send(Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    client.frame().await;
    client.closed().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get(server.addr, "/api/sessions").await.json(),
        serde_json::json!([])
    );
}

/// Without `[api] token`, writes answer this machine only: a client a trusted
/// proxy names, or a request an untrusted local proxy forwarded, is refused
/// with the keys to change; `[api] insecure = true` opens them.
#[tokio::test]
async fn without_a_token_writes_answer_loopback_clients_only() {
    let body = r#"{"destination": "/topic/x", "body": "hi"}"#;
    let json = ("Content-Type", "application/json");
    let server = TestServer::start_with(|config| {
        config.server.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
    })
    .await;
    let local = request(server.addr, "POST", "/api/publish", &[json], body).await;
    assert_eq!(local.status, 200, "{}", local.body);
    // nginx on this host, not trusted, forwarding a remote client.
    let forwarded = [json, ("X-Forwarded-For", "203.0.113.7")];
    let refused = request(server.addr, "POST", "/api/publish", &forwarded, body).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("[api] token"), "{}", refused.body);
    assert!(refused.body.contains("[api] insecure"), "{}", refused.body);
    // A trusted proxy naming a remote client: that client is not local.
    let through_proxy = common::http::request_from(
        "127.0.0.2".parse().unwrap(),
        server.addr,
        "POST",
        "/api/publish",
        &forwarded,
        body,
    )
    .await;
    assert_eq!(through_proxy.status, 403, "{}", through_proxy.body);
    let closing = request(server.addr, "DELETE", "/api/sessions/1", &forwarded, "").await;
    assert_eq!(closing.status, 403);

    // A trusted proxy on loopback whose headers name nobody usable is not
    // taken for a local client.
    let behind_local_proxy = TestServer::start_with(|config| {
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    for unusable in ["for=unknown", "for=\"_hidden\""] {
        let headers = [json, ("Forwarded", unusable)];
        let answer = request(
            behind_local_proxy.addr,
            "POST",
            "/api/publish",
            &headers,
            body,
        )
        .await;
        assert_eq!(answer.status, 403, "Forwarded: {unusable}: {}", answer.body);
    }
    let named_local = [json, ("X-Forwarded-For", "127.0.0.1")];
    let answer = request(
        behind_local_proxy.addr,
        "POST",
        "/api/publish",
        &named_local,
        body,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let open = TestServer::start_with(|config| config.api.insecure = true).await;
    let allowed = request(open.addr, "POST", "/api/publish", &forwarded, body).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
}

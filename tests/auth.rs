//! Authentication over real WebSockets and SSE: password users (argon2, bcrypt),
//! JWT bearer tokens (HS256, RS256) from each place a client can put them, and
//! user streams that only their user can open.

mod common {
    pub mod auth;
    pub mod server;
    pub mod sse;
    pub mod stomp_client;
}

use common::auth::{self, SECRET};
use common::server::TestServer;
use common::sse::SseClient;
use common::stomp_client::Client;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Duration;
use stomphub::config::{JwtAlgorithm, JwtConfig, UserConfig};
use stomphub::stomp::Command;

/// A password user for `config.auth.users`.
fn user(name: &str, password_hash: String, roles: &[&str]) -> UserConfig {
    UserConfig {
        name: name.into(),
        password_hash,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rs256_config() -> JwtConfig {
    JwtConfig {
        algorithm: JwtAlgorithm::RS256,
        secret: String::new(),
        secret_file: None,
        public_key_file: Some(fixture("jwt-rs256-public.pem")),
        issuer: "https://issuer.test".into(),
        audience: String::new(),
        roles_claim: "roles".into(),
        leeway_s: 0,
    }
}

/// An RS256 token signed with the fixture's private key.
fn rs256(sub: &str, issuer: &str) -> String {
    let pem = std::fs::read(fixture("jwt-rs256-private.pem")).expect("fixture key");
    let claims = serde_json::json!({ "sub": sub, "iss": issuer, "exp": auth::now() + 300 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&pem).expect("RSA key"),
    )
    .expect("sign")
}

async fn password_server() -> TestServer {
    let alice = stomphub::hash_password("wonderland").unwrap();
    let bob = bcrypt::hash("builder", 4).unwrap();
    TestServer::start_with(move |config| {
        config.auth.anonymous = false;
        config.auth.users = vec![user("alice", alice, &["admin"]), user("bob", bob, &[])];
    })
    .await
}

async fn refused_with(url: &str, headers: &[(&str, &str)], expected: &str) {
    let (mut client, reply) = Client::connect_with(url, headers).await;
    assert_eq!(reply.command, Command::Error, "{reply:?}");
    let message = reply.get("message").unwrap_or_default();
    assert!(
        message.contains(expected),
        "{message:?} should contain {expected:?}"
    );
    client.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_users_log_in_and_wrong_credentials_are_refused() {
    let server = password_server().await;
    let url = server.url();
    let (_alice, reply) =
        Client::connect_with(&url, &[("login", "alice"), ("passcode", "wonderland")]).await;
    assert_eq!(reply.command, Command::Connected, "{reply:?}");
    assert_eq!(reply.get("user-name"), Some("alice"));
    let (_bob, reply) =
        Client::connect_with(&url, &[("login", "bob"), ("passcode", "builder")]).await;
    assert_eq!(
        reply.get("user-name"),
        Some("bob"),
        "bcrypt user: {reply:?}"
    );
    let wrong = "authentication failed: wrong login or passcode";
    refused_with(&url, &[("login", "alice"), ("passcode", "builder")], wrong).await;
    refused_with(&url, &[("login", "mallory"), ("passcode", "x")], wrong).await;
    refused_with(&url, &[("login", "alice")], wrong).await;
    refused_with(&url, &[], "authentication required").await;
    // The failures cost nobody else anything.
    let (_again, reply) =
        Client::connect_with(&url, &[("login", "alice"), ("passcode", "wonderland")]).await;
    assert_eq!(reply.command, Command::Connected);
}

async fn jwt_server() -> TestServer {
    TestServer::start_with(|config| {
        config.auth.anonymous = false;
        config.auth.jwt = Some(auth::hs256_config());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_accepted_from_connect_headers_and_the_query_string() {
    let server = jwt_server().await;
    let url = server.url();
    let token = auth::hs256("carol", &["ops"], 300);
    let bearer = format!("Bearer {token}");
    for headers in [
        vec![("passcode", token.as_str())],
        vec![("login", "carol"), ("passcode", token.as_str())],
        vec![("Authorization", bearer.as_str())],
    ] {
        let (_client, reply) = Client::connect_with(&url, &headers).await;
        assert_eq!(
            reply.get("user-name"),
            Some("carol"),
            "{headers:?}: {reply:?}"
        );
    }
    // Browsers cannot set WebSocket headers: the token rides in the query string.
    let with_query = format!("{url}?access_token={token}");
    let (_client, reply) = Client::connect_with(&with_query, &[]).await;
    assert_eq!(reply.get("user-name"), Some("carol"), "{reply:?}");
    // Or in the handshake's Authorization header, for clients that can set it.
    let mut client = Client::try_open(&url, &["v12.stomp"], &[("Authorization", &bearer)])
        .await
        .expect("handshake with a good token");
    client.send_raw(b"CONNECT\naccept-version:1.2\n\n\0").await;
    assert_eq!(client.frame().await.get("user-name"), Some("carol"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_the_reason() {
    let server = jwt_server().await;
    let url = server.url();
    let expired = auth::hs256("carol", &[], -120);
    refused_with(&url, &[("passcode", &expired)], "ExpiredSignature").await;
    let forged = {
        // Flip a character inside the signature (the last one carries padding bits).
        let mut token = auth::hs256("carol", &[], 300).into_bytes();
        let at = token.len() - 10;
        token[at] = if token[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(token).unwrap()
    };
    refused_with(&url, &[("passcode", &forged)], "invalid bearer token").await;
    let other_user = auth::hs256("carol", &[], 300);
    refused_with(
        &url,
        &[("login", "dave"), ("passcode", &other_user)],
        "differs from the login",
    )
    .await;
    refused_with(&url, &[("Authorization", "Basic abc")], "Bearer").await;
    // A bad token in the handshake is refused before any WebSocket exists.
    let refused = Client::try_open(&format!("{url}?access_token={forged}"), &[], &[]).await;
    let (status, body) = refused.err().expect("refused");
    assert_eq!(status, 401);
    assert!(body.contains("invalid bearer token"), "{body}");
    assert!(SECRET.len() >= 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_are_checked_against_the_public_key_and_issuer() {
    let server = TestServer::start_with(|config| {
        config.auth.jwt = Some(rs256_config());
    })
    .await;
    let url = server.url();
    let token = rs256("erin", "https://issuer.test");
    let (_client, reply) = Client::connect_with(&url, &[("passcode", &token)]).await;
    assert_eq!(reply.get("user-name"), Some("erin"), "{reply:?}");
    let wrong_issuer = rs256("erin", "https://other.test");
    refused_with(&url, &[("passcode", &wrong_issuer)], "InvalidIssuer").await;
    // An HS256 token signed with the public key as secret (algorithm confusion) fails.
    let hs = auth::hs256("erin", &[], 300);
    refused_with(&url, &[("passcode", &hs)], "invalid bearer token").await;
    // Anonymous sessions are still allowed on this server.
    let (_anonymous, reply) = Client::connect_with(&url, &[]).await;
    assert_eq!(reply.command, Command::Connected);
    assert_eq!(reply.get("user-name"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_stream_opens_only_with_that_users_token() {
    let server = TestServer::start_with(|config| {
        config.auth.jwt = Some(auth::hs256_config());
        config.stomp.user_from_login = true;
    })
    .await;
    let alice = auth::hs256("alice", &[], 300);
    let mut own = SseClient::open(
        server.addr,
        &format!("/sse/users/alice?access_token={alice}"),
        None,
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.head);
    let other = SseClient::open(
        server.addr,
        &format!("/sse/users/bob?access_token={alice}"),
        None,
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.head);
    // Without a token the name would only be a claim, and credentials are checked here.
    let unproven = SseClient::open(server.addr, "/sse/users/alice", None).await;
    assert_eq!(unproven.status, 401, "{}", unproven.head);
    own.next_within(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server
        .template
        .convert_and_send_to_user("alice", "/queue/payment", &"paid")
        .unwrap();
    let (_, _, data) = own.event().await;
    assert_eq!(data, "\"paid\"");
}

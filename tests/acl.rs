//! Per-destination access rules over real WebSockets and SSE: a denied SUBSCRIBE
//! or SEND gets an ERROR naming the destination, wildcards cannot reach around a
//! rule, and one user's `/user/...` messages never reach another user.

mod common {
    pub mod auth;
    pub mod server;
    pub mod sse;
    pub mod stomp_client;
}

use common::auth;
use common::server::TestServer;
use common::sse::SseClient;
use common::stomp_client::Client;
use std::time::Duration;
use stomphub::config::AclRuleConfig;
use stomphub::stomp::{Command, Frame};

fn rule(destination: &str, subscribe: Option<&[&str]>, send: Option<&[&str]>) -> AclRuleConfig {
    let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| s.to_string()).collect());
    AclRuleConfig {
        destination: destination.into(),
        subscribe: list(subscribe),
        send: list(send),
    }
}

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.auth.jwt = Some(auth::hs256_config());
        config.acl = vec![
            rule(
                "/topic/admin/**",
                Some(&["role:admin"]),
                Some(&["role:admin"]),
            ),
            rule("/app/v1/chat", None, Some(&["authenticated"])),
        ];
    })
    .await
}

async fn as_user(server: &TestServer, user: &str, roles: &[&str]) -> Client {
    let token = auth::hs256(user, roles, 300);
    let (client, reply) = Client::connect_with(&server.url(), &[("passcode", &token)]).await;
    assert_eq!(reply.command, Command::Connected, "{reply:?}");
    client
}

async fn denied(client: &mut Client, frame: Frame, expected: &str) {
    client.send(frame).await;
    let message = client.error_then_close().await;
    assert_eq!(message, expected);
}

fn subscribe(destination: &str) -> Frame {
    Frame::new(Command::Subscribe)
        .header("id", "s")
        .header("destination", destination)
}

fn send(destination: &str) -> Frame {
    Frame::new(Command::Send)
        .header("destination", destination)
        .body("{\"content\":\"hi\"}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_decide_who_subscribes_and_sends() {
    let server = server().await;
    let mut admin = as_user(&server, "alice", &["admin"]).await;
    admin.subscribe("a", "/topic/admin/alerts").await;
    admin.subscribe("all", "/topic/**").await;
    admin.publish("/topic/admin/alerts", "from alice").await;
    assert_eq!(admin.frame().await.body.as_ref(), b"from alice");
    assert_eq!(admin.frame().await.body.as_ref(), b"from alice");

    let mut bob = as_user(&server, "bob", &[]).await;
    denied(
        &mut bob,
        subscribe("/topic/admin/alerts"),
        "access denied: user \"bob\" may not subscribe to /topic/admin/alerts (rule for /topic/admin/**)",
    )
    .await;
    let mut bob = as_user(&server, "bob", &[]).await;
    denied(
        &mut bob,
        subscribe("/topic/**"),
        "access denied: user \"bob\" may not subscribe to /topic/** (rule for /topic/admin/**)",
    )
    .await;
    let mut bob = as_user(&server, "bob", &[]).await;
    denied(
        &mut bob,
        send("/topic/admin/alerts"),
        "access denied: user \"bob\" may not send to /topic/admin/alerts (rule for /topic/admin/**)",
    )
    .await;
    // Destinations no rule covers stay open; /app routes are checked too.
    let mut bob = as_user(&server, "bob", &[]).await;
    bob.subscribe("p", "/topic/price/**").await;
    bob.subscribe("chat", "/topic/game_chat").await;
    bob.send(send("/app/v1/chat")).await;
    assert_eq!(
        bob.frame().await.get("destination"),
        Some("/topic/game_chat")
    );
    let mut anonymous = Client::connect(&server.url()).await;
    denied(
        &mut anonymous,
        send("/app/v1/chat"),
        "access denied: an anonymous session may not send to /app/v1/chat (rule for /app/v1/chat)",
    )
    .await;
    // Nothing bob tried reached the admin topic: alice sees only the chat message.
    while let Some(frame) = admin.frame_within(Duration::from_millis(200)).await {
        assert_eq!(
            frame.get("destination"),
            Some("/topic/game_chat"),
            "{frame:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_messages_never_reach_another_user() {
    let server = server().await;
    let mut alice = as_user(&server, "alice", &[]).await;
    alice.subscribe("mine", "/user/queue/secret").await;
    let mut bob = as_user(&server, "bob", &[]).await;
    for (id, destination) in [
        ("1", "/user/alice/queue/secret"),
        ("2", "/user/**"),
        ("3", "/user/*/queue/secret"),
        ("4", "/user/queue/secret"),
        ("5", "/user/*/*/queue/secret"),
    ] {
        bob.subscribe(id, destination).await;
    }
    // Broker destinations cannot name the internal per-session keys either.
    bob.send(subscribe("/**").header("receipt", "r")).await;
    let reply = bob.frame().await;
    assert_eq!(reply.command, Command::Error, "{reply:?}");
    let mut bob = as_user(&server, "bob", &[]).await;
    bob.subscribe("again", "/user/**").await;
    let sent = server
        .template
        .convert_and_send_to_user("alice", "/queue/secret", &"for alice only")
        .unwrap();
    assert_eq!(sent, 1);
    assert_eq!(alice.frame().await.body.as_ref(), b"\"for alice only\"");
    assert!(bob.frame_within(Duration::from_millis(300)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_obey_the_same_rules() {
    let server = server().await;
    let bob = auth::hs256("bob", &[], 300);
    let refused = SseClient::open(
        server.addr,
        &format!("/sse/subscribe?destination=/topic/admin/alerts&access_token={bob}"),
        None,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.head);
    let alice = auth::hs256("alice", &["admin"], 300);
    let allowed = SseClient::open(
        server.addr,
        &format!("/sse/subscribe?destination=/topic/admin/alerts&access_token={alice}"),
        None,
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.head);
}

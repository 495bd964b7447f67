//! `/app` handlers over real WebSockets: reply policies, variables, user
//! destinations, subscribe mappings, exception handling, the template.

mod common {
    pub mod server;
    pub mod stomp_client;
}

use common::server::TestServer;
use common::stomp_client::Client;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use stomphub::AppBuilder;
use stomphub::stomp::{Command, Frame};
use stomphub::{HandlerError, Json, Message, Payload};

#[derive(Debug, Deserialize)]
struct Greeting {
    name: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Reply {
    text: String,
}

fn app() -> AppBuilder {
    let mut app = AppBuilder::new();
    app.message_mapping("/greet", |m: Message<Json<Greeting>>| async move {
        Ok(Json(Reply {
            text: format!("hello {}", m.payload.0.name),
        }))
    })
    .send_to("/topic/greetings");
    app.message_mapping("/echo", |m: Message<String>| async move { Ok(m.payload) });
    app.message_mapping("/room/{id}/say", |m: Message<String>| async move {
        Ok(format!("room {} heard {}", m.vars["id"], m.payload))
    })
    .send_to("/topic/room/{id}");
    app.message_mapping("/whoami", |m: Message<String>| async move {
        Ok(format!(
            "{} via {}",
            m.session.user.clone().unwrap_or_default(),
            m.session.id
        ))
    })
    .send_to_user("/queue/me");
    app.message_mapping("/whoami/here", |m: Message<String>| async move {
        Ok(m.session.id.clone())
    })
    .send_to_session("/queue/me");
    app.message_mapping("/silent", |_m: Message<String>| async move { Ok(()) });
    app.message_mapping("/fail", |m: Message<String>| async move {
        if m.payload == "fatal" {
            Err::<(), _>(HandlerError::fatal("cannot continue"))
        } else {
            Err(HandlerError::new("bad input"))
        }
    });
    app.message_mapping("/panic", |_m: Message<String>| async move {
        if true {
            panic!("handler bug");
        }
        Ok(())
    });
    app.subscribe_mapping("/initial", |m: Message<bytes::Bytes>| async move {
        Ok(Json(Reply {
            text: format!("snapshot for {}", m.session.id),
        }))
    });
    app
}

async fn server() -> TestServer {
    TestServer::start_with_app(|config| config.stomp.user_from_login = true, app()).await
}

fn send(destination: &str, body: &str) -> Frame {
    Frame::new(Command::Send)
        .header("destination", destination)
        .body(body.to_owned())
}

#[tokio::test]
async fn send_to_publishes_the_json_result_to_the_broker() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("g", "/topic/greetings").await;
    client
        .send(send("/app/greet", r#"{"name":"世界"}"#).header("content-type", "application/json"))
        .await;
    let message = client.frame().await;
    assert_eq!(message.get("content-type"), Some("application/json"));
    let reply: Reply = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(
        reply,
        Reply {
            text: "hello 世界".into()
        }
    );
}

#[tokio::test]
async fn without_send_to_the_result_goes_to_topic_plus_the_input_destination() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("e", "/topic/echo").await;
    client.send(send("/app/echo", "ping")).await;
    let message = client.frame().await;
    assert_eq!(message.get("destination"), Some("/topic/echo"));
    assert_eq!(message.body.as_ref(), b"ping");
}

#[tokio::test]
async fn destination_variables_reach_the_handler_and_the_reply_destination() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("r", "/topic/room/7").await;
    client.send(send("/app/room/7/say", "hi")).await;
    assert_eq!(client.frame().await.body.as_ref(), b"room 7 heard hi");
}

#[tokio::test]
async fn handlers_of_one_session_run_in_order() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("e", "/topic/echo").await;
    for n in 0..200 {
        client.send(send("/app/echo", &n.to_string())).await;
    }
    for n in 0..200 {
        assert_eq!(client.frame().await.body, n.to_string().as_bytes());
    }
}

#[tokio::test]
async fn send_to_user_reaches_every_session_of_the_sender_and_send_to_session_only_one() {
    let server = server().await;
    let url = server.url();
    let mut alice_1 = Client::connect_as(&url, Some("alice")).await;
    let mut alice_2 = Client::connect_as(&url, Some("alice")).await;
    let mut bob = Client::connect_as(&url, Some("bob")).await;
    for client in [&mut alice_1, &mut alice_2, &mut bob] {
        client.subscribe("me", "/user/queue/me").await;
    }
    alice_1.send(send("/app/whoami", "")).await;
    for client in [&mut alice_1, &mut alice_2] {
        let message = client.frame().await;
        assert_eq!(message.get("destination"), Some("/user/queue/me"));
        assert!(String::from_utf8_lossy(&message.body).starts_with("alice via "));
    }
    assert!(
        bob.frame_within(Duration::from_millis(300)).await.is_none(),
        "bob sees nothing"
    );

    alice_2.send(send("/app/whoami/here", "")).await;
    let only = alice_2.frame().await;
    assert!(!only.body.is_empty());
    assert!(
        alice_1
            .frame_within(Duration::from_millis(300))
            .await
            .is_none(),
        "only the sending session"
    );
}

#[tokio::test]
async fn the_template_reaches_users_and_topics_from_a_spawned_task() {
    let server = server().await;
    let url = server.url();
    let mut alice_1 = Client::connect_as(&url, Some("alice")).await;
    let mut alice_2 = Client::connect_as(&url, Some("alice")).await;
    let mut bob = Client::connect_as(&url, Some("bob")).await;
    for client in [&mut alice_1, &mut alice_2, &mut bob] {
        client.subscribe("n", "/user/queue/notice").await;
    }
    bob.subscribe("t", "/topic/news").await;
    let template = server.template.clone();
    let sent = tokio::spawn(async move {
        let to_alice = template
            .convert_and_send_to_user(
                "alice",
                "/queue/notice",
                &Reply {
                    text: "for alice".into(),
                },
            )
            .unwrap();
        let to_topic = template
            .convert_and_send(
                "/topic/news",
                &Reply {
                    text: "for all".into(),
                },
            )
            .unwrap();
        (to_alice, to_topic)
    })
    .await
    .unwrap();
    assert_eq!(sent, (2, 1));
    for client in [&mut alice_1, &mut alice_2] {
        let reply: Reply = serde_json::from_slice(&client.frame().await.body).unwrap();
        assert_eq!(reply.text, "for alice");
    }
    let news: Reply = serde_json::from_slice(&bob.frame().await.body).unwrap();
    assert_eq!(news.text, "for all");
    assert!(bob.frame_within(Duration::from_millis(200)).await.is_none());
    assert!(
        server
            .template
            .convert_and_send("/queue/not-broker", &1)
            .is_err()
    );
}

#[tokio::test]
async fn a_subscribe_mapping_answers_that_subscription_only() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("snap", "/app/initial").await;
    let message = client.frame().await;
    assert_eq!(message.get("subscription"), Some("snap"));
    assert_eq!(message.get("destination"), Some("/app/initial"));
    let reply: Reply = serde_json::from_slice(&message.body).unwrap();
    assert!(reply.text.starts_with("snapshot for "));
    let mut other = Client::connect(&server.url()).await;
    other.subscribe("x", "/topic/quiet").await;
    assert!(
        other
            .frame_within(Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn handler_errors_go_to_user_queue_errors_and_keep_the_session() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("errors", "/user/queue/errors").await;
    client.send(send("/app/fail", "soft")).await;
    let message = client.frame().await;
    let error: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(error["error"], "bad input");
    assert_eq!(error["destination"], "/app/fail");
    client.send(send("/app/panic", "")).await;
    let error: serde_json::Value = serde_json::from_slice(&client.frame().await.body).unwrap();
    assert_eq!(error["error"], "the handler panicked");
    client.send(send("/app/greet", "not json")).await;
    let error: serde_json::Value = serde_json::from_slice(&client.frame().await.body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("payload is not the expected JSON")
    );
    client.subscribe("still", "/topic/alive").await;
}

#[tokio::test]
async fn a_fatal_handler_error_ends_the_session_with_an_error_frame() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.send(send("/app/fail", "fatal")).await;
    let message = client.error_then_close().await;
    assert_eq!(message, "application handler failed: cannot continue");
}

#[tokio::test]
async fn a_custom_exception_handler_replaces_the_default() {
    let mut app = app();
    app.exception_handler(|error, _session, _destination| {
        Some((
            "/queue/problems".to_owned(),
            Payload::text(format!("custom: {}", error.message)),
        ))
    });
    let server = TestServer::start_with_app(|_| {}, app).await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("p", "/user/queue/problems").await;
    client.send(send("/app/fail", "soft")).await;
    assert_eq!(client.frame().await.body.as_ref(), b"custom: bad input");
}

#[tokio::test]
async fn silent_handlers_publish_nothing() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("all", "/topic/**").await;
    client
        .send(send("/app/silent", "x").header("receipt", "done"))
        .await;
    assert_eq!(client.frame().await.command, Command::Receipt);
    assert!(
        client
            .frame_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

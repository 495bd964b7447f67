//! Reloading `broker.toml` while the broker runs (`SIGHUP`, `POST /api/reload`),
//! with the real binary: an `[[acl]]` change takes effect for the next
//! SUBSCRIBE while 100 connected clients stay connected and keep receiving; a
//! file that fails validation changes nothing and the API answers 400 naming
//! the key; a renewed certificate is served to the next TLS client while an
//! existing wss connection stays up.

#[allow(
    dead_code,
    reason = "helpers shared with other suites; this one needs fewer"
)]
mod common {
    pub mod http;
    pub mod process;
    pub mod stomp_client;
    pub mod tls;
}

use common::http::request;
use common::stomp_client::Client;
use futures_util::SinkExt;
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use stomphub::stomp::{Command as Stomp, Frame};
use tokio_tungstenite::tungstenite::Message;

/// The binary on a port of its own, from `config` (a file the test rewrites);
/// killed on drop. Its log is drained into `lines`.
struct Broker {
    child: Child,
    addr: std::net::SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Broker {
    fn start(config: &Path) -> Broker {
        let (child, addr, lines) = common::process::spawn_listening(
            Command::new(env!("CARGO_BIN_EXE_stomphub"))
                .args(["serve", "--bind", "127.0.0.1:0", "--config"])
                .arg(config),
        );
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = kept.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Broker {
            child,
            addr: addr.parse().expect("address"),
            lines: kept,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/endpoint-websocket", self.addr)
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }

    async fn wait_for_log(&self, text: &str) {
        let started = Instant::now();
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no {text:?} in the log"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stomphub-reload-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const NEWS: &str = "/topic/news";

fn acl(secret_subscribers: &str) -> String {
    format!(
        "[demo]\nenabled = false\n\n[limits]\nmax_frames_per_second = 0\n\n\
         [[acl]]\ndestination = \"/topic/secret/**\"\nsubscribe = [{secret_subscribers}]\n"
    )
}

/// SUBSCRIBE with a receipt: the RECEIPT, or the ERROR's message.
async fn try_subscribe(client: &mut Client, destination: &str) -> Result<(), String> {
    client
        .send(
            Frame::new(Stomp::Subscribe)
                .header("id", "x")
                .header("destination", destination)
                .header("receipt", "r"),
        )
        .await;
    let answer = client.frame().await;
    match answer.command {
        Stomp::Receipt => Ok(()),
        _ => Err(answer.get("message").unwrap_or_default().to_owned()),
    }
}

async fn everyone_receives(clients: &mut [Client], publisher: &mut Client, body: &str) {
    publisher.publish(NEWS, body).await;
    for (index, client) in clients.iter_mut().enumerate() {
        let frame = client.frame().await;
        assert_eq!(frame.command, Stomp::Message, "client {index}: {frame:?}");
        assert_eq!(&frame.body[..], body.as_bytes(), "client {index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_change_takes_effect_for_the_next_subscribe_while_clients_keep_receiving() {
    let dir = scratch("acl");
    let config = dir.join("broker.toml");
    std::fs::write(&config, acl("\"*\"")).expect("write");
    let broker = Broker::start(&config);
    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut client = Client::connect(&broker.url()).await;
        client.subscribe("news", NEWS).await;
        clients.push(client);
    }
    let mut publisher = Client::connect(&broker.url()).await;
    everyone_receives(&mut clients, &mut publisher, "before").await;
    let mut early = Client::connect(&broker.url()).await;
    assert_eq!(
        try_subscribe(&mut early, "/topic/secret/plans").await,
        Ok(())
    );

    // Only admins from now on: SIGHUP.
    std::fs::write(&config, acl("\"role:admin\"")).expect("write");
    broker.hangup();
    broker.wait_for_log("configuration reloaded").await;
    let mut late = Client::connect(&broker.url()).await;
    let refused = try_subscribe(&mut late, "/topic/secret/plans").await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|message| message.contains("may not subscribe")),
        "{refused:?}"
    );
    // Nobody was dropped: all 100 (and the publisher) still receive.
    everyone_receives(&mut clients, &mut publisher, "after").await;

    // Open again through the API.
    std::fs::write(&config, acl("\"*\"")).expect("write");
    let answer = request(broker.addr, "POST", "/api/reload", &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["applied"], serde_json::json!(["acl"]));
    let mut again = Client::connect(&broker.url()).await;
    assert_eq!(
        try_subscribe(&mut again, "/topic/secret/plans").await,
        Ok(())
    );
    everyone_receives(&mut clients, &mut publisher, "again").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_changes_nothing_and_the_api_names_the_key() {
    let dir = scratch("invalid");
    let config = dir.join("broker.toml");
    std::fs::write(&config, acl("\"role:admin\"")).expect("write");
    let broker = Broker::start(&config);
    let mut client = Client::connect(&broker.url()).await;
    client.subscribe("news", NEWS).await;

    // The ACL opened, but a limit broken in the same file: nothing applies.
    std::fs::write(
        &config,
        acl("\"*\"") + "\n[stomp]\nheartbeat = [10, 10000]\n",
    )
    .expect("write");
    let answer = request(broker.addr, "POST", "/api/reload", &[], "").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let error = answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("stomp.heartbeat"), "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    let mut probe = Client::connect(&broker.url()).await;
    assert!(
        try_subscribe(&mut probe, "/topic/secret/x").await.is_err(),
        "the ACL is unchanged"
    );
    // A file that does not parse: the same.
    std::fs::write(&config, "[[acl]\n").expect("write");
    let answer = request(broker.addr, "POST", "/api/reload", &[], "").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    // A key only a restart can change is named, and the rest applies.
    std::fs::write(&config, acl("\"*\"") + "\n[sse]\nenabled = false\n").expect("write");
    let answer = request(broker.addr, "POST", "/api/reload", &[], "")
        .await
        .json();
    assert_eq!(answer["applied"], serde_json::json!(["acl"]));
    assert_eq!(answer["needs_restart"], serde_json::json!(["sse"]));
    broker
        .wait_for_log("takes effect at the next restart")
        .await;
    // Still due at the next reload: the running server has not changed.
    let again = request(broker.addr, "POST", "/api/reload", &[], "")
        .await
        .json();
    assert_eq!(again["needs_restart"], serde_json::json!(["sse"]));
    assert_eq!(again["applied"], serde_json::json!([]));
    // The subscriber from the start was never disturbed.
    client.publish(NEWS, "still here").await;
    assert_eq!(&client.frame().await.body[..], b"still here");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn wss(
    addr: std::net::SocketAddr,
    trusted: &CertificateDer<'static>,
) -> Option<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
> {
    let stream = common::tls::try_connect(addr, trusted).await?;
    let url = format!("wss://localhost:{}/endpoint-websocket", addr.port());
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.ok()?;
    Some(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_to_the_next_client_while_wss_stays_up() {
    let dir = scratch("tls");
    let first = common::tls::certificate();
    let renewed = common::tls::certificate();
    // The files the configuration names; renewal replaces their contents.
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    let install = |certificate: &common::tls::Certificate| {
        std::fs::copy(&certificate.config.cert_file, &cert_file).expect("copy cert");
        std::fs::copy(&certificate.config.key_file, &key_file).expect("copy key");
    };
    install(&first);
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        "[demo]\nenabled = false\n\n[server.tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n",
    )
    .expect("write");
    let broker = Broker::start(&config);
    let mut open = wss(broker.addr, &first.der)
        .await
        .expect("wss with the first certificate");
    open.send(Message::text(
        "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0",
    ))
    .await
    .unwrap();
    assert!(
        common::tls::next_text(&mut open)
            .await
            .starts_with("CONNECTED")
    );
    open.send(Message::text(
        "SUBSCRIBE\nid:1\ndestination:/topic/tls\nreceipt:r\n\n\0",
    ))
    .await
    .unwrap();
    assert!(
        common::tls::next_text(&mut open)
            .await
            .starts_with("RECEIPT")
    );

    install(&renewed);
    broker.hangup();
    broker.wait_for_log("configuration reloaded").await;
    // The next client sees the renewed certificate (one trusting only the
    // first is refused), and the old connection carries on.
    assert!(
        wss(broker.addr, &first.der).await.is_none(),
        "the old certificate is no longer served"
    );
    let mut next = wss(broker.addr, &renewed.der)
        .await
        .expect("wss with the renewed certificate");
    next.send(Message::text(
        "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0",
    ))
    .await
    .unwrap();
    assert!(
        common::tls::next_text(&mut next)
            .await
            .starts_with("CONNECTED")
    );
    next.send(Message::text("SEND\ndestination:/topic/tls\n\nrenewed\0"))
        .await
        .unwrap();
    let message = common::tls::next_text(&mut open).await;
    assert!(
        message.starts_with("MESSAGE") && message.ends_with("\n\nrenewed\0"),
        "{message}"
    );
    let lines = broker.lines.lock().unwrap().join("\n");
    assert!(lines.contains("server.tls"), "{lines}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_change_takes_effect_for_the_next_send() {
    let dir = scratch("route");
    let config = dir.join("broker.toml");
    let route = |to: &str| {
        format!("[demo]\nenabled = false\n\n[[route]]\nfrom = \"/greet\"\nto = \"{to}\"\n")
    };
    std::fs::write(&config, route("/topic/hello")).expect("write");
    let broker = Broker::start(&config);
    let mut listener = Client::connect(&broker.url()).await;
    listener.subscribe("hello", "/topic/hello").await;
    listener.subscribe("welcome", "/topic/welcome").await;
    let mut sender = Client::connect(&broker.url()).await;
    sender
        .send(
            Frame::new(Stomp::Send)
                .header("destination", "/app/greet")
                .body("one"),
        )
        .await;
    let first = listener.frame().await;
    assert_eq!(first.get("destination"), Some("/topic/hello"));

    std::fs::write(&config, route("/topic/welcome")).expect("write");
    let answer = request(broker.addr, "POST", "/api/reload", &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["applied"], serde_json::json!(["route"]));
    // The same session, still connected, now reaches the new destination.
    sender
        .send(
            Frame::new(Stomp::Send)
                .header("destination", "/app/greet")
                .body("two"),
        )
        .await;
    let second = listener.frame().await;
    assert_eq!(second.get("destination"), Some("/topic/welcome"));
    assert_eq!(&second.body[..], b"two");
    let _ = std::fs::remove_dir_all(&dir);
}

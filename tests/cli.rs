//! The `stomphub` binary: serve with SIGTERM shutdown, check-config, config errors.

mod common {
    pub mod process;
    pub mod stomp_client;
}

use common::stomp_client::Client;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn stomphub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stomphub"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Starts `stomphub serve` on an ephemeral port and returns it with its address.
fn serve() -> (Child, String) {
    let (child, addr, lines) =
        common::process::spawn_listening(stomphub().args(["serve", "--bind", "127.0.0.1:0"]));
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "stomphub did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_closes_sessions_and_exits_zero() {
    let (mut child, addr) = serve();
    let mut client = Client::connect(&format!("ws://{addr}/endpoint-websocket")).await;
    client.subscribe("s", "/topic/game_chat").await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let close = client.closed().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1001);
    let status = wait_for_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_web_root_is_served() {
    let (mut child, addr) = serve();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    use std::io::{Read, Write};
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("/endpoint-websocket"));
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let output = stomphub().args(["check-config"]).output().expect("run");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        text.contains("endpoint = \"/endpoint-websocket\""),
        "{text}"
    );
    assert!(text.contains("broker_prefixes = ["), "{text}");
}

#[test]
fn hash_password_makes_a_hash_the_config_accepts_and_secrets_are_masked() {
    use std::io::Write;
    let mut child = stomphub()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"wonderland\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).expect("utf-8");
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(stomphub::security::password::verify("wonderland", hash));
    let dir = std::env::temp_dir().join(format!("stomphub-hash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("broker.toml");
    let secret = "an HS256 secret that nobody should see in logs";
    std::fs::write(
        &path,
        format!(
            "[[auth.user]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\n[auth.jwt]\nalgorithm = \"HS256\"\nsecret = \"{secret}\"\n"
        ),
    )
    .expect("write");
    let output = stomphub()
        .args(["check-config", "--config", path.to_str().expect("path")])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("name = \"alice\""), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn a_bad_config_names_the_key_and_exits_before_binding() {
    let dir = std::env::temp_dir().join(format!("stomphub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (text, expected) in [
        ("[limits]\nmax_frame_sise = 10\n", "max_frame_sise"),
        ("[stomp]\nheartbeat = [10, 10000]\n", "stomp.heartbeat"),
        ("[server]\nbind = \"localhost\"\n", "bind"),
        (
            "[[auth.user]]\nname = \"a\"\npassword_hash = \"plain text\"\n",
            "auth.user.password_hash",
        ),
        (
            "[server]\nallowed_origins = [\"evil.test\"]\n",
            "server.allowed_origins",
        ),
        (
            "[[acl]]\ndestination = \"/topic/x\"\nsend = [\"admin\"]\n",
            "acl.send",
        ),
        (
            "[auth.jwt]\nalgorithm = \"RS256\"\npublic_key_file = \"/nonexistent.pem\"\n",
            "auth.jwt.public_key_file",
        ),
    ] {
        let path = dir.join("broker.toml");
        std::fs::write(&path, text).expect("write");
        for subcommand in ["check-config", "serve"] {
            let output = stomphub()
                .args([subcommand, "--config", path.to_str().expect("path")])
                .output()
                .expect("run");
            assert_eq!(output.status.code(), Some(2), "{subcommand} with {text:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(expected), "{subcommand}: {stderr}");
        }
    }
    let missing = stomphub()
        .args(["check-config", "--config", "/nonexistent/broker.toml"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/broker.toml")
    );
}

//! A peer that vanishes without a FIN. The client runs in a network namespace
//! made for this test, joined to the server by a veth pair; taking the link down
//! silences it mid-connection, as a pulled cable or a dead NAT would. With
//! STOMP heart-beats off, only TCP keepalive can notice: the session must end
//! within idle + interval x retries, and its Disconnect event fire once.
//! Needs root and `ip` (iproute2), as CI has; the test script installs iproute2.

mod common {
    pub mod server;
}

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stomphub::AppBuilder;
use stomphub::EventKind;

/// The namespace, its veth pair and the client process; all removed on drop.
struct Namespace {
    name: String,
    client: Option<Child>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("run ip (iproute2)");
    assert!(
        status.success(),
        "ip {} failed (root needed)",
        args.join(" ")
    );
}

impl Namespace {
    /// Creates `sh<n>` with `10.231.<n>.2` inside and `10.231.<n>.1` outside.
    fn create(n: u8) -> Namespace {
        let name = format!("stomphub-dead-{n}");
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        ip(&["netns", "add", &name]);
        let namespace = Namespace { name, client: None };
        let (outside, inside) = (format!("shdp{n}a"), format!("shdp{n}b"));
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &inside, "netns", &namespace.name]);
        ip(&["addr", "add", &format!("10.231.{n}.1/30"), "dev", &outside]);
        ip(&["link", "set", &outside, "up"]);
        namespace.exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.231.{n}.2/30"),
            "dev",
            &inside,
        ]);
        namespace.exec(&["ip", "link", "set", &inside, "up"]);
        namespace
    }

    fn exec(&self, command: &[&str]) {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(command);
        ip(&args);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.take() {
            let _ = client.kill();
            let _ = client.wait();
        }
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A STOMP-over-WebSocket client in a few lines of Python: handshake, CONNECT
/// without heart-beats, print the reply's first line, then hold the socket open.
const CLIENT: &str = r#"
import base64, os, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /endpoint-websocket HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: v12.stomp\r\n\r\n" % (host, port, key)).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
payload = b"CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0"
mask = os.urandom(4)
frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
s.sendall(frame)
reply = s.recv(4096)
print(reply[2:].split(b"\n")[0].decode(), flush=True)
time.sleep(120)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_vanishes_without_a_fin_is_gone_within_the_keepalive_bound() {
    let n = (std::process::id() % 200 + 20) as u8;
    let mut namespace = Namespace::create(n);
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut app = AppBuilder::new();
    let seen = events.clone();
    app.on_event(move |event| {
        seen.lock().unwrap().push((event.kind, Instant::now()));
    });
    let server = common::server::TestServer::start_with_app(
        move |config| {
            config.server.bind = format!("10.231.{n}.1:0").parse().unwrap();
            config.stomp.heartbeat = [0, 0];
            config.server.tcp_keepalive_idle_ms = 1_000;
            config.server.tcp_keepalive_interval_ms = 1_000;
            config.server.tcp_keepalive_retries = 2;
        },
        app,
    )
    .await;
    let mut client = Command::new("ip")
        .args(["netns", "exec", &namespace.name, "python3", "-c", CLIENT])
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client in the namespace");
    let stdout = client.stdout.take().expect("stdout");
    namespace.client = Some(client);
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(first_line.trim(), "CONNECTED");

    // A quiet but healthy peer answers the probes and is left alone past the bound.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let count = |kind: EventKind| {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == kind)
            .count()
    };
    assert_eq!(count(EventKind::Connected), 1);
    assert_eq!(
        count(EventKind::Disconnect),
        0,
        "a live idle peer was cut off"
    );

    // Silence it: no FIN, no RST, the packets just stop arriving.
    let vanished = Instant::now();
    namespace.exec(&["ip", "link", "set", &format!("shdp{n}b"), "down"]);
    let bound = Duration::from_secs(1 + 2);
    let gone_after = loop {
        if let Some((_, at)) = events
            .lock()
            .unwrap()
            .iter()
            .find(|(kind, _)| *kind == EventKind::Disconnect)
        {
            break at.duration_since(vanished);
        }
        assert!(
            vanished.elapsed() < bound + Duration::from_secs(10),
            "the vanished peer was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("vanished peer noticed after {gone_after:?} (bound {bound:?})");
    assert!(
        gone_after <= bound + Duration::from_secs(2),
        "{gone_after:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(EventKind::Disconnect), 1, "Disconnect fires once");
}

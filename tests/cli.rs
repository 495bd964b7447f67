//! The `stomphub` binary: serve with SIGTERM shutdown, check-config, config errors,
//! and the connection cap that follows the open-file limit.

mod common {
    pub mod process;
    pub mod stomp_client;
}

use common::stomp_client::Client;
use std::io::Write;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn stomphub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stomphub"));
    // A developer's own settings would change what the tests read.
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("STOMPHUB_CONFIG")
        .env_remove("STOMPHUB_BIND");
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
    assert!(stomphub::verify_password("wonderland", hash));
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

#[test]
fn a_config_file_named_on_the_command_line_must_exist() {
    let dir = std::env::temp_dir().join(format!("stomphub-no-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    // Without ./broker.toml and without --config, the built-in defaults apply...
    let defaults = run_to_exit(stomphub().current_dir(&dir).arg("check-config"));
    assert_eq!(defaults.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&defaults.stdout).contains("built-in default configuration"));
    // ...but a file the user names is never silently replaced by them.
    let named =
        run_to_exit(
            stomphub()
                .current_dir(&dir)
                .args(["--config", "broker.toml", "check-config"]),
        );
    assert_eq!(named.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(stderr.contains("cannot read broker.toml"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `text` to a config file in a directory of this test's own (the
/// tests in this binary run at once) and returns the file's path.
fn config_file(test: &str, name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("stomphub-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

/// Runs stomphub to its exit, which a config error makes immediate. One that
/// starts serving instead is killed and fails the test rather than hanging it.
fn run_to_exit(command: &mut Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().expect("kill");
            let output = child.wait_with_output().expect("reap");
            panic!(
                "{command:?} did not exit: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A served process that is ended however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A valid config whose effect shows: the defaults name another endpoint.
const ENDPOINT_FROM_THE_FILE: &str = "[stomp]\nendpoint = \"/from-the-file\"\n";

#[test]
fn config_is_read_before_or_after_the_subcommand() {
    let bad = config_file("position", "bad.toml", "[stomp]\nheartbeat = [10, 10000]\n");
    let bad = bad.as_str();
    for args in [
        vec!["--config", bad, "check-config"],
        vec!["check-config", "--config", bad],
        vec!["-c", bad, "check-config"],
        vec!["--config", bad, "serve", "--bind", "127.0.0.1:0"],
        vec!["serve", "--bind", "127.0.0.1:0", "--config", bad],
        vec!["--config", bad, "--bind", "127.0.0.1:0"],
    ] {
        let output = run_to_exit(stomphub().args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("stomp.heartbeat"), "{args:?}: {stderr}");
    }
    let output = run_to_exit(stomphub().arg("check-config").env("STOMPHUB_CONFIG", bad));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "STOMPHUB_CONFIG: {stderr}");
    assert!(stderr.contains("stomp.heartbeat"), "{stderr}");

    let good = config_file("position", "good.toml", ENDPOINT_FROM_THE_FILE);
    for args in [
        vec!["--config", &good, "check-config"],
        vec!["check-config", "--config", &good],
    ] {
        let output = run_to_exit(stomphub().args(&args));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {text}");
        assert!(text.starts_with(&format!("# {good} is valid")), "{text}");
        assert!(text.contains("endpoint = \"/from-the-file\""), "{text}");
    }
}

#[tokio::test]
async fn serve_uses_the_config_given_before_the_subcommand() {
    let good = config_file("serve", "good.toml", ENDPOINT_FROM_THE_FILE);
    for args in [
        vec!["--config", &good, "serve", "--bind", "127.0.0.1:0"],
        vec!["serve", "--bind", "127.0.0.1:0", "--config", &good],
        vec!["--config", &good, "--bind", "127.0.0.1:0"],
    ] {
        let (child, addr, lines) = common::process::spawn_listening(stomphub().args(&args));
        let _running = Running(child);
        std::thread::spawn(move || lines.for_each(drop));
        // Only the file names this endpoint.
        Client::connect(&format!("ws://{addr}/from-the-file")).await;
    }
}

#[test]
fn bind_is_read_before_or_after_serve() {
    for before in [true, false] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let bind = format!("127.0.0.1:{port}");
        let args = if before {
            vec!["--bind", &bind, "serve"]
        } else {
            vec!["serve", "--bind", &bind]
        };
        let (child, addr, lines) = common::process::spawn_listening(stomphub().args(&args));
        let _running = Running(child);
        std::thread::spawn(move || lines.for_each(drop));
        assert_eq!(addr, bind, "{args:?}");
    }
}

/// `stomphub` started by bash after `ulimit FLAG LIMIT` (`-n`: the soft and
/// hard open-file limits; `-Sn`: the soft one only).
fn stomphub_under_ulimit(flag: &str, limit: u32) -> Command {
    let mut command = Command::new("bash");
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("STOMPHUB_CONFIG")
        .env_remove("STOMPHUB_BIND")
        .args([
            "-c",
            &format!("ulimit {flag} {limit} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_stomphub"),
        ]);
    command
}

/// `stomphub` with `args` under `ulimit FLAG LIMIT`, listening: the running
/// process (stopped when dropped), its address and its log up to listening.
fn serve_under_ulimit(flag: &str, limit: u32, args: &[&str]) -> (Running, String, Vec<String>) {
    let (child, addr, start_log, lines) = common::process::spawn_listening_with_start_log(
        stomphub_under_ulimit(flag, limit).args(args),
    );
    std::thread::spawn(move || lines.for_each(drop));
    (Running(child), addr, start_log)
}

/// Sends `GET {path}` on `stream` and reads the answer's head.
fn request_head(stream: &mut std::net::TcpStream, path: &str, close: bool) -> String {
    use std::io::{Read, Write};
    let connection = if close { "close" } else { "keep-alive" };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n")
                .as_bytes(),
        )
        .expect("request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).expect("read") {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    if close {
        stream.read_to_end(&mut answer).expect("read");
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Under `ulimit -n 300` (soft and hard: nothing to raise), the default cap
/// is 300 less the reserve of 128: logged at start, reported by /api/stats,
/// and applied: the 173rd connection is answered 503 naming the key.
#[test]
fn the_default_connection_cap_follows_the_open_file_limit() {
    let (_running, addr, start_log) =
        serve_under_ulimit("-n", 300, &["serve", "--bind", "127.0.0.1:0"]);
    assert!(
        start_log.iter().any(|line| line.contains("INFO")
            && line.contains("connection cap")
            && line.contains("max_connections=172 open_file_limit=300 reserve=128")),
        "{start_log:#?}"
    );
    let mut stats = std::net::TcpStream::connect(&addr).expect("connect");
    let answer = request_head(&mut stats, "/api/stats", true);
    let body = answer.split_once("\r\n\r\n").expect("a response").1;
    let stats: serde_json::Value = serde_json::from_str(body).expect("JSON stats");
    assert_eq!(stats["max_connections"], 172, "{stats}");
    // Let the server let go of that connection before counting places.
    std::thread::sleep(Duration::from_millis(200));
    let mut held = Vec::new();
    let refusal = loop {
        assert!(held.len() <= 300, "no connection was refused");
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        let head = request_head(&mut stream, "/health", false);
        if head.starts_with("HTTP/1.1 200") {
            held.push(stream);
        } else {
            break head;
        }
    };
    assert_eq!(held.len(), 172, "{refusal}");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    let refusal = request_head(&mut stream, "/health", true);
    assert!(
        refusal.contains("maximum of 172 (limits.max_connections)"),
        "{refusal}"
    );
}

/// A soft limit below the hard one is raised at start, and the cap follows
/// the raised limit.
#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let hard = rlimit::Resource::NOFILE.get_hard().expect("hard limit");
    if hard <= 300 || hard == rlimit::INFINITY {
        eprintln!("hard open-file limit {hard}: nothing to raise a soft limit of 300 to");
        return;
    }
    let (_running, _addr, start_log) =
        serve_under_ulimit("-Sn", 300, &["serve", "--bind", "127.0.0.1:0"]);
    assert!(
        start_log
            .iter()
            .any(|line| line.contains("raised the open-file limit")
                && line.contains(&format!("from=300 to={hard}"))),
        "{start_log:#?}"
    );
    assert!(
        start_log
            .iter()
            .any(|line| line.contains(&format!("open_file_limit={hard} "))),
        "{start_log:#?}"
    );
}

/// A configured cap wins, and one the open-file limit cannot hold is a WARN naming the key.
#[test]
fn a_configured_cap_above_the_open_file_limit_is_a_warning() {
    let config = config_file(
        "over-limit",
        "over.toml",
        "[limits]\nmax_connections = 5000\n",
    );
    let (_running, addr, start_log) = serve_under_ulimit(
        "-n",
        300,
        &["--config", &config, "serve", "--bind", "127.0.0.1:0"],
    );
    assert!(
        start_log.iter().any(|line| line.contains("WARN")
            && line.contains("limits.max_connections is above what the open-file limit allows")
            && line.contains("max_connections=5000 open_file_limit=300 allowed=172")),
        "{start_log:#?}"
    );
    let mut stats = std::net::TcpStream::connect(&addr).expect("connect");
    let answer = request_head(&mut stats, "/api/stats", true);
    assert!(answer.contains("\"max_connections\":5000"), "{answer}");
}

#[test]
fn relative_paths_are_read_from_the_config_files_folder_and_node_ids_come_from_outside() {
    let dir = std::env::temp_dir().join(format!("stomphub-relative-{}", std::process::id()));
    let conf = dir.join("conf");
    std::fs::create_dir_all(conf.join("site")).expect("folders");
    std::fs::write(
        conf.join("jwt.secret"),
        "a shared secret of quite some length",
    )
    .expect("secret");
    std::fs::write(
        conf.join("cluster.toml"),
        "[server]\nweb_root = \"site\"\n\n[auth.jwt]\nalgorithm = \"HS256\"\nsecret_file = \"jwt.secret\"\n\n\
         [cluster]\nbackend = \"redis\"\nnode_id = \"from-file\"\n",
    )
    .expect("config");
    // From another working directory: the secret file is found beside the config.
    let check = |extra: &[&str], env: Option<&str>| {
        let mut command = stomphub();
        command
            .current_dir(&dir)
            .args(["check-config", "--config", "conf/cluster.toml"])
            .args(extra);
        match env {
            Some(id) => command.env("STOMPHUB_NODE_ID", id),
            None => command.env_remove("STOMPHUB_NODE_ID"),
        };
        run_to_exit(&mut command)
    };
    let output = check(&[], None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("web_root = \"conf/site\""), "{text}");
    assert!(text.contains("node_id = \"from-file\""), "{text}");
    let by_flag = check(&["--node-id", "n7"], Some("n8"));
    assert!(String::from_utf8_lossy(&by_flag.stdout).contains("node_id = \"n7\""));
    let by_env = check(&[], Some("n8"));
    assert!(String::from_utf8_lossy(&by_env.stdout).contains("node_id = \"n8\""));
    let bad = check(&["--node-id", "node one"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cluster.node_id"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn environment_variables_override_keys_and_logs_can_be_json() {
    let check = |vars: &[(&str, &str)]| {
        let mut command = stomphub();
        command.arg("check-config");
        for (name, value) in vars {
            command.env(name, value);
        }
        run_to_exit(&mut command)
    };
    let output = check(&[
        ("STOMPHUB_LIMITS__MAX_FRAME_SIZE", "131072"),
        (
            "STOMPHUB_SERVER__ALLOWED_ORIGINS",
            "[\"https://app.example\"]",
        ),
        ("STOMPHUB_API__TOKEN", "from-the-environment"),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("max_frame_size = 131072"), "{text}");
    assert!(text.contains("\"https://app.example\""), "{text}");
    assert!(
        !text.contains("from-the-environment"),
        "secrets stay masked: {text}"
    );
    let unknown = check(&[("STOMPHUB_LIMITS__MAX_FRAME_SIZ", "1")]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("max_frame_siz"));
    let invalid = check(&[("STOMPHUB_LIMITS__MAX_FRAME_SIZE", "10")]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("limits.max_frame_size"));

    // [log] format = "json" (here from the environment): one object per line.
    use std::io::BufRead;
    let mut child = stomphub()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("STOMPHUB_LOG__FORMAT", "json")
        .env("STOMPHUB_DEMO__ENABLED", "false")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let first = std::io::BufReader::new(stderr)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let _ = child.kill();
    let _ = child.wait();
    let parsed: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|error| panic!("not JSON ({error}): {first}"));
    assert!(parsed["fields"]["message"].is_string(), "{parsed}");
    assert_eq!(parsed["level"], "INFO", "{parsed}");
}

#[test]
fn the_binary_copied_to_an_empty_directory_serves_the_demo_pages() {
    let dir = std::env::temp_dir().join(format!("stomphub-anywhere-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let binary = dir.join("stomphub");
    std::fs::copy(env!("CARGO_BIN_EXE_stomphub"), &binary).expect("copy the binary");
    let (mut child, addr, _lines) = common::process::spawn_listening(
        Command::new(&binary)
            .current_dir(&dir)
            .env_remove("STOMPHUB_CONFIG")
            .args(["serve", "--bind", "127.0.0.1:0"]),
    );
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut answer = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut answer).expect("answer");
        String::from_utf8_lossy(&answer).into_owned()
    };
    for (path, expected) in [
        ("/", "<html"),
        ("/admin/", "uPlot"),
        ("/sse/price.html", "EventSource"),
        ("/node_modules/@stomp/stompjs/esm6/index.js", "export"),
        ("/node_modules/sockjs-client/dist/sockjs.min.js", "SockJS"),
        ("/node_modules/uplot/dist/uPlot.iife.min.js", "uPlot"),
    ] {
        let answer = get(path);
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:.200}");
        assert!(answer.contains(expected), "{path} lacks {expected:?}");
    }
    assert!(get("/missing.html").starts_with("HTTP/1.1 404"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        std::fs::read_dir(&dir).expect("list").count(),
        1,
        "nothing but the binary was needed or written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

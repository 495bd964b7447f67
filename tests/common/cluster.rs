//! A real cluster for tests: redis-server, stomphub binaries as separate
//! processes, and nginx running the documented docs/nginx/stomphub-cluster.conf
//! with this harness's loopback ports. Every process is killed by PID on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `program` can be run; the test script installs what is missing.
pub fn available(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// True when the cluster tools are missing and the run does not insist on them.
pub fn skip_without_tools() -> bool {
    skip_without(&["redis-server", "redis-cli", "nginx"])
}

/// True when one of `programs` is missing and the run does not insist on
/// them (`STOMPHUB_REQUIRE_CLUSTER_TOOLS`, which scripts/test.sh sets).
pub fn skip_without(programs: &[&str]) -> bool {
    let missing: Vec<_> = programs
        .iter()
        .filter(|program| !available(program))
        .collect();
    if missing.is_empty() {
        return false;
    }
    assert!(
        std::env::var("STOMPHUB_REQUIRE_CLUSTER_TOOLS").is_err(),
        "missing {missing:?}; scripts/test.sh installs them"
    );
    eprintln!("skipped: {missing:?} not installed (scripts/test.sh installs them)");
    true
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start_on(port: u16) -> Redis {
        Redis::start_with(port, &[])
    }

    /// A server with extra arguments (`--replicaof host port`).
    pub fn start_with(port: u16, extra: &[&str]) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        wait_for_port(port, "redis-server");
        Redis {
            port,
            child: Some(child),
        }
    }

    /// A Redis Sentinel that watches the master on `master_port` as `mymaster`,
    /// alone (quorum 1), and fails over quickly.
    pub fn sentinel(dir: &Path, port: u16, master_port: u16) -> Redis {
        let conf = dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 5000\n"
            ),
        )
        .expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server --sentinel");
        wait_for_port(port, "redis-server");
        Redis {
            port,
            child: Some(child),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs a command with redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Node {
    pub id: String,
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Node {
    /// Starts `stomphub` with `config` (TOML without `[server] bind`).
    pub fn start(dir: &Path, id: &str, config: &str) -> Node {
        let path = dir.join(format!("{id}.toml"));
        std::fs::write(&path, config).expect("write node config");
        Node::spawn(
            id,
            Command::new(env!("CARGO_BIN_EXE_stomphub"))
                .arg("--config")
                .arg(&path),
        )
    }

    /// Starts `stomphub` from a file every node shares, as operations.md
    /// shows: the node's name comes from `STOMPHUB_NODE_ID`, its port from `--bind`.
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub fn start_shared(config: &Path, id: &str) -> Node {
        Node::spawn(
            id,
            Command::new(env!("CARGO_BIN_EXE_stomphub"))
                .arg("--config")
                .arg(config)
                .env("STOMPHUB_NODE_ID", id),
        )
    }

    fn spawn(id: &str, command: &mut Command) -> Node {
        let (child, addr, lines) =
            super::process::spawn_listening(command.args(["serve", "--bind", "127.0.0.1:0"]));
        let tag = id.to_owned();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("WARN") || line.contains("ERROR") || line.contains("backplane") {
                    eprintln!("[{tag}] {line}");
                }
            }
        });
        Node {
            id: id.to_owned(),
            addr: addr.parse().expect("node address"),
            child: Some(child),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/endpoint-websocket", self.addr)
    }

    /// SIGKILL: no goodbye to Redis or clients, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Nginx {
    /// Sticky (`ip_hash`) and round-robin entry points.
    pub sticky: SocketAddr,
    pub round_robin: SocketAddr,
    child: Option<Child>,
}

impl Nginx {
    /// Runs docs/nginx/stomphub-cluster.conf in front of `nodes` (three).
    pub fn start(dir: &Path, nodes: &[&Node]) -> Nginx {
        let documented =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/nginx/stomphub-cluster.conf");
        let mut site = std::fs::read_to_string(documented).expect("read the nginx config");
        for (index, node) in nodes.iter().enumerate() {
            let documented = format!("127.0.0.1:{}", 3100 + index);
            assert!(
                site.contains(&documented),
                "the documented config names {documented}"
            );
            site = site.replace(&documented, &node.addr.to_string());
        }
        let (sticky, round_robin) = (free_port(), free_port());
        site = site
            .replace("listen 8080;", &format!("listen 127.0.0.1:{sticky};"))
            .replace("listen 8081;", &format!("listen 127.0.0.1:{round_robin};"));
        let temp = dir.join("nginx-temp");
        std::fs::create_dir_all(&temp).expect("nginx temp dir");
        std::fs::write(dir.join("site.conf"), site).expect("write site");
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n\
             fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n\
             include {dir}/site.conf;\n}}\n",
            dir = dir.display(),
            temp = temp.display(),
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, main).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .arg("-c")
            .arg(&conf)
            // Workers inherit these; a pipe would outlive the test.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        wait_for_port(sticky, "nginx");
        wait_for_port(round_robin, "nginx");
        Nginx {
            sticky: ([127, 0, 0, 1], sticky).into(),
            round_robin: ([127, 0, 0, 1], round_robin).into(),
            child: Some(child),
        }
    }

    pub fn ws_url(addr: SocketAddr) -> String {
        format!("ws://{addr}/endpoint-websocket")
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers; SIGKILL would orphan them.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }
}

/// A scratch directory for one test's configs and logs.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stomphub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A node's broker.toml for a cluster whose Redis master the sentinel on
/// `sentinel_port` names.
pub fn sentinel_node_config(id: &str, sentinel_port: u16, prefix: &str, dir: &Path) -> String {
    node_config(id, 1, prefix, dir).replace(
        "url = \"redis://127.0.0.1:1/\"",
        &format!(
            "sentinels = [\"redis://127.0.0.1:{sentinel_port}\"]\nsentinel_master = \"mymaster\""
        ),
    )
}

/// A node's broker.toml for a cluster on `redis_port`.
pub fn node_config(id: &str, redis_port: u16, prefix: &str, dir: &Path) -> String {
    format!(
        r#"[server]
web_root = "{web}"
shutdown_timeout_ms = 1000

[stomp]
user_from_login = true

[demo]
enabled = false

[cluster]
backend = "redis"
url = "redis://127.0.0.1:{redis_port}/"
node_id = "{id}"
channel_prefix = "{prefix}"
registry_ttl_ms = 1000
registry_refresh_ms = 200
reconnect_min_ms = 50
reconnect_max_ms = 400
command_timeout_ms = 1000

[[history]]
destination = "/topic/hist/**"
max_messages = 100
"#,
        web = dir.join("no-web-root").display(),
    )
}

/// Polls `check` until it holds; panics after `limit`.
#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

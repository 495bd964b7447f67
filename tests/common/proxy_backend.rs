//! The demo backend of examples/proxy-backend (Python's http.server) as a
//! child process on a free loopback port, for the `[proxy]` tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use stomphub::config::{Config, RouteConfig};

/// The demo backend; stopped when dropped.
pub struct Backend {
    child: Child,
    url: String,
}

impl Backend {
    pub fn start() -> Backend {
        Backend::start_with(&[])
    }

    /// With extra command-line arguments (`--secret S`).
    pub fn start_with(args: &[&str]) -> Backend {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/proxy-backend/app.py");
        let mut child = Command::new("python3")
            .args([script, "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the demo backend");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the backend says where it listens");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Backend { child, url }
    }

    /// The URL of one of the demo's paths.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A `[[route]]` from `from` to `path` of the demo (`/stomp/app`, or a failing variant).
    #[allow(dead_code, reason = "the cluster test writes TOML instead")]
    pub fn route(&self, from: &str, path: &str) -> RouteConfig {
        RouteConfig {
            from: from.into(),
            to: None,
            to_user: None,
            all_sessions: true,
            proxy: Some(self.at(path)),
        }
    }

    /// Every call of the demo: connect, subscribe, publish, and the app routes.
    #[allow(dead_code, reason = "the cluster test writes TOML instead")]
    pub fn configure(&self, config: &mut Config) {
        config.proxy.connect = self.at("/stomp/connect");
        config.proxy.subscribe = self.at("/stomp/subscribe");
        config.proxy.publish = self.at("/stomp/publish");
        config.routes.push(self.route("/v1/**", "/stomp/app"));
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

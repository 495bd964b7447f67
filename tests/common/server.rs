//! The real server in this test process, on an ephemeral loopback port with
//! the repository's broker.toml.
//!
//! Every integration test binary compiles its own copy of the helpers it
//! mounts, and a helper that binary never calls is dead code there. So there
//! is no `tests/common/mod.rs` that pulls in everything: each test names the
//! modules it uses, `mod common { pub mod server; pub mod stomp_client; }`, and
//! the helpers that only some of a module's users call carry their own
//! `#[allow(dead_code)]` with the reason.

use std::net::SocketAddr;
use std::path::Path;
use stomphub::AppBuilder;
use stomphub::MessagingTemplate;
use stomphub::config::Config;
use stomphub::{Server, ServerError, ShutdownHandle};
use tokio::task::JoinHandle;

pub fn default_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker.toml");
    let mut config = Config::load(&path).expect("repository broker.toml is valid");
    config.server.bind = "127.0.0.1:0".parse().expect("address");
    // The demo price feed would put unasked-for messages on /topic/** subscriptions.
    config.demo.price_feed_ms = 0;
    config
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// The STOMP-over-TCP listener, when the test's config has `[tcp]`.
    #[allow(dead_code, reason = "only the TCP tests read it")]
    pub tcp: Option<SocketAddr>,
    #[allow(dead_code, reason = "only the shutdown test reads it")]
    pub handle: ShutdownHandle,
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub template: MessagingTemplate,
    #[allow(dead_code, reason = "only the shutdown test reads it")]
    pub task: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_with_app(edit, AppBuilder::new()).await
    }

    pub async fn start_with_app(edit: impl FnOnce(&mut Config), app: AppBuilder) -> TestServer {
        let mut config = default_config();
        edit(&mut config);
        config.validate().expect("test config is valid");
        let server = Server::bind_with(config, app).await.expect("bind");
        let addr = server.local_addr();
        let tcp = server.tcp_addr();
        let handle = server.shutdown_handle();
        let template = server.template();
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            tcp,
            handle,
            template,
            task,
        }
    }

    #[allow(dead_code, reason = "not every test binary calls it")]
    pub fn url(&self) -> String {
        format!("ws://{}/endpoint-websocket", self.addr)
    }
}

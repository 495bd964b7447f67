//! Test harness: the real server on an ephemeral loopback port with the
//! repository's broker.toml, and the helpers the tests share.

#![allow(dead_code)]

pub mod auth;
pub mod canary;
pub mod cluster;
pub mod http;
pub mod process;
pub mod sse;
pub mod stomp_client;

use std::net::SocketAddr;
use std::path::Path;
use stomphub::app::AppBuilder;
use stomphub::app::template::MessagingTemplate;
use stomphub::config::Config;
use stomphub::server::{Server, ServerError, ShutdownHandle};
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
    pub handle: ShutdownHandle,
    pub template: MessagingTemplate,
    pub task: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
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
        let handle = server.shutdown_handle();
        let template = server.template();
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            handle,
            template,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/endpoint-websocket", self.addr)
    }
}

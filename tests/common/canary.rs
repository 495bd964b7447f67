//! A canary subscriber that must receive every message while bad clients come
//! and go, and the process's resident memory, for the hostile-input suites.

use super::server::TestServer;
use super::stomp_client::Client;

/// A subscriber that must see every message published while bad clients come and go.
pub struct Canary {
    subscriber: Client,
    publisher: Client,
    sent: u64,
}

impl Canary {
    pub async fn new(server: &TestServer) -> Canary {
        let mut subscriber = Client::connect(&server.url()).await;
        subscriber.subscribe("canary", "/topic/canary").await;
        Canary {
            subscriber,
            publisher: Client::connect(&server.url()).await,
            sent: 0,
        }
    }

    /// Publishes the next number and checks that it, and only it, arrives.
    pub async fn still_alive(&mut self, after: &str) {
        self.publisher
            .publish("/topic/canary", &self.sent.to_string())
            .await;
        let frame = self.subscriber.frame().await;
        assert_eq!(
            frame.body,
            self.sent.to_string().as_bytes(),
            "canary after {after}"
        );
        self.sent += 1;
    }
}

/// Resident memory of this process (server and test clients) in KiB.
#[allow(dead_code, reason = "not every test binary calls it")]
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

//! Calls to the user's HTTP application (`[proxy]`, `[[route]] proxy`): who
//! connects, who subscribes, what is published, and `/app` handlers kept in the
//! backend. One pooled HTTP client per node, a bound on calls in flight, a
//! deadline per call; the session decides what an answer means.

pub mod contract;
mod error;

pub use contract::{Answer, Content, Reply, ReplyTarget, Request};
pub use error::ProxyError;

use crate::broker::destination::{Pattern, is_pattern};
use crate::config::{ConfigError, ProxyConfig};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

/// The calls the application may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Connect,
    Subscribe,
    Publish,
    /// An `/app` SEND to a `[[route]]` with `proxy`.
    Message,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Connect => "connect",
            Call::Subscribe => "subscribe",
            Call::Publish => "publish",
            Call::Message => "message",
        }
    }

    /// The key an operator changes when this call goes wrong.
    pub fn key(self) -> &'static str {
        match self {
            Call::Connect => "proxy.connect",
            Call::Subscribe => "proxy.subscribe",
            Call::Publish => "proxy.publish",
            Call::Message => "route.proxy",
        }
    }
}

/// A call on its way: owns what it needs, so a transport can await it while
/// it holds the session.
pub type PendingCall = Pin<Box<dyn Future<Output = Result<Answer, ProxyError>> + Send>>;

/// The biggest answer read; a larger one is an error, not a memory hazard.
const MAX_ANSWER_BYTES: usize = 4 << 20;

pub struct Proxy {
    client: reqwest::Client,
    connect: Option<String>,
    subscribe: Option<String>,
    publish: Option<String>,
    subscribe_destinations: Vec<Pattern>,
    publish_destinations: Vec<Pattern>,
    http_headers: Vec<String>,
    timeout: Duration,
    retries: u32,
    max_in_flight: usize,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("connect", &self.connect)
            .field("subscribe", &self.subscribe)
            .field("publish", &self.publish)
            .finish()
    }
}

fn patterns(key: &'static str, texts: &[String]) -> Result<Vec<Pattern>, ConfigError> {
    texts
        .iter()
        .map(|text| {
            Pattern::compile(text).map_err(|e| ConfigError::invalid(key, format!("{text:?}: {e}")))
        })
        .collect()
}

fn url(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

impl Proxy {
    /// The client for `config` and the routes' URLs; the connection pool is shared by every call.
    pub fn new(config: &ProxyConfig) -> Result<Proxy, ConfigError> {
        // reqwest is built without a crypto provider of its own, to use the
        // one rustls already has here (ring) for https application URLs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes());
            let value = reqwest::header::HeaderValue::from_str(value);
            let (Ok(name), Ok(value)) = (name, value) else {
                return Err(ConfigError::invalid(
                    "proxy.headers",
                    "a header that HTTP does not allow",
                ));
            };
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            // The deadline covers the whole call; this only stops a stuck connect early.
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .pool_max_idle_per_host(config.max_in_flight.min(256))
            .tcp_nodelay(true)
            .no_proxy()
            // A redirect would turn the POST into a GET whose empty answer reads as
            // "allow": any 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ConfigError::invalid("proxy", format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Proxy {
            client,
            connect: url(&config.connect),
            subscribe: url(&config.subscribe),
            publish: url(&config.publish),
            subscribe_destinations: patterns(
                "proxy.subscribe_destinations",
                &config.subscribe_destinations,
            )?,
            publish_destinations: patterns(
                "proxy.publish_destinations",
                &config.publish_destinations,
            )?,
            http_headers: config
                .http_headers
                .iter()
                .map(|name| name.to_ascii_lowercase())
                .collect(),
            timeout: Duration::from_millis(config.timeout_ms),
            retries: config.retries,
            max_in_flight: config.max_in_flight,
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
        })
    }

    /// True when CONNECT is the application's to judge.
    pub fn judges_connect(&self) -> bool {
        self.connect.is_some()
    }

    /// True when a SUBSCRIBE to `destination` asks the application. A wildcard
    /// subscription asks when it may reach a judged destination, as `[[acl]]`
    /// rules judge one: `/topic/**` must not slip past `/topic/private/**`.
    pub fn judges_subscribe(&self, destination: &str) -> bool {
        if self.subscribe.is_none() {
            return false;
        }
        if !is_pattern(destination) {
            return self
                .subscribe_destinations
                .iter()
                .any(|p| p.matches(destination));
        }
        // What cannot be read as a pattern is asked about rather than let through.
        Pattern::compile(destination).map_or(true, |wanted| {
            self.subscribe_destinations
                .iter()
                .any(|judged| judged.may_overlap(&wanted))
        })
    }

    /// True when a client SEND to `destination` (a broker or user one) asks the application.
    pub fn judges_publish(&self, destination: &str) -> bool {
        self.publish.is_some()
            && self
                .publish_destinations
                .iter()
                .any(|p| p.matches(destination))
    }

    /// The opening request's headers the connect call carries (lower-case names).
    pub fn http_headers(&self) -> &[String] {
        &self.http_headers
    }

    /// Starts `call` with `request` to its configured URL (for `Message`, to `route_url`).
    pub fn ask(self: &Arc<Self>, call: Call, request: &Request<'_>) -> PendingCall {
        let url = match call {
            Call::Connect => self.connect.clone(),
            Call::Subscribe => self.subscribe.clone(),
            Call::Publish => self.publish.clone(),
            Call::Message => None,
        };
        let body = match request.to_json() {
            Ok(body) => body,
            Err(why) => {
                let error = ProxyError::Garbage {
                    key: call.key(),
                    url: String::new(),
                    why: format!("the request could not be encoded: {why}"),
                };
                return Box::pin(async move { Err(error) });
            }
        };
        let proxy = self.clone();
        match url {
            Some(url) => Box::pin(async move { proxy.post(call, &url, body).await }),
            None => Box::pin(async move { Err(ProxyError::NotConfigured { key: call.key() }) }),
        }
    }

    /// Calls a route's handler at `url`.
    pub async fn ask_route(&self, url: &str, request: &Request<'_>) -> Result<Answer, ProxyError> {
        let body = request.to_json().map_err(|why| ProxyError::Garbage {
            key: Call::Message.key(),
            url: url.to_owned(),
            why: format!("the request could not be encoded: {why}"),
        })?;
        self.post(Call::Message, url, body).await
    }

    async fn post(&self, call: Call, url: &str, body: Bytes) -> Result<Answer, ProxyError> {
        let key = call.key();
        let ms = self.timeout.as_millis() as u64;
        let started = Instant::now();
        let deadline = started + self.timeout;
        let _slot = match timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            // The semaphore is never closed; a closed one would be as full.
            Ok(Err(_)) | Err(_) => {
                return Err(ProxyError::Busy {
                    key,
                    max: self.max_in_flight,
                    ms,
                });
            }
        };
        let waited_ms = started.elapsed().as_millis() as u64;
        match timeout_at(deadline, self.exchange(call, url, body)).await {
            Ok(result) => result,
            Err(_) => Err(ProxyError::Timeout {
                key,
                url: url.to_owned(),
                ms,
                waited_ms,
            }),
        }
    }

    async fn exchange(&self, call: Call, url: &str, body: Bytes) -> Result<Answer, ProxyError> {
        let key = call.key();
        let mut tries = 0;
        let mut response = loop {
            let sent = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("x-stomphub-call", call.name())
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => break response,
                // Nothing reached the application: trying again cannot repeat an action.
                Err(error) if error.is_connect() && tries < self.retries => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20 << tries.min(5))).await;
                }
                Err(error) => {
                    return Err(ProxyError::Unreachable {
                        key,
                        url: url.to_owned(),
                        why: describe(&error),
                    });
                }
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Err(ProxyError::Status {
                key,
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let garbage = |why: String| ProxyError::Garbage {
            key,
            url: url.to_owned(),
            why,
        };
        let mut answer = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(garbage(format!(
                            "it is longer than {MAX_ANSWER_BYTES} bytes"
                        )));
                    }
                    answer.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    return Err(ProxyError::Unreachable {
                        key,
                        url: url.to_owned(),
                        why: format!("the answer broke off: {}", describe(&error)),
                    });
                }
            }
        }
        Answer::parse(&answer).map_err(garbage)
    }
}

/// What happened, from the innermost cause of reqwest's error ("Connection
/// refused (os error 111)"): reqwest's own text names the URL, which clients
/// are not shown.
fn describe(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    if std::ptr::addr_eq(innermost, error) {
        return match (error.is_connect(), error.is_body()) {
            (true, _) => "the connection failed".into(),
            (_, true) => "the answer's body could not be read".into(),
            _ => "the request failed".into(),
        };
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judging(judged: &[&str]) -> Proxy {
        Proxy::new(&ProxyConfig {
            subscribe: "http://127.0.0.1:3000/stomp/subscribe".into(),
            subscribe_destinations: judged.iter().map(|p| p.to_string()).collect(),
            ..ProxyConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn wildcard_subscriptions_that_may_reach_a_judged_destination_are_judged() {
        let proxy = judging(&["/topic/private/**"]);
        assert!(proxy.judges_subscribe("/topic/private/7"));
        assert!(!proxy.judges_subscribe("/topic/public"));
        assert!(proxy.judges_subscribe("/topic/**"));
        assert!(proxy.judges_subscribe("/topic/priv*/x"));
        assert!(!proxy.judges_subscribe("/queue/**"));
        assert!(!proxy.judges_subscribe("/topic/pub*/**"));
        let exact = judging(&["/topic/orders"]);
        assert!(exact.judges_subscribe("/topic/*"));
        assert!(!exact.judges_subscribe("/topic/orders/*"));
        assert!(!exact.judges_publish("/topic/orders"), "publish has no URL");
    }
}

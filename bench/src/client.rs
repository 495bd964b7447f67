//! Where the load generator connects: a [`Target`] on loopback only, and the
//! STOMP login it does there. The client itself is the one the integration
//! tests use (`stomp_client`, mounted from tests/common by `lib.rs`).

use crate::stomp_client::{Client, Receiver, Sender};
use std::net::IpAddr;
use stomphub::stomp::Command;
use tokio::net::TcpStream;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// CONNECT `host` header (RabbitMQ wants its virtual host, `/`).
    pub host: String,
    pub login: Option<String>,
    pub passcode: Option<String>,
    /// The one WebSocket subprotocol to offer instead of the usual three
    /// (romp accepts only a lone `stomp`).
    pub subprotocol: Option<String>,
}

/// Subprotocols offered, newest first, so any STOMP broker finds one it speaks.
const PROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// `host:port` of a `ws://host:port/...` URL.
pub fn authority(url: &str) -> Result<&str, String> {
    url.strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("{url}: expected ws://host:port/..."))
}

/// Refuses any URL that is not `ws://` to a loopback address: the load
/// generator never sends traffic anywhere else.
pub fn only_loopback(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    if is_loopback_host(host) {
        Ok(())
    } else {
        Err(format!(
            "{url}: the load generator only targets loopback addresses"
        ))
    }
}

/// `localhost`, or a loopback address (IPv6 with or without its brackets).
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Opens TCP to `authority`, from the local address `source` when given (see
/// `conns`: spreading over 127.0.0.x gets past one address's ephemeral ports).
pub async fn tcp(authority: &str, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let tcp = crate::stomp_client::tcp(authority, source)
        .await
        .map_err(|e| format!("{authority}: {e}"))?;
    // Frames are small and latency is measured: no Nagle delay.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

/// Opens a WebSocket and completes CONNECT.
pub async fn connect(target: &Target) -> Result<(Sender, Receiver), String> {
    connect_from(target, None).await
}

/// Like [`connect`], from the local address `source` when given.
pub async fn connect_from(
    target: &Target,
    source: Option<IpAddr>,
) -> Result<(Sender, Receiver), String> {
    only_loopback(&target.url)?;
    let offered: Vec<&str> = match &target.subprotocol {
        Some(protocol) => vec![protocol.as_str()],
        None => PROTOCOLS.to_vec(),
    };
    let mut client = Client::handshake(&target.url, &offered, &[], source).await?;
    let credentials: Vec<(&str, &str)> = [("login", &target.login), ("passcode", &target.passcode)]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)))
        .collect();
    let reply = client.connect_stomp(&target.host, &credentials).await?;
    if reply.command != Command::Connected {
        return Err(format!("CONNECT refused: {:?}", reply.get("message")));
    }
    Ok((client.sender, client.receiver))
}

#[cfg(test)]
mod tests {
    use super::only_loopback;

    #[test]
    fn only_loopback_targets_are_allowed() {
        assert!(only_loopback("ws://127.0.0.1:8080/endpoint-websocket").is_ok());
        assert!(only_loopback("ws://localhost:15674/ws").is_ok());
        assert!(only_loopback("ws://[::1]:8080/x").is_ok());
        assert!(only_loopback("ws://10.0.0.1:8080/x").is_err());
        assert!(only_loopback("wss://127.0.0.1/x").is_err());
    }
}

//! A minimal HTTP/1.1 client for tests: one request per connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
pub struct HttpResponse {
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub status: u16,
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub headers: String,
    pub body: String,
}

impl HttpResponse {
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    exchange(stream, addr, method, path, headers, body).await
}

/// [`request`] from the loopback address `source` (127.0.0.2 stands for another host).
#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn request_from(
    source: std::net::IpAddr,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind((source, 0).into())
        .expect("bind the source address");
    let stream = socket.connect(addr).await.expect("connect");
    exchange(stream, addr, method, path, headers, body).await
}

async fn exchange(
    mut stream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    HttpResponse {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn get(addr: std::net::SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, &[], "").await
}

#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn post_json(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    request(addr, "POST", path, &headers, body).await
}

//! A minimal server-sent-events subscriber over raw HTTP/1.1 for load generation.

use bytes::{Buf, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct SseReceiver {
    stream: TcpStream,
    raw: BytesMut,
    text: Vec<u8>,
    pending: std::collections::VecDeque<Vec<u8>>,
}

/// `host:port` of a `ws://host:port/...` URL.
pub fn authority(url: &str) -> Result<&str, String> {
    url.strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("{url}: expected ws://host:port/..."))
}

/// Opens `GET /sse/subscribe?destination=...` and reads past the response head.
pub async fn open(authority: &str, destination: &str) -> Result<SseReceiver, String> {
    let mut stream = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(authority))
        .await
        .map_err(|_| "SSE connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "GET /sse/subscribe?destination={destination} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = BytesMut::with_capacity(8192);
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            if !head.starts_with("HTTP/1.1 200") {
                return Err(format!("SSE subscribe refused: {head}"));
            }
            raw.advance(end + 4);
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read_buf(&mut raw))
            .await
            .map_err(|_| "no SSE response head in time".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("SSE connection closed before the response head".into());
        }
    }
    Ok(SseReceiver {
        stream,
        raw,
        text: Vec::new(),
        pending: Default::default(),
    })
}

impl SseReceiver {
    /// Moves complete chunks of the chunked body into `text`.
    fn dechunk(&mut self) -> Result<(), String> {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return Ok(());
            };
            let size = std::str::from_utf8(&self.raw[..line_end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or("bad chunk size")?;
            if size == 0 {
                return Err("SSE stream ended".into());
            }
            if self.raw.len() < line_end + 2 + size + 2 {
                return Ok(());
            }
            self.text
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.advance(line_end + 2 + size + 2);
        }
    }

    /// Queues the data of every complete message event (one data line each, as the bench sends).
    fn parse(&mut self) {
        while let Some(end) = self.text.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.text.drain(..end + 2).collect();
            let is_message = block
                .split(|&b| b == b'\n')
                .any(|line| line == b"event: message");
            if let Some(data) = block
                .split(|&b| b == b'\n')
                .find_map(|line| line.strip_prefix(b"data: "))
                && is_message
            {
                self.pending.push_back(data.to_vec());
            }
        }
    }

    /// The next message body.
    pub async fn next_data(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(data) = self.pending.pop_front() {
                return Ok(data);
            }
            let n = self
                .stream
                .read_buf(&mut self.raw)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("SSE connection closed".into());
            }
            self.dechunk()?;
            self.parse();
        }
    }
}

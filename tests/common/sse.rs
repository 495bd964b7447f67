//! A streaming client for server-sent events over raw HTTP/1.1 (chunked bodies).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    Event {
        id: Option<String>,
        event: String,
        data: String,
    },
    Comment(String),
    Retry(u64),
}

pub struct SseClient {
    pub stream: TcpStream,
    pub status: u16,
    pub head: String,
    raw: Vec<u8>,
    text: String,
    pending: std::collections::VecDeque<SseItem>,
    chunked: bool,
    ended: bool,
}

impl SseClient {
    pub async fn open(
        addr: std::net::SocketAddr,
        path: &str,
        last_event_id: Option<&str>,
    ) -> SseClient {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("request");
        let mut raw = Vec::new();
        let head_end = loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("response head in time")
                .expect("read");
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        raw.drain(..head_end + 4);
        SseClient {
            stream,
            status,
            head,
            raw,
            text: String::new(),
            pending: Default::default(),
            chunked,
            ended: false,
        }
    }

    /// Moves complete chunks from `raw` to `text`.
    fn dechunk(&mut self) {
        if !self.chunked {
            self.text.push_str(&String::from_utf8_lossy(&self.raw));
            self.raw.clear();
            return;
        }
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            if size == 0 {
                self.ended = true;
                self.raw.clear();
                return;
            }
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            let data = self.raw[line_end + 2..line_end + 2 + size].to_vec();
            self.text.push_str(&String::from_utf8_lossy(&data));
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    fn parse(&mut self) {
        while let Some(end) = self.text.find("\n\n") {
            let block: String = self.text.drain(..end + 2).collect();
            let (mut id, mut event, mut data, mut comment, mut retry) =
                (None, "message".to_owned(), Vec::new(), None, None);
            for line in block.lines() {
                if let Some(rest) = line.strip_prefix(':') {
                    comment = Some(rest.trim().to_owned());
                } else if let Some(rest) = line.strip_prefix("id: ") {
                    id = Some(rest.to_owned());
                } else if let Some(rest) = line.strip_prefix("event: ") {
                    event = rest.to_owned();
                } else if let Some(rest) = line.strip_prefix("data: ") {
                    data.push(rest.to_owned());
                } else if let Some(rest) = line.strip_prefix("retry: ") {
                    retry = rest.parse().ok();
                }
            }
            if let Some(retry) = retry {
                self.pending.push_back(SseItem::Retry(retry));
            }
            if !data.is_empty() {
                self.pending.push_back(SseItem::Event {
                    id,
                    event,
                    data: data.join("\n"),
                });
            } else if let Some(comment) = comment {
                self.pending.push_back(SseItem::Comment(comment));
            }
        }
    }

    /// The next item, or `None` when the stream ends or nothing comes within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<SseItem> {
        let deadline = tokio::time::Instant::now() + limit;
        // Body bytes may have arrived together with the response head.
        self.dechunk();
        self.parse();
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            let mut buf = [0u8; 16384];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
            };
            if n == 0 {
                self.ended = true;
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
            self.dechunk();
            self.parse();
        }
    }

    /// The next message or history-gone event, skipping comments and retry advice.
    pub async fn event(&mut self) -> (Option<String>, String, String) {
        loop {
            match self.next_within(Duration::from_secs(10)).await {
                Some(SseItem::Event { id, event, data }) => return (id, event, data),
                Some(_) => continue,
                None => panic!("stream ended or stalled while waiting for an event"),
            }
        }
    }

    /// The body of a non-streaming answer (errors).
    pub async fn body(&mut self) -> String {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.stream.read_to_end(&mut self.raw),
        )
        .await;
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

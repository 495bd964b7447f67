//! The one server-sent-events client of this repository, over raw HTTP/1.1
//! (chunked or not), for the integration tests and the load generator alike.
//!
//! There is one copy of this file: tests mount it as `mod common { pub mod sse; }`,
//! `bench/src/lib.rs` with `#[path = "../../tests/common/sse.rs"]`, so it may
//! only use crates both packages depend on.
//!
//! An event's fields are slices of the buffer its bytes arrived in, not copies,
//! so a load-generating subscriber does not allocate per message.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::fmt::Display;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// How long the panicking helpers wait for what they expect.
const WAIT: Duration = Duration::from_secs(10);

/// Bound on connecting and on the response head; generous for a loaded machine.
const OPEN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    /// A dispatched event; `event` is `message` when the server named none, and
    /// several `data` lines are joined with LF.
    Event {
        id: Option<Bytes>,
        event: Bytes,
        data: Bytes,
    },
    Comment(Bytes),
    Retry(u64),
}

pub struct SseClient {
    stream: TcpStream,
    pub status: u16,
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub head: String,
    /// Received body bytes, still in HTTP chunks.
    raw: BytesMut,
    /// The event stream itself, up to an event not yet complete.
    text: BytesMut,
    /// How far `text` is known to hold no event end, so a long event is not rescanned.
    scanned: usize,
    pending: VecDeque<SseItem>,
    chunked: bool,
    ended: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl SseClient {
    /// Sends `GET path` to `addr` (with `Last-Event-ID` when given) and reads
    /// the response head; whatever the status, the stream is left to read.
    pub async fn try_open(
        addr: impl ToSocketAddrs + Display,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, String> {
        let host = addr.to_string();
        let deadline = tokio::time::Instant::now() + OPEN_LIMIT;
        let late = |what: &str| format!("{host}: no {what} in time");
        let mut stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| late("connection"))?
            .map_err(|e| format!("{host}: {e}"))?;
        // Events are small and latency is measured: no Nagle delay.
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = BytesMut::with_capacity(8192);
        let head_end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            let n = tokio::time::timeout_at(deadline, stream.read_buf(&mut raw))
                .await
                .map_err(|_| late("response head"))?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("{host}: closed before the response head"));
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{host}: no status in {head:?}"))?;
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        raw.advance(head_end + 4);
        Ok(SseClient {
            stream,
            status,
            head,
            raw,
            // Room for many small events between reallocations.
            text: BytesMut::with_capacity(4096),
            scanned: 0,
            pending: VecDeque::new(),
            chunked,
            ended: false,
        })
    }

    /// Moves complete chunks from `raw` to `text`.
    fn dechunk(&mut self) -> Result<(), String> {
        if !self.chunked {
            self.text.extend_from_slice(&self.raw);
            self.raw.clear();
            return Ok(());
        }
        while let Some(line_end) = find(&self.raw, b"\r\n") {
            let size = std::str::from_utf8(&self.raw[..line_end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| format!("bad chunk size line {:?}", &self.raw[..line_end]))?;
            if size == 0 {
                self.ended = true;
                self.raw.clear();
                return Ok(());
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                break;
            }
            self.text.extend_from_slice(&self.raw[start..start + size]);
            self.raw.advance(start + size + 2);
        }
        Ok(())
    }

    /// Queues the items of every complete event block in `text`.
    fn parse(&mut self) {
        while let Some(end) = find(&self.text[self.scanned..], b"\n\n") {
            let block = self.text.split_to(self.scanned + end + 2).freeze();
            self.scanned = 0;
            let (mut id, mut event, mut comment, mut retry) = (None, None, None, None);
            let mut data: Option<Bytes> = None;
            for line in block.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(rest) = line.strip_prefix(b":") {
                    comment = Some(block.slice_ref(rest.trim_ascii()));
                } else if let Some(rest) = line.strip_prefix(b"id: ") {
                    id = Some(block.slice_ref(rest));
                } else if let Some(rest) = line.strip_prefix(b"event: ") {
                    event = Some(block.slice_ref(rest));
                } else if let Some(rest) = line.strip_prefix(b"data: ") {
                    data = Some(match data.take() {
                        None => block.slice_ref(rest),
                        // More than one data line is rare: only then is there a copy.
                        Some(earlier) => {
                            let mut joined = BytesMut::from(&earlier[..]);
                            joined.put_u8(b'\n');
                            joined.extend_from_slice(rest);
                            joined.freeze()
                        }
                    });
                } else if let Some(rest) = line.strip_prefix(b"retry: ") {
                    retry = std::str::from_utf8(rest).ok().and_then(|s| s.parse().ok());
                }
            }
            if let Some(retry) = retry {
                self.pending.push_back(SseItem::Retry(retry));
            }
            if let Some(data) = data {
                self.pending.push_back(SseItem::Event {
                    id,
                    event: event.unwrap_or(Bytes::from_static(b"message")),
                    data,
                });
            } else if let Some(comment) = comment {
                self.pending.push_back(SseItem::Comment(comment));
            }
        }
        // The last byte may be the first LF of an event end.
        self.scanned = self.text.len().saturating_sub(1);
    }

    /// The next item; `Ok(None)` once the stream has ended (its last chunk, a
    /// close or a reset), an error when the server broke HTTP chunking.
    /// Cancel-safe: what arrived stays buffered.
    pub async fn next(&mut self) -> Result<Option<SseItem>, String> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            if self.ended {
                return Ok(None);
            }
            // Also takes the body bytes that came with the response head.
            self.dechunk()?;
            self.parse();
            if !self.pending.is_empty() || self.ended {
                continue;
            }
            match self.stream.read_buf(&mut self.raw).await {
                Ok(0) | Err(_) => self.ended = true,
                Ok(_) => {}
            }
        }
    }
}

/// The helpers tests use: each panics on what the test did not expect.
impl SseClient {
    pub async fn open(
        addr: impl ToSocketAddrs + Display,
        path: &str,
        last_event_id: Option<&str>,
    ) -> SseClient {
        SseClient::try_open(addr, path, last_event_id)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The next item, or `None` when the stream ends or nothing comes within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<SseItem> {
        match tokio::time::timeout(limit, self.next()).await {
            Err(_) => None,
            Ok(Ok(item)) => item,
            Ok(Err(error)) => panic!("{error}"),
        }
    }

    /// The next event's id, name and data, skipping comments and retry advice.
    #[allow(dead_code, reason = "not every test binary calls it")]
    pub async fn event(&mut self) -> (Option<String>, String, String) {
        let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
        loop {
            match self.next_within(WAIT).await {
                Some(SseItem::Event { id, event, data }) => {
                    return (id.as_ref().map(text), text(&event), text(&data));
                }
                Some(_) => continue,
                None => panic!("stream ended or stalled while waiting for an event"),
            }
        }
    }
}

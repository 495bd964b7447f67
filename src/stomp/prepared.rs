//! A MESSAGE encoded once for many subscribers: shared headers and body are
//! serialised once per protocol version; each delivery adds only its own headers.

use super::encode::{put_content_length, put_header, put_headers};
use super::frame::{Command, Headers, Version};
use super::position::Position;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::OnceLock;

/// The part of a MESSAGE that is the same for every subscriber.
#[derive(Debug)]
pub struct PreparedMessage {
    headers: Headers,
    body: Bytes,
    /// The message's place in its destination's history, when it keeps one.
    seq: Option<Position>,
    approximate_len: usize,
    /// When it was published on this node: the delivery latency metric.
    published_at: std::time::Instant,
    /// Shared header lines, `content-length`, the blank line: one per version, built on first use.
    shared_block: [OnceLock<Bytes>; 3],
}

impl PreparedMessage {
    pub fn new(headers: Headers, body: Bytes) -> Self {
        let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
        PreparedMessage {
            approximate_len: "MESSAGE\n\ncontent-length:\n".len()
                + 20
                + header_bytes
                + body.len()
                + 1,
            headers,
            body,
            seq: None,
            published_at: std::time::Instant::now(),
            shared_block: Default::default(),
        }
    }

    /// Records the history position (also sent as a `seq` header by the broker).
    pub fn with_seq(mut self, seq: Position) -> Self {
        self.seq = Some(seq);
        self
    }

    pub fn seq(&self) -> Option<Position> {
        self.seq
    }

    pub fn published_at(&self) -> std::time::Instant {
        self.published_at
    }

    /// Size of one delivery without its per-delivery headers, before escaping:
    /// cheap enough for queue accounting on the publish path.
    pub fn approximate_len(&self) -> usize {
        self.approximate_len
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    fn shared_block(&self, version: Version) -> &Bytes {
        self.shared_block[version as usize].get_or_init(|| {
            let mut out = BytesMut::with_capacity(64 + self.headers.len() * 32);
            put_headers(&self.headers, Command::Message, version, &mut out);
            put_content_length(self.body.len(), &mut out);
            out.put_u8(b'\n');
            out.freeze()
        })
    }

    /// Size of one delivery, for queue accounting, before escaping of the per-delivery headers.
    pub fn delivery_len(&self, version: Version, per_delivery: &[(&str, &str)]) -> usize {
        let own: usize = per_delivery
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        "MESSAGE\n".len() + own + self.shared_block(version).len() + self.body.len() + 1
    }

    /// Appends one delivery. `per_delivery` headers (such as `subscription`) come
    /// first, so they win over a sender's header of the same name.
    pub fn encode_for(&self, version: Version, per_delivery: &[(&str, &str)], out: &mut BytesMut) {
        out.reserve(self.delivery_len(version, per_delivery));
        out.put_slice(b"MESSAGE\n");
        for (name, value) in per_delivery {
            put_header(name, value, true, version, out);
        }
        out.put_slice(self.shared_block(version));
        out.put_slice(&self.body);
        out.put_u8(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::{Frame, encode_to_vec};

    #[test]
    fn a_prepared_delivery_equals_encoding_the_whole_frame() {
        let headers: Headers = [
            ("destination", "/topic/a"),
            ("message-id", "7"),
            ("x", "a:b"),
        ]
        .into_iter()
        .collect();
        let body = Bytes::from_static("你好".as_bytes());
        let prepared = PreparedMessage::new(headers.clone(), body.clone());
        for version in Version::ALL {
            let mut whole = Frame::new(Command::Message).header("subscription", "s:1");
            for (n, v) in headers.iter() {
                whole.headers.push(n, v);
            }
            whole.body = body.clone();
            let mut out = BytesMut::new();
            prepared.encode_for(version, &[("subscription", "s:1")], &mut out);
            assert_eq!(
                out.as_ref(),
                encode_to_vec(&whole, version).as_slice(),
                "{version}"
            );
        }
    }
}

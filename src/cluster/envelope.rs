//! The bytes of a cross-node message: one preamble line saying who sent it,
//! then the message itself as a STOMP frame, so headers and bodies keep the
//! escaping and binary safety of the wire format.
//!
//! `S2 <node> <instance> <origin-seq> <run>:<channel-seq> <delivered-at-origin> <published-ms> <position>\n<frame>`,
//! where `channel-seq` numbers the origin's messages on that Redis channel (in
//! numbering `run`), so a receiver can count what it missed, and `position`
//! is the destination's history position (`<epoch>-<n>`), or 0 without
//! history. The history script writes `position` itself, so it is the last
//! field. A fetch marker (see `replay`) is `S2m <token>`.

use crate::stomp::{Command, Decoded, Decoder, Headers, Limits, Position, Version, encode_message};
use bytes::{Bytes, BytesMut};

const VERSION: &str = "S2";
const MARKER_PREFIX: &[u8] = b"S2m ";

/// A message as it left its origin node.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub node: String,
    /// Random per process, so a restarted node with the same id starts a new sequence.
    pub instance: u64,
    /// Numbers every message one process forwards, in forwarding order.
    pub origin_seq: u64,
    /// Numbers the origin's messages on one channel: a jump is a loss.
    pub channel_seq: ChannelSeq,
    /// The origin already delivered to its own subscribers.
    pub delivered_at_origin: bool,
    pub published_ms: u64,
    pub seq: Option<Position>,
    /// The destination as the frame carries it (user destinations: `/queue/x`).
    pub destination: String,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, PartialEq)]
pub enum Inbound {
    Message(Envelope),
    Marker(u64),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("not a stomphub cluster message")]
    Foreign,
    #[error("bad preamble field {0}")]
    Preamble(&'static str),
    #[error("bad frame: {0}")]
    Frame(String),
}

/// An origin's number for a message on one channel. `run` changes when the
/// origin starts numbering afresh (a restart, or its table of channels full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelSeq {
    pub run: u64,
    pub seq: u64,
}

/// Who sent a message and when: the preamble's fields before `position`.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub node: &'a str,
    pub instance: u64,
    pub origin_seq: u64,
    pub channel_seq: ChannelSeq,
    pub delivered_at_origin: bool,
    pub published_ms: u64,
}

/// The preamble up to (not including) `position`, which the history script appends.
pub fn preamble_head(origin: Origin<'_>) -> String {
    let Origin {
        node,
        instance,
        origin_seq,
        channel_seq: ChannelSeq { run, seq },
        delivered_at_origin,
        published_ms,
    } = origin;
    let local = u8::from(delivered_at_origin);
    format!("{VERSION} {node} {instance:x} {origin_seq} {run:x}:{seq} {local} {published_ms} ")
}

/// `\n` and the frame: what follows `seq`.
pub fn frame_tail(destination: &str, headers: &Headers, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(body.len() + 128);
    out.extend_from_slice(b"\n");
    encode_message(destination, headers, body, Version::V1_2, &mut out);
    out
}

pub fn marker(token: u64) -> String {
    format!("{VERSION}m {token:x}")
}

/// Frames from other nodes were checked there; these limits only stop a
/// foreign publisher on the same Redis from making a node allocate without end.
fn limits() -> Limits {
    Limits {
        max_frame_size: 64 << 20,
        max_headers: 1024,
        max_header_line: 1 << 20,
        max_body_size: 64 << 20,
    }
}

pub fn decode(payload: &[u8]) -> Result<Inbound, EnvelopeError> {
    if let Some(token) = payload.strip_prefix(MARKER_PREFIX) {
        let token = std::str::from_utf8(token).map_err(|_| EnvelopeError::Preamble("token"))?;
        return u64::from_str_radix(token, 16)
            .map(Inbound::Marker)
            .map_err(|_| EnvelopeError::Preamble("token"));
    }
    let newline = memchr::memchr(b'\n', payload).ok_or(EnvelopeError::Foreign)?;
    let preamble = std::str::from_utf8(&payload[..newline]).map_err(|_| EnvelopeError::Foreign)?;
    let mut fields = preamble.split(' ');
    if fields.next() != Some(VERSION) {
        return Err(EnvelopeError::Foreign);
    }
    let mut next = |name: &'static str| fields.next().ok_or(EnvelopeError::Preamble(name));
    let node = next("node")?.to_owned();
    let instance = u64::from_str_radix(next("instance")?, 16)
        .map_err(|_| EnvelopeError::Preamble("instance"))?;
    let number = |text: &str, name| {
        text.parse::<u64>()
            .map_err(|_| EnvelopeError::Preamble(name))
    };
    let origin_seq = number(next("origin-seq")?, "origin-seq")?;
    let channel_seq = next("channel-seq")?
        .split_once(':')
        .and_then(|(run, seq)| {
            Some(ChannelSeq {
                run: u64::from_str_radix(run, 16).ok()?,
                seq: seq.parse().ok()?,
            })
        })
        .ok_or(EnvelopeError::Preamble("channel-seq"))?;
    let delivered_at_origin = match next("delivered")? {
        "0" => false,
        "1" => true,
        _ => return Err(EnvelopeError::Preamble("delivered")),
    };
    let published_ms = number(next("published")?, "published")?;
    let seq = match next("position")? {
        "0" => None,
        text => Some(
            text.parse::<Position>()
                .ok()
                .filter(|position| position.epoch.is_known())
                .ok_or(EnvelopeError::Preamble("position"))?,
        ),
    };
    let mut decoder = Decoder::new(limits());
    decoder.set_version(Version::V1_2);
    decoder.feed(&payload[newline + 1..]);
    let frame = match decoder.decode() {
        Ok(Some(Decoded::Frame(frame))) if frame.command == Command::Message => frame,
        Ok(_) => return Err(EnvelopeError::Frame("no MESSAGE frame".into())),
        Err(error) => return Err(EnvelopeError::Frame(error.to_string())),
    };
    let destination = frame
        .get("destination")
        .ok_or_else(|| EnvelopeError::Frame("no destination".into()))?
        .to_owned();
    Ok(Inbound::Message(Envelope {
        node,
        instance,
        origin_seq,
        channel_seq,
        delivered_at_origin,
        published_ms,
        seq,
        destination,
        headers: frame.headers,
        body: frame.body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(position: &str) -> Vec<u8> {
        let mut headers = Headers::new();
        headers.push("content-type", "text/plain");
        headers.push("x:odd", "line\nbreak");
        let mut bytes = preamble_head(Origin {
            node: "n-1",
            instance: 0xabc,
            origin_seq: 7,
            channel_seq: ChannelSeq { run: 0xf00, seq: 3 },
            delivered_at_origin: true,
            published_ms: 1234,
        })
        .into_bytes();
        bytes.extend_from_slice(position.as_bytes());
        bytes.extend_from_slice(&frame_tail(
            "/topic/a",
            &headers,
            &Bytes::from_static(b"hi\0there"),
        ));
        bytes
    }

    #[test]
    fn round_trips_headers_and_binary_bodies() {
        let Inbound::Message(envelope) = decode(&payload("e1-42")).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(envelope.node, "n-1");
        assert_eq!(envelope.instance, 0xabc);
        assert_eq!(envelope.origin_seq, 7);
        assert!(envelope.delivered_at_origin);
        assert_eq!(envelope.channel_seq, ChannelSeq { run: 0xf00, seq: 3 });
        assert_eq!(envelope.seq, Some("e1-42".parse().unwrap()));
        assert_eq!(envelope.destination, "/topic/a");
        assert_eq!(envelope.headers.get("x:odd"), Some("line\nbreak"));
        assert_eq!(&envelope.body[..], b"hi\0there");
        let Inbound::Message(plain) = decode(&payload("0")).unwrap() else {
            panic!()
        };
        assert_eq!(plain.seq, None);
    }

    #[test]
    fn markers_and_garbage() {
        assert_eq!(
            decode(marker(0xbeef).as_bytes()),
            Ok(Inbound::Marker(0xbeef))
        );
        assert_eq!(decode(b"hello"), Err(EnvelopeError::Foreign));
        assert_eq!(decode(b"S1 x\n"), Err(EnvelopeError::Foreign));
        assert!(matches!(
            decode(b"S2 n zz 1 a:1 1 1 0\n"),
            Err(EnvelopeError::Preamble(_))
        ));
        assert!(matches!(
            decode(b"S2 n a 1 1 1 1 0\n"),
            Err(EnvelopeError::Preamble("channel-seq"))
        ));
        assert!(matches!(
            decode(&payload("5")),
            Err(EnvelopeError::Preamble("position"))
        ));
        assert!(matches!(
            decode(b"S2 n a 1 a:1 1 1 0\nNOPE\n\n\0"),
            Err(EnvelopeError::Frame(_))
        ));
        let mut truncated = payload("e1-1");
        truncated.truncate(truncated.len() - 3);
        assert!(decode(&truncated).is_err());
    }
}

//! Frame serialisation: escaping per version and a `content-length` on every body.

use super::escape::escape_into;
use super::frame::{Command, Frame, Headers, Version};
use bytes::{BufMut, BytesMut};

/// Writes the header lines of `headers`, skipping any `content-length`:
/// the encoder always computes that one itself from the real body.
pub(crate) fn put_headers(
    headers: &Headers,
    command: Command,
    version: Version,
    out: &mut BytesMut,
) {
    let escaped = command.escapes_headers();
    for (name, value) in headers.iter() {
        if name == "content-length" {
            continue;
        }
        put_header(name, value, escaped, version, out);
    }
}

pub(crate) fn put_header(
    name: &str,
    value: &str,
    escaped: bool,
    version: Version,
    out: &mut BytesMut,
) {
    escape_into(name, version, escaped, true, out);
    out.put_u8(b':');
    escape_into(value, version, escaped, false, out);
    out.put_u8(b'\n');
}

pub(crate) fn put_content_length(length: usize, out: &mut BytesMut) {
    out.put_slice(b"content-length:");
    let mut digits = itoa::Buffer::new();
    out.put_slice(digits.format(length).as_bytes());
    out.put_u8(b'\n');
}

/// Appends a MESSAGE with `destination` first, then `headers`: the bytes of
/// building that `Frame` and encoding it, without copying the headers into one.
pub fn encode_message(
    destination: &str,
    headers: &Headers,
    body: &[u8],
    version: Version,
    out: &mut BytesMut,
) {
    let command = Command::Message;
    out.put_slice(command.as_str().as_bytes());
    out.put_u8(b'\n');
    put_header(
        "destination",
        destination,
        command.escapes_headers(),
        version,
        out,
    );
    put_headers(headers, command, version, out);
    put_content_length(body.len(), out);
    out.put_u8(b'\n');
    out.put_slice(body);
    out.put_u8(0);
}

/// Bytes `frame` needs when no header needs escaping; used to reserve once.
pub fn encoded_len_hint(frame: &Frame) -> usize {
    let headers: usize = frame
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    frame.command.as_str().len() + 1 + headers + 40 + frame.body.len() + 1
}

/// Appends `frame` to `out` as `version` expects it. A body, or any frame of a
/// command that may carry one, gets a `content-length` so bodies may hold NUL.
pub fn encode(frame: &Frame, version: Version, out: &mut BytesMut) {
    out.reserve(encoded_len_hint(frame));
    out.put_slice(frame.command.as_str().as_bytes());
    out.put_u8(b'\n');
    put_headers(&frame.headers, frame.command, version, out);
    if frame.command.allows_body() || !frame.body.is_empty() {
        put_content_length(frame.body.len(), out);
    }
    out.put_u8(b'\n');
    out.put_slice(&frame.body);
    out.put_u8(0);
}

/// Convenience for tests and one-off frames.
pub fn encode_to_vec(frame: &Frame, version: Version) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(frame, version, &mut out);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_gets_a_computed_content_length_replacing_the_callers() {
        let frame = Frame::new(Command::Send)
            .header("destination", "/topic/a")
            .header("content-length", "999")
            .body("hi");
        assert_eq!(
            encode_to_vec(&frame, Version::V1_2),
            b"SEND\ndestination:/topic/a\ncontent-length:2\n\nhi\0"
        );
    }

    #[test]
    fn frames_without_body_have_no_content_length() {
        let frame = Frame::new(Command::Receipt).header("receipt-id", "77");
        assert_eq!(
            encode_to_vec(&frame, Version::V1_2),
            b"RECEIPT\nreceipt-id:77\n\n\0"
        );
    }

    #[test]
    fn empty_message_body_still_states_its_length() {
        let frame = Frame::new(Command::Message).header("destination", "/t");
        assert_eq!(
            encode_to_vec(&frame, Version::V1_2),
            b"MESSAGE\ndestination:/t\ncontent-length:0\n\n\0"
        );
    }

    #[test]
    fn header_escaping_follows_the_version_but_never_for_connected() {
        let message = Frame::new(Command::Message).header("a:b", "c\nd");
        assert!(encode_to_vec(&message, Version::V1_2).starts_with(b"MESSAGE\na\\cb:c\\nd\n"));
        let connected = Frame::new(Command::Connected).header("server", "x:y");
        assert!(encode_to_vec(&connected, Version::V1_2).starts_with(b"CONNECTED\nserver:x:y\n"));
    }

    #[test]
    fn a_message_from_parts_equals_the_encoded_frame() {
        let mut headers = Headers::new();
        headers.push("x:y", "a\nb");
        headers.push("content-length", "999");
        let mut frame = Frame::new(Command::Message).header("destination", "/t/a");
        for (name, value) in headers.iter() {
            frame.headers.push(name, value);
        }
        frame.body = bytes::Bytes::from_static(b"hi\0");
        for version in Version::ALL {
            let mut parts = BytesMut::new();
            encode_message("/t/a", &headers, b"hi\0", version, &mut parts);
            assert_eq!(
                &parts[..],
                &encode_to_vec(&frame, version)[..],
                "{version:?}"
            );
        }
    }
}

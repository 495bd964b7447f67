//! Header escaping per STOMP version (1.0: none; 1.1: `\n \c \\`; 1.2 adds `\r`).

use super::frame::Version;
use bytes::BufMut;

/// What unescaping found wrong, with the byte position inside the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEscape {
    pub sequence: String,
    pub position: usize,
}

/// Stands in for characters a version has no way to express, so that a value
/// can never break a frame apart (header injection) on its way to an old peer.
const UNREPRESENTABLE: &str = "\u{FFFD}";

/// Undoes escaping of one header name or value that is already valid UTF-8.
pub(crate) fn unescape(raw: &str, version: Version, escaped: bool) -> Result<String, BadEscape> {
    if !escaped || version == Version::V1_0 || !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((position, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let replacement = match chars.next() {
            Some((_, 'n')) => '\n',
            Some((_, 'c')) => ':',
            Some((_, '\\')) => '\\',
            Some((_, 'r')) if version == Version::V1_2 => '\r',
            Some((_, other)) => {
                return Err(BadEscape {
                    sequence: format!("\\{other}"),
                    position,
                });
            }
            None => {
                return Err(BadEscape {
                    sequence: "\\".to_owned(),
                    position,
                });
            }
        };
        out.push(replacement);
    }
    Ok(out)
}

fn needs_work(text: &str) -> bool {
    text.bytes()
        .any(|b| matches!(b, b'\r' | b'\n' | b':' | b'\\'))
}

/// Writes `text` escaped for `version`; `escaped` is false for CONNECT/CONNECTED.
/// `is_name` matters only where escaping is off: a colon in a name would end it early.
pub(crate) fn escape_into(
    text: &str,
    version: Version,
    escaped: bool,
    is_name: bool,
    out: &mut impl BufMut,
) {
    if !needs_work(text) {
        out.put_slice(text.as_bytes());
        return;
    }
    let full = escaped && version != Version::V1_0;
    for c in text.chars() {
        match c {
            '\n' if full => out.put_slice(b"\\n"),
            ':' if full => out.put_slice(b"\\c"),
            '\\' if full => out.put_slice(b"\\\\"),
            '\r' if full && version == Version::V1_2 => out.put_slice(b"\\r"),
            '\r' | '\n' => out.put_slice(UNREPRESENTABLE.as_bytes()),
            ':' if is_name => out.put_slice(UNREPRESENTABLE.as_bytes()),
            other => {
                let mut utf8 = [0u8; 4];
                out.put_slice(other.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str, version: Version) -> String {
        let mut out = Vec::new();
        escape_into(text, version, true, false, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stomp_1_2_escapes_the_four_octets() {
        assert_eq!(escaped("a\r\nb:c\\d", Version::V1_2), "a\\r\\nb\\cc\\\\d");
        assert_eq!(
            unescape("a\\r\\nb\\cc\\\\d", Version::V1_2, true).unwrap(),
            "a\r\nb:c\\d"
        );
    }

    #[test]
    fn stomp_1_1_has_no_carriage_return_escape() {
        assert_eq!(escaped("a\rb", Version::V1_1), "a\u{FFFD}b");
        let err = unescape("a\\rb", Version::V1_1, true).unwrap_err();
        assert_eq!(
            err,
            BadEscape {
                sequence: "\\r".into(),
                position: 1
            }
        );
    }

    #[test]
    fn stomp_1_0_has_no_escaping_at_all() {
        assert_eq!(unescape("a\\tb\\", Version::V1_0, true).unwrap(), "a\\tb\\");
        assert_eq!(escaped("x:y\\z", Version::V1_0), "x:y\\z");
        assert_eq!(escaped("line\nbreak", Version::V1_0), "line\u{FFFD}break");
    }

    #[test]
    fn undefined_and_dangling_escapes_are_errors() {
        assert_eq!(
            unescape("a\\t", Version::V1_2, true).unwrap_err().sequence,
            "\\t"
        );
        assert_eq!(
            unescape("end\\", Version::V1_2, true).unwrap_err().position,
            3
        );
    }

    #[test]
    fn connect_frames_are_never_unescaped() {
        assert_eq!(unescape("a\\cb", Version::V1_2, false).unwrap(), "a\\cb");
    }
}

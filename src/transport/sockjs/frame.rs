//! SockJS framing: the `o`, `h`, `a[...]` and `c[...]` frames with the
//! protocol's JSON escaping, and the client's messages (a JSON array of strings).

use std::fmt::Write;

pub const OPEN: &str = "o";
pub const HEARTBEAT: &str = "h";

/// The close frame every request for a session that has ended gets.
pub const GO_AWAY: CloseFrame = CloseFrame {
    code: 3000,
    reason: "Go away!",
};
/// The session of a receiving request the client aborted: it is over.
pub const INTERRUPTED: CloseFrame = CloseFrame {
    code: 1002,
    reason: "Connection interrupted",
};
/// The answer to a second request receiving for a session that has one.
pub const ANOTHER_CONNECTION: CloseFrame = CloseFrame {
    code: 2010,
    reason: "Another connection still open",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseFrame {
    pub fn encode(&self) -> String {
        let mut frame = format!("c[{},", self.code);
        push_json_string(self.reason, &mut frame);
        frame.push(']');
        frame
    }
}

/// Appends `text` as a JSON string literal, escaping what JSON requires and
/// the code points sockjs-protocol lists as unsafe in transit (control
/// characters, zero-width and line/paragraph separators, invisible operators,
/// specials, and everything outside the BMP as UTF-16 surrogate pairs), which
/// some browsers and proxies mangle.
// Hand-written: every message is escaped once per session it reaches, and
// serde_json does not escape the protocol's code points.
pub fn push_json_string(text: &str, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        let escape = match ch {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ if needs_unicode_escape(ch) => None,
            _ => continue,
        };
        out.push_str(&text[start..index]);
        start = index + ch.len_utf8();
        match escape {
            Some(escape) => out.push_str(escape),
            None => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push_str(&text[start..]);
    out.push('"');
}

fn needs_unicode_escape(ch: char) -> bool {
    matches!(ch,
        '\u{0000}'..='\u{001f}'
        | '\u{200c}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{2060}'..='\u{206f}'
        | '\u{fff0}'..='\u{ffff}'
    ) || ch as u32 > 0xffff
}

/// `a[...]` of messages already encoded as JSON string literals.
pub fn array_frame<'a>(messages: impl IntoIterator<Item = &'a str>, out: &mut String) {
    out.push_str("a[");
    for (index, message) in messages.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(message);
    }
    out.push(']');
}

/// Why a client's message could not be read; the texts are the protocol's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("Payload expected.")]
    Empty,
    #[error("Broken JSON encoding.")]
    BrokenJson,
}

/// The messages of a client frame: a JSON array of strings, or (over
/// WebSocket) one JSON string. Empty strings carry nothing and are dropped.
pub fn parse_messages(payload: &[u8]) -> Result<Vec<String>, MessageError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(MessageError::Empty);
    }
    let messages = match serde_json::from_slice::<Vec<String>>(payload) {
        Ok(messages) => messages,
        Err(_) => {
            vec![serde_json::from_slice::<String>(payload).map_err(|_| MessageError::BrokenJson)?]
        }
    };
    Ok(messages.into_iter().filter(|m| !m.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let mut out = String::new();
        push_json_string(text, &mut out);
        out
    }

    #[test]
    fn json_strings_escape_what_the_protocol_lists() {
        assert_eq!(
            json("MESSAGE\nk:v\n\n你好\0"),
            r#""MESSAGE\nk:v\n\n你好\u0000""#
        );
        assert_eq!(json("\"\\\t\r"), r#""\"\\\t\r""#);
        assert_eq!(
            json("a\u{200c}b\u{2028}\u{2060}\u{fff0}\u{ffff}"),
            r#""a\u200cb\u2028\u2060\ufff0\uffff""#
        );
        // Outside the BMP: a surrogate pair, as JavaScript reads it.
        assert_eq!(json("😀"), r#""\ud83d\ude00""#);
        // Printable text, Chinese included, goes as it is.
        assert_eq!(json("价格 é ü"), "\"价格 é ü\"");
    }

    #[test]
    fn escaped_strings_read_back_as_the_original() {
        let text = "x\u{0}\u{1f}\u{200d}\u{2029}\u{206f}\u{fffe}😀\"\\/z";
        let back: String = serde_json::from_str(&json(text)).unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn frames() {
        let mut out = String::new();
        array_frame([json("a").as_str(), json("b\n").as_str()], &mut out);
        assert_eq!(out, r#"a["a","b\n"]"#);
        assert_eq!(GO_AWAY.encode(), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            ANOTHER_CONNECTION.encode(),
            r#"c[2010,"Another connection still open"]"#
        );
    }

    #[test]
    fn client_messages() {
        assert_eq!(
            parse_messages(br#"["a","","b"]"#),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_messages(br#""one""#), Ok(vec!["one".into()]));
        assert_eq!(parse_messages(b"[]"), Ok(vec![]));
        assert_eq!(parse_messages(b""), Err(MessageError::Empty));
        assert_eq!(parse_messages(b"  "), Err(MessageError::Empty));
        assert_eq!(parse_messages(br#"["x""#), Err(MessageError::BrokenJson));
        assert_eq!(parse_messages(br#"[1]"#), Err(MessageError::BrokenJson));
        assert_eq!(parse_messages(br#"{"a":1}"#), Err(MessageError::BrokenJson));
        // A lone surrogate is not a string.
        assert_eq!(
            parse_messages(br#"["\ud800"]"#),
            Err(MessageError::BrokenJson)
        );
    }
}

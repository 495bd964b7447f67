//! The JSON the broker and the user's application exchange (docs/proxy.md):
//! one request shape for every call, one answer shape, bodies as text or base64.

// An answer may not set what routes, numbers or frames a message.
use crate::broker::BROKER_HEADERS;
use crate::stomp::Headers;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What one call tells the application. Fields that do not apply to a call are left out.
#[derive(Debug, Default, Serialize)]
pub struct Request<'a> {
    pub call: &'static str,
    pub session: &'a str,
    pub transport: Option<&'a str>,
    pub remote: Option<String>,
    pub user: Option<&'a str>,
    /// CONNECT only: a name the client claimed but nothing proved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_user: Option<&'a str>,
    pub roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a serde_json::Value>,
    /// CONNECT only; `Some(None)` is sent as `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passcode: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<BTreeMap<&'a str, &'a str>>,
    pub headers: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vars: Option<&'a HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

impl<'a> Request<'a> {
    /// The frame's headers, first value of a repeated name, without `skip`.
    pub fn frame_headers(headers: &'a Headers, skip: &[&str]) -> BTreeMap<&'a str, &'a str> {
        let mut map = BTreeMap::new();
        for (name, value) in headers.iter() {
            if !skip.contains(&name) {
                map.entry(name).or_insert(value);
            }
        }
        map
    }

    /// Carries `body` as text when it is UTF-8, else as base64.
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        match std::str::from_utf8(body) {
            Ok(text) => self.body = Some(text),
            Err(_) => self.body_base64 = Some(BASE64.encode(body)),
        }
        self
    }

    pub fn to_json(&self) -> Result<Bytes, serde_json::Error> {
        serde_json::to_vec(self).map(Bytes::from)
    }
}

/// A message the application hands back: a new body, its type, headers to set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    pub body: Option<Bytes>,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// Where a reply of a `message` call goes.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyTarget {
    /// Published to the destination, as `@SendTo`.
    Destination,
    /// Every session of this user, as `convertAndSendToUser`.
    User(String),
    /// The sending session only, as `@SendToUser(broadcast = false)`.
    Sender,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub destination: String,
    pub target: ReplyTarget,
    pub content: Content,
}

/// The application's answer, checked and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub allow: bool,
    pub code: Option<String>,
    pub message: Option<String>,
    pub user: Option<String>,
    pub roles: Option<Vec<String>>,
    pub data: Option<serde_json::Value>,
    /// publish: the rewritten message; subscribe: the initial message.
    pub content: Content,
    pub replies: Vec<Reply>,
}

impl Default for Answer {
    fn default() -> Self {
        Answer {
            allow: true,
            code: None,
            message: None,
            user: None,
            roles: None,
            data: None,
            content: Content::default(),
            replies: Vec::new(),
        }
    }
}

/// The text a refused client reads when the application gave none.
pub const REFUSED: &str = "refused by the application";

impl Answer {
    /// Parses an answer body; an empty body is `{}`. The error says what is wrong.
    pub fn parse(body: &[u8]) -> Result<Answer, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Answer::default());
        }
        let raw: RawAnswer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let content = raw.content.decode()?;
        let replies = raw
            .replies
            .into_iter()
            .map(RawReply::decode)
            .collect::<Result<_, _>>()?;
        Ok(Answer {
            allow: raw.allow.unwrap_or(true),
            code: raw.code,
            message: raw.message,
            user: raw.user.filter(|user| !user.is_empty()),
            roles: raw.roles,
            data: raw.data,
            content,
            replies,
        })
    }

    /// What the client reads when the application refused.
    pub fn refusal(&self) -> &str {
        self.message
            .as_deref()
            .filter(|message| !message.is_empty())
            .unwrap_or(REFUSED)
    }
}

#[derive(Debug, Default, Deserialize)]
struct RawContent {
    body: Option<String>,
    body_base64: Option<String>,
    content_type: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl RawContent {
    fn decode(self) -> Result<Content, String> {
        let body = match (self.body, self.body_base64) {
            (Some(_), Some(_)) => return Err("both body and body_base64 are set".into()),
            (Some(text), None) => Some(Bytes::from(text)),
            (None, Some(encoded)) => Some(Bytes::from(
                BASE64
                    .decode(encoded.as_bytes())
                    .map_err(|e| format!("body_base64 is not base64: {e}"))?,
            )),
            (None, None) => None,
        };
        if let Some(name) = self
            .headers
            .keys()
            .find(|name| BROKER_HEADERS.contains(&name.as_str()))
        {
            return Err(format!("header {name:?} is the broker's to set"));
        }
        Ok(Content {
            body,
            content_type: self.content_type,
            headers: self.headers.into_iter().collect(),
        })
    }
}

#[derive(Debug, Deserialize)]
struct RawAnswer {
    allow: Option<bool>,
    code: Option<String>,
    message: Option<String>,
    user: Option<String>,
    roles: Option<Vec<String>>,
    data: Option<serde_json::Value>,
    #[serde(flatten)]
    content: RawContent,
    #[serde(default)]
    replies: Vec<RawReply>,
}

#[derive(Debug, Deserialize)]
struct RawReply {
    destination: String,
    user: Option<String>,
    #[serde(default)]
    sender: bool,
    #[serde(flatten)]
    content: RawContent,
}

impl RawReply {
    fn decode(self) -> Result<Reply, String> {
        let target = match (self.user, self.sender) {
            (Some(_), true) => {
                return Err(format!(
                    "the reply to {:?} names both user and sender",
                    self.destination
                ));
            }
            (Some(user), false) => ReplyTarget::User(user),
            (None, true) => ReplyTarget::Sender,
            (None, false) => ReplyTarget::Destination,
        };
        Ok(Reply {
            destination: self.destination,
            target,
            content: self.content.decode()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_answer_allows() {
        assert_eq!(Answer::parse(b"").unwrap(), Answer::default());
        assert_eq!(Answer::parse(b" \n").unwrap(), Answer::default());
        assert!(Answer::parse(b"{}").unwrap().allow);
    }

    #[test]
    fn answers_decode_bodies_and_replies() {
        let answer = Answer::parse(
            br#"{"allow": false, "code": "banned", "message": "no",
                 "body_base64": "AAE=", "headers": {"x": "y"},
                 "replies": [{"destination": "/topic/a", "body": "hi"},
                             {"destination": "/queue/b", "user": "bob"},
                             {"destination": "/queue/c", "sender": true}],
                 "extra": 1}"#,
        )
        .unwrap();
        assert!(!answer.allow);
        assert_eq!(answer.refusal(), "no");
        assert_eq!(answer.content.body.as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(answer.content.headers, vec![("x".into(), "y".into())]);
        assert_eq!(answer.replies.len(), 3);
        assert_eq!(answer.replies[1].target, ReplyTarget::User("bob".into()));
        assert_eq!(answer.replies[2].target, ReplyTarget::Sender);
    }

    #[test]
    fn garbage_is_an_error_that_says_why() {
        for (body, why) in [
            (&b"this is not json"[..], "expected"),
            (br#"{"allow": "yes"}"#, "invalid type"),
            (br#"{"body": "a", "body_base64": "YQ=="}"#, "both"),
            (br#"{"body_base64": "***"}"#, "base64"),
            (
                br#"{"replies": [{"destination": "/q", "user": "u", "sender": true}]}"#,
                "both user and sender",
            ),
            (br#"[1, 2]"#, "invalid type"),
            (
                br#"{"headers": {"destination": "/topic/x"}}"#,
                "the broker's to set",
            ),
            (
                br#"{"replies": [{"destination": "/topic/a", "headers": {"receipt": "r"}}]}"#,
                "the broker's to set",
            ),
        ] {
            let error = Answer::parse(body).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn requests_carry_text_or_base64_and_skip_what_does_not_apply() {
        let mut headers = Headers::new();
        headers.push("destination", "/topic/a");
        headers.push("destination", "/topic/b");
        headers.push("passcode", "secret");
        let request = Request {
            call: "publish",
            session: "0000002a",
            headers: Request::frame_headers(&headers, &["passcode"]),
            ..Request::default()
        }
        .with_body(&[0xff, 0x00]);
        let json: serde_json::Value = serde_json::from_slice(&request.to_json().unwrap()).unwrap();
        assert_eq!(
            json["headers"],
            serde_json::json!({"destination": "/topic/a"})
        );
        assert_eq!(json["body_base64"], "/wA=");
        assert!(json.get("body").is_none() && json.get("login").is_none());
        let text = Request::default().with_body(b"hello");
        assert_eq!(text.body, Some("hello"));
    }
}

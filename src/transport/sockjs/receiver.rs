//! The HTTP transports that carry frames to the client: `xhr` and `jsonp`
//! polling, `xhr_streaming`, `eventsource` and `htmlfile` streaming. Each is
//! a content type, a prelude, and a way to wrap one frame; a response body
//! is one receiving request of a session.

use super::frame::{self, CloseFrame};
use super::session::{Event, Receiving};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use std::convert::Infallible;
use std::time::Duration;

/// The transports that receive, with the callback the script ones call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Xhr,
    XhrStreaming,
    EventSource,
    HtmlFile { callback: String },
    Jsonp { callback: String },
}

impl Kind {
    /// The name in the URL and in `/api/sessions`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Xhr => "xhr",
            Kind::XhrStreaming => "xhr_streaming",
            Kind::EventSource => "eventsource",
            Kind::HtmlFile { .. } => "htmlfile",
            Kind::Jsonp { .. } => "jsonp",
        }
    }

    /// Polling ends the response after one frame; streaming keeps it open.
    fn is_streaming(&self) -> bool {
        matches!(
            self,
            Kind::XhrStreaming | Kind::EventSource | Kind::HtmlFile { .. }
        )
    }

    fn content_type(&self) -> &'static str {
        match self {
            Kind::Xhr | Kind::XhrStreaming | Kind::Jsonp { .. } => {
                "application/javascript;charset=UTF-8"
            }
            Kind::EventSource => "text/event-stream;charset=UTF-8",
            Kind::HtmlFile { .. } => "text/html;charset=UTF-8",
        }
    }

    /// What a response starts with. Browsers (and proxies) hold back a
    /// response's first bytes until enough have come: the preludes push
    /// streaming responses past that.
    fn prelude(&self) -> String {
        match self {
            Kind::XhrStreaming => {
                let mut prelude = "h".repeat(2048);
                prelude.push('\n');
                prelude
            }
            Kind::EventSource => "\r\n".into(),
            Kind::HtmlFile { callback } => htmlfile_prelude(callback),
            Kind::Xhr | Kind::Jsonp { .. } => String::new(),
        }
    }

    fn wrap(&self, frame: &str, out: &mut String) {
        match self {
            Kind::Xhr | Kind::XhrStreaming => {
                out.push_str(frame);
                out.push('\n');
            }
            Kind::EventSource => {
                // sockjs-client percent-decodes event data: a `%` must stay one.
                out.push_str("data: ");
                out.push_str(&frame.replace('%', "%25"));
                out.push_str("\r\n\r\n");
            }
            Kind::HtmlFile { .. } => {
                // A `</script>` in a message must not end the page's script.
                let mut literal = String::new();
                frame::push_json_string(frame, &mut literal);
                out.push_str("<script>\np(");
                out.push_str(&literal.replace("</", "<\\/"));
                out.push_str(");\n</script>\r\n");
            }
            Kind::Jsonp { callback } => {
                out.push_str(callback);
                out.push('(');
                frame::push_json_string(frame, out);
                out.push_str(");\r\n");
            }
        }
    }
}

/// The page the `htmlfile` transport loads in a hidden iframe: it hands each
/// frame to the parent's callback, padded so that old browsers start
/// running scripts before the response ends.
fn htmlfile_prelude(callback: &str) -> String {
    let mut page = format!(
        "<!doctype html>\n<html><head>\n\
         <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n\
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
         </head><body><h2>stomphub SockJS htmlfile stream</h2>\n\
         <script>\n  document.domain = document.domain;\n  var c = parent.{callback};\n  c.start();\n  \
         function p(d) {{c.message(d);}};\n  window.onload = function() {{c.stop();}};\n</script>\n"
    );
    while page.len() < 1024 {
        page.push(' ');
    }
    page.push_str("\r\n\r\n");
    page
}

/// A callback name is written into a script: letters, digits, `_`, `.` and `-` only.
pub fn valid_callback(callback: &str) -> bool {
    !callback.is_empty()
        && callback.len() <= 256
        && callback
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The response of a receiving request: frames as the session produces
/// them, until one frame (polling), the byte limit (streaming), or the close.
pub fn stream(
    kind: Kind,
    receiving: Receiving,
    heartbeat: Duration,
    bytes_limit: usize,
) -> Response {
    let content_type = kind.content_type();
    let state = Streaming {
        prelude: Some(kind.prelude()),
        kind,
        receiving: Some(receiving),
        heartbeat,
        bytes_limit,
        sent: 0,
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        let chunk = state.next_chunk().await?;
        Some((Ok::<_, Infallible>(Bytes::from(chunk)), state))
    });
    respond(content_type, Body::from_stream(body))
}

/// The one-frame answer to a request that may not receive: after the
/// prelude, in its own chunk as on any stream.
pub fn refuse(kind: &Kind, closed: CloseFrame) -> Response {
    let mut frame = String::new();
    kind.wrap(&closed.encode(), &mut frame);
    let chunks = [kind.prelude(), frame]
        .into_iter()
        .filter(|chunk| !chunk.is_empty())
        .map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk)));
    respond(
        kind.content_type(),
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
}

fn respond(content_type: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    super::http::no_cache(headers);
    // nginx buffers responses unless told otherwise; a stream must flow.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct Streaming {
    kind: Kind,
    prelude: Option<String>,
    /// Dropped when the response has said everything, letting the next request receive.
    receiving: Option<Receiving>,
    heartbeat: Duration,
    bytes_limit: usize,
    sent: usize,
}

impl Streaming {
    async fn next_chunk(&mut self) -> Option<String> {
        let receiving = self.receiving.as_ref()?;
        // The prelude goes out at once, as its own chunk: it is what makes
        // the browser start handing the stream over.
        if let Some(prelude) = self.prelude.take().filter(|prelude| !prelude.is_empty()) {
            return Some(prelude);
        }
        let event = receiving.next(self.heartbeat).await;
        let mut out = String::new();
        let last = match &event {
            Event::Open => {
                self.kind.wrap(frame::OPEN, &mut out);
                false
            }
            Event::Heartbeat => {
                self.kind.wrap(frame::HEARTBEAT, &mut out);
                false
            }
            Event::Messages(frame) => {
                self.kind.wrap(frame, &mut out);
                false
            }
            Event::Closed(closed) => {
                self.kind.wrap(&closed.encode(), &mut out);
                true
            }
        };
        self.sent += out.len();
        if (last || !self.kind.is_streaming() || self.sent >= self.bytes_limit)
            && let Some(receiving) = self.receiving.take()
        {
            receiving.finish();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_names() {
        assert!(valid_callback("cb"));
        assert!(valid_callback("_jp.a1b2c3.callback_0"));
        assert!(!valid_callback(""));
        assert!(!valid_callback("alert(1)"));
        assert!(!valid_callback("a b"));
        assert!(valid_callback("a-b"));
        assert!(!valid_callback("x;y"));
        assert!(!valid_callback(&"a".repeat(257)));
    }

    #[test]
    fn each_transport_wraps_a_frame_its_way() {
        let wrap = |kind: Kind| {
            let mut out = String::new();
            kind.wrap(r#"a["x\n"]"#, &mut out);
            out
        };
        assert_eq!(wrap(Kind::Xhr), "a[\"x\\n\"]\n");
        assert_eq!(wrap(Kind::XhrStreaming), "a[\"x\\n\"]\n");
        assert_eq!(wrap(Kind::EventSource), "data: a[\"x\\n\"]\r\n\r\n");
        let mut out = String::new();
        Kind::EventSource.wrap(r#"a["100%"]"#, &mut out);
        assert_eq!(out, "data: a[\"100%25\"]\r\n\r\n");
        let mut out = String::new();
        Kind::HtmlFile {
            callback: "cb".into(),
        }
        .wrap(r#"a["</script>"]"#, &mut out);
        assert!(
            out.contains(r#"<\/script>"#) && out.matches("</script>").count() == 1,
            "{out}"
        );
        assert_eq!(
            wrap(Kind::Jsonp {
                callback: "cb".into()
            }),
            "cb(\"a[\\\"x\\\\n\\\"]\");\r\n"
        );
        assert_eq!(
            wrap(Kind::HtmlFile {
                callback: "cb".into()
            }),
            "<script>\np(\"a[\\\"x\\\\n\\\"]\");\n</script>\r\n"
        );
    }

    #[test]
    fn preludes() {
        let prelude = Kind::XhrStreaming.prelude();
        assert_eq!(prelude.len(), 2049);
        assert!(prelude.ends_with("h\n"));
        assert_eq!(Kind::EventSource.prelude(), "\r\n");
        let page = Kind::HtmlFile {
            callback: "parent_cb".into(),
        }
        .prelude();
        assert!(page.len() >= 1024 + 4);
        assert!(page.contains("var c = parent.parent_cb;"));
        assert!(page.ends_with("\r\n\r\n"));
    }
}

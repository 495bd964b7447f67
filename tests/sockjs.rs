//! SockJS on the STOMP endpoint, byte for byte: the parts of sockjs-protocol
//! that sockjs-client does not show (framing, escaping, streaming limits,
//! second receivers, aborted requests, shutdown), over real loopback sockets.
//! tests/node/sockjs*.test.js drive the real sockjs-client.

mod common {
    pub mod http;
    pub mod server;
}

use common::http::{get, request};
use common::server::TestServer;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const BASE: &str = "/endpoint-websocket";
const CONNECT: &str = r#"["CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\u0000"]"#;

/// An HTTP response read as it arrives (chunk-size lines included: each
/// SockJS write is one chunk, so a frame is never split by them).
struct Streamed {
    stream: TcpStream,
    received: String,
}

impl Streamed {
    async fn open(addr: SocketAddr, method: &str, path: &str, body: &str) -> Streamed {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let text = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(text.as_bytes()).await.expect("write");
        Streamed {
            stream,
            received: String::new(),
        }
    }

    /// Reads until `needle` has arrived; panics after 10 s or at the end.
    async fn until(&mut self, needle: &str) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.received.contains(needle) {
            let mut buf = [0u8; 65536];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} within 10 s; got {:?}", self.received))
                .expect("read");
            assert!(read > 0, "ended before {needle:?}; got {:?}", self.received);
            self.received
                .push_str(&String::from_utf8_lossy(&buf[..read]));
        }
        &self.received
    }

    /// Reads to the end of the response.
    async fn until_end(&mut self) -> &str {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest))
            .await
            .expect("the response ends")
            .expect("read");
        self.received.push_str(&String::from_utf8_lossy(&rest));
        &self.received
    }
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> common::http::HttpResponse {
    request(addr, "POST", path, &[("Content-Type", "text/plain")], body).await
}

/// Opens an xhr-polling session and CONNECTs it; returns the CONNECTED poll's body.
async fn connect_polling(addr: SocketAddr, session: &str) -> String {
    let open = post(addr, &format!("{BASE}/000/{session}/xhr"), "").await;
    assert!(open.body.contains("o\n"), "{open:?}");
    let sent = post(addr, &format!("{BASE}/000/{session}/xhr_send"), CONNECT).await;
    assert_eq!(sent.status, 204, "{sent:?}");
    post(addr, &format!("{BASE}/000/{session}/xhr"), "")
        .await
        .body
}

/// CONNECTs an open session and SUBSCRIBEs it to `destination` through `xhr_send`.
async fn connect_and_subscribe(addr: SocketAddr, session: &str, destination: &str) {
    let send = format!("{BASE}/000/{session}/xhr_send");
    assert_eq!(post(addr, &send, CONNECT).await.status, 204);
    let subscribe = format!(r#"["SUBSCRIBE\nid:0\ndestination:{destination}\n\n\u0000"]"#);
    assert_eq!(post(addr, &send, &subscribe).await.status, 204);
}

#[tokio::test]
async fn greeting_info_and_iframe() {
    let server = TestServer::start().await;
    let greeting = get(server.addr, &format!("{BASE}/")).await;
    assert_eq!(greeting.body, "Welcome to SockJS!\n");
    assert_eq!(get(server.addr, BASE).await.body, "Welcome to SockJS!\n");

    let info = get(server.addr, &format!("{BASE}/info?t=1")).await;
    assert_eq!(info.status, 200);
    let json = info.json();
    assert_eq!(json["websocket"], true);
    assert_eq!(json["cookie_needed"], false);
    assert_eq!(json["origins"], serde_json::json!(["*:*"]));
    assert!(json["entropy"].is_u64());
    assert!(
        info.headers
            .to_lowercase()
            .contains("cache-control: no-store")
    );

    let iframe = get(server.addr, &format!("{BASE}/iframe-1.6.1.html")).await;
    assert_eq!(iframe.status, 200);
    assert!(
        iframe
            .body
            .contains(r#"<script src="/node_modules/sockjs-client/dist/sockjs.min.js"></script>"#)
    );
    let etag = iframe
        .headers
        .lines()
        .find_map(|line| line.strip_prefix("etag: "))
        .expect("an ETag")
        .to_owned();
    let cached = request(
        server.addr,
        "GET",
        &format!("{BASE}/iframe.html"),
        &[("If-None-Match", &etag)],
        "",
    )
    .await;
    assert_eq!(cached.status, 304);
    assert_eq!(
        get(server.addr, &format!("{BASE}/iframe.htm")).await.status,
        404
    );
}

#[tokio::test]
async fn session_urls_need_ids_without_dots_and_known_sessions() {
    let server = TestServer::start().await;
    for path in [
        "/a./a/xhr",
        "/a/a./xhr",
        "/././xhr",
        "//a/xhr",
        "///xhr",
        "//xhr",
        "/a/xhr",
        "/a/a/a/xhr",
        "/a/a/nonsense",
    ] {
        for method in ["GET", "POST"] {
            let response = request(server.addr, method, &format!("{BASE}{path}"), &[], "").await;
            assert_eq!(response.status, 404, "{method} {path}: {response:?}");
        }
    }
    let unknown = post(
        server.addr,
        &format!("{BASE}/000/never/xhr_send"),
        r#"["x"]"#,
    )
    .await;
    assert_eq!(unknown.status, 404);
    // A sending request never opens a session.
    let again = post(
        server.addr,
        &format!("{BASE}/000/never/xhr_send"),
        r#"["x"]"#,
    )
    .await;
    assert_eq!(again.status, 404);
    let wrong_method = get(server.addr, &format!("{BASE}/000/s/xhr")).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn sends_that_are_not_json_arrays_of_strings_get_500_and_the_session_goes_on() {
    let server = TestServer::start().await;
    let connected = connect_polling(server.addr, "bad1").await;
    assert!(connected.contains("CONNECTED"), "{connected}");
    let send = format!("{BASE}/000/bad1/xhr_send");
    for (body, message) in [
        ("", "Payload expected."),
        (r#"["x"#, "Broken JSON encoding."),
        (r#"{"a":1}"#, "Broken JSON encoding."),
        ("[1,2]", "Broken JSON encoding."),
    ] {
        let response = post(server.addr, &send, body).await;
        assert_eq!(response.status, 500, "{body}: {response:?}");
        assert_eq!(response.body, message);
    }
    let subscribe = r#"["SUBSCRIBE\nid:0\ndestination:/topic/t\nreceipt:r\n\n\u0000"]"#;
    assert_eq!(post(server.addr, &send, subscribe).await.status, 204);
    let poll = post(server.addr, &format!("{BASE}/000/bad1/xhr"), "").await;
    assert!(poll.body.contains("RECEIPT"), "{poll:?}");
}

#[tokio::test]
async fn messages_are_escaped_as_the_protocol_lists() {
    let server = TestServer::start().await;
    connect_polling(server.addr, "esc").await;
    let subscribe = r#"["SUBSCRIBE\nid:0\ndestination:/topic/esc\nreceipt:r\n\n\u0000"]"#;
    post(server.addr, &format!("{BASE}/000/esc/xhr_send"), subscribe).await;
    post(server.addr, &format!("{BASE}/000/esc/xhr"), "").await;
    // The client's JSON escapes are read; the server writes its own.
    let publish =
        r#"["SEND\ndestination:/topic/esc\n\n价格\u2028\u200c\ufff0\ud83d\ude00\u0001\u0000"]"#;
    post(server.addr, &format!("{BASE}/000/esc/xhr_send"), publish).await;
    let poll = post(server.addr, &format!("{BASE}/000/esc/xhr"), "").await;
    assert!(
        poll.body
            .contains(r#"价格\u2028\u200c\ufff0\ud83d\ude00\u0001\u0000"]"#),
        "{}",
        poll.body
    );
}

#[tokio::test]
async fn a_second_receiver_gets_2010_and_the_first_keeps_streaming() {
    let server = TestServer::start().await;
    let path = format!("{BASE}/000/two/xhr_streaming");
    let mut first = Streamed::open(server.addr, "POST", &path, "").await;
    let prelude = format!("{}\n", "h".repeat(2048));
    first.until(&prelude).await;
    first.until("o\n").await;
    let mut second = Streamed::open(server.addr, "POST", &path, "").await;
    let refused = second.until_end().await;
    assert!(refused.contains(&prelude));
    assert!(
        refused.contains("c[2010,\"Another connection still open\"]\n"),
        "{refused}"
    );
    post(server.addr, &format!("{BASE}/000/two/xhr_send"), CONNECT).await;
    first.until("CONNECTED").await;
}

#[tokio::test]
async fn a_streaming_response_ends_at_the_byte_limit_and_the_next_one_goes_on() {
    let server = TestServer::start_with(|config| config.sockjs.stream_bytes_limit = 4096).await;
    let path = format!("{BASE}/000/lim/xhr_streaming");
    let mut stream = Streamed::open(server.addr, "POST", &path, "").await;
    stream.until("o\n").await;
    connect_and_subscribe(server.addr, "lim", "/topic/lim").await;
    stream.until("CONNECTED").await;
    for n in 0..40 {
        server
            .template
            .convert_and_send("/topic/lim", &format!("message {n:02} {}", "x".repeat(100)))
            .expect("published");
    }
    // Over 4096 bytes of frames: the response ends; the next one carries on.
    let ended = stream.until_end().await.to_owned();
    assert!(ended.ends_with("0\r\n\r\n"), "a complete chunked response");
    let mut next = Streamed::open(server.addr, "POST", &path, "").await;
    // The prelude comes at once, before anything else is said.
    next.until(&format!("{}\n", "h".repeat(2048))).await;
    server
        .template
        .convert_and_send("/topic/lim", "after the limit")
        .expect("published");
    next.until("after the limit").await;
    let both = format!("{ended}{}", next.received);
    for n in 0..40 {
        assert_eq!(
            both.matches(&format!("message {n:02} ")).count(),
            1,
            "message {n}"
        );
    }
}

#[tokio::test]
async fn eventsource_keeps_percent_signs_and_htmlfile_keeps_its_script() {
    let server = TestServer::start().await;
    let mut events = Streamed::open(
        server.addr,
        "GET",
        &format!("{BASE}/000/ev/eventsource"),
        "",
    )
    .await;
    events.until("data: o\r\n\r\n").await;
    connect_and_subscribe(server.addr, "ev", "/topic/ev").await;
    events.until("CONNECTED").await;
    server
        .template
        .convert_and_send("/topic/ev", "%61bc 100%")
        .expect("published");
    // sockjs-client percent-decodes event data.
    events.until("%2561bc 100%25").await;

    let mut page = Streamed::open(
        server.addr,
        "GET",
        &format!("{BASE}/000/hf/htmlfile?c=_jp.abc"),
        "",
    )
    .await;
    page.until("var c = parent._jp.abc;").await;
    page.until("<script>\np(\"o\");\n</script>\r\n").await;
    connect_and_subscribe(server.addr, "hf", "/topic/hf").await;
    page.until("CONNECTED").await;
    server
        .template
        .convert_and_send("/topic/hf", "</script><b>")
        .expect("published");
    let received = page.until("<b>").await;
    assert!(received.contains(r"<\/script><b>"), "{received}");

    let missing = get(server.addr, &format!("{BASE}/000/j/jsonp")).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (500, "\"callback\" parameter required")
    );
    let invalid = get(server.addr, &format!("{BASE}/000/j/jsonp?c=alert(1)")).await;
    assert_eq!(
        (invalid.status, invalid.body.as_str()),
        (500, "invalid \"callback\" parameter")
    );
    let opened = get(server.addr, &format!("{BASE}/000/j/jsonp?c=cb")).await;
    assert!(opened.body.contains("cb(\"o\");\r\n"), "{opened:?}");
    let form = request(
        server.addr,
        "POST",
        &format!("{BASE}/000/j/jsonp_send"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("d={}", urlencode(CONNECT)),
    )
    .await;
    assert_eq!((form.status, form.body.as_str()), (200, "ok"));
    let connected = get(server.addr, &format!("{BASE}/000/j/jsonp?c=cb")).await;
    assert!(connected.body.contains("CONNECTED"), "{connected:?}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn an_aborted_receiver_ends_the_session_with_1002() {
    let server = TestServer::start().await;
    let path = format!("{BASE}/000/ab/xhr_streaming");
    let mut stream = Streamed::open(server.addr, "POST", &path, "").await;
    stream.until("o\n").await;
    drop(stream);
    // The server notices the aborted request when it next writes to it or
    // reads its end; poll until it has.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = post(server.addr, &format!("{BASE}/000/ab/xhr"), "").await;
        if next.body.contains("c[1002,\"Connection interrupted\"]") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the aborted session lives on: {next:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_oversized_send_is_refused_and_ends_the_session_with_1009() {
    let server = TestServer::start_with(|config| {
        config.limits.max_frame_size = 4096;
        config.limits.max_body_size = 4096;
        config.limits.max_header_line = 1024;
        config.limits.outbound_queue_bytes = 4096;
    })
    .await;
    connect_polling(server.addr, "big").await;
    let frame = format!(
        r"SEND\ndestination:/topic/big\n\n{}\u0000",
        "x".repeat(6000)
    );
    let response = post(
        server.addr,
        &format!("{BASE}/000/big/xhr_send"),
        &format!("[\"{frame}\"]"),
    )
    .await;
    assert_eq!(response.status, 413, "{response:?}");
    assert!(
        response.body.contains("limits.max_frame_size"),
        "{response:?}"
    );
    let error = post(server.addr, &format!("{BASE}/000/big/xhr"), "").await;
    assert!(
        error.body.contains("ERROR") && error.body.contains("limits.max_frame_size"),
        "{error:?}"
    );
    let closed = post(server.addr, &format!("{BASE}/000/big/xhr"), "").await;
    assert!(
        closed.body.contains("c[1009,\"message too large\"]"),
        "{closed:?}"
    );
    // A body over what a send may carry is refused the same way, unread.
    connect_polling(server.addr, "huge").await;
    let body = format!(r#"["{}"]"#, "x".repeat(1_200_000));
    let response = post(server.addr, &format!("{BASE}/000/huge/xhr_send"), &body).await;
    assert_eq!(response.status, 413, "{}", response.body);
    assert!(
        response.body.contains("limits.max_frame_size"),
        "{}",
        response.body
    );
}

#[tokio::test]
async fn shutdown_tells_receivers_to_go_away() {
    let server = TestServer::start().await;
    let mut stream = Streamed::open(
        server.addr,
        "POST",
        &format!("{BASE}/000/bye/xhr_streaming"),
        "",
    )
    .await;
    stream.until("o\n").await;
    post(server.addr, &format!("{BASE}/000/bye/xhr_send"), CONNECT).await;
    stream.until("CONNECTED").await;
    server.handle.shutdown();
    stream.until("c[3000,\"Go away!\"]\n").await;
    stream.until_end().await;
}

#[tokio::test]
async fn the_websocket_transport_frames_stomp_and_answers_broken_framing_with_1007() {
    let server = TestServer::start_with(|config| config.sockjs.heartbeat_ms = 200).await;
    let url = format!("ws://{}{BASE}/000/ws1/websocket", server.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    assert_eq!(read_text(&mut socket).await, "o");
    socket.send(Message::text(CONNECT)).await.expect("send");
    let mut texts = Vec::new();
    while !texts.iter().any(|t: &String| t.contains("CONNECTED")) {
        texts.push(read_text(&mut socket).await);
    }
    // Idle with STOMP heart-beats off: SockJS `h` frames keep it alive.
    assert_eq!(read_text(&mut socket).await, "h");
    socket
        .send(Message::text("[\"unterminated"))
        .await
        .expect("send");
    let mut rest = Vec::new();
    loop {
        let text = read_text(&mut socket).await;
        let done = text.starts_with("close");
        rest.push(text);
        if done {
            break;
        }
    }
    let rest = rest.join("\n");
    assert!(
        rest.contains("ERROR") && rest.contains("malformed"),
        "{rest}"
    );
    assert!(rest.contains("c[1007,\"malformed message\"]"), "{rest}");
    assert!(
        rest.contains("close Some(CloseFrame { code: Invalid"),
        "{rest}"
    );
}

async fn read_text(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
        {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Close(frame))) => return format!("close {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn turned_off_it_leaves_plain_stomp_over_websocket() {
    let server = TestServer::start_with(|config| config.sockjs.enabled = false).await;
    assert_eq!(get(server.addr, &format!("{BASE}/info")).await.status, 404);
    let (_socket, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .expect("plain STOMP WebSocket");
    let server = TestServer::start_with(|config| config.sockjs.websocket = false).await;
    assert_eq!(
        get(server.addr, &format!("{BASE}/info")).await.json()["websocket"],
        false
    );
    let url = format!("ws://{}{BASE}/000/x/websocket", server.addr);
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
}

#[tokio::test]
async fn origins_are_checked_on_every_request_and_allowed_ones_get_cors_with_credentials() {
    let server = TestServer::start_with(|config| {
        config.server.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let path = format!("{BASE}/000/orig/xhr");
    let foreign = request(
        server.addr,
        "POST",
        &path,
        &[("Origin", "https://evil.example")],
        "",
    )
    .await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    let allowed = request(
        server.addr,
        "POST",
        &path,
        &[("Origin", "https://app.example")],
        "",
    )
    .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let headers = allowed.headers.to_lowercase();
    assert!(
        headers.contains("access-control-allow-origin: https://app.example"),
        "{headers}"
    );
    assert!(
        headers.contains("access-control-allow-credentials: true"),
        "{headers}"
    );
    // The session exists now; a foreign page may not send into it.
    let send = format!("{BASE}/000/orig/xhr_send");
    let foreign = request(
        server.addr,
        "POST",
        &send,
        &[("Origin", "https://evil.example")],
        CONNECT,
    )
    .await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    let foreign = request(
        server.addr,
        "POST",
        &path,
        &[("Origin", "https://evil.example")],
        "",
    )
    .await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
}

#[tokio::test]
async fn sessions_follow_max_connections_and_zero_means_no_cap() {
    let server = TestServer::start_with(|config| config.limits.max_connections = Some(0)).await;
    connect_polling(server.addr, "nocap").await;
    let server = TestServer::start_with(|config| config.limits.max_connections = Some(2)).await;
    for session in ["cap1", "cap2"] {
        let opened = post(server.addr, &format!("{BASE}/000/{session}/xhr"), "").await;
        assert_eq!(opened.body, "2\r\no\n\r\n0\r\n\r\n", "{opened:?}");
    }
    let refused = post(server.addr, &format!("{BASE}/000/cap3/xhr"), "").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.body.contains("limits.max_connections"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_session_answers_only_the_address_that_opened_it_and_each_address_has_a_cap() {
    let server = TestServer::start_with(|config| {
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        config.limits.max_connections_per_ip = 2;
    })
    .await;
    let from = |client: &'static str| [("X-Forwarded-For", client)];
    let open = format!("{BASE}/000/mine/xhr");
    let opened = request(server.addr, "POST", &open, &from("10.0.0.1"), "").await;
    assert!(opened.body.contains("o\n"), "{opened:?}");
    // Knowing the id is not enough: another address gets 404, for sends and polls.
    let send = format!("{BASE}/000/mine/xhr_send");
    let stranger = request(server.addr, "POST", &send, &from("10.0.0.2"), CONNECT).await;
    assert_eq!(stranger.status, 404, "{stranger:?}");
    let stranger = request(server.addr, "POST", &open, &from("10.0.0.2"), "").await;
    assert_eq!(stranger.status, 404, "{stranger:?}");
    let owner = request(server.addr, "POST", &send, &from("10.0.0.1"), CONNECT).await;
    assert_eq!(owner.status, 204, "{owner:?}");
    // Two sessions per address (limits.max_connections_per_ip), then 429 naming the key.
    let second = request(
        server.addr,
        "POST",
        &format!("{BASE}/000/mine2/xhr"),
        &from("10.0.0.1"),
        "",
    )
    .await;
    assert_eq!(second.status, 200, "{second:?}");
    let third = request(
        server.addr,
        "POST",
        &format!("{BASE}/000/mine3/xhr"),
        &from("10.0.0.1"),
        "",
    )
    .await;
    assert_eq!(third.status, 429, "{third:?}");
    assert!(
        third.body.contains("limits.max_connections_per_ip"),
        "{third:?}"
    );
    let elsewhere = request(
        server.addr,
        "POST",
        &format!("{BASE}/000/yours/xhr"),
        &from("10.0.0.3"),
        "",
    )
    .await;
    assert_eq!(elsewhere.status, 200, "{elsewhere:?}");
    // Session ids are short.
    let long = format!("{BASE}/000/{}/xhr", "a".repeat(65));
    assert_eq!(post(server.addr, &long, "").await.status, 404);
}

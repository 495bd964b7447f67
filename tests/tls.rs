//! `wss://` and `https://` served directly: a self-signed certificate made at
//! test time (rcgen), a real TLS client that trusts only it, STOMP over the
//! encrypted WebSocket, the HTTP API over https, and a plain-text client that
//! fails its handshake without disturbing anyone.

mod common {
    pub mod server;
    pub mod tls;
}

use common::server::TestServer;
use common::tls::{certificate, next_text};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use std::time::Duration;
use stomphub::config::TlsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

async fn tls_connect(
    server: &TestServer,
    trusted: &CertificateDer<'static>,
) -> TlsStream<TcpStream> {
    common::tls::connect(server.addr, trusted).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomp_runs_over_wss_and_the_api_over_https() {
    let certificate = certificate();
    let tls = certificate.config.clone();
    let server = TestServer::start_with(move |config| config.server.tls = Some(tls)).await;

    // A plain-text client on the TLS port fails its handshake and changes nothing.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /api/stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served on the TLS port"
    );

    let stream = tls_connect(&server, &certificate.der).await;
    let url = format!("wss://localhost:{}/endpoint-websocket", server.addr.port());
    let (mut ws, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text(
        "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0",
    ))
    .await
    .unwrap();
    assert!(next_text(&mut ws).await.starts_with("CONNECTED\n"));
    ws.send(Message::text(
        "SUBSCRIBE\nid:1\ndestination:/topic/secure\nreceipt:r\n\n\0",
    ))
    .await
    .unwrap();
    assert!(next_text(&mut ws).await.starts_with("RECEIPT\n"));
    ws.send(Message::text("SEND\ndestination:/topic/secure\n\n加密的\0"))
        .await
        .unwrap();
    let message = next_text(&mut ws).await;
    assert!(message.starts_with("MESSAGE\n"), "{message}");
    assert!(message.ends_with("\n\n加密的\0"), "{message}");

    let mut https = tls_connect(&server, &certificate.der).await;
    https
        .write_all(b"GET /api/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    https.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"connections\":1"), "{response}");
}

#[tokio::test]
async fn a_missing_or_mismatched_certificate_stops_the_start_with_the_key_named() {
    let mut config = common::server::default_config();
    config.server.tls = Some(TlsConfig {
        cert_file: "/nonexistent/cert.pem".into(),
        key_file: "/nonexistent/key.pem".into(),
    });
    let error = stomphub::Server::bind(config).await.err().unwrap();
    assert!(
        error.to_string().starts_with("server.tls.cert_file"),
        "{error}"
    );
    let first = certificate();
    let second = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_key = first.config.key_file.with_file_name("other-key.pem");
    std::fs::write(&other_key, second.signing_key.serialize_pem()).unwrap();
    let mut config = common::server::default_config();
    config.server.tls = Some(TlsConfig {
        cert_file: first.config.cert_file.clone(),
        key_file: other_key,
    });
    let error = stomphub::Server::bind(config).await.err().unwrap();
    assert!(error.to_string().contains("do not fit"), "{error}");
}

/// Over TLS too, a message over the limit gets its ERROR and close code 1009
/// while the client is still sending it (the connection lingers, no reset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_gets_its_error_and_1009_over_wss() {
    let certificate = certificate();
    let tls = certificate.config.clone();
    let server = TestServer::start_with(move |config| config.server.tls = Some(tls)).await;
    for _ in 0..5 {
        let stream = tls_connect(&server, &certificate.der).await;
        let url = format!("wss://localhost:{}/endpoint-websocket", server.addr.port());
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        ws.send(Message::text(
            "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0",
        ))
        .await
        .unwrap();
        assert!(next_text(&mut ws).await.starts_with("CONNECTED\n"));
        let mut frame = b"SEND\ndestination:/topic/secure\n\n".to_vec();
        frame.resize(frame.len() + 1024 * 1024, b'x');
        frame.push(0);
        ws.send(Message::binary(frame))
            .await
            .expect("the server reads the rest of the refused message");
        let error = next_text(&mut ws).await;
        assert!(error.starts_with("ERROR\n"), "{error}");
        assert!(error.contains("limits.max_frame_size"), "{error}");
        let close = loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(close)))) => break close,
                Ok(Some(Ok(_))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        let close = close.expect("a close code");
        assert_eq!(u16::from(close.code), 1009);
    }
}

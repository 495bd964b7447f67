//! A self-signed certificate for `localhost` made at test time (rcgen), and a
//! TLS client that trusts only it.

use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use stomphub::config::TlsConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub struct Certificate {
    pub der: CertificateDer<'static>,
    pub config: TlsConfig,
}

/// A fresh self-signed certificate for `localhost`, written to a temporary directory.
pub fn certificate() -> Certificate {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    // One directory per certificate: tests run in parallel and must not share files.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("stomphub-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    std::fs::write(&cert_file, generated.cert.pem()).unwrap();
    std::fs::write(&key_file, generated.signing_key.serialize_pem()).unwrap();
    Certificate {
        der: generated.cert.der().clone(),
        config: TlsConfig {
            cert_file,
            key_file,
        },
    }
}

/// A TLS connection to `addr` as `localhost`, trusting only `trusted`;
/// `None` when the handshake fails (the server presents another certificate).
#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn try_connect(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
) -> Option<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).ok()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.ok()?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").ok()?, tcp)
        .await
        .ok()
}

/// The next STOMP text of a WebSocket (a binary message read as text),
/// skipping heart-beats; panics after 10 s or on a close.
#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("valid");
        match message {
            Message::Text(text) if text.as_str() != "\n" => return text.to_string(),
            Message::Binary(data) => return String::from_utf8_lossy(&data).into_owned(),
            _ => continue,
        }
    }
}

/// A TLS connection to `addr` as `localhost`, trusting only `trusted`.
#[allow(dead_code, reason = "not every test binary calls it")]
pub async fn connect(addr: SocketAddr, trusted: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the self-signed certificate")
}

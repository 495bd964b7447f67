//! TLS for `https://` and `wss://` (`[server.tls]`) and for `stomp+ssl://`
//! (`[tcp.tls]`): the rustls configuration from a certificate and key, and a
//! stream that performs its handshake lazily, inside the connection's own
//! task, so a slow handshake never holds up the accept loop.

use crate::config::{ConfigError, TlsConfig};
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

/// Where a TLS table sits in `broker.toml` (its errors name these keys) and
/// the application protocol it serves.
#[derive(Debug, Clone, Copy)]
pub struct TlsSection {
    pub table: &'static str,
    pub cert_file: &'static str,
    pub key_file: &'static str,
    /// The ALPN protocols offered; empty for a protocol without an ALPN name.
    pub alpn: &'static [&'static [u8]],
}

/// `[server.tls]`: HTTP/1.1 and the WebSocket upgrades on it.
pub const SERVER_TLS: TlsSection = TlsSection {
    table: "server.tls",
    cert_file: "server.tls.cert_file",
    key_file: "server.tls.key_file",
    alpn: &[b"http/1.1"],
};

/// The certificate a listener presents, replaceable while it runs: a reload
/// (`SIGHUP`, `POST /api/reload`) swaps in a renewed one for the next
/// handshakes, and connections already up keep theirs.
#[derive(Debug)]
pub struct CertSlot {
    current: ArcSwap<CertifiedKey>,
    section: TlsSection,
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A certificate read and checked, ready to be presented.
pub struct LoadedCert(CertifiedKey);

impl CertSlot {
    /// Reads `config`'s files again; the error names the key at fault.
    pub fn load(&self, config: &TlsConfig) -> Result<LoadedCert, ConfigError> {
        certified_key(config, &self.section).map(LoadedCert)
    }

    /// Presents `cert` from the next handshake on.
    pub fn install(&self, cert: LoadedCert) {
        self.current.store(Arc::new(cert.0));
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the certificate chain and key; the error names the file and the problem.
fn certified_key(config: &TlsConfig, section: &TlsSection) -> Result<CertifiedKey, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|error| {
            ConfigError::invalid(
                section.cert_file,
                format!(
                    "cannot read certificates from {}: {error}",
                    config.cert_file.display()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            section.cert_file,
            format!("{} holds no PEM certificate", config.cert_file.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_file).map_err(|error| {
        ConfigError::invalid(
            section.key_file,
            format!(
                "cannot read a private key from {}: {error}",
                config.key_file.display()
            ),
        )
    })?;
    let key = CertifiedKey::from_der(certs, key, &provider()).map_err(|error| {
        ConfigError::invalid(
            section.table,
            format!("the certificate and key do not fit: {error}"),
        )
    })?;
    Ok(key)
}

/// The acceptor of a TLS listener, and the slot through which its
/// certificate is renewed.
pub fn acceptor(
    config: &TlsConfig,
    section: &TlsSection,
) -> Result<(TlsAcceptor, Arc<CertSlot>), ConfigError> {
    let slot = Arc::new(CertSlot {
        current: ArcSwap::from_pointee(certified_key(config, section)?),
        section: *section,
    });
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ConfigError::invalid(section.table, error.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(slot.clone());
    server.alpn_protocols = section.alpn.iter().map(|name| name.to_vec()).collect();
    Ok((TlsAcceptor::from(Arc::new(server)), slot))
}

/// A server-side TLS stream whose handshake runs on first use.
pub enum LazyTls<S> {
    Handshaking(Box<Accept<S>>),
    Ready(Box<TlsStream<S>>),
    Failed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LazyTls<S> {
    pub fn new(acceptor: &TlsAcceptor, io: S) -> Self {
        LazyTls::Handshaking(Box::new(acceptor.accept(io)))
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let LazyTls::Handshaking(accept) = self {
            match ready!(Pin::new(accept.as_mut()).poll(cx)) {
                Ok(stream) => *self = LazyTls::Ready(Box::new(stream)),
                Err(error) => {
                    *self = LazyTls::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match self {
            LazyTls::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake failed",
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// The transport under an established session, for a lingering close.
    pub fn into_transport(self) -> Option<S> {
        match self {
            LazyTls::Ready(stream) => Some(stream.into_inner().0),
            LazyTls::Handshaking(_) | LazyTls::Failed => None,
        }
    }

    fn stream(&mut self) -> Option<Pin<&mut TlsStream<S>>> {
        match self {
            LazyTls::Ready(stream) => Some(Pin::new(stream.as_mut())),
            _ => None,
        }
    }
}

macro_rules! after_handshake {
    ($self:ident, $cx:ident, $stream:ident => $call:expr) => {{
        let this = $self.get_mut();
        ready!(this.poll_handshake($cx))?;
        match this.stream() {
            Some($stream) => $call,
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }};
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LazyTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        after_handshake!(self, cx, stream => stream.poll_read(cx, buf))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LazyTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        after_handshake!(self, cx, stream => stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        after_handshake!(self, cx, stream => stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        after_handshake!(self, cx, stream => stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Some(stream) => stream.poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

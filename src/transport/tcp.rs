//! STOMP over plain TCP, the protocol's own transport, and over TLS
//! (`stomp+ssl://`): the accept loop (the HTTP listener's admission, socket
//! tuning and write-stall guard; the PROXY protocol header and the TLS
//! handshake within `limits.handshake_timeout_ms`), the opening without HTTP,
//! and the [`Wire`] that carries the STOMP byte stream as it is. The session
//! driver does everything else.

use super::handshake::{self, Admitted};
use super::listener::{ListenerSettings, StallGuard};
use super::tls::TlsSection;
use crate::broker::outbound::Outgoing;
use crate::hub::Hub;
use crate::security::connections::{Refused, Ticket};
use crate::session::driver::{CloseReason, Received, Wire, WireError};
use crate::session::encode_outgoing;
use crate::stomp::{Frame, Version, encode};
use bytes::{Buf, BytesMut};
use proxy_header::ParseConfig;
use proxy_header::io::ProxiedStream;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// `[tcp.tls]`. STOMP has no ALPN name, so none is offered: a client that
/// asks for one it knows is not refused for it.
pub const TCP_TLS: TlsSection = TlsSection {
    table: "tcp.tls",
    cert_file: "tcp.tls.cert_file",
    key_file: "tcp.tls.key_file",
    alpn: &[],
};

/// Bytes asked of the socket per read: the WebSocket transport's default
/// read buffer, so an idle TCP session holds no more memory than one there.
const READ_CHUNK: usize = 4096;

/// A write buffer grown past this by one large batch is dropped after it
/// rather than held for the rest of the session.
const KEEP_OUTPUT: usize = 64 * 1024;

/// Refused connections told why at the same time; beyond this they are just closed.
const MAX_POLITE_REFUSALS: usize = 64;

/// How long a refused connection is given to read its ERROR.
const REFUSAL_LIMIT: Duration = Duration::from_secs(1);

/// What `[tcp]` builds into.
#[derive(Clone)]
pub struct TcpSettings {
    pub bind: SocketAddr,
    pub tls: Option<TlsAcceptor>,
    /// Every connection starts with a PROXY protocol header, and only
    /// `server.trusted_proxies` may connect.
    pub proxy_protocol: bool,
}

impl TcpSettings {
    /// What must arrive before the STOMP stream starts, for the timeout's message.
    fn preamble(&self) -> &'static str {
        match (self.proxy_protocol, self.tls.is_some()) {
            (true, true) => "PROXY protocol header and TLS handshake",
            (true, false) => "PROXY protocol header",
            (false, true) => "TLS handshake",
            (false, false) => "connection",
        }
    }
}

/// Accepts STOMP connections until shutdown; each one runs in its own task,
/// counted by the hub's tracker so that a graceful stop waits for it. The
/// number of those tasks is bounded by the admission caps every connection
/// takes a place under before it is spawned.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    settings: TcpSettings,
    socket: ListenerSettings,
) {
    let settings = Arc::new(settings);
    let socket = Arc::new(socket);
    let refusing = Arc::new(AtomicUsize::new(0));
    let shutdown = hub.lifecycle.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if settings.proxy_protocol && !hub.proxies.trusts(peer.ip()) {
            let reason = "this port takes connections only from server.trusted_proxies, \
                          each starting with a PROXY protocol header (tcp.proxy_protocol)";
            tracing::warn!(%peer, %reason, "connection refused");
            refuse(stream, reason.to_owned(), &settings, &refusing);
            continue;
        }
        let ticket = match hub.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refused) => {
                tracing::warn!(%peer, reason = %refused, "connection refused");
                // A flood of connections that send nothing gets no answer.
                if !matches!(refused, Refused::Pending(_)) {
                    refuse(stream, refused.to_string(), &settings, &refusing);
                }
                continue;
            }
        };
        socket.tune(&stream);
        let token = hub.lifecycle.tracker.token();
        let (hub, settings, socket) = (hub.clone(), settings.clone(), socket.clone());
        tokio::spawn(async move {
            connection(&hub, &settings, &socket, stream, peer, ticket).await;
            drop(token);
        });
    }
}

/// Tells a refused client why in a STOMP ERROR, when that is cheap: plain
/// TCP (under TLS it would only garble the client's handshake), and few such
/// answers already in progress.
fn refuse(stream: TcpStream, reason: String, settings: &TcpSettings, refusing: &Arc<AtomicUsize>) {
    if settings.tls.is_some() {
        return;
    }
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_POLITE_REFUSALS {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_LIMIT, answer_error(stream, reason)).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Writes the ERROR, then reads until the client closes: closing with its
/// CONNECT unread would reset the connection and could destroy the ERROR.
async fn answer_error(mut stream: TcpStream, reason: String) {
    let mut out = BytesMut::new();
    encode(&Frame::error(reason, None, None), Version::V1_2, &mut out);
    if stream.write_all(&out).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut discard = [0u8; 512];
    while matches!(stream.read(&mut discard).await, Ok(read) if read > 0) {}
}

/// One accepted connection: the preamble (PROXY header, TLS), the opening,
/// then the session.
async fn connection(
    hub: &Hub,
    settings: &TcpSettings,
    socket: &ListenerSettings,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
) {
    let guarded = StallGuard::new(stream, socket.write_stall_limit);
    let opened = tokio::select! {
        opened = tokio::time::timeout(socket.handshake_timeout, preamble(settings, guarded)) => opened,
        _ = hub.lifecycle.shutdown.cancelled() => return,
    };
    let (stream, named) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) if error.peer_left() => {
            // A load balancer's or monitor's TCP check: it connects and leaves.
            tracing::debug!(%peer, reason = %error, "connection closed before STOMP");
            return;
        }
        Ok(Err(error)) => {
            tracing::warn!(%peer, reason = %error, "connection refused");
            return;
        }
        Err(_) => {
            let error = PreambleError::Timeout {
                what: settings.preamble(),
                limit_ms: socket.handshake_timeout.as_millis(),
            };
            tracing::warn!(%peer, reason = %error, "connection refused");
            return;
        }
    };
    ticket.handshake().request_seen();
    let wire = TcpWire::new(stream, ticket);
    if hub.is_shutting_down() {
        return;
    }
    let Admitted {
        handshake,
        remote,
        place,
    } = match handshake::run_stream(hub, peer, named, "tcp") {
        Ok(admitted) => admitted,
        Err(rejection) => {
            wire.refuse(rejection.message).await;
            return;
        }
    };
    super::run_session(hub, handshake, wire, remote).await;
    drop(place);
}

/// Why a connection never reached STOMP.
#[derive(Debug, thiserror::Error)]
enum PreambleError {
    #[error("the connection closed before its PROXY protocol header was complete")]
    ProxyClosed,
    #[error(
        "the connection did not start with a valid PROXY protocol header (tcp.proxy_protocol): {0}"
    )]
    Proxy(io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("no complete {what} within {limit_ms} ms (limits.handshake_timeout_ms)")]
    Timeout { what: &'static str, limit_ms: u128 },
}

impl PreambleError {
    /// The peer went away before sending anything wrong.
    fn peer_left(&self) -> bool {
        match self {
            PreambleError::ProxyClosed => true,
            PreambleError::Tls(error) => matches!(
                error.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            PreambleError::Proxy(_) | PreambleError::Timeout { .. } => false,
        }
    }
}

type Socket = ProxiedStream<StallGuard<TcpStream>>;

/// Reads the PROXY header when one is required (the client's address is its
/// source; a `LOCAL` header, a proxy's own health check, names none), then
/// runs the TLS handshake when configured: the header comes first, in clear.
async fn preamble(
    settings: &TcpSettings,
    guarded: StallGuard<TcpStream>,
) -> Result<(Stream, Option<SocketAddr>), PreambleError> {
    let socket = if settings.proxy_protocol {
        let config = ParseConfig {
            include_tlvs: false,
            ..ParseConfig::default()
        };
        ProxiedStream::create_from_tokio(guarded, config)
            .await
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => PreambleError::ProxyClosed,
                _ => PreambleError::Proxy(error),
            })?
    } else {
        ProxiedStream::unproxied(guarded)
    };
    let named = socket
        .proxy_header()
        .proxied_address()
        .map(|address| address.source);
    let stream = match &settings.tls {
        Some(acceptor) => Stream::Tls(Box::new(
            acceptor.accept(socket).await.map_err(PreambleError::Tls)?,
        )),
        None => Stream::Plain(socket),
    };
    Ok((stream, named))
}

/// The connection under the STOMP stream.
enum Stream {
    Plain(Socket),
    Tls(Box<TlsStream<Socket>>),
    /// Handed to [`super::linger`] as the wire was dropped.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection was closed")
}

impl Stream {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Plain(io) => io.read_buf(buf).await,
            Stream::Tls(io) => io.read_buf(buf).await,
            Stream::Closed => Err(closed()),
        }
    }

    /// Writes some of `bytes`; cancel-safe: a write raced by another branch
    /// of the driver's select has written nothing.
    async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(io) => io.write(bytes).await,
            Stream::Tls(io) => io.write(bytes).await,
            Stream::Closed => Err(closed()),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(io) => io.flush().await,
            Stream::Tls(io) => io.flush().await,
            Stream::Closed => Err(closed()),
        }
    }

    /// TLS `close_notify`, then the TCP FIN, after everything written so far.
    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(io) => io.shutdown().await,
            Stream::Tls(io) => io.shutdown().await,
            Stream::Closed => Ok(()),
        }
    }

    fn into_tcp(self) -> Option<TcpStream> {
        match self {
            Stream::Plain(io) => Some(io.into_inner().into_inner()),
            Stream::Tls(io) => Some(io.into_inner().0.into_inner().into_inner()),
            Stream::Closed => None,
        }
    }
}

/// A STOMP session over one TCP (or TLS) connection: the byte stream as it
/// is, both ways. STOMP over TCP has no close code: a session ends with its
/// ERROR, if any, then the close.
struct TcpWire {
    stream: Stream,
    input: BytesMut,
    output: BytesMut,
    /// The connection's place under the caps; a lingering close keeps it.
    ticket: Option<Ticket>,
}

impl TcpWire {
    fn new(stream: Stream, ticket: Ticket) -> Self {
        TcpWire {
            stream,
            input: BytesMut::new(),
            output: BytesMut::new(),
            ticket: Some(ticket),
        }
    }

    /// Ends a connection the opening refused: its ERROR, then the close.
    async fn refuse(mut self, reason: String) {
        let error = Outgoing::Frame(Frame::error(reason, None, None));
        if self.send(&[error], Version::V1_2).await.is_ok() {
            self.close(None).await;
        }
    }
}

impl Drop for TcpWire {
    fn drop(&mut self) {
        // Under TLS the socket lingers too: what the client still sends is
        // discarded as raw bytes, after the TLS close.
        if let Some(tcp) = std::mem::replace(&mut self.stream, Stream::Closed).into_tcp() {
            super::linger::close(tcp, self.ticket.take());
        }
    }
}

impl TcpWire {
    /// Writes what `output` holds. Bytes a write cut short by the driver
    /// (a stalled slow consumer) left unsent stay at its front, so the next
    /// write (the ERROR that ends the session) completes the frame first
    /// instead of landing inside it.
    async fn write_output(&mut self) -> Result<(), WireError> {
        while !self.output.is_empty() {
            let written = self
                .stream
                .write(&self.output)
                .await
                .map_err(WireError::new)?;
            if written == 0 {
                return Err(WireError::new("the connection took no more bytes"));
            }
            self.output.advance(written);
        }
        if self.output.capacity() > KEEP_OUTPUT {
            self.output = BytesMut::new();
        }
        self.stream.flush().await.map_err(WireError::new)
    }
}

impl Wire for TcpWire {
    type Chunk = BytesMut;

    async fn receive(&mut self) -> Result<Received<BytesMut>, WireError> {
        // Reuses the buffer the previous chunk came from once the driver has
        // dropped that chunk. Cancel-safe: a read raced by another branch of
        // the driver's select has read nothing.
        self.input.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.input).await {
            Ok(0) => Ok(Received::Closed),
            Ok(_) => Ok(Received::Data(self.input.split())),
            Err(error) => Err(WireError::new(error)),
        }
    }

    async fn send(&mut self, batch: &[Outgoing], version: Version) -> Result<(), WireError> {
        // The whole batch in one buffer, written in as few writes as the
        // socket takes: one syscall (one TLS record run) per batch, however
        // many frames it holds.
        for item in batch {
            encode_outgoing(item, version, &mut self.output);
        }
        self.write_output().await
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        self.output.extend_from_slice(b"\n");
        self.write_output().await
    }

    async fn close(&mut self, _reason: Option<CloseReason>) {
        // No close code over TCP: the ERROR the driver queued (if any) is
        // already written, and the reason is in the log.
        let _ = self.stream.shutdown().await;
    }
}

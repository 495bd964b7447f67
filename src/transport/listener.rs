//! The TCP listener every transport is served from. Per accepted socket it:
//! asks [`Admission`] for a place (connection caps), sets TCP_NODELAY and TCP
//! keepalive (dead peers), starts TLS when configured, fails a connection that
//! sends no complete HTTP request within `handshake_timeout`, and wraps the
//! socket in [`StallGuard`], which fails a write that cannot make progress for
//! `send_time_limit`: a client that stops reading is cut off even when nothing
//! above the socket is being polled (an SSE body waits on the socket, not the reverse).

use super::tls::LazyTls;
use crate::security::connections::{Admission, HandshakeFlag, Refused, Ticket};
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

/// Refused connections answered with a 503 at the same time; beyond this they are just closed.
const MAX_POLITE_REFUSALS: usize = 64;

/// The accept queue asked of the kernel, which caps it at `net.core.somaxconn`
/// (4096 on current kernels). The standard library's 128 overflowed under a burst
/// of a few hundred connection attempts: the kernel dropped SYNs, and clients
/// waited out a one-second retransmission while the broker was idle.
const LISTEN_BACKLOG: i32 = 65_535;

/// A listening socket on `addr` with the deep accept queue above, address reuse
/// (a restart does not wait out TIME_WAIT) and non-blocking I/O for tokio.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// How the listener treats each socket; from `broker.toml`.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    pub write_stall_limit: Duration,
    pub handshake_timeout: Duration,
    pub keepalive_idle: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_retries: u32,
}

impl ListenerSettings {
    /// How long a vanished peer can go unnoticed: idle + interval x retries.
    pub fn dead_peer_bound(&self) -> Duration {
        self.keepalive_idle + self.keepalive_interval * self.keepalive_retries
    }

    /// TCP_NODELAY, keepalive and the bound on unacknowledged writes.
    pub(crate) fn tune(&self, stream: &TcpStream) {
        // The writers batch and flush once per batch; Nagle's algorithm on
        // top only adds delayed-ACK stalls to every reply.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let socket = socket2::SockRef::from(stream);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(self.keepalive_idle)
            .with_interval(self.keepalive_interval)
            .with_retries(self.keepalive_retries);
        if let Err(error) = socket.set_tcp_keepalive(&keepalive) {
            tracing::debug!(%error, "cannot set TCP keepalive");
        }
        // Keepalive probes only an idle connection; unacknowledged data would
        // otherwise be retransmitted for many minutes before the peer counts as gone.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(error) = socket.set_tcp_user_timeout(Some(self.dead_peer_bound())) {
            tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT");
        }
    }
}

pub struct GuardedListener {
    inner: TcpListener,
    settings: ListenerSettings,
    admission: Arc<Admission>,
    tls: Option<TlsAcceptor>,
    refusing: Arc<AtomicUsize>,
}

impl GuardedListener {
    pub fn new(
        inner: TcpListener,
        settings: ListenerSettings,
        admission: Arc<Admission>,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        GuardedListener {
            inner,
            settings,
            admission,
            tls,
            refusing: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Answers a refused connection with a 503 naming the limit, when that is
    /// cheap: plain HTTP, a cap other than the one against handshake floods,
    /// and few such answers already in progress.
    fn refuse(&self, stream: TcpStream, refused: Refused) {
        if self.tls.is_some() || matches!(refused, Refused::Pending(_)) {
            return;
        }
        if self.refusing.fetch_add(1, Ordering::Relaxed) >= MAX_POLITE_REFUSALS {
            self.refusing.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let refusing = self.refusing.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), answer_503(stream, refused)).await;
            refusing.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads the request head (so the client is listening for the answer), then
/// writes a 503 whose body is the reason.
async fn answer_503(mut stream: TcpStream, refused: Refused) {
    let mut head = [0u8; 4096];
    let mut seen = 0;
    while seen < head.len() {
        match stream.read(&mut head[seen..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
        if head[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let body = refused.to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 5\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

impl Listener for GuardedListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, remote)) => {
                    let ticket = match self.admission.admit(remote.ip()) {
                        Ok(ticket) => ticket,
                        Err(refused) => {
                            tracing::warn!(%remote, reason = %refused, "connection refused");
                            self.refuse(stream, refused);
                            continue;
                        }
                    };
                    self.settings.tune(&stream);
                    let guarded = StallGuard::new(stream, self.settings.write_stall_limit);
                    let io = match &self.tls {
                        Some(acceptor) => Transport::Tls(LazyTls::new(acceptor, guarded)),
                        None => Transport::Plain(guarded),
                    };
                    let watch = HandshakeWatch {
                        flag: ticket.handshake().clone(),
                        deadline: Box::pin(tokio::time::sleep(self.settings.handshake_timeout)),
                        limit: self.settings.handshake_timeout,
                        matched: 0,
                    };
                    let connection = Connection {
                        io,
                        handshake: Some(watch),
                        ticket: Some(ticket),
                    };
                    return (connection, remote);
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

enum Transport {
    Plain(StallGuard<TcpStream>),
    Tls(LazyTls<StallGuard<TcpStream>>),
    /// Handed to [`super::linger`] as the connection was dropped.
    Lingering,
}

fn lingering() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection was closed")
}

/// Watches a connection until its first complete HTTP request head.
struct HandshakeWatch {
    flag: Arc<HandshakeFlag>,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
    /// How much of `\r\n\r\n` the bytes read so far end with.
    matched: u8,
}

impl HandshakeWatch {
    /// True once `bytes` complete the request head.
    fn scan(&mut self, bytes: &[u8]) -> bool {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &byte in bytes {
            self.matched = if byte == END[self.matched as usize] {
                self.matched + 1
            } else if byte == b'\r' {
                1
            } else {
                0
            };
            if self.matched == 4 {
                return true;
            }
        }
        false
    }
}

/// One accepted connection as the HTTP server sees it.
pub struct Connection {
    io: Transport,
    handshake: Option<HandshakeWatch>,
    /// The connection's place under the caps; a lingering close keeps it.
    ticket: Option<Ticket>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Under TLS the socket lingers the same way: what the client still
        // sends is discarded as raw bytes, after the TLS close.
        let guard = match std::mem::replace(&mut self.io, Transport::Lingering) {
            Transport::Plain(guard) => Some(guard),
            Transport::Tls(tls) => tls.into_transport(),
            Transport::Lingering => None,
        };
        if let Some(guard) = guard {
            super::linger::close(guard.into_inner(), self.ticket.take());
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(watch) = &mut this.handshake
            && watch.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no complete HTTP request within {} ms (limits.handshake_timeout_ms)",
                    watch.limit.as_millis()
                ),
            )));
        }
        let before = buf.filled().len();
        match &mut this.io {
            Transport::Plain(io) => ready!(Pin::new(io).poll_read(cx, buf))?,
            Transport::Tls(io) => ready!(Pin::new(io).poll_read(cx, buf))?,
            Transport::Lingering => return Poll::Ready(Err(lingering())),
        }
        if let Some(watch) = &mut this.handshake
            && watch.scan(&buf.filled()[before..])
        {
            watch.flag.request_seen();
            this.handshake = None;
        }
        Poll::Ready(Ok(()))
    }
}

macro_rules! delegate_write {
    ($self:ident, $io:ident => $call:expr) => {
        match &mut $self.get_mut().io {
            Transport::Plain($io) => $call,
            Transport::Tls($io) => $call,
            Transport::Lingering => Poll::Ready(Err(lingering())),
        }
    };
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate_write!(self, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate_write!(self, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Transport::Plain(io) => io.is_write_vectored(),
            Transport::Tls(io) => io.is_write_vectored(),
            Transport::Lingering => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate_write!(self, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate_write!(self, io => Pin::new(io).poll_shutdown(cx))
    }
}

/// The peer address, as handlers extract it with `ConnectInfo<RemoteAddr>`.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, GuardedListener>> for RemoteAddr {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        RemoteAddr(*stream.remote_addr())
    }
}

/// Fails writes (and flushes) that stay blocked longer than `limit`.
pub struct StallGuard<T> {
    io: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    pub fn new(io: T, limit: Duration) -> Self {
        StallGuard {
            io,
            limit,
            stalled: None,
        }
    }

    pub fn into_inner(self) -> T {
        self.io
    }

    /// Called when the socket said Pending: starts or checks the stall timer.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the peer took no data for {} ms (send_time_limit_ms)",
                limit.as_millis()
            ),
        ))
    }

    fn progress<R>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.check_stall(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progress(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progress(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.progress(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A burst of connections is queued by the kernel while the server is
    /// busy: with the standard library's backlog of 128, the 129th SYN was
    /// dropped and its client waited a second for the retransmission.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_accept_queue() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let attempts: Vec<_> = (0..600)
            .map(|_| {
                tokio::spawn(tokio::time::timeout(
                    Duration::from_millis(700),
                    TcpStream::connect(addr),
                ))
            })
            .collect();
        let mut established = Vec::new();
        for attempt in attempts {
            if let Ok(Ok(Ok(stream))) = attempt.await {
                established.push(stream);
            }
        }
        assert_eq!(established.len(), 600, "connections not queued");
        drop(listener);
    }

    #[tokio::test]
    async fn a_peer_that_never_reads_fails_the_write_after_the_limit() {
        let (client, server) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(server, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let error = guarded.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(client);
    }

    #[tokio::test]
    async fn a_reading_peer_is_never_cut_off() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(server, Duration::from_millis(50));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink)
                .await
                .map(|_| sink.len())
        });
        for _ in 0..20 {
            guarded.write_all(&[1u8; 100]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        guarded.shutdown().await.unwrap();
        drop(guarded);
        assert_eq!(reader.await.unwrap().unwrap(), 2000);
    }
}

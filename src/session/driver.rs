//! Runs one STOMP connection over any [`Wire`]: decoding, the off-thread
//! password check, `/app` backpressure, the inbound frame rate (throttled, not
//! cut), the CONNECT, heart-beat and partial-frame deadlines, batched writes
//! raced against the slow-consumer rules, and ERROR then close.
//! Every timing and policy rule of a connection lives here, once; a transport
//! only moves bytes and says how to close.

use super::{Flow, Session, SessionError, error_frame};
use crate::broker::outbound::{Closed, Outgoing};
use crate::security::rate::TokenBucket;
use crate::stomp::{Command, Decoded, Decoder, Limits, Version};
use crate::telemetry::ConnectionMeter;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

/// The timing rules every connection of a server runs with.
#[derive(Debug, Clone)]
pub struct ConnectionRules {
    /// From the transport's connection to the CONNECT frame.
    pub connect_timeout: Duration,
    /// One write (a batch, a heart-beat) may take this long before the client
    /// counts as a slow consumer.
    pub send_time_limit: Duration,
    /// A frame the client has begun must be complete within this, whatever
    /// the heart-beats: a partial frame pins its buffer.
    pub frame_timeout: Duration,
    /// Inbound frames per second; over it the driver stops reading for a while.
    pub frame_rate: Option<FrameRate>,
    pub codec: Limits,
}

/// A token bucket's settings: the average rate and how many frames may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub per_second: u32,
    pub burst: u32,
}

/// A transport failed to read or write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The client sent a message over the transport's size limit, which
    /// follows `limits.max_frame_size`.
    #[error("message too large ({size} bytes, limit {limit})")]
    TooLarge { size: usize, limit: usize },
    /// A text message that is not UTF-8.
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A message the transport's own framing cannot read (a SockJS message
    /// that is not a JSON array of strings).
    #[error("{0}")]
    Malformed(String),
    /// A kind of message the transport does not take (binary on a text endpoint).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Io(String),
}

impl WireError {
    pub fn new(error: impl std::fmt::Display) -> Self {
        WireError::Io(error.to_string())
    }
}

/// What a transport read.
#[derive(Debug)]
pub enum Received<C> {
    /// Bytes of the STOMP stream, cut anywhere.
    Data(C),
    /// A transport-level message without STOMP content (a WebSocket ping);
    /// it still shows that the client is alive.
    Control,
    /// A message the transport handled itself (a plain socket's text that is
    /// only answered): it counts against the frame rate like a frame.
    Message,
    /// The client closed the connection.
    Closed,
}

/// How the connection ends, as a transport can express it: WebSocket close
/// codes (RFC 6455, 7.4.1), which other transports translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseReason {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// One connection's transport: bytes in, batches of outbound items out, and a close.
pub trait Wire: Send {
    type Chunk: AsRef<[u8]> + Send;

    /// The next thing the client sent.
    fn receive(&mut self) -> impl Future<Output = Result<Received<Self::Chunk>, WireError>> + Send;

    /// Writes `batch` (encoded in `version`) and flushes once.
    fn send(
        &mut self,
        batch: &[Outgoing],
        version: Version,
    ) -> impl Future<Output = Result<(), WireError>> + Send;

    /// Writes a STOMP heart-beat.
    fn send_heartbeat(&mut self) -> impl Future<Output = Result<(), WireError>> + Send;

    /// Writes the transport's keep-alive, due after [`Wire::keepalive`] of
    /// silence; a STOMP heart-beat unless the transport has its own.
    fn send_keepalive(&mut self) -> impl Future<Output = Result<(), WireError>> + Send {
        self.send_heartbeat()
    }

    /// Ends the connection, saying why when `reason` is given.
    fn close(&mut self, reason: Option<CloseReason>) -> impl Future<Output = ()> + Send;

    /// Drops what the transport holds but has not written yet (messages
    /// waiting between requests): the session was cut as a slow consumer, and
    /// only its ERROR and the close are still to go.
    fn discard_unsent(&mut self) {}

    /// A transport that needs traffic even when STOMP heart-beats are off
    /// (proxies close silent HTTP responses) writes a heart-beat after this long.
    fn keepalive(&self) -> Option<Duration> {
        None
    }
}

/// Why a connection ended; decides the close code and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The session asked to close (DISCONNECT or a protocol error, already answered).
    Session,
    ClientClosed,
    ReadFailed(String),
    WriteFailed(String),
    SlowConsumer(String),
    /// No CONNECT, or no heart-beat, in time.
    Timeout,
    /// A frame was begun and not completed within `limits.frame_timeout_ms`.
    FrameTimeout,
    /// A message over the size limit, already answered with an ERROR.
    TooLarge,
    /// A text message that is not UTF-8, already answered with an ERROR.
    InvalidUtf8,
    /// A message the transport could not read, already answered with an ERROR.
    Malformed,
    /// A kind of message the transport does not take, already answered with an ERROR.
    Unsupported,
    Shutdown,
}

impl End {
    /// What the client is told as the connection closes; `None` when it is gone.
    pub fn close_reason(&self) -> Option<CloseReason> {
        let (code, reason) = match self {
            End::Session => (CloseReason::NORMAL, "session ended"),
            End::Timeout => (CloseReason::POLICY, "heart-beat or connect timeout"),
            End::SlowConsumer(_) => (CloseReason::POLICY, "slow consumer"),
            End::FrameTimeout => (CloseReason::POLICY, "frame not completed in time"),
            End::TooLarge => (CloseReason::TOO_BIG, "message too large"),
            End::InvalidUtf8 => (CloseReason::INVALID_DATA, "invalid UTF-8"),
            End::Malformed => (CloseReason::INVALID_DATA, "malformed message"),
            End::Unsupported => (CloseReason::UNSUPPORTED_DATA, "unsupported message"),
            End::Shutdown => (CloseReason::AWAY, "server shutting down"),
            End::ClientClosed | End::ReadFailed(_) | End::WriteFailed(_) => return None,
        };
        Some(CloseReason { code, reason })
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Session => f.write_str("session ended (DISCONNECT or protocol error)"),
            End::ClientClosed => f.write_str("client closed the connection"),
            End::ReadFailed(why) => write!(f, "read failed: {why}"),
            End::WriteFailed(why) => write!(f, "write failed: {why}"),
            End::SlowConsumer(why) => write!(f, "slow consumer: {why}"),
            End::Timeout => f.write_str("heart-beat or connect timeout"),
            End::FrameTimeout => f.write_str("a frame was not completed in time"),
            End::TooLarge => f.write_str("message too large"),
            End::InvalidUtf8 => f.write_str("invalid UTF-8 in a text message"),
            End::Malformed => f.write_str("malformed transport message"),
            End::Unsupported => f.write_str("unsupported kind of message"),
            End::Shutdown => f.write_str("server shutting down"),
        }
    }
}

/// Serves `session` over `wire` until either side ends it, then closes the
/// wire and releases the session. Returns why it ended.
pub async fn drive<W: Wire>(
    session: &mut Session,
    wire: W,
    rules: Arc<ConnectionRules>,
    shutdown: &CancellationToken,
    meter: ConnectionMeter,
) -> End {
    let mut writer = Writer {
        wire,
        batch: Vec::new(),
        send_time_limit: rules.send_time_limit,
        last_write: Instant::now(),
        last_stomp_write: Instant::now(),
        meter,
    };
    let end = serve(session, &mut writer, &rules, shutdown).await;
    writer.finish(session, &end).await;
    if let End::SlowConsumer(_) = end {
        writer.meter.slow_consumers.inc();
    } else if let Some(reason) = session.failure().and_then(SessionError::policy_reason) {
        writer.meter.refused(reason);
    }
    session.end(&end.to_string());
    end
}

struct Writer<W> {
    wire: W,
    batch: Vec<Outgoing>,
    send_time_limit: Duration,
    last_write: Instant,
    /// The last write a STOMP client sees (frames or a heart-beat): a
    /// transport's own keep-alive (SockJS `h`) does not count for STOMP.
    last_stomp_write: Instant,
    meter: ConnectionMeter,
}

impl<W: Wire> Writer<W> {
    /// Writes everything queued and flushes once. Errors on a dead or too slow client.
    async fn write_queued(&mut self, session: &Session) -> Result<Option<Closed>, End> {
        let (closed, bytes) = session.outbound().drain_counting(&mut self.batch);
        if let Some(Closed::Overflow(overflow)) = closed {
            self.batch.clear();
            return Err(End::SlowConsumer(overflow.to_string()));
        }
        if self.batch.is_empty() {
            return Ok(closed);
        }
        self.count(bytes);
        let version = session.version().unwrap_or(Version::V1_2);
        // The write borrows the batch; it ends before the batch is reused.
        let (result, woken) = {
            let write = self.wire.send(&self.batch, version);
            // Race the write against its time limit and against the queue
            // overflowing meanwhile: a stalled socket must not keep a slow
            // consumer alive for the whole send_time_limit.
            let outbound = session.outbound();
            let deadline = tokio::time::sleep(self.send_time_limit);
            tokio::pin!(write, deadline);
            let mut woken = false;
            let result = loop {
                tokio::select! {
                    result = &mut write => break result,
                    _ = &mut deadline => {
                        return Err(End::SlowConsumer(format!(
                            "a write took longer than send_time_limit_ms = {}",
                            self.send_time_limit.as_millis()
                        )));
                    }
                    _ = outbound.ready() => {
                        if let Some(overflow) = outbound.overflow() {
                            return Err(End::SlowConsumer(format!(
                                "{overflow} while a write was stalled"
                            )));
                        }
                        // New items, not overflow: later pushes see a non-empty
                        // queue and stay quiet, except the one that overflows.
                        woken = true;
                    }
                }
            };
            (result, woken)
        };
        if woken {
            // The wake-up was for new items; hand it back to the main loop.
            session.outbound().wake();
        }
        self.batch.clear();
        match result {
            Ok(()) => {
                self.last_write = Instant::now();
                self.last_stomp_write = self.last_write;
                Ok(closed)
            }
            Err(error) => Err(End::WriteFailed(error.to_string())),
        }
    }

    /// Deliveries and bytes of the batch about to be written, and one
    /// latency sample: the oldest delivery's time since its publication.
    fn count(&self, bytes: usize) {
        let mut deliveries = 0;
        let mut oldest = None;
        for item in &self.batch {
            if let Outgoing::Delivery {
                message, replayed, ..
            } = item
            {
                deliveries += 1;
                if !replayed {
                    oldest.get_or_insert(message.published_at());
                }
            }
        }
        self.meter.bytes_sent.inc_by(bytes as u64);
        if deliveries > 0 {
            self.meter.deliveries.inc_by(deliveries);
        }
        if let Some(published_at) = oldest {
            self.meter
                .delivery_seconds
                .observe(published_at.elapsed().as_secs_f64());
        }
    }

    /// A STOMP heart-beat, or with `keepalive` the transport's own keep-alive.
    async fn heart_beat(&mut self, keepalive: bool) -> Result<(), End> {
        let written = if keepalive {
            timeout(self.send_time_limit, self.wire.send_keepalive()).await
        } else {
            timeout(self.send_time_limit, self.wire.send_heartbeat()).await
        };
        match written {
            Ok(Ok(())) => {
                self.last_write = Instant::now();
                if !keepalive {
                    self.last_stomp_write = self.last_write;
                }
                Ok(())
            }
            Ok(Err(error)) => Err(End::WriteFailed(error.to_string())),
            Err(_) => Err(End::SlowConsumer("heart-beat write timed out".into())),
        }
    }

    /// Best effort: what is queued, then the close, within send_time_limit.
    /// The queue's memory is already released, so waiting costs only a socket.
    async fn finish(&mut self, session: &Session, end: &End) {
        let _ = timeout(self.send_time_limit, async {
            match end {
                End::Session
                | End::Timeout
                | End::FrameTimeout
                | End::TooLarge
                | End::InvalidUtf8
                | End::Malformed
                | End::Unsupported
                | End::Shutdown => {
                    let _ = self.write_queued(session).await;
                }
                // The queue is closed and was dropped: tell the client directly.
                End::SlowConsumer(why) => {
                    self.wire.discard_unsent();
                    let frame = error_frame(&SessionError::SlowConsumer(why.clone()), None, None);
                    let version = session.version().unwrap_or(Version::V1_2);
                    let _ = self.wire.send(&[Outgoing::Frame(frame)], version).await;
                }
                End::ClientClosed | End::ReadFailed(_) | End::WriteFailed(_) => {}
            }
            self.wire.close(end.close_reason()).await;
        })
        .await;
    }
}

/// The inbound side of a connection: the decoder, the rate, and the
/// deadline of a frame begun but not complete.
struct Reader {
    decoder: Decoder,
    rate: Option<TokenBucket>,
    /// When the frame now in the decoder's buffer must be complete.
    frame_deadline: Option<Instant>,
    frame_timeout: Duration,
    /// A message handled by the transport found no token: it takes the next one.
    owes_token: bool,
    /// SEND frames read (`stomphub_messages_received_total`).
    sends: prometheus::IntCounter,
}

/// What the reader does next.
enum Next {
    Read,
    /// Over the frame rate: decoding resumes at this instant, and nothing is
    /// read meanwhile, so TCP slows the client down and nothing is lost.
    Throttled(Instant),
    Close,
}

impl Reader {
    fn new(rules: &ConnectionRules, sends: prometheus::IntCounter) -> Self {
        Reader {
            sends,
            decoder: Decoder::new(rules.codec),
            rate: rules
                .frame_rate
                .map(|rate| TokenBucket::new(rate.per_second, rate.burst)),
            frame_deadline: None,
            frame_timeout: rules.frame_timeout,
            owes_token: false,
        }
    }

    /// A message the transport handled costs a token like a frame; with none
    /// left, reading waits for one, which then pays for the message (already
    /// handled by the transport).
    fn count_message(&mut self) -> Next {
        if let Some(bucket) = &mut self.rate {
            let now = Instant::now().into_std();
            if !bucket.take(now) {
                self.owes_token = true;
                let wait = bucket.wait(now).unwrap_or_default();
                return Next::Throttled(Instant::now() + wait);
            }
        }
        Next::Read
    }

    /// Decodes what is buffered (after `data`) and hands each frame to the
    /// session. Stops while the session's handlers are behind, so a fast
    /// sender is slowed, not cut off, and when the frame rate runs out.
    async fn receive(
        &mut self,
        session: &mut Session,
        data: &[u8],
        shutdown: &CancellationToken,
    ) -> Result<Next, End> {
        self.decoder.feed(data);
        if self.owes_token
            && let Some(bucket) = &mut self.rate
        {
            let now = Instant::now().into_std();
            if !bucket.take(now) {
                let wait = bucket.wait(now).unwrap_or_default();
                return Ok(Next::Throttled(Instant::now() + wait));
            }
            self.owes_token = false;
        }
        loop {
            if let Some(bucket) = &mut self.rate
                && let Some(wait) = bucket.wait(Instant::now().into_std())
            {
                return Ok(Next::Throttled(Instant::now() + wait));
            }
            match self.decoder.decode() {
                Ok(Some(Decoded::Frame(frame))) => {
                    self.frame_deadline = None;
                    if frame.command == Command::Send {
                        self.sends.inc();
                    }
                    if let Some(bucket) = &mut self.rate {
                        bucket.take(Instant::now().into_std());
                    }
                    if session.checks_credentials_of(&frame) {
                        // A password check takes tens of milliseconds: off the async workers.
                        let auth = session.authenticator();
                        let verdict = tokio::select! {
                            verdict = auth.connect_async(&frame.headers) => verdict,
                            _ = shutdown.cancelled() => return Err(End::Shutdown),
                        };
                        session.set_credentials(verdict);
                    }
                    // The application's say (`[proxy]`): this session reads
                    // nothing more until it answers, so its calls keep frame order.
                    if let Some(call) = session.app_call(&frame) {
                        let answer = tokio::select! {
                            answer = call => answer,
                            _ = shutdown.cancelled() => return Err(End::Shutdown),
                        };
                        session.set_app_answer(&frame, answer);
                    }
                    let mut flow = session.handle(frame);
                    // A SUBSCRIBE new to this node is live on every node before
                    // its RECEIPT, and before the session's next frame.
                    if flow == Flow::Continue && session.is_waiting_until_live() {
                        flow = tokio::select! {
                            flow = session.wait_until_live() => flow,
                            _ = shutdown.cancelled() => return Err(End::Shutdown),
                        };
                    }
                    if let Some(version) = session.version() {
                        self.decoder.set_version(version);
                    }
                    if flow == Flow::Close {
                        return Ok(Next::Close);
                    }
                    if session.is_waiting_for_app() {
                        tokio::select! {
                            _ = session.wait_for_app() => {}
                            _ = shutdown.cancelled() => return Err(End::Shutdown),
                        }
                    }
                }
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => {
                    if self.decoder.buffered_len() == 0 {
                        self.frame_deadline = None;
                    } else if self.frame_deadline.is_none() {
                        self.frame_deadline = Some(Instant::now() + self.frame_timeout);
                    }
                    return Ok(Next::Read);
                }
                Err(error) => {
                    session.fail(&SessionError::Decode(error));
                    return Ok(Next::Close);
                }
            }
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Answers a read error the client caused with an ERROR naming the limit.
fn refuse_read(session: &mut Session, error: WireError, rules: &ConnectionRules) -> End {
    match error {
        WireError::TooLarge { size, limit } => {
            // A transport allows some room over the frame limit (heart-beat
            // line ends) or keeps some under it (headers it adds); the user
            // is told the smaller, with the key that moves both.
            session.fail(&SessionError::MessageTooLarge {
                size,
                limit: limit.min(rules.codec.max_frame_size),
            });
            End::TooLarge
        }
        WireError::InvalidUtf8 => {
            session.fail(&SessionError::InvalidUtf8);
            End::InvalidUtf8
        }
        WireError::Malformed(why) => {
            session.fail(&SessionError::Malformed(why));
            End::Malformed
        }
        WireError::Unsupported(why) => {
            session.fail(&SessionError::Unsupported(why));
            End::Unsupported
        }
        WireError::Io(why) => End::ReadFailed(why),
    }
}

async fn serve<W: Wire>(
    session: &mut Session,
    writer: &mut Writer<W>,
    rules: &ConnectionRules,
    shutdown: &CancellationToken,
) -> End {
    let mut reader = Reader::new(rules, writer.meter.messages_received.clone());
    let opened = Instant::now();
    // Sessions a transport connected itself (SSE, plain endpoints) have no
    // CONNECT of the client's to time.
    let mut connected = session.version().is_some();
    let connect_deadline = opened + rules.connect_timeout;
    let keepalive = writer.wire.keepalive();
    let mut last_read = Instant::now();
    let mut throttled: Option<Instant> = None;
    loop {
        let heartbeat = session.heartbeat();
        // While throttled the driver reads nothing, so neither the client's
        // silence nor its unfinished frame is the client's fault.
        let read_deadline = match (throttled, session.version()) {
            (Some(_), _) => None,
            (None, None) => Some(connect_deadline),
            (None, Some(_)) => heartbeat.read_timeout().map(|limit| last_read + limit),
        };
        let frame_deadline = reader.frame_deadline.filter(|_| throttled.is_none());
        let heartbeat_due = heartbeat
            .send_every
            .map(|every| writer.last_stomp_write + every);
        let keepalive_due = keepalive.map(|every| writer.last_write + every);
        let send_deadline = earliest(heartbeat_due, keepalive_due);
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return End::Shutdown,
            _ = session.outbound().ready() => {
                match writer.write_queued(session).await {
                    Err(end) => return end,
                    Ok(Some(Closed::Requested | Closed::Ended)) => return End::Session,
                    Ok(_) => continue,
                }
            }
            _ = sleep_until_some(throttled) => {
                // The time spent not reading is not the client's: its silence
                // and its unfinished frame are judged afresh from here.
                throttled = None;
                last_read = Instant::now();
                reader.frame_deadline = None;
                reader.receive(session, &[], shutdown).await
            }
            received = writer.wire.receive(), if throttled.is_none() => {
                last_read = Instant::now();
                match received {
                    Ok(Received::Data(data)) => {
                        writer.meter.bytes_received.inc_by(data.as_ref().len() as u64);
                        reader.receive(session, data.as_ref(), shutdown).await
                    }
                    Ok(Received::Control) => continue,
                    Ok(Received::Message) => Ok(reader.count_message()),
                    Ok(Received::Closed) => return End::ClientClosed,
                    Err(error) => return refuse_read(session, error, rules),
                }
            }
            _ = sleep_until_some(read_deadline) => {
                let error = match session.version() {
                    None => SessionError::ConnectTimeout(rules.connect_timeout.as_millis()),
                    Some(_) => SessionError::HeartBeatTimeout(heartbeat.read_timeout().unwrap_or_default().as_millis()),
                };
                session.fail(&error);
                return End::Timeout;
            }
            _ = sleep_until_some(frame_deadline) => {
                session.fail(&SessionError::FrameTimeout(rules.frame_timeout.as_millis()));
                return End::FrameTimeout;
            }
            _ = sleep_until_some(send_deadline) => {
                // The STOMP heart-beat when it is due: it also keeps the transport alive.
                let keepalive_only = heartbeat_due.is_none_or(|due| Instant::now() < due);
                if let Err(end) = writer.heart_beat(keepalive_only).await {
                    return end;
                }
                continue;
            }
        };
        if !connected && session.version().is_some() {
            connected = true;
            writer.meter.connected_after(opened.elapsed());
        }
        match next {
            Ok(Next::Read) => {}
            Ok(Next::Throttled(until)) => {
                writer.meter.throttled.inc();
                throttled = Some(until);
            }
            Ok(Next::Close) => return End::Session,
            Err(end) => return end,
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;

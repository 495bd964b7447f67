//! One SockJS session over HTTP: what its requests share (messages waiting
//! for a receiving request, which request receives, the close frame once it
//! has ended), the registry of sessions by id, and the [`Wire`] the session
//! driver runs the STOMP session over.

use super::frame::{self, CloseFrame};
use crate::broker::outbound::Outgoing;
use crate::session::driver::{CloseReason, Received, Wire, WireError};
use crate::session::encode_outgoing;
use crate::stomp::Version;
use bytes::BytesMut;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};

/// What a client sent in one message, or the reason the session must end.
pub type Inbound = Result<String, WireError>;

/// The open SockJS sessions of the HTTP transports, by the client's session
/// id, and how many each client address holds.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<String, Arc<Shared>>,
    per_owner: HashMap<IpAddr, usize>,
}

/// Why a session could not be registered.
pub enum Registered {
    New,
    /// Another request registered the id first.
    Taken(Arc<Shared>),
    /// `limits.max_connections` sessions exist.
    Full,
    /// The client's address holds `limits.max_connections_per_ip` sessions.
    FullForClient,
}

/// How many sessions may exist, in all and per client address; 0 = no cap.
#[derive(Debug, Clone, Copy)]
pub struct SessionCaps {
    pub total: usize,
    pub per_client: usize,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // A panic elsewhere cannot leave the map half-updated: every update is one call.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Shared>> {
        self.lock().by_id.get(id).cloned()
    }

    /// Registers `shared` unless the id is taken or a cap is reached.
    pub fn insert(&self, shared: &Arc<Shared>, caps: SessionCaps) -> Registered {
        let mut sessions = self.lock();
        if let Some(existing) = sessions.by_id.get(&shared.id) {
            return Registered::Taken(existing.clone());
        }
        if caps.total != 0 && sessions.by_id.len() >= caps.total {
            return Registered::Full;
        }
        let held = sessions.per_owner.get(&shared.owner).copied().unwrap_or(0);
        if caps.per_client != 0 && held >= caps.per_client {
            return Registered::FullForClient;
        }
        sessions.per_owner.insert(shared.owner, held + 1);
        sessions.by_id.insert(shared.id.clone(), shared.clone());
        Registered::New
    }

    fn remove(&self, shared: &Arc<Shared>) {
        let mut sessions = self.lock();
        let registered = sessions
            .by_id
            .get(&shared.id)
            .is_some_and(|registered| Arc::ptr_eq(registered, shared));
        if registered {
            sessions.by_id.remove(&shared.id);
            if let Some(held) = sessions.per_owner.get_mut(&shared.owner) {
                *held -= 1;
                if *held == 0 {
                    sessions.per_owner.remove(&shared.owner);
                }
            }
        }
    }
}

/// The limits of one session's message cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub messages: usize,
    /// A message larger than this still goes, alone.
    pub bytes: usize,
}

/// The part of a session every request reaches.
#[derive(Debug)]
pub struct Shared {
    pub id: String,
    /// The address of the client that opened it: only requests from there
    /// reach it, so that knowing a session id is not enough to take it over.
    pub owner: IpAddr,
    state: Mutex<State>,
    /// Wakes the receiving request: messages, or the close.
    to_receiver: Notify,
    /// Wakes the wire: room in the cache, or a receiver came or went.
    to_wire: Notify,
    inbound: mpsc::Sender<Inbound>,
    cache: CacheLimits,
}

#[derive(Debug)]
struct State {
    /// Messages no request has taken yet, as JSON string literals.
    pending: Vec<String>,
    pending_bytes: usize,
    /// The request receiving now.
    receiver: Option<u64>,
    next_receiver: u64,
    /// Since when no request has been receiving.
    idle_since: Instant,
    opened: bool,
    closed: Option<CloseFrame>,
}

/// What the receiving request writes next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Open,
    /// An `a[...]` frame of everything that was waiting.
    Messages(String),
    Heartbeat,
    Closed(CloseFrame),
}

/// A request allowed to receive; [`Receiving::finish`] lets the next one
/// in. Dropped unfinished, the client aborted the request, which in SockJS
/// ends the session.
#[derive(Debug)]
pub struct Receiving {
    shared: Arc<Shared>,
    ticket: u64,
    finished: bool,
}

impl Shared {
    /// A new session and the receiving end of its inbound messages.
    pub fn new(
        id: String,
        owner: IpAddr,
        cache: CacheLimits,
    ) -> (Arc<Shared>, mpsc::Receiver<Inbound>) {
        // Small: a full channel holds the sending request, which slows the client.
        let (inbound, received) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            id,
            owner,
            state: Mutex::new(State {
                pending: Vec::new(),
                pending_bytes: 0,
                receiver: None,
                next_receiver: 0,
                idle_since: Instant::now(),
                opened: false,
                closed: None,
            }),
            to_receiver: Notify::new(),
            to_wire: Notify::new(),
            inbound,
            cache,
        });
        (shared, received)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets a request receive, unless one already does or the session has
    /// ended: then the close frame that request gets instead. An ended
    /// session still hands out what it had left to say first.
    pub fn receive(self: &Arc<Self>) -> Result<Receiving, CloseFrame> {
        let mut state = self.state();
        if state.receiver.is_some() {
            return Err(frame::ANOTHER_CONNECTION);
        }
        if let Some(closed) = state.closed
            && state.pending.is_empty()
        {
            return Err(closed);
        }
        let ticket = state.next_receiver;
        state.next_receiver += 1;
        state.receiver = Some(ticket);
        drop(state);
        self.to_wire.notify_one();
        Ok(Receiving {
            shared: self.clone(),
            ticket,
            finished: false,
        })
    }

    /// Hands a client's message to the session; `false` once it has ended.
    pub async fn deliver(&self, message: Inbound) -> bool {
        self.inbound.send(message).await.is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }
}

impl Receiving {
    /// Waits for the next thing to write: `Heartbeat` after `heartbeat` of nothing.
    pub async fn next(&self, heartbeat: Duration) -> Event {
        let deadline = Instant::now() + heartbeat;
        loop {
            let woken = self.shared.to_receiver.notified();
            {
                let mut state = self.shared.state();
                if !state.opened {
                    state.opened = true;
                    return Event::Open;
                }
                if !state.pending.is_empty() {
                    let mut out =
                        String::with_capacity(state.pending_bytes + state.pending.len() + 3);
                    frame::array_frame(state.pending.iter().map(String::as_str), &mut out);
                    state.pending.clear();
                    state.pending_bytes = 0;
                    drop(state);
                    self.shared.to_wire.notify_one();
                    return Event::Messages(out);
                }
                if let Some(closed) = state.closed {
                    return Event::Closed(closed);
                }
            }
            tokio::select! {
                _ = woken => {}
                _ = sleep_until(deadline) => return Event::Heartbeat,
            }
        }
    }
}

impl Receiving {
    /// The response said all it will; the next request may receive.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        if state.receiver == Some(self.ticket) {
            state.receiver = None;
            state.idle_since = Instant::now();
        }
        if !self.finished && state.closed.is_none() {
            state.closed = Some(frame::INTERRUPTED);
        }
        drop(state);
        self.shared.to_wire.notify_one();
    }
}

/// The close frame for how the driver ended the session: the protocol's
/// "Go away!" for a normal end and for shutdown, the WebSocket code otherwise.
pub fn close_frame(reason: Option<CloseReason>) -> CloseFrame {
    match reason {
        None => frame::GO_AWAY,
        Some(CloseReason { code, .. })
            if code == CloseReason::NORMAL || code == CloseReason::AWAY =>
        {
            frame::GO_AWAY
        }
        Some(CloseReason { code, reason }) => CloseFrame { code, reason },
    }
}

/// Appends `item`, encoded in `version`, to `out` as a JSON string literal
/// (`buf` is scratch space). SockJS carries text: a body that is not UTF-8
/// arrives with replacement characters.
pub fn push_literal(item: &Outgoing, version: Version, buf: &mut BytesMut, out: &mut String) {
    buf.clear();
    encode_outgoing(item, version, buf);
    frame::push_json_string(&String::from_utf8_lossy(buf), out);
}

/// Encodes a batch as JSON string literals, one per STOMP frame: the HTTP
/// transports' cache counts and hands out messages one by one.
pub fn encode_batch(batch: &[Outgoing], version: Version) -> Vec<String> {
    let mut buf = BytesMut::new();
    batch
        .iter()
        .map(|item| {
            let mut literal = String::new();
            push_literal(item, version, &mut buf, &mut literal);
            literal
        })
        .collect()
}

/// A STOMP session's side of a SockJS session over HTTP.
pub struct HttpWire {
    shared: Arc<Shared>,
    inbound: mpsc::Receiver<Inbound>,
    disconnect_delay: Duration,
    registry: Weak<Registry>,
}

impl HttpWire {
    pub fn new(
        shared: Arc<Shared>,
        inbound: mpsc::Receiver<Inbound>,
        disconnect_delay: Duration,
        registry: &Arc<Registry>,
    ) -> Self {
        HttpWire {
            shared,
            inbound,
            disconnect_delay,
            registry: Arc::downgrade(registry),
        }
    }

    /// When the session counts as abandoned: no request has received for the disconnect delay.
    fn abandoned_at(&self, state: &State) -> Option<Instant> {
        state
            .receiver
            .is_none()
            .then_some(state.idle_since + self.disconnect_delay)
    }

    /// Queues `messages` for the receiving requests, waiting while the cache is full.
    async fn queue(&mut self, messages: Vec<String>) -> Result<(), WireError> {
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            let woken = self.shared.to_wire.notified();
            let abandoned_at = {
                let mut state = self.shared.state();
                if state.closed.is_some() {
                    return Err(WireError::new("the session is closed"));
                }
                let limits = self.shared.cache;
                let before = state.pending.len();
                while let Some(message) = messages.peek() {
                    let fits = state.pending.is_empty()
                        || (state.pending.len() < limits.messages
                            && state.pending_bytes + message.len() <= limits.bytes);
                    if !fits {
                        break;
                    }
                    if let Some(message) = messages.next() {
                        state.pending_bytes += message.len();
                        state.pending.push(message);
                    }
                }
                if state.pending.len() > before {
                    self.shared.to_receiver.notify_one();
                }
                self.abandoned_at(&state)
            };
            if messages.peek().is_none() {
                break;
            }
            tokio::select! {
                _ = woken => {}
                _ = sleep_until_some(abandoned_at) => {
                    return Err(WireError::new(format!(
                        "no request received for sockjs.disconnect_delay_ms = {} with messages waiting",
                        self.disconnect_delay.as_millis()
                    )));
                }
            }
        }
        Ok(())
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Wire for HttpWire {
    type Chunk = String;

    async fn receive(&mut self) -> Result<Received<String>, WireError> {
        loop {
            let woken = self.shared.to_wire.notified();
            let abandoned_at = {
                let state = self.shared.state();
                if state.closed.is_some() {
                    // A receiving request was aborted: the client is gone.
                    return Ok(Received::Closed);
                }
                self.abandoned_at(&state)
            };
            tokio::select! {
                message = self.inbound.recv() => {
                    return match message {
                        Some(Ok(message)) => Ok(Received::Data(message)),
                        Some(Err(error)) => Err(error),
                        None => Ok(Received::Closed),
                    };
                }
                _ = sleep_until_some(abandoned_at) => {
                    let state = self.shared.state();
                    if self.abandoned_at(&state).is_some_and(|at| at <= Instant::now()) {
                        return Ok(Received::Closed);
                    }
                }
                _ = woken => {}
            }
        }
    }

    async fn send(&mut self, batch: &[Outgoing], version: Version) -> Result<(), WireError> {
        self.queue(encode_batch(batch, version)).await
    }

    async fn send_heartbeat(&mut self) -> Result<(), WireError> {
        self.queue(vec![r#""\n""#.to_owned()]).await
    }

    fn discard_unsent(&mut self) {
        let mut state = self.shared.state();
        state.pending.clear();
        state.pending_bytes = 0;
    }

    async fn close(&mut self, reason: Option<CloseReason>) {
        // An interrupted session keeps saying so.
        self.shared
            .state()
            .closed
            .get_or_insert(close_frame(reason));
        self.shared.to_receiver.notify_one();
    }
}

impl Drop for HttpWire {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            if state.closed.is_none() {
                state.closed = Some(frame::GO_AWAY);
            }
        }
        self.shared.to_receiver.notify_one();
        // Requests for the ended session get what was left, then its close
        // frame, for one more disconnect delay; then the id is forgotten.
        let shared = self.shared.clone();
        let registry = self.registry.clone();
        let delay = self.disconnect_delay;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(registry) = registry.upgrade() {
                    registry.remove(&shared);
                }
            });
        } else if let Some(registry) = registry.upgrade() {
            registry.remove(&shared);
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

//! Session lifecycle events (Spring's `SessionConnectEvent` and friends) and their listeners.

use super::session_info::SessionInfo;
use crate::stomp::Headers;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// CONNECT received, before CONNECTED is sent.
    Connect,
    /// CONNECTED sent.
    Connected,
    Subscribe,
    Unsubscribe,
    /// The session ended for any reason: exactly once per connected session.
    Disconnect,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub session: Arc<SessionInfo>,
    /// For Subscribe and Unsubscribe.
    pub destination: Option<String>,
    pub subscription: Option<String>,
    /// The frame's headers (CONNECT, SUBSCRIBE, UNSUBSCRIBE); empty for the others.
    pub headers: Headers,
    /// For Disconnect: why the session ended.
    pub reason: Option<String>,
}

pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Listeners run synchronously on the session's task, in registration order;
/// one that needs to do slow work should hand it to a task of its own.
#[derive(Clone, Default)]
pub struct Events {
    listeners: Vec<Listener>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Events({} listeners)", self.listeners.len())
    }
}

impl Events {
    pub fn add(&mut self, listener: Listener) {
        self.listeners.push(listener);
    }

    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// Builds the event only when someone listens.
    pub fn emit(&self, build: impl FnOnce() -> Event) {
        if self.listeners.is_empty() {
            return;
        }
        let event = build();
        for listener in &self.listeners {
            listener(&event);
        }
    }
}

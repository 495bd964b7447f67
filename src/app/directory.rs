//! Every connected session, for the sessions and stats APIs.

use super::session_info::SessionInfo;
use crate::broker::outbound::{Outbound, Outgoing};
use crate::broker::registry::SessionId;
use crate::stomp::Frame;
use crate::stomp::encoded_len_hint;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

/// A session and a handle to end it.
type Entry = (Arc<SessionInfo>, Weak<Outbound>);

#[derive(Debug, Default)]
pub struct SessionDirectory {
    sessions: RwLock<HashMap<SessionId, Entry>>,
}

impl SessionDirectory {
    pub fn add(&self, info: Arc<SessionInfo>, outbound: Weak<Outbound>) {
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        map.insert(info.numeric_id, (info, outbound));
    }

    /// Ends the session whose client-visible id is `id` with an ERROR saying why;
    /// false when there is no such session.
    pub fn close(&self, id: &str, reason: &str) -> bool {
        let outbound = {
            let map = self.sessions.read().unwrap_or_else(|p| p.into_inner());
            map.values()
                .find(|(info, _)| info.id == id)
                .and_then(|(_, outbound)| outbound.upgrade())
        };
        let Some(outbound) = outbound else {
            return false;
        };
        let frame = Frame::error(format!("closed by the server: {reason}"), None, None);
        let size = encoded_len_hint(&frame);
        outbound.push(Outgoing::Frame(frame), size);
        outbound.close_after_flush();
        true
    }

    pub fn remove(&self, session: SessionId) {
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        map.remove(&session);
    }

    pub fn len(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot, oldest session first.
    pub fn list(&self) -> Vec<Arc<SessionInfo>> {
        let map = self.sessions.read().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = map.values().map(|(info, _)| info.clone()).collect();
        list.sort_by_key(|info| info.numeric_id);
        list
    }
}

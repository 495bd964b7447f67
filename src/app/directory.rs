//! Every connected session, for the sessions and stats APIs.

use super::session_info::SessionInfo;
use crate::broker::registry::SessionId;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct SessionDirectory {
    sessions: RwLock<HashMap<SessionId, Arc<SessionInfo>>>,
}

impl SessionDirectory {
    pub fn add(&self, info: Arc<SessionInfo>) {
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        map.insert(info.numeric_id, info);
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
        let mut list: Vec<_> = map.values().cloned().collect();
        list.sort_by_key(|info| info.numeric_id);
        list
    }
}

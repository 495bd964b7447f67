//! Which sessions belong to which user, for user destinations.

use crate::broker::registry::SessionId;
use crate::cluster::Cluster;
use crate::cluster::channels::Channel;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Sessions of each user on this node. With a cluster, a user's first session
/// here subscribes this node to that user's channel, and the last one leaves it.
#[derive(Debug, Default)]
pub struct UserRegistry {
    sessions: RwLock<HashMap<String, Vec<(SessionId, String)>>>,
    cluster: Option<Arc<Cluster>>,
}

impl UserRegistry {
    pub fn new(cluster: Option<Arc<Cluster>>) -> Self {
        UserRegistry {
            sessions: RwLock::default(),
            cluster,
        }
    }

    pub fn add(&self, user: &str, session: SessionId, session_id: &str) {
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(user.to_owned()).or_default();
        list.push((session, session_id.to_owned()));
        if list.len() == 1
            && let Some(cluster) = &self.cluster
        {
            cluster.interest(Channel::User(user.to_owned()), 1);
        }
    }

    pub fn remove(&self, user: &str, session: SessionId) {
        let mut map = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = map.get_mut(user) {
            list.retain(|(id, _)| *id != session);
            if list.is_empty() {
                map.remove(user);
                if let Some(cluster) = &self.cluster {
                    cluster.interest(Channel::User(user.to_owned()), -1);
                }
            }
        }
    }

    /// Waits until messages sent to `user` from other nodes reach this node.
    pub fn until_live(&self, user: &str) -> Option<crate::broker::remote::LiveWait> {
        self.cluster
            .as_ref()?
            .until_live(Channel::User(user.to_owned()))
    }

    /// Session ids (as clients see them) of `user`'s sessions.
    pub fn sessions_of(&self, user: &str) -> Vec<String> {
        let map = self.sessions.read().unwrap_or_else(|p| p.into_inner());
        map.get(user)
            .map(|list| list.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default()
    }

    pub fn user_count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_come_and_go_per_user() {
        let users = UserRegistry::default();
        users.add("alice", 1, "00000001");
        users.add("alice", 2, "00000002");
        users.add("bob", 3, "00000003");
        assert_eq!(users.sessions_of("alice"), ["00000001", "00000002"]);
        users.remove("alice", 1);
        assert_eq!(users.sessions_of("alice"), ["00000002"]);
        users.remove("alice", 2);
        assert!(users.sessions_of("alice").is_empty());
        assert_eq!(users.user_count(), 1);
    }
}

//! What the application knows about a connected session: id, user, handshake
//! attributes, and its subscriptions (for events and the sessions API).

use crate::broker::registry::SessionId;
use crate::security::Identity;
use crate::security::acl::Subject;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

/// Recorded at the handshake by the interceptor chain.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub session: SessionId,
    /// Spring's session attributes; the built-in interceptor records `sessionId`,
    /// `remoteAddress`, `userAgent` and `origin`.
    pub attributes: BTreeMap<String, String>,
    /// The principal, when an interceptor or a handshake token resolved one.
    pub user: Option<String>,
    /// The principal's roles, for `[[acl]]` rules.
    pub roles: Vec<String>,
    /// `user` is a name the client claimed, not one an interceptor or a token proved
    /// (an SSE user stream on a server where names are claims).
    pub user_is_claimed: bool,
    pub remote: Option<SocketAddr>,
    /// Headers of the opening HTTP request that `[proxy] http_headers` names
    /// (lower-case), kept for the application's connect call.
    pub http_headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct SessionInfo {
    pub numeric_id: SessionId,
    /// The id sent in CONNECTED and carried by every event.
    pub id: String,
    pub user: Option<String>,
    pub roles: Vec<String>,
    /// The user was proven (password, token, interceptor), not just claimed by `login`.
    pub authenticated: bool,
    pub attributes: BTreeMap<String, String>,
    pub remote: Option<SocketAddr>,
    /// What the application's connect answer (`[proxy] connect`) asked to keep
    /// with the session; sent back in every later call.
    pub data: Option<std::sync::Arc<serde_json::Value>>,
    pub connected_at: SystemTime,
    /// (subscription id, destination as the client sent it). A list, not a
    /// map: a session has a few, and a map's first node costs an idle
    /// connection half a KiB for one entry.
    subscriptions: Mutex<Vec<(String, String)>>,
}

/// Formats a numeric session id the way clients see it.
pub fn session_id_text(id: SessionId) -> String {
    format!("{id:08x}")
}

impl SessionInfo {
    pub fn new(handshake: &Handshake, identity: Identity) -> Self {
        SessionInfo::with_attributes(handshake, identity, handshake.attributes.clone())
    }

    /// As [`SessionInfo::new`], with the attributes handed over instead of
    /// copied: a session keeps one copy of them for its life, not two.
    pub(crate) fn with_attributes(
        handshake: &Handshake,
        identity: Identity,
        attributes: BTreeMap<String, String>,
    ) -> Self {
        SessionInfo {
            numeric_id: handshake.session,
            id: session_id_text(handshake.session),
            user: identity.user,
            roles: identity.roles,
            authenticated: identity.authenticated,
            attributes,
            remote: handshake.remote,
            data: None,
            connected_at: SystemTime::now(),
            subscriptions: Mutex::new(Vec::new()),
        }
    }

    /// Who the session is, as access rules see it.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            user: self.user.as_deref(),
            roles: &self.roles,
            authenticated: self.authenticated,
        }
    }

    fn subscriptions_lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a subscription; the session has already refused a duplicate id.
    pub(crate) fn add_subscription(&self, id: &str, destination: &str) {
        self.subscriptions_lock()
            .push((id.to_owned(), destination.to_owned()));
    }

    pub(crate) fn remove_subscription(&self, id: &str) {
        self.subscriptions_lock().retain(|(known, _)| known != id);
    }

    /// `(subscription id, destination)` pairs, by id.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        let mut subscriptions = self.subscriptions_lock().clone();
        subscriptions.sort();
        subscriptions
    }
}

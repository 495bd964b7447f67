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
    /// Subscription id -> destination as the client sent it.
    subscriptions: Mutex<BTreeMap<String, String>>,
}

/// Formats a numeric session id the way clients see it.
pub fn session_id_text(id: SessionId) -> String {
    format!("{id:08x}")
}

impl SessionInfo {
    pub fn new(handshake: &Handshake, identity: Identity) -> Self {
        SessionInfo {
            numeric_id: handshake.session,
            id: session_id_text(handshake.session),
            user: identity.user,
            roles: identity.roles,
            authenticated: identity.authenticated,
            attributes: handshake.attributes.clone(),
            remote: handshake.remote,
            data: None,
            connected_at: SystemTime::now(),
            subscriptions: Mutex::new(BTreeMap::new()),
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

    fn subscriptions_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add_subscription(&self, id: &str, destination: &str) {
        self.subscriptions_lock()
            .insert(id.to_owned(), destination.to_owned());
    }

    pub(crate) fn remove_subscription(&self, id: &str) {
        self.subscriptions_lock().remove(id);
    }

    /// `(subscription id, destination)` pairs.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.subscriptions_lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

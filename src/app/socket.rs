//! Handlers of plain WebSocket endpoints in the library: javax.websocket's
//! `@OnOpen`, `@OnMessage`, `@OnClose` and `@OnError` as a trait, and a
//! [`Socket`] handle that sends to this socket, to a user's sockets, or to
//! every socket of the endpoint.

use super::AppRuntime;
use super::handler::Payload;
use super::template::TemplateError;
use crate::stomp::Headers;
use std::collections::HashMap;
use std::sync::Arc;

/// Every plain socket of an endpoint with a handler also subscribes to this
/// user destination (`/user/queue/socket`): what a handler sends to a socket
/// or a user goes there.
pub const SOCKET_QUEUE: &str = "/queue/socket";

/// The code behind a plain WebSocket endpoint, beside or instead of its
/// `on_open` and `reply` texts. Callbacks run on the socket's task, in order;
/// keep them short and hand long work to a spawned task with a cloned [`Socket`].
pub trait SocketHandler: Send + Sync + 'static {
    fn on_open(&self, _socket: &Socket) {}
    fn on_message(&self, _socket: &Socket, _text: &str) {}
    fn on_close(&self, _socket: &Socket) {}
    /// The socket broke a rule (a binary or oversized message) or its connection failed.
    fn on_error(&self, _socket: &Socket, _error: &str) {}
}

/// One open plain socket, as its handler sees it.
#[derive(Clone)]
pub struct Socket {
    /// The session id, as `/api/sessions` and events show it.
    pub session: String,
    pub user: Option<String>,
    /// The endpoint's configured path (`/socket/{id}`).
    pub endpoint: String,
    /// The path variables (`id` = `7`): javax.websocket's `@PathParam`.
    pub vars: HashMap<String, String>,
    app: Arc<AppRuntime>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("session", &self.session)
            .field("user", &self.user)
            .field("endpoint", &self.endpoint)
            .field("vars", &self.vars)
            .finish_non_exhaustive()
    }
}

impl Socket {
    pub(crate) fn new(
        session: String,
        user: Option<String>,
        endpoint: String,
        vars: HashMap<String, String>,
        app: Arc<AppRuntime>,
    ) -> Self {
        Socket {
            session,
            user,
            endpoint,
            vars,
            app,
        }
    }

    /// To this socket (`session.getBasicRemote().sendText`).
    pub fn send(&self, text: &str) -> Result<usize, TemplateError> {
        self.app.template.send_to_session(
            &self.session,
            SOCKET_QUEUE,
            &Headers::new(),
            Payload::text(text),
        )
    }

    /// To every socket of `user` on endpoints with a handler, on every node
    /// (the seeds' `sendToMessageById`).
    pub fn send_to_user(&self, user: &str, text: &str) -> Result<usize, TemplateError> {
        self.app
            .template
            .send_to_user(user, SOCKET_QUEUE, &Headers::new(), Payload::text(text))
    }

    /// To every socket of this endpoint on this node (the seeds' `broadcastInfo`);
    /// for every node, subscribe the endpoint to a broker destination and publish there.
    pub fn broadcast(&self, text: &str) -> Result<usize, TemplateError> {
        let mut deliveries = 0;
        for session in self.app.directory.list() {
            if session.attributes.get("endpoint") == Some(&self.endpoint) {
                deliveries += self.app.template.send_to_session(
                    &session.id,
                    SOCKET_QUEUE,
                    &Headers::new(),
                    Payload::text(text),
                )?;
            }
        }
        Ok(deliveries)
    }

    /// Open sockets of this endpoint on this node (`getOnlineCount()`).
    pub fn online(&self) -> usize {
        self.app
            .directory
            .list()
            .iter()
            .filter(|session| session.attributes.get("endpoint") == Some(&self.endpoint))
            .count()
    }
}

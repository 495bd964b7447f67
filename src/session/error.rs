//! Protocol errors a client can cause; each ends its session with an ERROR frame.

use crate::broker::destination::DestinationError;
use crate::security::AuthError;
use crate::security::acl::AccessDenied;
use crate::stomp::{Command, DecodeError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("expected CONNECT or STOMP as the first frame, got {0}")]
    NotConnected(Command),
    #[error("already connected: CONNECT may be sent only once")]
    AlreadyConnected,
    #[error("{command} frame requires a '{header}' header")]
    MissingHeader {
        command: Command,
        header: &'static str,
    },
    #[error("none of the offered versions {offered:?} is supported (supported: 1.0, 1.1, 1.2)")]
    UnsupportedVersion { offered: String },
    #[error("invalid heart-beat header {0:?}: expected two comma-separated millisecond counts")]
    BadHeartBeat(String),
    #[error("{0} is a server frame; clients may not send it")]
    ServerCommand(Command),
    #[error("subscription id {0:?} is already in use in this session")]
    DuplicateSubscription(String),
    #[error("unknown ack mode {0:?}: expected auto, client or client-individual")]
    BadAckMode(String),
    #[error("too many subscriptions: a session may hold {0}")]
    TooManySubscriptions(usize),
    #[error("transaction {0:?} is already open")]
    DuplicateTransaction(String),
    #[error("unknown transaction {0:?}")]
    UnknownTransaction(String),
    #[error("too many open transactions: a session may hold {0}")]
    TooManyTransactions(usize),
    #[error("transaction {transaction:?} holds more than {limit} bytes")]
    TransactionTooLarge { transaction: String, limit: usize },
    #[error("invalid destination: {0}")]
    Destination(#[from] DestinationError),
    #[error(
        "destination {destination:?} has no configured prefix (broker: {broker}; application: {app})"
    )]
    UnknownPrefix {
        destination: String,
        broker: String,
        app: String,
    },
    #[error("no handler for application destination {0:?}")]
    NoHandler(String),
    #[error("SEND destination {0:?} is a pattern; patterns are only for SUBSCRIBE")]
    PatternSend(String),
    #[error("no heart-beat or frame from the client for {0} ms")]
    HeartBeatTimeout(u128),
    #[error("user destination {0:?} must look like /user/{{name}}/queue/x")]
    BadUserDestination(String),
    #[error("{0}")]
    Template(String),
    #[error("invalid since header {0:?}: expected a position from a MESSAGE's seq header (or 0)")]
    BadSince(String),
    #[error("no subscribe mapping for application destination {0:?}")]
    NoSubscribeMapping(String),
    #[error("slow consumer: {0}")]
    SlowConsumer(String),
    #[error("no CONNECT frame within {0} ms of the handshake")]
    ConnectTimeout(u128),
    #[error("{command} for unknown message {id:?}: {why}")]
    UnknownAck {
        command: Command,
        id: String,
        why: &'static str,
    },
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    AccessDenied(#[from] AccessDenied),
    #[error("message too large: {size} bytes, over the {limit} bytes of limits.max_frame_size")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("a WebSocket text message was not valid UTF-8")]
    InvalidUtf8,
    #[error("a frame was begun but not completed within {0} ms (limits.frame_timeout_ms)")]
    FrameTimeout(u128),
    #[error("malformed transport message: {0}")]
    Malformed(String),
    #[error("unsupported message: {0}")]
    Unsupported(String),
    /// The user's application (`[proxy]`) refused the frame; its own words.
    #[error("{message}")]
    AppRefused {
        message: String,
        code: Option<String>,
    },
    /// A call to the user's application failed: down, slow, or a garbled answer.
    #[error("{0}")]
    App(#[from] crate::proxy::ProxyError),
    /// A frame the application must judge reached the session without its answer.
    #[error("{key}: the application was not asked about this frame: {why}")]
    AppNotAsked { key: &'static str, why: String },
    #[error("SUBSCRIBE destination {0:?} is a pattern; application destinations take none")]
    PatternAppSubscription(String),
    /// The cluster could not make a subscription live on every node in time.
    #[error("{0}")]
    NotLive(#[from] crate::broker::remote::NotLive),
}

impl SessionError {
    /// The `reason` label of a policy error in `stomphub_refusals_total`; `None`
    /// for protocol mistakes and for slow consumers (counted on their own).
    pub fn policy_reason(&self) -> Option<&'static str> {
        Some(match self {
            SessionError::TooManySubscriptions(_) => "max-subscriptions",
            SessionError::TooManyTransactions(_) => "max-transactions",
            SessionError::TransactionTooLarge { .. } => "max-transaction-bytes",
            SessionError::ConnectTimeout(_) => "connect-timeout",
            SessionError::HeartBeatTimeout(_) => "heart-beat-timeout",
            SessionError::Auth(_) => "authentication",
            SessionError::AccessDenied(_) => "acl",
            SessionError::MessageTooLarge { .. } => "max-frame-size",
            SessionError::FrameTimeout(_) => "frame-timeout",
            SessionError::AppRefused { .. } => "application-refused",
            SessionError::App(_) | SessionError::AppNotAsked { .. } => "application-failed",
            SessionError::NotLive(_) => "cluster-not-live",
            SessionError::Decode(error) if error.is_limit() => "frame-limits",
            _ => return None,
        })
    }

    /// Errors that enforce a limit or a security rule, as opposed to protocol
    /// mistakes: operators want these in the log at WARN, with the session.
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            SessionError::TooManySubscriptions(_)
                | SessionError::TooManyTransactions(_)
                | SessionError::TransactionTooLarge { .. }
                | SessionError::SlowConsumer(_)
                | SessionError::ConnectTimeout(_)
                | SessionError::HeartBeatTimeout(_)
                | SessionError::Auth(_)
                | SessionError::AccessDenied(_)
                | SessionError::MessageTooLarge { .. }
                | SessionError::FrameTimeout(_)
                | SessionError::AppRefused { .. }
                | SessionError::App(_)
                | SessionError::AppNotAsked { .. }
                | SessionError::NotLive(_)
        ) || matches!(self, SessionError::Decode(error) if error.is_limit())
    }
}

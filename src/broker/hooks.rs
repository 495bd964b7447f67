//! What the broker lets others observe or change: every published message
//! passes its publish hooks once, before fan-out.

use crate::stomp::Headers;
use bytes::Bytes;

/// A message leaving the broker towards subscribers.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub destination: String,
    pub headers: Headers,
    pub body: Bytes,
}

/// Sees every published message once before fan-out; `None` drops it.
pub trait PublishHook: Send + Sync {
    fn outbound(&self, message: OutboundMessage) -> Option<OutboundMessage>;
}

//! For the fuzz targets only, not a stable API: a hub built from a
//! configuration as the server builds it, with sessions opened on it without a
//! transport, and the decoders that face untrusted bytes.

use crate::app::AppBuilder;
use crate::app::session_info::Handshake;
use crate::config::{Config, ConfigError};
use crate::hub::Hub;
use std::sync::Arc;

pub use crate::cluster::envelope::decode as decode_cluster_message;
pub use crate::session::{Flow, Session, SessionError, encode_outgoing};

/// The shared state of a server that does not listen.
pub struct TestHub(Arc<Hub>);

impl TestHub {
    pub fn new(config: &Config, app: AppBuilder) -> Result<TestHub, ConfigError> {
        Ok(TestHub(crate::server::build_hub(config, app)?))
    }

    /// A session as a transport would open it, numbered `id`.
    pub fn open_session(&self, id: u64) -> Session {
        let handshake = Handshake {
            session: id,
            ..Handshake::default()
        };
        self.0.sessions.open(handshake)
    }

    /// Subscriptions still registered in the broker, over all destinations.
    pub fn subscriptions(&self) -> usize {
        let counts = self.0.broker().subscription_counts();
        counts.iter().map(|(_, count)| count).sum()
    }

    /// Sessions still listed in the session directory.
    pub fn listed_sessions(&self) -> usize {
        self.0.app.directory.len()
    }

    /// Bytes still queued for all sessions together.
    pub fn queued_bytes(&self) -> usize {
        self.0.sessions.queued().used()
    }
}

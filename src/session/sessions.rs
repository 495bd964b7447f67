//! Opens sessions: the settings every session of a server shares, the ids the
//! handshakes hand out, and the queue budget all outbound queues draw on.

use super::driver::ConnectionRules;
use super::{Session, SessionConfig};
use crate::app::AppRuntime;
use crate::app::session_info::Handshake;
use crate::broker::outbound::{Outbound, QueueBudget, QueueLimits};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Sessions {
    app: Arc<AppRuntime>,
    config: Arc<SessionConfig>,
    rules: ConnectionRules,
    queue_limits: QueueLimits,
    /// Bytes queued for all sessions together, capped by `limits.max_queued_bytes_total`.
    queued: Arc<QueueBudget>,
    next_id: AtomicU64,
}

impl Sessions {
    pub fn new(
        app: Arc<AppRuntime>,
        config: SessionConfig,
        rules: ConnectionRules,
        queue_limits: QueueLimits,
        max_queued_bytes_total: usize,
    ) -> Self {
        Sessions {
            app,
            config: Arc::new(config),
            rules,
            queue_limits,
            queued: QueueBudget::new(max_queued_bytes_total),
            next_id: AtomicU64::new(1),
        }
    }

    /// A fresh session number for a handshake.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn open(&self, handshake: Handshake) -> Session {
        let outbound = Arc::new(Outbound::with_budget(
            self.queue_limits,
            self.queued.clone(),
        ));
        Session::new(handshake, self.app.clone(), outbound, self.config.clone())
    }

    pub fn rules(&self) -> &ConnectionRules {
        &self.rules
    }

    pub fn queue_limits(&self) -> QueueLimits {
        self.queue_limits
    }

    pub fn queued(&self) -> &QueueBudget {
        &self.queued
    }
}

//! Opens sessions: the settings every session of a server shares, the ids the
//! handshakes hand out, and the queue budget all outbound queues draw on.

use super::driver::ConnectionRules;
use super::{Session, SessionConfig};
use crate::app::AppRuntime;
use crate::app::session_info::Handshake;
use crate::broker::outbound::{Outbound, QueueBudget, QueueLimits};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The limits a new session runs with; a reload replaces them for the
/// sessions opened after it, and those already open keep theirs.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub config: Arc<SessionConfig>,
    pub rules: Arc<ConnectionRules>,
    pub queue_limits: QueueLimits,
}

#[derive(Debug)]
pub struct Sessions {
    app: Arc<AppRuntime>,
    limits: ArcSwap<SessionLimits>,
    /// Bytes queued for all sessions together, capped by `limits.max_queued_bytes_total`.
    queued: Arc<QueueBudget>,
    next_id: AtomicU64,
}

impl Sessions {
    pub fn new(app: Arc<AppRuntime>, limits: SessionLimits, max_queued_bytes_total: usize) -> Self {
        Sessions {
            app,
            limits: ArcSwap::from_pointee(limits),
            queued: QueueBudget::new(max_queued_bytes_total),
            next_id: AtomicU64::new(1),
        }
    }

    /// A fresh session number for a handshake.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn open(&self, handshake: Handshake) -> Session {
        let limits = self.limits.load();
        let outbound = Arc::new(Outbound::with_budget(
            limits.queue_limits,
            self.queued.clone(),
        ));
        Session::new(handshake, self.app.clone(), outbound, limits.config.clone())
    }

    /// The rules a connection opened now runs with.
    pub fn rules(&self) -> Arc<ConnectionRules> {
        self.limits.load().rules.clone()
    }

    pub fn queue_limits(&self) -> QueueLimits {
        self.limits.load().queue_limits
    }

    /// For the sessions opened from now on.
    pub fn replace_limits(&self, limits: SessionLimits) {
        self.limits.store(Arc::new(limits));
    }

    pub fn queued(&self) -> &QueueBudget {
        &self.queued
    }
}

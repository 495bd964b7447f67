//! A session's outbound queue: bounded in bytes, filled by any publisher without
//! waiting, drained in batches by the connection's writer. Over its limit, or
//! when all queues together pass the server's [`QueueBudget`] while this one is
//! behind, the queue closes itself (slow-consumer policy) instead of ever
//! blocking a publisher.

use crate::stomp::{Frame, PreparedMessage};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Bytes queued across every session of a server, against one cap.
#[derive(Debug)]
pub struct QueueBudget {
    limit: usize,
    used: AtomicUsize,
}

impl QueueBudget {
    pub fn new(limit: usize) -> Arc<QueueBudget> {
        Arc::new(QueueBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    fn unlimited() -> Arc<QueueBudget> {
        QueueBudget::new(usize::MAX)
    }

    /// Takes `size` bytes. Past the cap only a queue that was empty may still
    /// grow (by this one message): it is keeping up, the full ones are not.
    fn reserve(&self, size: usize, queue_was_empty: bool) -> bool {
        let before = self.used.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > self.limit && !queue_was_empty {
            self.used.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, size: usize) {
        self.used.fetch_sub(size, Ordering::Relaxed);
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Which cap a slow consumer went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    pub limit: usize,
    /// The server-wide cap rather than the session's own.
    pub global: bool,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.global {
            write!(
                f,
                "the server's queued bytes went over limits.max_queued_bytes_total = {} while this session was behind",
                self.limit
            )
        } else {
            write!(f, "outbound queue went over {} bytes", self.limit)
        }
    }
}

/// Something to write to the client.
#[derive(Debug)]
pub enum Outgoing {
    /// A broker message for one subscription; encoded by the writer in the session's version.
    Delivery {
        message: Arc<PreparedMessage>,
        subscription: Arc<str>,
        /// Whether the client acknowledges (1.2 then needs an `ack` header).
        needs_ack: bool,
    },
    /// A control frame: CONNECTED, RECEIPT, ERROR.
    Frame(Frame),
    /// A subscription asked for history that is no longer kept (or never was).
    HistoryGone {
        subscription: Arc<str>,
        destination: Arc<str>,
    },
}

/// Why the queue stopped accepting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The client did not read fast enough; queued bytes went over a limit.
    Overflow(Overflow),
    /// The session ended; later pushes are dropped silently.
    Ended,
    /// The application asked to end the session: write what is queued, then close.
    Requested,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<(Outgoing, usize)>,
    bytes: usize,
    closed: Option<Closed>,
}

#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    ready: Notify,
    limit_bytes: usize,
    budget: Arc<QueueBudget>,
}

impl Outbound {
    /// A queue with only its own limit.
    pub fn new(limit_bytes: usize) -> Self {
        Outbound::with_budget(limit_bytes, QueueBudget::unlimited())
    }

    /// A queue that also draws on the server-wide `budget`.
    pub fn with_budget(limit_bytes: usize, budget: Arc<QueueBudget>) -> Self {
        Outbound {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            limit_bytes,
            budget,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few field updates that cannot leave the
        // state half-changed, so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` of about `size` bytes. Never waits. Returns false when the
    /// queue is closed, including when this push is the one that overflowed it.
    pub fn push(&self, item: Outgoing, size: usize) -> bool {
        let mut state = self.state();
        if state.closed.is_some() {
            return false;
        }
        let was_empty = state.items.is_empty();
        let overflow = if state.bytes + size > self.limit_bytes {
            Some(Overflow {
                limit: self.limit_bytes,
                global: false,
            })
        } else if !self.budget.reserve(size, was_empty) {
            Some(Overflow {
                limit: self.budget.limit(),
                global: true,
            })
        } else {
            None
        };
        if let Some(overflow) = overflow {
            // Dropping what is queued frees the memory at once; the session
            // ends with an ERROR, so those messages could not be delivered anyway.
            state.items.clear();
            self.budget.release(std::mem::take(&mut state.bytes));
            state.closed = Some(Closed::Overflow(overflow));
            drop(state);
            self.ready.notify_one();
            return false;
        }
        state.bytes += size;
        state.items.push_back((item, size));
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    /// Moves everything queued into `batch`, oldest first; reports closure.
    pub fn drain_into(&self, batch: &mut Vec<Outgoing>) -> Option<Closed> {
        let mut state = self.state();
        batch.extend(state.items.drain(..).map(|(item, _)| item));
        self.budget.release(std::mem::take(&mut state.bytes));
        state.closed.clone()
    }

    /// Resolves when something was pushed or the queue closed since the last drain.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Ends the session once what is queued now has been written.
    pub fn close_after_flush(&self) {
        let mut state = self.state();
        if state.closed.is_none() {
            state.closed = Some(Closed::Requested);
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Stops accepting; called when the session ends so that stray publishes are dropped.
    pub fn close(&self) {
        let mut state = self.state();
        state.items.clear();
        self.budget.release(std::mem::take(&mut state.bytes));
        state.closed.get_or_insert(Closed::Ended);
    }

    /// The overflow that closed the queue, if one did.
    pub fn overflow(&self) -> Option<Overflow> {
        match self.state().closed {
            Some(Closed::Overflow(overflow)) => Some(overflow),
            _ => None,
        }
    }

    /// Re-arms [`Outbound::ready`] for a waiter that consumed a wake-up it could not act on.
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    pub fn queued_bytes(&self) -> usize {
        self.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::Command;

    fn frame() -> Outgoing {
        Outgoing::Frame(Frame::new(Command::Receipt))
    }

    #[test]
    fn drains_in_order_and_resets_the_byte_count() {
        let queue = Outbound::new(100);
        assert!(queue.push(frame(), 40));
        assert!(queue.push(frame(), 40));
        assert_eq!(queue.queued_bytes(), 80);
        let mut batch = Vec::new();
        assert_eq!(queue.drain_into(&mut batch), None);
        assert_eq!(batch.len(), 2);
        assert_eq!(queue.queued_bytes(), 0);
    }

    #[test]
    fn going_over_the_limit_closes_the_queue_and_frees_it() {
        let queue = Outbound::new(100);
        assert!(queue.push(frame(), 60));
        assert!(!queue.push(frame(), 60));
        assert!(!queue.push(frame(), 1), "stays closed");
        let mut batch = Vec::new();
        assert_eq!(
            queue.drain_into(&mut batch),
            Some(Closed::Overflow(Overflow {
                limit: 100,
                global: false
            }))
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn past_the_global_budget_queues_that_are_behind_are_cut_and_pay_back() {
        let budget = QueueBudget::new(100);
        let behind = Outbound::with_budget(1000, budget.clone());
        let keeping_up = Outbound::with_budget(1000, budget.clone());
        assert!(behind.push(frame(), 60));
        assert!(behind.push(frame(), 30));
        // An empty queue may still take one message past the cap...
        assert!(keeping_up.push(frame(), 30));
        assert_eq!(budget.used(), 120);
        // ...but a queue that is behind is cut, and its bytes return to the budget.
        assert!(!behind.push(frame(), 10));
        assert_eq!(behind.overflow().map(|o| o.global), Some(true));
        assert_eq!(budget.used(), 30);
        let mut batch = Vec::new();
        keeping_up.drain_into(&mut batch);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_push_wakes_the_writer() {
        let queue = Arc::new(Outbound::new(100));
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.ready().await }
        });
        tokio::task::yield_now().await;
        queue.push(frame(), 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
    }
}

//! A session's outbound queue: bounded in bytes and time, filled by any
//! publisher without waiting, drained in batches by the connection's writer.
//! When it stays above its soft limit too long, passes its hard limit, or is
//! behind while all queues together pass the server's [`QueueBudget`], the
//! queue closes itself (slow-consumer policy) instead of ever blocking a
//! publisher. A reader that falls behind for a moment during a burst is spared.

use crate::stomp::{Frame, PreparedMessage};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Bytes queued across every session of a server, against one cap.
#[derive(Debug)]
pub struct QueueBudget {
    limit: usize,
    used: AtomicUsize,
    /// Queues drawing on the budget, for each one's fair share of it.
    queues: AtomicUsize,
}

impl QueueBudget {
    pub fn new(limit: usize) -> Arc<QueueBudget> {
        Arc::new(QueueBudget {
            limit,
            used: AtomicUsize::new(0),
            queues: AtomicUsize::new(0),
        })
    }

    fn unlimited() -> Arc<QueueBudget> {
        QueueBudget::new(usize::MAX)
    }

    /// Takes `size` bytes; false when the total is now over the cap.
    fn take(&self, size: usize) -> bool {
        let before = self.used.fetch_add(size, Ordering::Relaxed);
        before.saturating_add(size) <= self.limit
    }

    /// Each queue's fair share of the cap.
    fn share(&self) -> usize {
        self.limit / self.queues.load(Ordering::Relaxed).max(1)
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

/// A queue its writer has not drained for this long is stalled rather than
/// busy. Only the server-wide cap uses it, to pick whom to cut. A reading
/// client's writer takes a batch every few milliseconds, but while hundreds of
/// stalled sockets are being filled it waits its turn: 300 paused subscribers
/// at 20 MB/s kept a healthy reader waiting up to 190 ms (docs/security.md).
const STALLED: Duration = Duration::from_millis(500);

/// Past the server-wide cap, a queue holding this many fair shares of it is
/// cut even while its writer drains: it bounds the total to a multiple of the
/// cap. With the defaults and 300 queues a share is 870 KB, and the reader
/// above peaked at 3.9 MB.
const SHARES_WITHOUT_STALL: usize = 8;

/// When one session's queue counts as a slow consumer: bytes and time
/// together, as Spring's `sendBufferSizeLimit` and `sendTimeLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// A queue may stay above this for `grace` (`limits.outbound_queue_bytes`).
    pub soft_bytes: usize,
    /// `limits.outbound_queue_grace_ms`.
    pub grace: Duration,
    /// Above this a queue is cut at once (`limits.outbound_queue_max_bytes`).
    pub hard_bytes: usize,
}

impl QueueLimits {
    /// One limit without grace: cut as soon as the queue goes over `bytes`.
    pub fn fixed(bytes: usize) -> QueueLimits {
        QueueLimits {
            soft_bytes: bytes,
            grace: Duration::ZERO,
            hard_bytes: bytes,
        }
    }
}

/// Which rule a slow consumer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Hard {
        limit: usize,
    },
    Grace {
        limit: usize,
        grace: Duration,
    },
    /// The server-wide cap, while this queue held more than its share of it.
    Global {
        limit: usize,
    },
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overflow::Hard { limit } => write!(
                f,
                "outbound queue went over limits.outbound_queue_max_bytes = {limit}"
            ),
            Overflow::Grace { limit, grace } => write!(
                f,
                "outbound queue stayed over limits.outbound_queue_bytes = {limit} for longer than limits.outbound_queue_grace_ms = {}",
                grace.as_millis()
            ),
            Overflow::Global { limit } => write!(
                f,
                "the server's queued bytes went over limits.max_queued_bytes_total = {limit} while this session was behind"
            ),
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
        /// From history, published long before: not a delivery-latency sample.
        replayed: bool,
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

#[derive(Debug)]
struct State {
    items: VecDeque<(Outgoing, usize)>,
    bytes: usize,
    /// Since when the queue has been above its soft limit without a drain.
    over_since: Option<Instant>,
    /// When the writer last took what was queued (or the queue was made: a
    /// new client has had no chance to read yet).
    drained_at: Instant,
    closed: Option<Closed>,
}

#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    ready: Notify,
    limits: QueueLimits,
    budget: Arc<QueueBudget>,
}

impl Outbound {
    /// A queue with one fixed limit and no server-wide budget.
    pub fn new(limit_bytes: usize) -> Self {
        Outbound::with_budget(QueueLimits::fixed(limit_bytes), QueueBudget::unlimited())
    }

    /// A queue that also draws on the server-wide `budget`.
    pub fn with_budget(limits: QueueLimits, budget: Arc<QueueBudget>) -> Self {
        budget.queues.fetch_add(1, Ordering::Relaxed);
        Outbound {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                over_since: None,
                drained_at: Instant::now(),
                closed: None,
            }),
            ready: Notify::new(),
            limits,
            budget,
        }
    }

    /// Which rule, if any, a queue of `bytes` breaks. A push reads the clock
    /// only above the soft limit or past the server-wide cap, so publishing to
    /// queues that keep up pays nothing for it (the writer reads it once per
    /// batch it takes).
    fn overflow_at(&self, state: &mut State, bytes: usize, size: usize) -> Option<Overflow> {
        let limits = &self.limits;
        if bytes > limits.hard_bytes {
            return Some(Overflow::Hard {
                limit: limits.hard_bytes,
            });
        }
        if bytes > limits.soft_bytes {
            let now = Instant::now();
            let since = *state.over_since.get_or_insert(now);
            if now.saturating_duration_since(since) > limits.grace {
                return Some(Overflow::Grace {
                    limit: limits.soft_bytes,
                    grace: limits.grace,
                });
            }
        }
        if self.budget.take(size) {
            return None;
        }
        // Past the server-wide cap, clients that stopped reading go first: a
        // queue over its fair share of the cap is cut once its writer has
        // stalled, and at once when it holds several shares. A reader that is
        // behind for a moment, but whose writer keeps draining, stays; the
        // total stays within a multiple of the cap.
        let share = self.budget.share();
        let stalled = state.drained_at.elapsed() >= STALLED;
        if bytes > share.saturating_mul(SHARES_WITHOUT_STALL) || (bytes > share && stalled) {
            self.budget.release(size);
            return Some(Overflow::Global {
                limit: self.budget.limit(),
            });
        }
        None
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
        let bytes = state.bytes + size;
        if let Some(overflow) = self.overflow_at(&mut state, bytes, size) {
            // Dropping what is queued frees the memory at once; the session
            // ends with an ERROR, so those messages could not be delivered anyway.
            state.items.clear();
            self.budget.release(std::mem::take(&mut state.bytes));
            state.closed = Some(Closed::Overflow(overflow));
            drop(state);
            self.ready.notify_one();
            return false;
        }
        state.bytes = bytes;
        state.items.push_back((item, size));
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    /// Moves everything queued into `batch`, oldest first; reports closure.
    pub fn drain_into(&self, batch: &mut Vec<Outgoing>) -> Option<Closed> {
        self.drain_counting(batch).0
    }

    /// [`Outbound::drain_into`], also saying how many bytes the queue counted
    /// for what it handed over.
    pub fn drain_counting(&self, batch: &mut Vec<Outgoing>) -> (Option<Closed>, usize) {
        let mut state = self.state();
        batch.extend(state.items.drain(..).map(|(item, _)| item));
        let bytes = std::mem::take(&mut state.bytes);
        self.budget.release(bytes);
        state.over_since = None;
        state.drained_at = Instant::now();
        (state.closed.clone(), bytes)
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

impl Drop for Outbound {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.state().bytes);
        self.budget.release(bytes);
        self.budget.queues.fetch_sub(1, Ordering::Relaxed);
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
            Some(Closed::Overflow(Overflow::Hard { limit: 100 }))
        );
        assert!(batch.is_empty());
    }

    fn graced(soft_bytes: usize, hard_bytes: usize) -> QueueLimits {
        QueueLimits {
            soft_bytes,
            grace: Duration::from_secs(5),
            hard_bytes,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_global_budget_stalled_queues_over_their_share_are_cut_and_pay_back() {
        let budget = QueueBudget::new(100);
        let behind = Outbound::with_budget(graced(10, 1000), budget.clone());
        let keeping_up = Outbound::with_budget(graced(10, 1000), budget.clone());
        assert!(behind.push(frame(), 70));
        assert!(keeping_up.push(frame(), 20));
        // Past the cap, a queue within its share (100 / 2 queues) may still grow...
        assert!(keeping_up.push(frame(), 20));
        assert_eq!(budget.used(), 110);
        // ...and so may one above it whose writer is draining...
        behind.drain_into(&mut Vec::new());
        assert!(behind.push(frame(), 70));
        assert!(behind.push(frame(), 1));
        // ...but not once its writer has stalled.
        tokio::time::advance(STALLED).await;
        assert!(!behind.push(frame(), 10));
        assert_eq!(behind.overflow(), Some(Overflow::Global { limit: 100 }));
        assert_eq!(budget.used(), 40);
        let mut batch = Vec::new();
        keeping_up.drain_into(&mut batch);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_may_stay_above_its_soft_limit_only_for_the_grace_time() {
        let queue = Outbound::with_budget(graced(100, 1000), QueueBudget::unlimited());
        assert!(
            queue.push(frame(), 150),
            "over the soft limit: the grace starts"
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(queue.push(frame(), 150), "within the grace");
        // A drain shows the reader is reading: the grace starts again.
        queue.drain_into(&mut Vec::new());
        assert!(queue.push(frame(), 150));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(queue.push(frame(), 150), "4 s since the drain");
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert!(!queue.push(frame(), 1), "5 s above the soft limit");
        assert_eq!(
            queue.overflow(),
            Some(Overflow::Grace {
                limit: 100,
                grace: Duration::from_secs(5)
            })
        );
    }

    #[test]
    fn above_the_hard_limit_a_queue_is_cut_at_once() {
        let queue = Outbound::with_budget(graced(100, 1000), QueueBudget::unlimited());
        assert!(queue.push(frame(), 900));
        assert!(!queue.push(frame(), 101));
        assert_eq!(queue.overflow(), Some(Overflow::Hard { limit: 1000 }));
        assert_eq!(queue.queued_bytes(), 0, "the memory is released at once");
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

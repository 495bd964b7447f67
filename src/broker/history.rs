//! Per-destination message history for replay (SSE `Last-Event-ID`, STOMP `since`).
//!
//! Destinations matching a history rule get a sequence number per message and
//! keep their last N messages (or T seconds). Numbers belong to an epoch (see
//! [`Position`]): a single broker starts one when it starts; with a cluster,
//! the shared store says which epoch its numbers are in. A destination's sequence
//! assignment, storage and fan-out happen under that destination's lock, and a
//! replaying subscriber is registered under the same lock, so replay and live
//! delivery never overlap or leave a gap.

use super::destination::{DestinationError, Pattern};
use crate::stomp::{Epoch, Position, PreparedMessage};
use arc_swap::ArcSwap;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Which destinations keep history, and how much.
#[derive(Debug, Clone)]
pub struct HistoryRule {
    pub pattern: Pattern,
    pub max_messages: usize,
    pub max_age: Option<Duration>,
}

impl HistoryRule {
    pub fn new(
        destination: &str,
        max_messages: usize,
        max_age: Option<Duration>,
    ) -> Result<Self, DestinationError> {
        Ok(HistoryRule {
            pattern: Pattern::compile(destination)?,
            max_messages,
            max_age,
        })
    }
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    at: Instant,
    message: Arc<PreparedMessage>,
}

/// One destination's retained messages.
#[derive(Debug)]
pub struct Ring {
    max_messages: usize,
    max_age: Option<Duration>,
    /// The numbering the held messages and `head` belong to; unknown in a
    /// cluster until the shared store says.
    epoch: Epoch,
    /// The last sequence number assigned; 0 before the first message.
    head: u64,
    /// Every sequence number up to this one has been evicted.
    evicted_through: u64,
    entries: VecDeque<Entry>,
}

/// What a replay found.
#[derive(Debug)]
pub struct Replay {
    /// Messages after the requested position, oldest first, with their sequence numbers.
    pub messages: Vec<(u64, Arc<PreparedMessage>)>,
    /// Some messages after the position are no longer kept, or the position
    /// is from another epoch and cannot be compared.
    pub gone: bool,
    /// The newest position at the time of the replay.
    pub head: Position,
}

impl Ring {
    fn new(rule: &HistoryRule, epoch: Epoch) -> Self {
        Ring {
            max_messages: rule.max_messages,
            max_age: rule.max_age,
            epoch,
            head: 0,
            evicted_through: 0,
            entries: VecDeque::new(),
        }
    }

    fn evict(&mut self, now: Instant) {
        while self.entries.len() > self.max_messages
            || self
                .max_age
                .zip(self.entries.front())
                .is_some_and(|(age, oldest)| now.duration_since(oldest.at) > age)
        {
            if let Some(evicted) = self.entries.pop_front() {
                self.evicted_through = evicted.seq;
            }
        }
    }

    /// Assigns the next sequence number; `build` makes the message that carries it.
    pub fn append(
        &mut self,
        build: impl FnOnce(Position) -> Arc<PreparedMessage>,
    ) -> Arc<PreparedMessage> {
        self.head += 1;
        let message = build(Position::new(self.epoch, self.head));
        let now = Instant::now();
        self.entries.push_back(Entry {
            seq: self.head,
            at: now,
            message: message.clone(),
        });
        self.evict(now);
        message
    }

    /// Messages after `after`. A position of another epoch (or a bare
    /// number) says nothing about what it followed: everything held is
    /// replayed, marked gone, never a silent skip.
    pub fn since(&mut self, after: Position) -> Replay {
        self.evict(Instant::now());
        let comparable = (after.epoch.is_known() && after.epoch == self.epoch) || after.is_start();
        let from = if comparable { after.seq } else { 0 };
        let messages = self
            .entries
            .iter()
            .filter(|entry| entry.seq > from)
            .map(|entry| (entry.seq, entry.message.clone()))
            .collect();
        Replay {
            messages,
            // A position beyond the head cannot be in this epoch: a bug or a forgery.
            gone: !comparable || from < self.evicted_through || from > self.head,
            head: self.head(),
        }
    }

    pub fn head(&self) -> Position {
        Position::new(self.epoch, self.head)
    }

    /// Forgets everything, epoch included: the shared store may have started
    /// again (a cluster reconnected to Redis, which may have restarted empty).
    pub fn restart_numbering(&mut self) {
        self.entries.clear();
        self.head = 0;
        self.evicted_through = 0;
        self.epoch = Epoch::NONE;
    }

    /// Takes on `epoch` if it differs: what is held was numbered in another
    /// epoch and cannot sit beside its messages.
    fn enter(&mut self, epoch: Epoch) {
        if epoch != self.epoch {
            self.entries.clear();
            self.head = 0;
            self.evicted_through = 0;
            self.epoch = epoch;
        }
    }

    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Messages held now.
    pub fn kept(&self) -> usize {
        self.entries.len()
    }

    /// Stores a message numbered elsewhere (by the cluster). `None` when it
    /// is already here; a jump means this node missed messages (it was not
    /// subscribed), so what it holds no longer reaches back without a gap.
    pub fn append_numbered(
        &mut self,
        position: Position,
        build: impl FnOnce(Position) -> Arc<PreparedMessage>,
    ) -> Option<Arc<PreparedMessage>> {
        self.enter(position.epoch);
        let seq = position.seq;
        if seq <= self.head {
            return None;
        }
        if seq != self.head + 1 {
            self.entries.clear();
            self.evicted_through = seq - 1;
        }
        self.head = seq;
        let message = build(position);
        let now = Instant::now();
        self.entries.push_back(Entry {
            seq,
            at: now,
            message: message.clone(),
        });
        self.evict(now);
        message.into()
    }

    /// Replaces what this ring holds up to `head` with `messages` (numbered,
    /// oldest first, with their age), read from the shared history at `head`;
    /// newer messages that arrived live are kept. Without `messages` (the reader
    /// was up to date) a ring that is behind `head` starts over from there.
    pub fn merge_fetched(
        &mut self,
        head: Position,
        messages: Vec<(u64, Duration, Arc<PreparedMessage>)>,
    ) {
        if !head.epoch.is_known() {
            // The store holds nothing: keep what arrived live.
            return;
        }
        self.enter(head.epoch);
        let head = head.seq;
        if messages.is_empty() {
            if self.head < head {
                self.entries.clear();
                self.evicted_through = head;
                self.head = head;
            }
            return;
        }
        let now = Instant::now();
        let newer: Vec<Entry> = self.entries.drain(..).filter(|e| e.seq > head).collect();
        self.evicted_through = messages.first().map_or(head, |(seq, _, _)| seq - 1);
        self.entries
            .extend(messages.into_iter().map(|(seq, age, message)| Entry {
                seq,
                at: now.checked_sub(age).unwrap_or(now),
                message,
            }));
        self.entries.extend(newer);
        self.head = self.head.max(head);
        self.evict(now);
    }
}

#[derive(Debug, Default)]
pub struct History {
    /// Replaced by a reload: new rings follow the new rules.
    rules: ArcSwap<Vec<HistoryRule>>,
    rings: RwLock<HashMap<String, Arc<Mutex<Ring>>>>,
    /// Whether this broker numbers (else a shared store does, with its epochs).
    numbers_here: bool,
    /// Tells apart the epochs of rings made in the same microsecond.
    rings_made: std::sync::atomic::AtomicU64,
}

impl History {
    /// History numbered here, in an epoch that starts now.
    pub fn new(rules: Vec<HistoryRule>) -> Self {
        History {
            rules: ArcSwap::from_pointee(rules),
            rings: RwLock::new(HashMap::new()),
            numbers_here: true,
            rings_made: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// History numbered by a shared store (the cluster): epochs come from it.
    pub fn shared(rules: Vec<HistoryRule>) -> Self {
        History {
            numbers_here: false,
            ..History::new(rules)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.load().is_empty()
    }

    /// New rules for the destinations first published to from now on; a
    /// destination no rule covers any more forgets its history, and those
    /// still covered keep theirs (and their sizes) until the broker restarts.
    pub fn replace_rules(&self, rules: Vec<HistoryRule>) {
        let mut rings = self.rings.write().unwrap_or_else(|p| p.into_inner());
        rings.retain(|destination, _| rules.iter().any(|rule| rule.pattern.matches(destination)));
        self.rules.store(Arc::new(rules));
    }

    /// Calls `each` with every ring that exists.
    pub fn for_each_ring(&self, mut each: impl FnMut(&mut Ring)) {
        let rings: Vec<_> = self
            .rings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for ring in rings {
            each(&mut ring.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// The ring of `destination`, created on first use; `None` when no rule covers it.
    pub fn ring(&self, destination: &str) -> Option<Arc<Mutex<Ring>>> {
        let rules = self.rules.load();
        if rules.is_empty() {
            return None;
        }
        if let Some(ring) = self
            .rings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(destination)
        {
            return Some(ring.clone());
        }
        let mut rings = self.rings.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ring) = rings.get(destination) {
            return Some(ring.clone());
        }
        // The rules as they are now, under the lock a reload takes too: a
        // ring is never made from rules a reload has just replaced.
        let rules = self.rules.load();
        let rule = rules
            .iter()
            .find(|rule| rule.pattern.matches(destination))?;
        // Every ring made here numbers in an epoch of its own: one a reload
        // dropped and a later publish makes again starts at 1 in another.
        let epoch = if self.numbers_here {
            Epoch::fresh(
                self.rings_made
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            )
        } else {
            Epoch::NONE
        };
        let ring = Arc::new(Mutex::new(Ring::new(rule, epoch)));
        rings.insert(destination.to_owned(), ring.clone());
        Some(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::Headers;

    fn message(position: Position) -> Arc<PreparedMessage> {
        Arc::new(PreparedMessage::new(
            Headers::new(),
            position.to_string().into(),
        ))
    }

    fn epoch(n: u64) -> Epoch {
        Epoch::from_hex(&format!("{n:x}")).unwrap()
    }

    fn ring(max_messages: usize) -> Ring {
        Ring::new(
            &HistoryRule::new("/topic/a", max_messages, None).unwrap(),
            epoch(1),
        )
    }

    fn at(seq: u64) -> Position {
        Position::new(epoch(1), seq)
    }

    #[test]
    fn replays_what_came_after_a_position() {
        let mut ring = ring(10);
        for _ in 0..5 {
            ring.append(message);
        }
        let replay = ring.since(at(3));
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [4, 5]
        );
        assert!(!replay.gone);
        assert_eq!(replay.head, at(5));
    }

    #[test]
    fn says_when_history_no_longer_reaches_back() {
        let mut ring = ring(2);
        for _ in 0..5 {
            ring.append(message);
        }
        let replay = ring.since(at(1));
        assert!(replay.gone);
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [4, 5]
        );
        assert!(
            !ring.since(at(3)).gone,
            "3 was evicted but nothing after it was"
        );
    }

    #[test]
    fn old_messages_expire_by_age() {
        let mut ring = Ring::new(
            &HistoryRule::new("/t", 100, Some(Duration::from_millis(20))).unwrap(),
            epoch(1),
        );
        ring.append(message);
        std::thread::sleep(Duration::from_millis(40));
        ring.append(message);
        let replay = ring.since(Position::default());
        assert!(replay.gone);
        assert_eq!(replay.messages.len(), 1);
    }

    #[test]
    fn numbered_messages_skip_repeats_and_notice_gaps() {
        let mut ring = ring(10);
        assert!(ring.append_numbered(at(1), message).is_some());
        assert!(ring.append_numbered(at(2), message).is_some());
        assert!(ring.append_numbered(at(2), message).is_none(), "a repeat");
        assert!(ring.append_numbered(at(5), message).is_some());
        let replay = ring.since(at(1));
        assert!(replay.gone, "3 and 4 never came");
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [5]
        );
        assert!(!ring.since(at(4)).gone);
        assert!(
            ring.since(at(6)).gone,
            "a position beyond the head predates a restart"
        );
        ring.restart_numbering();
        assert!(
            ring.append_numbered(at(1), message).is_some(),
            "numbering started again"
        );
    }

    #[test]
    fn a_position_from_another_epoch_is_gone_never_skipped() {
        let mut ring = ring(100);
        for seq in 1..=5 {
            ring.append_numbered(at(seq), message);
        }
        // The store started empty: a new epoch numbers from 1 again, past
        // the old position.
        for seq in 1..=13 {
            ring.append_numbered(Position::new(epoch(2), seq), message);
        }
        let replay = ring.since(at(5));
        assert!(replay.gone, "o6..o13 must not be skipped silently");
        assert_eq!(replay.messages.len(), 13, "everything of the new epoch");
        assert_eq!(replay.head, Position::new(epoch(2), 13));
        let bare = ring.since("5".parse().unwrap());
        assert!(bare.gone, "a bare number names no epoch");
        let start = ring.since("0".parse().unwrap());
        assert!(!start.gone && start.messages.len() == 13);
        assert!(!ring.since(Position::new(epoch(2), 13)).gone);
    }

    #[test]
    fn a_ring_made_again_after_a_reload_numbers_in_another_epoch() {
        let rule = HistoryRule::new("/topic/**", 10, None).unwrap();
        let history = History::new(vec![rule.clone()]);
        let publish = |history: &History| {
            let ring = history.ring("/topic/a").unwrap();
            let mut ring = ring.lock().unwrap();
            ring.append(message);
            ring.head()
        };
        let before = publish(&history);
        history.replace_rules(Vec::new());
        assert!(history.ring("/topic/a").is_none(), "history dropped");
        history.replace_rules(vec![rule]);
        let after = publish(&history);
        assert_eq!((before.seq, after.seq), (1, 1));
        let ring = history.ring("/topic/a").unwrap();
        assert!(
            ring.lock().unwrap().since(before).gone,
            "a position from the dropped ring is never taken for the new one's"
        );
    }

    #[test]
    fn a_single_broker_numbers_in_its_own_epoch() {
        let rule = HistoryRule::new("/topic/**", 10, None).unwrap();
        let before = History::new(vec![rule.clone()]);
        std::thread::sleep(Duration::from_millis(1));
        let after_restart = History::new(vec![rule.clone()]);
        let head = |history: &History| {
            let ring = history.ring("/topic/a").unwrap();
            let mut ring = ring.lock().unwrap();
            ring.append(message);
            ring.head()
        };
        let (old, new) = (head(&before), head(&after_restart));
        assert_eq!((old.seq, new.seq), (1, 1));
        assert_ne!(old.epoch, new.epoch);
        let ring = after_restart.ring("/topic/a").unwrap();
        assert!(ring.lock().unwrap().since(old).gone);
        let shared = History::shared(vec![rule]);
        let ring = shared.ring("/topic/a").unwrap();
        assert!(!ring.lock().unwrap().head().epoch.is_known());
    }

    #[test]
    fn fetched_history_fills_in_below_live_messages() {
        let mut ring = ring(10);
        ring.append_numbered(at(9), message);
        let fetched = (6..=8)
            .map(|seq| (seq, Duration::ZERO, message(at(seq))))
            .collect();
        ring.merge_fetched(at(8), fetched);
        let replay = ring.since(at(5));
        assert!(!replay.gone);
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [6, 7, 8, 9]
        );
        assert_eq!(replay.head, at(9));
        assert!(ring.since(at(4)).gone, "5 was not fetched");
        ring.merge_fetched(at(9), Vec::new());
        assert!(!ring.since(at(5)).gone, "up to date: nothing changes");
        ring.merge_fetched(at(12), Vec::new());
        assert!(ring.since(at(9)).gone, "10 to 12 were missed");
        assert!(!ring.since(at(12)).gone);
    }

    #[test]
    fn only_destinations_under_a_rule_get_a_ring() {
        let history = History::new(vec![HistoryRule::new("/topic/price/**", 10, None).unwrap()]);
        assert!(history.ring("/topic/price/btc").is_some());
        assert!(history.ring("/topic/chat").is_none());
        assert!(Arc::ptr_eq(
            &history.ring("/topic/price/btc").unwrap(),
            &history.ring("/topic/price/btc").unwrap()
        ));
    }
}

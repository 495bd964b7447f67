//! Per-destination message history for replay (SSE `Last-Event-ID`, STOMP `since`).
//!
//! Destinations matching a history rule get a sequence number per message and
//! keep their last N messages (or T seconds). A destination's sequence
//! assignment, storage and fan-out happen under that destination's lock, and a
//! replaying subscriber is registered under the same lock, so replay and live
//! delivery never overlap or leave a gap.

use super::destination::{DestinationError, Pattern};
use crate::stomp::PreparedMessage;
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
    /// Some messages after the position are no longer kept.
    pub gone: bool,
    /// The newest sequence number at the time of the replay.
    pub head: u64,
}

impl Ring {
    fn new(rule: &HistoryRule) -> Self {
        Ring {
            max_messages: rule.max_messages,
            max_age: rule.max_age,
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
        build: impl FnOnce(u64) -> Arc<PreparedMessage>,
    ) -> Arc<PreparedMessage> {
        self.head += 1;
        let message = build(self.head);
        let now = Instant::now();
        self.entries.push_back(Entry {
            seq: self.head,
            at: now,
            message: message.clone(),
        });
        self.evict(now);
        message
    }

    /// Messages with a sequence number above `after`.
    pub fn since(&mut self, after: u64) -> Replay {
        self.evict(Instant::now());
        let messages = self
            .entries
            .iter()
            .filter(|entry| entry.seq > after)
            .map(|entry| (entry.seq, entry.message.clone()))
            .collect();
        Replay {
            messages,
            // A position beyond the head was numbered before a restart (of this
            // broker, or of Redis in a cluster): what it followed is unknown.
            gone: after < self.evicted_through || after > self.head,
            head: self.head,
        }
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    /// Forgets everything: the numbering may have started again elsewhere (a
    /// cluster reconnected to Redis, which may have restarted empty).
    pub fn restart_numbering(&mut self) {
        self.entries.clear();
        self.head = 0;
        self.evicted_through = 0;
    }

    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Stores a message numbered elsewhere (by the cluster). `None` when `seq`
    /// is already here; a jump means this node missed messages (it was not
    /// subscribed), so what it holds no longer reaches back without a gap.
    pub fn append_numbered(
        &mut self,
        seq: u64,
        build: impl FnOnce(u64) -> Arc<PreparedMessage>,
    ) -> Option<Arc<PreparedMessage>> {
        if seq <= self.head {
            return None;
        }
        if seq != self.head + 1 {
            self.entries.clear();
            self.evicted_through = seq - 1;
        }
        self.head = seq;
        let message = build(seq);
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
        head: u64,
        messages: Vec<(u64, Duration, Arc<PreparedMessage>)>,
    ) {
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
    rules: Vec<HistoryRule>,
    rings: RwLock<HashMap<String, Arc<Mutex<Ring>>>>,
}

impl History {
    pub fn new(rules: Vec<HistoryRule>) -> Self {
        History {
            rules,
            rings: RwLock::new(HashMap::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
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
        if self.rules.is_empty() {
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
        let rule = self
            .rules
            .iter()
            .find(|rule| rule.pattern.matches(destination))?;
        let mut rings = self.rings.write().unwrap_or_else(|p| p.into_inner());
        Some(
            rings
                .entry(destination.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(Ring::new(rule))))
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::Headers;

    fn message(seq: u64) -> Arc<PreparedMessage> {
        Arc::new(PreparedMessage::new(Headers::new(), seq.to_string().into()))
    }

    fn ring(max_messages: usize) -> Ring {
        Ring::new(&HistoryRule::new("/topic/a", max_messages, None).unwrap())
    }

    #[test]
    fn replays_what_came_after_a_position() {
        let mut ring = ring(10);
        for _ in 0..5 {
            ring.append(message);
        }
        let replay = ring.since(3);
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [4, 5]
        );
        assert!(!replay.gone);
        assert_eq!(replay.head, 5);
    }

    #[test]
    fn says_when_history_no_longer_reaches_back() {
        let mut ring = ring(2);
        for _ in 0..5 {
            ring.append(message);
        }
        let replay = ring.since(1);
        assert!(replay.gone);
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [4, 5]
        );
        assert!(
            !ring.since(3).gone,
            "3 was evicted but nothing after it was"
        );
    }

    #[test]
    fn old_messages_expire_by_age() {
        let mut ring =
            Ring::new(&HistoryRule::new("/t", 100, Some(Duration::from_millis(20))).unwrap());
        ring.append(message);
        std::thread::sleep(Duration::from_millis(40));
        ring.append(message);
        let replay = ring.since(0);
        assert!(replay.gone);
        assert_eq!(replay.messages.len(), 1);
    }

    #[test]
    fn numbered_messages_skip_repeats_and_notice_gaps() {
        let mut ring = ring(10);
        assert!(ring.append_numbered(1, message).is_some());
        assert!(ring.append_numbered(2, message).is_some());
        assert!(ring.append_numbered(2, message).is_none(), "a repeat");
        assert!(ring.append_numbered(5, message).is_some());
        let replay = ring.since(1);
        assert!(replay.gone, "3 and 4 never came");
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [5]
        );
        assert!(!ring.since(4).gone);
        assert!(
            ring.since(6).gone,
            "a position beyond the head predates a restart"
        );
        ring.restart_numbering();
        assert!(
            ring.append_numbered(1, message).is_some(),
            "numbering started again"
        );
    }

    #[test]
    fn fetched_history_fills_in_below_live_messages() {
        let mut ring = ring(10);
        ring.append_numbered(9, message);
        let fetched = (6..=8)
            .map(|seq| (seq, Duration::ZERO, message(seq)))
            .collect();
        ring.merge_fetched(8, fetched);
        let replay = ring.since(5);
        assert!(!replay.gone);
        assert_eq!(
            replay.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [6, 7, 8, 9]
        );
        assert_eq!(replay.head, 9);
        assert!(ring.since(4).gone, "5 was not fetched");
        ring.merge_fetched(9, Vec::new());
        assert!(!ring.since(5).gone, "up to date: nothing changes");
        ring.merge_fetched(12, Vec::new());
        assert!(ring.since(9).gone, "10 to 12 were missed");
        assert!(!ring.since(12).gone);
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

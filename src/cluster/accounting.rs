//! Exact accounting of cross-node messages. The origin numbers its messages
//! per Redis channel; a receiver remembers the last number it got from each
//! origin on each channel it subscribes to directly, and counts the numbers
//! it never saw as missed. What an origin never sent (backplane down, queue
//! full) is counted there; what it sent and a receiver lost (a publish that
//! failed half-way, a receiver whose subscription was not back yet after an
//! outage) is counted here, once.

use super::envelope::ChannelSeq;
use super::random_u64;
use std::collections::{HashMap, HashSet};

/// Channels numbered (or remembered) at most; past it, numbering starts a new
/// run, and a receiver starts afresh, so memory stays bounded when
/// destinations come and go (one per payment, per chat).
const MAX_CHANNELS: usize = 100_000;

/// The origin's side: the next number per channel, and over all channels.
#[derive(Debug)]
pub struct Numbering {
    run: u64,
    last: HashMap<String, u64>,
    /// Every message this process forwards, in order, across connections:
    /// receivers drop anything not above the last they saw as a repeat.
    origin: u64,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering {
            run: random_u64(),
            last: HashMap::new(),
            origin: 0,
        }
    }
}

impl Numbering {
    pub fn next_origin(&mut self) -> u64 {
        self.origin += 1;
        self.origin
    }

    pub fn next(&mut self, channel: &str) -> ChannelSeq {
        if let Some(last) = self.last.get_mut(channel) {
            *last += 1;
            return ChannelSeq {
                run: self.run,
                seq: *last,
            };
        }
        if self.last.len() >= MAX_CHANNELS {
            self.last.clear();
            self.run = random_u64();
        }
        self.last.insert(channel.to_owned(), 1);
        ChannelSeq {
            run: self.run,
            seq: 1,
        }
    }
}

/// A receiver's side: per origin process, the run and the last number per channel.
#[derive(Debug, Default)]
pub struct Arrivals {
    by_origin: HashMap<u64, (u64, HashMap<String, u64>)>,
    remembered: usize,
    /// Direct channels Redis confirmed and the node has not left: only their
    /// numbers are followed, so a message still in flight after an
    /// UNSUBSCRIBE cannot leave a stale number that makes the next
    /// subscription count a gap. Kept across an outage, which is the gap
    /// that must be counted.
    listening: HashSet<String>,
}

impl Arrivals {
    /// Records a message from `instance` on `channel`; returns how many of
    /// that origin's messages on the channel were missed just before it.
    /// Only `direct` arrivals (not through a pattern) start remembering a
    /// channel: a pattern may cover channels the node did not hear throughout.
    pub fn arrived(
        &mut self,
        instance: u64,
        channel: &str,
        number: ChannelSeq,
        direct: bool,
    ) -> u64 {
        if !self.listening.contains(channel) {
            return 0;
        }
        if self.remembered >= MAX_CHANNELS {
            self.by_origin.clear();
            self.remembered = 0;
        }
        let (run, last) = self
            .by_origin
            .entry(instance)
            .or_insert_with(|| (number.run, HashMap::new()));
        if *run != number.run {
            self.remembered -= last.len();
            last.clear();
            *run = number.run;
        }
        if let Some(seen) = last.get_mut(channel) {
            let missed = number.seq.saturating_sub(*seen + 1);
            *seen = (*seen).max(number.seq);
            return missed;
        }
        if direct {
            last.insert(channel.to_owned(), number.seq);
            self.remembered += 1;
        }
        0
    }

    /// Redis confirmed this node's subscription to the direct `channel`.
    pub fn listen(&mut self, channel: &str) {
        if !self.listening.contains(channel) {
            self.listening.insert(channel.to_owned());
        }
    }

    /// This node stopped listening to `channel`: a later gap is not a loss.
    pub fn forget(&mut self, channel: &str) {
        self.listening.remove(channel);
        for (_, last) in self.by_origin.values_mut() {
            if last.remove(channel).is_some() {
                self.remembered -= 1;
            }
        }
    }

    /// Keeps only channels `listening` says this node still wants (after an
    /// outage, during which interest changed without unsubscribing).
    pub fn retain(&mut self, listening: impl Fn(&str) -> bool) {
        self.listening.retain(|channel| listening(channel));
        for (_, last) in self.by_origin.values_mut() {
            last.retain(|channel, _| listening(channel));
        }
        self.by_origin.retain(|_, (_, last)| !last.is_empty());
        self.remembered = self.by_origin.values().map(|(_, last)| last.len()).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_on_a_direct_channel_are_missed_messages() {
        let mut origin = Numbering::default();
        let mut receiver = Arrivals::default();
        receiver.listen("d:/topic/a");
        let numbers: Vec<ChannelSeq> = (0..6).map(|_| origin.next("d:/topic/a")).collect();
        let other = origin.next("d:/topic/b");
        assert_eq!(other.seq, 1, "each channel numbers on its own");
        assert_eq!(receiver.arrived(1, "d:/topic/a", numbers[0], true), 0);
        assert_eq!(receiver.arrived(1, "d:/topic/a", numbers[1], true), 0);
        // 3 and 4 lost in an outage.
        assert_eq!(receiver.arrived(1, "d:/topic/a", numbers[4], true), 2);
        assert_eq!(receiver.arrived(1, "d:/topic/a", numbers[5], true), 0);
    }

    #[test]
    fn a_channel_heard_afresh_left_or_by_pattern_counts_nothing() {
        let mut origin = Numbering::default();
        let mut receiver = Arrivals::default();
        receiver.listen("d:/topic/a");
        let numbers: Vec<ChannelSeq> = (0..20).map(|_| origin.next("d:/topic/a")).collect();
        let arrive = |receiver: &mut Arrivals, n: usize, direct| {
            receiver.arrived(1, "d:/topic/a", numbers[n], direct)
        };
        assert_eq!(arrive(&mut receiver, 2, false), 0, "through a pattern");
        assert_eq!(arrive(&mut receiver, 5, true), 0, "first heard");
        receiver.forget("d:/topic/a");
        // Still in flight after the UNSUBSCRIBE: it leaves nothing behind.
        assert_eq!(arrive(&mut receiver, 6, true), 0);
        receiver.listen("d:/topic/a");
        assert_eq!(arrive(&mut receiver, 15, true), 0, "subscribed again");
        assert_eq!(arrive(&mut receiver, 17, true), 1, "then counted");
        receiver.retain(|_| false);
        assert_eq!(arrive(&mut receiver, 19, true), 0);
    }

    #[test]
    fn a_new_run_or_process_starts_afresh() {
        let mut receiver = Arrivals::default();
        receiver.listen("c");
        let at = |run, seq| ChannelSeq { run, seq };
        receiver.arrived(1, "c", at(7, 5), true);
        assert_eq!(receiver.arrived(1, "c", at(8, 1), true), 0);
        let other_process = receiver.arrived(2, "c", at(8, 9), true);
        assert_eq!(other_process, 0);
        assert_eq!(receiver.arrived(1, "c", at(8, 4), true), 2);
    }
}

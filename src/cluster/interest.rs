//! Which Redis channels this node wants, counted by local subscriptions, user
//! sessions and replay leases, and which of them Redis has confirmed.
//!
//! Counts are signed: a "last subscriber left" may be reported before the
//! matching "first subscriber came" from another thread, and only the sum matters.

use super::channels::Channel;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Interest {
    wanted: HashMap<Channel, i64>,
    /// Channels the current Redis connection is subscribed to, as Redis confirmed.
    confirmed: HashSet<Channel>,
}

/// What to change on the connection to match what is wanted.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub subscribe: Vec<Channel>,
    pub unsubscribe: Vec<Channel>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty()
    }
}

impl Interest {
    pub fn change(&mut self, channel: Channel, delta: i64) {
        let count = self.wanted.entry(channel.clone()).or_default();
        *count += delta;
        if *count == 0 {
            self.wanted.remove(&channel);
        }
    }

    /// What the connection must change: its subscriptions are the confirmed ones.
    pub fn plan(&self) -> Plan {
        Plan {
            subscribe: self
                .wanted
                .iter()
                .filter(|(channel, count)| **count > 0 && !self.confirmed.contains(*channel))
                .map(|(channel, _)| channel.clone())
                .collect(),
            unsubscribe: self
                .confirmed
                .iter()
                .filter(|channel| self.wanted.get(*channel).is_none_or(|count| *count <= 0))
                .cloned()
                .collect(),
        }
    }

    pub fn confirm(&mut self, channel: Channel) {
        self.confirmed.insert(channel);
    }

    /// Forgets `channel`'s confirmation if nobody wants it now; false when
    /// someone came back for it since the plan, and it must stay subscribed.
    pub fn withdraw_if_unwanted(&mut self, channel: &Channel) -> bool {
        if self.wanted.get(channel).is_some_and(|count| *count > 0) {
            return false;
        }
        self.confirmed.remove(channel)
    }

    pub fn wants(&self, channel: &Channel) -> bool {
        self.wanted.get(channel).is_some_and(|count| *count > 0)
    }

    pub fn is_confirmed(&self, channel: &Channel) -> bool {
        self.confirmed.contains(channel)
    }

    /// The connection is gone; nothing is confirmed until the next one says so.
    pub fn forget_confirmations(&mut self) {
        self.confirmed.clear();
    }

    pub fn wanted_count(&self) -> usize {
        self.wanted.values().filter(|count| **count > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> Channel {
        Channel::Destination(name.into())
    }

    #[test]
    fn first_interest_subscribes_and_last_unsubscribes() {
        let mut interest = Interest::default();
        interest.change(topic("/topic/a"), 1);
        interest.change(topic("/topic/a"), 1);
        assert_eq!(interest.plan().subscribe, [topic("/topic/a")]);
        interest.confirm(topic("/topic/a"));
        interest.change(topic("/topic/a"), -1);
        assert!(interest.plan().is_empty());
        interest.change(topic("/topic/a"), -1);
        assert_eq!(interest.plan().unsubscribe, [topic("/topic/a")]);
        assert!(interest.withdraw_if_unwanted(&topic("/topic/a")));
        assert!(interest.plan().is_empty());
    }

    #[test]
    fn a_channel_wanted_again_before_it_is_left_stays_confirmed() {
        let mut interest = Interest::default();
        interest.change(topic("/topic/a"), 1);
        interest.confirm(topic("/topic/a"));
        interest.change(topic("/topic/a"), -1);
        let plan = interest.plan();
        assert_eq!(plan.unsubscribe, [topic("/topic/a")]);
        // A subscriber comes back between the plan and the UNSUBSCRIBE.
        interest.change(topic("/topic/a"), 1);
        assert!(!interest.withdraw_if_unwanted(&topic("/topic/a")));
        assert!(interest.is_confirmed(&topic("/topic/a")));
        assert!(interest.plan().is_empty());
    }

    #[test]
    fn a_removal_reported_before_its_addition_cancels_out() {
        let mut interest = Interest::default();
        interest.change(topic("/topic/a"), -1);
        assert!(interest.plan().is_empty());
        interest.change(topic("/topic/a"), 1);
        assert!(interest.plan().is_empty());
        assert_eq!(interest.wanted_count(), 0);
    }
}

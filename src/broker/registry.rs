//! Subscriptions by destination. Publishing reads without contention: exact
//! destinations live in hash shards whose subscriber lists are copy-on-write
//! (`Arc`), so a publish holds a shard's read lock only long enough to clone an
//! `Arc`, and a subscribe never waits for a fan-out to finish.

use super::destination::Pattern;
use crate::broker::outbound::Outbound;
use indexmap::IndexMap;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

/// Identifies one connection's session across the process.
pub type SessionId = u64;

/// How the client acknowledges messages on a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    Auto,
    Client,
    ClientIndividual,
}

impl AckMode {
    pub fn parse(text: &str) -> Option<AckMode> {
        match text {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }
}

/// One SUBSCRIBE of one session.
#[derive(Debug)]
pub struct Subscription {
    pub session: SessionId,
    pub id: Arc<str>,
    pub destination: Arc<str>,
    pub ack: AckMode,
    pub outbound: Arc<Outbound>,
}

type Key = (SessionId, Arc<str>);
type Subscribers = IndexMap<Key, Arc<Subscription>>;
/// One shard of exact destinations; each list is replaced, never mutated, while shared.
type Shard = RwLock<HashMap<Arc<str>, Arc<Subscribers>>>;

#[derive(Debug, Clone)]
struct PatternSubscription {
    pattern: Pattern,
    subscription: Arc<Subscription>,
}

const SHARDS: usize = 32;

fn lock_poisoned<T>(error: std::sync::PoisonError<T>) -> T {
    // A panic elsewhere while holding the lock leaves the map itself intact
    // (every mutation is a single insert or remove), so keep serving.
    error.into_inner()
}

#[derive(Debug)]
pub struct Registry {
    hasher: RandomState,
    exact: Box<[Shard]>,
    patterns: RwLock<Arc<Vec<PatternSubscription>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            hasher: RandomState::new(),
            exact: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            patterns: RwLock::new(Arc::new(Vec::new())),
        }
    }
}

impl Registry {
    fn shard(&self, destination: &str) -> &Shard {
        let index = self.hasher.hash_one(destination) as usize % SHARDS;
        &self.exact[index]
    }

    /// Adds an exact-destination subscription, or a pattern one when `pattern`
    /// is given; true when it is the first for its destination (or pattern text).
    pub fn insert(&self, subscription: Arc<Subscription>, pattern: Option<Pattern>) -> bool {
        match pattern {
            Some(pattern) => {
                let mut patterns = self.patterns.write().unwrap_or_else(lock_poisoned);
                let first = !patterns.iter().any(|p| p.pattern == pattern);
                Arc::make_mut(&mut patterns).push(PatternSubscription {
                    pattern,
                    subscription,
                });
                first
            }
            None => {
                let key = (subscription.session, subscription.id.clone());
                let destination = subscription.destination.clone();
                let mut shard = self
                    .shard(&destination)
                    .write()
                    .unwrap_or_else(lock_poisoned);
                let list = shard.entry(destination).or_default();
                let first = list.is_empty();
                Arc::make_mut(list).insert(key, subscription);
                first
            }
        }
    }

    /// Removes a subscription; true when it was the last of its destination
    /// (or pattern text).
    pub fn remove(&self, subscription: &Subscription) -> bool {
        let key = (subscription.session, subscription.id.clone());
        {
            let mut shard = self
                .shard(&subscription.destination)
                .write()
                .unwrap_or_else(lock_poisoned);
            if let Some(list) = shard.get_mut(&subscription.destination) {
                let removed = Arc::make_mut(list).swap_remove(&key).is_some();
                if list.is_empty() {
                    shard.remove(&subscription.destination);
                    return removed;
                }
                return false;
            }
        }
        let mut patterns = self.patterns.write().unwrap_or_else(lock_poisoned);
        if patterns
            .iter()
            .any(|p| is_same(&p.subscription, subscription))
        {
            Arc::make_mut(&mut patterns).retain(|p| !is_same(&p.subscription, subscription));
            return !patterns
                .iter()
                .any(|p| *p.subscription.destination == *subscription.destination);
        }
        false
    }

    /// Calls `deliver` for every subscription matching `destination`.
    pub fn for_each_subscriber(&self, destination: &str, mut deliver: impl FnMut(&Subscription)) {
        let exact = self
            .shard(destination)
            .read()
            .unwrap_or_else(lock_poisoned)
            .get(destination)
            .cloned();
        if let Some(list) = exact {
            list.values().for_each(|s| deliver(s));
        }
        let patterns = self.patterns.read().unwrap_or_else(lock_poisoned).clone();
        for entry in patterns.iter() {
            if entry.pattern.matches(destination) {
                deliver(&entry.subscription);
            }
        }
    }

    /// Subscription counts by destination (patterns under their pattern text).
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for shard in self.exact.iter() {
            for (destination, list) in shard.read().unwrap_or_else(lock_poisoned).iter() {
                *counts.entry(destination.to_string()).or_default() += list.len();
            }
        }
        for entry in self.patterns.read().unwrap_or_else(lock_poisoned).iter() {
            *counts.entry(entry.pattern.as_str().to_owned()).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort();
        counts
    }
}

fn is_same(a: &Subscription, b: &Subscription) -> bool {
    a.session == b.session && a.id == b.id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(session: SessionId, id: &str, destination: &str) -> Arc<Subscription> {
        Arc::new(Subscription {
            session,
            id: id.into(),
            destination: destination.into(),
            ack: AckMode::Auto,
            outbound: Arc::new(Outbound::new(1024)),
        })
    }

    fn delivered_to(registry: &Registry, destination: &str) -> Vec<(SessionId, String)> {
        let mut seen = Vec::new();
        registry.for_each_subscriber(destination, |s| seen.push((s.session, s.id.to_string())));
        seen.sort();
        seen
    }

    #[test]
    fn exact_and_pattern_subscriptions_both_receive() {
        let registry = Registry::default();
        registry.insert(subscription(1, "a", "/topic/x"), None);
        let wildcard = subscription(2, "b", "/topic/*");
        registry.insert(
            wildcard.clone(),
            Some(Pattern::compile("/topic/*").unwrap()),
        );
        assert_eq!(
            delivered_to(&registry, "/topic/x"),
            [(1, "a".into()), (2, "b".into())]
        );
        assert_eq!(delivered_to(&registry, "/topic/y"), [(2, "b".into())]);
        registry.remove(&wildcard);
        assert_eq!(delivered_to(&registry, "/topic/y"), []);
    }

    #[test]
    fn removing_the_last_subscriber_drops_the_destination() {
        let registry = Registry::default();
        let only = subscription(1, "a", "/topic/x");
        assert!(registry.insert(only.clone(), None), "first");
        assert_eq!(registry.counts(), [("/topic/x".to_owned(), 1)]);
        assert!(registry.remove(&only), "last");
        assert!(registry.counts().is_empty());
        assert!(!registry.remove(&only), "already gone");
    }

    #[test]
    fn first_and_last_are_told_per_destination_and_pattern() {
        let registry = Registry::default();
        let (a, b) = (subscription(1, "a", "/t/x"), subscription(2, "b", "/t/x"));
        assert!(registry.insert(a.clone(), None));
        assert!(!registry.insert(b.clone(), None));
        assert!(!registry.remove(&a));
        assert!(registry.remove(&b));
        let pattern = || Some(Pattern::compile("/t/*").unwrap());
        let (p, q) = (subscription(1, "p", "/t/*"), subscription(2, "q", "/t/*"));
        assert!(registry.insert(p.clone(), pattern()));
        assert!(!registry.insert(q.clone(), pattern()));
        assert!(!registry.remove(&p));
        assert!(registry.remove(&q));
    }

    #[test]
    fn a_snapshot_being_delivered_is_not_changed_by_a_subscribe() {
        let registry = Registry::default();
        registry.insert(subscription(1, "a", "/t/x"), None);
        let mut count = 0;
        registry.for_each_subscriber("/t/x", |_| {
            registry.insert(subscription(2, "b", "/t/x"), None);
            count += 1;
        });
        assert_eq!(count, 1);
        assert_eq!(delivered_to(&registry, "/t/x").len(), 2);
    }
}

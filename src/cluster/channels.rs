//! Names of the Redis channels and keys of one cluster, all under the
//! configured prefix, and the channel a local subscription needs.

use crate::broker::destination::is_pattern;

/// Something this node may need to hear about from other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Messages published to one concrete destination.
    Destination(String),
    /// Messages to any destination an Ant pattern (`/topic/price/**`) may match.
    Pattern(String),
    /// Messages for one user's sessions, wherever they are connected.
    User(String),
}

impl Channel {
    /// The channel a subscription to `destination` needs.
    pub fn for_subscription(destination: &str) -> Channel {
        if is_pattern(destination) {
            Channel::Pattern(destination.to_owned())
        } else {
            Channel::Destination(destination.to_owned())
        }
    }

    /// For people: the destination, pattern or user it carries.
    pub fn describe(&self) -> String {
        match self {
            Channel::Destination(key) | Channel::Pattern(key) => key.clone(),
            Channel::User(user) => format!("the destinations of user {user:?}"),
        }
    }
}

/// Where an inbound message goes, read from the channel it arrived on.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Destination(&'a str),
    User(&'a str),
}

#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }

    pub fn destination(&self, key: &str) -> String {
        format!("{}d:{key}", self.prefix)
    }

    pub fn user(&self, user: &str) -> String {
        format!("{}u:{user}", self.prefix)
    }

    /// The Redis name of `channel`, and whether it is a PSUBSCRIBE pattern.
    pub fn redis_name(&self, channel: &Channel) -> (String, bool) {
        match channel {
            Channel::Destination(key) => (self.destination(key), false),
            Channel::User(user) => (self.user(user), false),
            Channel::Pattern(pattern) => (format!("{}d:{}", self.prefix, glob_of(pattern)), true),
        }
    }

    /// The channel a Redis channel name stands for (not patterns: their
    /// messages arrive on the concrete channel's name).
    pub fn channel(&self, name: &str) -> Option<Channel> {
        Some(match self.target(name)? {
            Target::Destination(key) => Channel::Destination(key.to_owned()),
            Target::User(user) => Channel::User(user.to_owned()),
        })
    }

    pub fn target<'a>(&self, channel: &'a str) -> Option<Target<'a>> {
        let rest = channel.strip_prefix(self.prefix.as_str())?;
        if let Some(key) = rest.strip_prefix("d:") {
            return Some(Target::Destination(key));
        }
        rest.strip_prefix("u:").map(Target::User)
    }

    /// The hash that numbers a destination's messages for replay and names
    /// the epoch of those numbers.
    pub fn sequence_key(&self, key: &str) -> String {
        format!("{}pos:{key}", self.prefix)
    }

    /// The list holding a destination's last messages.
    pub fn history_key(&self, key: &str) -> String {
        format!("{}hist:{key}", self.prefix)
    }

    /// A node's registry entry: its sessions and stats, with a TTL.
    pub fn node_key(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    pub fn node_keys_pattern(&self) -> String {
        format!("{}node:*", self.prefix)
    }
}

/// A Redis glob that matches at least every destination `pattern` matches.
///
/// Redis `*` also crosses `/`, so the glob may match more than the Ant pattern;
/// the local registry matches exactly, so the surplus is only traffic, never a
/// wrong delivery.
pub fn glob_of(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                glob.push('*');
            }
            '{' => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                glob.push('*');
            }
            '?' => glob.push('?'),
            '[' | ']' | '\\' => {
                glob.push('\\');
                glob.push(c);
            }
            other => glob.push(other),
        }
    }
    glob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ant_patterns_become_wider_globs() {
        assert_eq!(glob_of("/topic/price/**"), "/topic/price/*");
        assert_eq!(glob_of("/topic/*/chat"), "/topic/*/chat");
        assert_eq!(glob_of("/topic/{room}/x?"), "/topic/*/x?");
        assert_eq!(glob_of("/topic/[a]\\"), "/topic/\\[a\\]\\\\");
    }

    #[test]
    fn inbound_channels_name_their_target() {
        let names = Names::new("hub:");
        assert_eq!(
            names.target(&names.destination("/topic/a")),
            Some(Target::Destination("/topic/a"))
        );
        assert_eq!(names.target(&names.user("bob")), Some(Target::User("bob")));
        assert_eq!(names.target("other:d:/topic/a"), None);
        assert_eq!(
            names.redis_name(&Channel::for_subscription("/topic/**")),
            ("hub:d:/topic/*".to_owned(), true)
        );
    }
}

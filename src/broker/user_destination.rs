//! The `/user` destination syntax, in one place: how clients name a user's
//! queues (`/user/queue/x` to subscribe, `/user/{name}/queue/x` to send) and
//! how the broker keys one session's copy of such a subscription.

/// The prefix of user destinations, as clients write them (`/user/queue/x`).
pub const USER_PREFIX: &str = "/user";

/// Subscribes to everything sent to the session's user.
pub const EVERY_USER_DESTINATION: &str = "/user/**";

/// Whether a configured prefix would take destinations `/user` owns.
pub fn is_reserved_prefix(prefix: &str) -> bool {
    prefix == USER_PREFIX || prefix.starts_with("/user/")
}

/// Whether `destination` is spelled with the user prefix; a target given to
/// "send to user" must not be, or the prefix would be applied twice.
pub fn starts_with_user_prefix(destination: &str) -> bool {
    destination.starts_with(USER_PREFIX)
}

/// The broker key of a user destination resolved for one session: clients can
/// never SEND to it directly, because `/user/...` SENDs are resolved by user name.
pub fn session_key(session_id: &str, below: &str) -> String {
    format!("{USER_PREFIX}/{session_id}{below}")
}

/// `/queue/x` as the subscriber wrote it: `/user/queue/x`.
pub fn shown(below: &str) -> String {
    format!("{USER_PREFIX}{below}")
}

/// `/user/queue/x` -> `/queue/x`, what a session subscribes to below the prefix;
/// `None` when nothing is below it.
pub fn below_prefix(destination: &str) -> Option<&str> {
    let below = destination.strip_prefix(USER_PREFIX)?;
    (!below.is_empty()).then_some(below)
}

/// `/user/{name}/queue/x` -> (`name`, `/queue/x`), a SEND to a user.
pub fn send_target(destination: &str) -> Option<(&str, &str)> {
    let rest = destination.strip_prefix(USER_PREFIX)?.strip_prefix('/')?;
    let (user, target) = rest.split_at(rest.find('/')?);
    (!user.is_empty() && target.len() > 1).then_some((user, target))
}

/// `/user/{session}/...` keys name one session on this node: never shared with other nodes.
pub fn is_session_key(key: &str) -> bool {
    key.strip_prefix(USER_PREFIX)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_and_shown_names() {
        assert_eq!(
            session_key("00000003", "/queue/x"),
            "/user/00000003/queue/x"
        );
        assert_eq!(shown("/queue/x"), "/user/queue/x");
        assert_eq!(below_prefix("/user/queue/x"), Some("/queue/x"));
        assert_eq!(below_prefix("/user"), None);
    }

    #[test]
    fn sends_name_a_user_and_a_destination() {
        assert_eq!(
            send_target("/user/alice/queue/x"),
            Some(("alice", "/queue/x"))
        );
        assert_eq!(send_target("/user/alice/"), None);
        assert_eq!(send_target("/user//queue/x"), None);
        assert_eq!(send_target("/user/alice"), None);
    }

    #[test]
    fn only_per_session_keys_stay_local() {
        assert!(is_session_key("/user/0000002a/queue/x"));
        assert!(!is_session_key("/topic/user/x"));
        assert!(
            !is_session_key("/users/x"),
            "a broker prefix that merely starts alike"
        );
    }

    #[test]
    fn the_user_prefix_is_reserved() {
        assert!(is_reserved_prefix("/user"));
        assert!(is_reserved_prefix("/user/x"));
        assert!(!is_reserved_prefix("/users"));
    }
}

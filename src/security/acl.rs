//! Per-destination access rules from `[[acl]]`: who may subscribe to and send
//! to the destinations a pattern matches. For a destination the first matching
//! rule decides; with no matching rule, access is open. A pattern subscription
//! is refused when any rule that could cover part of it refuses the session, so
//! a wildcard never reaches a destination the session could not read directly.

use super::auth::Identity;
use crate::broker::destination::{Pattern, is_pattern};
use crate::config::{AclRuleConfig, ConfigError};
use std::fmt;

/// One entry of a rule's `subscribe` or `send` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anyone,
    Authenticated,
    User(String),
    Role(String),
}

impl Principal {
    pub fn parse(text: &str) -> Result<Principal, String> {
        let named = |name: &str, what: &str| {
            if name.is_empty() {
                Err(format!("{text:?} names no {what}"))
            } else {
                Ok(name.to_owned())
            }
        };
        match text {
            "*" => Ok(Principal::Anyone),
            "authenticated" => Ok(Principal::Authenticated),
            _ => match text.split_once(':') {
                Some(("user", name)) => named(name, "user").map(Principal::User),
                Some(("role", name)) => named(name, "role").map(Principal::Role),
                _ => Err(format!(
                    "{text:?} is not \"*\", \"authenticated\", \"user:NAME\" or \"role:NAME\""
                )),
            },
        }
    }

    fn admits(&self, who: &Subject<'_>) -> bool {
        match self {
            Principal::Anyone => true,
            Principal::Authenticated => who.authenticated,
            Principal::User(name) => who.authenticated && who.user == Some(name.as_str()),
            Principal::Role(role) => who.authenticated && who.roles.iter().any(|r| r == role),
        }
    }
}

/// Who asks, borrowed from a session or an [`Identity`]: checks allocate nothing.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: Option<&'a str>,
    pub roles: &'a [String],
    pub authenticated: bool,
}

impl Identity {
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            user: self.user.as_deref(),
            roles: &self.roles,
            authenticated: self.authenticated,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Send,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Subscribe => "subscribe to",
            Action::Send => "send to",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access denied: {who} may not {action} {destination} (rule for {rule})")]
pub struct AccessDenied {
    pub who: String,
    pub action: Action,
    pub destination: String,
    pub rule: String,
}

#[derive(Debug)]
struct Rule {
    pattern: Pattern,
    subscribe: Option<Vec<Principal>>,
    send: Option<Vec<Principal>>,
}

impl Rule {
    fn list(&self, action: Action) -> Option<&[Principal]> {
        match action {
            Action::Subscribe => self.subscribe.as_deref(),
            Action::Send => self.send.as_deref(),
        }
    }

    fn admits(&self, action: Action, who: &Subject<'_>) -> bool {
        self.list(action)
            .is_none_or(|list| list.iter().any(|p| p.admits(who)))
    }
}

#[derive(Debug, Default)]
pub struct AccessRules {
    rules: Vec<Rule>,
}

fn describe(who: &Subject<'_>) -> String {
    match (who.user, who.authenticated) {
        (Some(user), true) => format!("user {user:?}"),
        (Some(user), false) => format!("unauthenticated user {user:?}"),
        (None, _) => "an anonymous session".to_owned(),
    }
}

fn parse_list(
    key: &'static str,
    rule: &AclRuleConfig,
    list: &Option<Vec<String>>,
) -> Result<Option<Vec<Principal>>, ConfigError> {
    list.as_ref()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    Principal::parse(entry).map_err(|reason| {
                        ConfigError::invalid(key, format!("{:?}: {reason}", rule.destination))
                    })
                })
                .collect()
        })
        .transpose()
}

impl AccessRules {
    /// Compiles `[[acl]]`; an error names the key at fault.
    pub fn new(config: &[AclRuleConfig]) -> Result<AccessRules, ConfigError> {
        let rules = config
            .iter()
            .map(|rule| {
                Ok(Rule {
                    pattern: Pattern::compile(&rule.destination).map_err(|error| {
                        ConfigError::invalid("acl.destination", error.to_string())
                    })?,
                    subscribe: parse_list("acl.subscribe", rule, &rule.subscribe)?,
                    send: parse_list("acl.send", rule, &rule.send)?,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(AccessRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Allows or refuses `action` on `destination` (a pattern only for subscriptions).
    pub fn check(
        &self,
        action: Action,
        destination: &str,
        who: Subject<'_>,
    ) -> Result<(), AccessDenied> {
        let who = &who;
        if self.rules.is_empty() {
            return Ok(());
        }
        let denied = |rule: &Rule| AccessDenied {
            who: describe(who),
            action,
            destination: destination.to_owned(),
            rule: rule.pattern.to_string(),
        };
        if !is_pattern(destination) {
            return match self.rules.iter().find(|r| r.pattern.matches(destination)) {
                Some(rule) if !rule.admits(action, who) => Err(denied(rule)),
                _ => Ok(()),
            };
        }
        let Ok(pattern) = Pattern::compile(destination) else {
            // Not a valid pattern: the subscription is refused for that reason elsewhere.
            return Ok(());
        };
        match self
            .rules
            .iter()
            .find(|rule| rule.pattern.may_overlap(&pattern) && !rule.admits(action, who))
        {
            Some(rule) => Err(denied(rule)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> AccessRules {
        let config = crate::config::Config::parse(text).unwrap();
        AccessRules::new(&config.acl).unwrap()
    }

    fn alice() -> Identity {
        Identity::verified("alice".into(), vec!["admin".into()])
    }

    fn bob() -> Identity {
        Identity::verified("bob".into(), vec![])
    }

    const ADMIN_ONLY: &str = r#"
        [[acl]]
        destination = "/topic/admin/**"
        subscribe = ["role:admin"]
        send = ["role:admin"]
        [[acl]]
        destination = "/topic/announce"
        send = ["user:alice"]
        [[acl]]
        destination = "/topic/members/*"
        subscribe = ["authenticated"]
    "#;

    #[test]
    fn the_first_matching_rule_decides_and_unmatched_destinations_are_open() {
        let acl = rules(ADMIN_ONLY);
        let anonymous = Identity::anonymous();
        assert!(
            acl.check(Action::Subscribe, "/topic/admin/x", alice().subject())
                .is_ok()
        );
        let denied = acl
            .check(Action::Subscribe, "/topic/admin/x", bob().subject())
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "access denied: user \"bob\" may not subscribe to /topic/admin/x (rule for /topic/admin/**)"
        );
        assert!(
            acl.check(Action::Subscribe, "/topic/announce", bob().subject())
                .is_ok()
        );
        assert!(
            acl.check(Action::Send, "/topic/announce", bob().subject())
                .is_err()
        );
        assert!(
            acl.check(Action::Send, "/topic/announce", alice().subject())
                .is_ok()
        );
        assert!(
            acl.check(Action::Subscribe, "/topic/members/1", bob().subject())
                .is_ok()
        );
        assert!(
            acl.check(Action::Subscribe, "/topic/members/1", anonymous.subject())
                .is_err()
        );
        assert!(
            acl.check(Action::Send, "/topic/other", anonymous.subject())
                .is_ok()
        );
    }

    #[test]
    fn a_claimed_name_is_not_an_authenticated_user() {
        let acl = rules(ADMIN_ONLY);
        let claimed = Identity::claimed("alice".into());
        assert!(
            acl.check(Action::Send, "/topic/announce", claimed.subject())
                .is_err()
        );
    }

    #[test]
    fn wildcards_cannot_reach_what_a_rule_refuses() {
        let acl = rules(ADMIN_ONLY);
        for wide in ["/topic/**", "/topic/*/x", "/topic/adm*/**", "/**"] {
            assert!(
                acl.check(Action::Subscribe, wide, bob().subject()).is_err(),
                "{wide}"
            );
        }
        // The announce rule only limits sending, so subscribing through a wildcard is fine.
        assert!(
            acl.check(Action::Subscribe, "/topic/announ?e", bob().subject())
                .is_ok()
        );
        // Disjoint literal prefixes: no overlap, no refusal.
        assert!(
            acl.check(Action::Subscribe, "/topic/price/**", bob().subject())
                .is_ok()
        );
        assert!(
            acl.check(Action::Subscribe, "/topic/**", alice().subject())
                .is_ok()
        );
    }

    #[test]
    fn an_empty_list_admits_nobody() {
        let acl = rules("[[acl]]\ndestination = \"/**\"\nsend = []\n");
        assert!(
            acl.check(Action::Send, "/topic/x", alice().subject())
                .is_err()
        );
        assert!(
            acl.check(Action::Subscribe, "/topic/x", alice().subject())
                .is_ok()
        );
    }

    #[test]
    fn bad_principals_are_refused_at_load() {
        let config = crate::config::Config::parse(
            "[[acl]]\ndestination = \"/topic/x\"\nsend = [\"admin\"]\n",
        )
        .expect("scalar checks pass");
        let error = AccessRules::new(&config.acl).expect_err("refused");
        assert!(error.to_string().starts_with("acl.send"), "{error}");
    }
}

//! The `Origin` check of WebSocket handshakes, SSE streams and CORS: same origin
//! by default, or the patterns of `server.allowed_origins`. Requests without an
//! `Origin` header come from non-browser clients, which origins cannot restrict.

use crate::config::ConfigError;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// One entry of `server.allowed_origins`: `"*"`, or `scheme://host[:port]` where
/// `*` in the host stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern(String);

impl OriginPattern {
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        if text == "*" {
            return Ok(OriginPattern(text.into()));
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?} is not \"*\" or scheme://host[:port]"))?;
        if scheme.is_empty() || rest.is_empty() || rest.contains('/') {
            return Err(format!(
                "{text:?} must be scheme://host[:port], without a path or a trailing '/'"
            ));
        }
        Ok(OriginPattern(text.to_ascii_lowercase()))
    }

    fn matches(&self, origin: &str) -> bool {
        self.0 == "*" || wildcard_match(self.0.as_bytes(), origin.as_bytes())
    }
}

/// `*` matches any run of bytes; everything else matches itself.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Clones share the list, so a reload that replaces it reaches every
/// place holding the policy (the handshakes, the CORS layers).
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Arc<ArcSwap<Vec<OriginPattern>>>,
}

impl OriginPolicy {
    /// From `server.allowed_origins`; an entry that does not parse is an error naming that key.
    pub fn new(allowed: &[String]) -> Result<OriginPolicy, ConfigError> {
        let allowed = allowed
            .iter()
            .map(|entry| {
                OriginPattern::parse(entry)
                    .map_err(|reason| ConfigError::invalid("server.allowed_origins", reason))
            })
            .collect::<Result<_, _>>()?;
        Ok(OriginPolicy {
            allowed: Arc::new(ArcSwap::from_pointee(allowed)),
        })
    }

    /// Takes on `other`'s list, for every holder of this policy.
    pub fn replace(&self, other: &OriginPolicy) {
        self.allowed.store(other.allowed.load_full());
    }

    /// Whether a browser page at `origin` may use this server, reached as `host`.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        let same_origin = origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
        same_origin
            || self
                .allowed
                .load()
                .iter()
                .any(|pattern| pattern.matches(&origin))
    }

    /// The handshake check: `Err` carries the message for the 403 answer.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), String> {
        match origin {
            None => Ok(()),
            Some(origin) if self.allows(origin, host) => Ok(()),
            Some(origin) => Err(format!(
                "origin {origin:?} is not allowed; add it to server.allowed_origins"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_is_allowed_by_default_and_others_are_not() {
        let policy = OriginPolicy::default();
        assert!(policy.check(None, Some("a.test:8080")).is_ok());
        assert!(
            policy
                .check(Some("http://a.test:8080"), Some("a.test:8080"))
                .is_ok()
        );
        assert!(
            policy
                .check(Some("http://A.test:8080"), Some("a.test:8080"))
                .is_ok()
        );
        assert!(
            policy
                .check(Some("http://evil.test"), Some("a.test:8080"))
                .is_err()
        );
        assert!(
            policy
                .check(Some("http://a.test:8081"), Some("a.test:8080"))
                .is_err()
        );
        assert!(policy.check(Some("null"), Some("a.test")).is_err());
    }

    #[test]
    fn patterns_match_whole_origins() {
        let policy = OriginPolicy::new(&[
            "https://*.example.com".into(),
            "http://localhost:3000".into(),
        ])
        .unwrap();
        assert!(policy.allows("https://app.example.com", None));
        assert!(policy.allows("https://a.b.example.com", None));
        assert!(!policy.allows("https://example.com", None));
        assert!(!policy.allows("https://app.example.com.evil.test", None));
        assert!(!policy.allows("http://app.example.com", None));
        assert!(policy.allows("http://localhost:3000", None));
        assert!(!policy.allows("http://localhost:30000", None));
        let any = OriginPolicy::new(&["*".into()]).unwrap();
        assert!(any.allows("http://anything.test", None));
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert!(OriginPattern::parse("example.com").is_err());
        assert!(OriginPattern::parse("https://example.com/").is_err());
        assert!(OriginPattern::parse("https://").is_err());
        let error = OriginPolicy::new(&["example.com".into()]).unwrap_err();
        assert!(
            error.to_string().starts_with("server.allowed_origins"),
            "{error}"
        );
    }
}

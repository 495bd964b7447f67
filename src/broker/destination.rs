//! Destinations: which prefix owns them (application or broker), validation,
//! and Ant-style subscription patterns (`*`, `?`, `**`, `{var}`) as Spring's simple broker allows.

use std::fmt;

/// Longest destination accepted, in bytes.
pub const MAX_DESTINATION_LEN: usize = 1024;

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("destination must not be empty")]
    Empty,
    #[error("destination {0:?} must start with '/'")]
    NotAbsolute(String),
    #[error("destination is longer than {MAX_DESTINATION_LEN} bytes")]
    TooLong,
    #[error("destination {0:?} contains a control character or white space")]
    BadCharacter(String),
    #[error("pattern {0:?} has an unclosed '{{'")]
    UnclosedVariable(String),
    #[error("pattern {0:?}: variables with a regular expression are not supported")]
    RegexVariable(String),
    #[error("pattern {0:?}: '**' must be a whole path segment")]
    PartialDoubleStar(String),
}

/// Who handles a destination, decided by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An application prefix such as `/app`: SEND goes to a handler.
    App,
    /// A broker prefix such as `/topic`: the in-memory broker fans out.
    Broker,
    /// `/user/...`: resolved per user or per session.
    User,
    /// No configured prefix matches.
    Unknown,
}

/// The configured application and broker prefixes.
#[derive(Debug, Clone)]
pub struct Prefixes {
    app: Vec<String>,
    broker: Vec<String>,
}

/// Prefix match at a path boundary: `/topic` owns `/topic` and `/topic/x`, not `/topics`.
fn has_prefix(destination: &str, prefix: &str) -> bool {
    match destination.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

impl Prefixes {
    pub fn new(app: Vec<String>, broker: Vec<String>) -> Self {
        Prefixes { app, broker }
    }

    pub fn route(&self, destination: &str) -> Route {
        if has_prefix(destination, super::user_destination::USER_PREFIX) {
            Route::User
        } else if self.app.iter().any(|p| has_prefix(destination, p)) {
            Route::App
        } else if self.broker.iter().any(|p| has_prefix(destination, p)) {
            Route::Broker
        } else {
            Route::Unknown
        }
    }

    /// The destination below its application prefix: `/app/v1/chat` -> `/v1/chat`.
    pub fn app_path<'a>(&self, destination: &'a str) -> Option<&'a str> {
        self.app
            .iter()
            .filter(|prefix| has_prefix(destination, prefix))
            .map(|prefix| &destination[prefix.trim_end_matches('/').len()..])
            .next()
    }

    pub fn broker_prefixes(&self) -> &[String] {
        &self.broker
    }

    pub fn app_prefixes(&self) -> &[String] {
        &self.app
    }
}

/// Checks what every destination, pattern or not, must satisfy.
pub fn validate(destination: &str) -> Result<(), DestinationError> {
    if destination.is_empty() {
        return Err(DestinationError::Empty);
    }
    if destination.len() > MAX_DESTINATION_LEN {
        return Err(DestinationError::TooLong);
    }
    if !destination.starts_with('/') {
        return Err(DestinationError::NotAbsolute(destination.to_owned()));
    }
    if destination
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(DestinationError::BadCharacter(destination.to_owned()));
    }
    Ok(())
}

/// True when a subscription destination must be matched as a pattern.
pub fn is_pattern(destination: &str) -> bool {
    destination.contains(['*', '?', '{'])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: exactly one character.
    One,
    /// `*` or `{var}`: any run of characters within a segment.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more whole segments.
    AnySegments,
    Glob(Vec<Token>),
}

/// A compiled Ant-style pattern over `/`-separated segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
    /// No wildcards: matching is a string comparison, without allocating.
    literal: bool,
}

impl Pattern {
    pub fn compile(text: &str) -> Result<Pattern, DestinationError> {
        validate(text)?;
        let segments = text
            .split('/')
            .map(|segment| compile_segment(text, segment))
            .collect::<Result<_, _>>()?;
        Ok(Pattern {
            text: text.to_owned(),
            segments,
            literal: !is_pattern(text),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, destination: &str) -> bool {
        if self.literal {
            return self.text == destination;
        }
        let parts: Vec<&str> = destination.split('/').collect();
        match_segments(&self.segments, &parts)
    }

    /// What every destination the pattern matches starts with.
    pub fn literal_prefix(&self) -> &str {
        self.text
            .find(['*', '?', '{'])
            .map_or(self.text.as_str(), |end| &self.text[..end])
    }

    /// Whether some destination may match both patterns: exact when one of
    /// them is a plain destination, else judged by their literal prefixes,
    /// which may say yes for two patterns that never meet, never the reverse.
    /// A wildcard subscription is checked with it against rules it could reach.
    pub fn may_overlap(&self, other: &Pattern) -> bool {
        if other.literal {
            return self.matches(&other.text);
        }
        if self.literal {
            return other.matches(&self.text);
        }
        let (mine, theirs) = (self.literal_prefix(), other.literal_prefix());
        mine.starts_with(theirs) || theirs.starts_with(mine)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn compile_segment(pattern: &str, segment: &str) -> Result<Segment, DestinationError> {
    if segment == "**" {
        return Ok(Segment::AnySegments);
    }
    if segment.contains("**") {
        return Err(DestinationError::PartialDoubleStar(pattern.to_owned()));
    }
    let mut tokens = Vec::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Any,
            '?' => Token::One,
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if !segment.contains('}') {
                    return Err(DestinationError::UnclosedVariable(pattern.to_owned()));
                }
                if name.contains(':') {
                    return Err(DestinationError::RegexVariable(pattern.to_owned()));
                }
                Token::Any
            }
            other => Token::Literal(other),
        });
    }
    Ok(Segment::Glob(tokens))
}

/// Wildcard matching where a star element matches any run of text elements and
/// every other element matches exactly one. Greedy with a single backtrack point,
/// so the cost is at most `pattern.len() * text.len()` steps: a hostile pattern
/// such as `/**/**/**/x` cannot make a publish exponential.
fn wildcard_match<P, T>(
    pattern: &[P],
    text: &[T],
    is_star: impl Fn(&P) -> bool,
    matches_one: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && is_star(&pattern[p]) {
            resume = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && matches_one(&pattern[p], &text[t]) {
            p += 1;
            t += 1;
        } else if let Some((after_star, star_text)) = resume {
            p = after_star;
            t = star_text + 1;
            resume = Some((after_star, star_text + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(is_star)
}

fn match_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    wildcard_match(
        pattern,
        parts,
        |segment| *segment == Segment::AnySegments,
        |segment, part| match segment {
            Segment::Glob(tokens) => {
                let chars: Vec<char> = part.chars().collect();
                match_glob(tokens, &chars)
            }
            Segment::AnySegments => false,
        },
    )
}

fn match_glob(tokens: &[Token], text: &[char]) -> bool {
    wildcard_match(
        tokens,
        text,
        |token| *token == Token::Any,
        |token, c| match token {
            Token::Literal(literal) => literal == c,
            Token::One => true,
            Token::Any => false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, destination: &str) -> bool {
        Pattern::compile(pattern).unwrap().matches(destination)
    }

    #[test]
    fn prefixes_match_at_a_path_boundary() {
        let prefixes = Prefixes::new(vec!["/app".into()], vec!["/topic".into(), "/chat".into()]);
        assert_eq!(prefixes.route("/app/v1/chat"), Route::App);
        assert_eq!(prefixes.route("/topic/game_chat"), Route::Broker);
        assert_eq!(prefixes.route("/chat/single/2"), Route::Broker);
        assert_eq!(prefixes.route("/topics"), Route::Unknown);
        assert_eq!(prefixes.route("/queue/a"), Route::Unknown);
        assert_eq!(prefixes.route("/user/queue/a"), Route::User);
        assert_eq!(prefixes.app_path("/app/v1/chat"), Some("/v1/chat"));
        assert_eq!(prefixes.app_path("/topic/x"), None);
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(matches("/topic/game.*", "/topic/game.chat"));
        assert!(matches("/topic/*", "/topic/a"));
        assert!(!matches("/topic/*", "/topic/a/b"));
        assert!(!matches("/topic/game.*", "/topic/other"));
    }

    #[test]
    fn double_star_spans_segments_including_none() {
        assert!(matches("/topic/**", "/topic/a/b/c"));
        assert!(matches("/topic/**", "/topic"));
        assert!(matches("/topic/**/end", "/topic/x/y/end"));
        assert!(!matches("/topic/**", "/chat/a"));
    }

    #[test]
    fn a_pattern_without_wildcards_matches_only_itself() {
        assert!(matches("/topic/price", "/topic/price"));
        assert!(!matches("/topic/price", "/topic/price/btc"));
        assert!(!matches("/topic/price", "/topic/pric"));
    }

    #[test]
    fn variables_and_question_marks() {
        assert!(matches("/chat/single/{id}", "/chat/single/42"));
        assert!(!matches("/chat/single/{id}", "/chat/single/42/x"));
        assert!(matches("/topic/room?", "/topic/room1"));
        assert!(!matches("/topic/room?", "/topic/room12"));
    }

    #[test]
    fn hostile_patterns_match_in_polynomial_time() {
        let pattern = format!("{}/x", "/**".repeat(40));
        let destination = "/a".repeat(500);
        assert!(!matches(&pattern, &destination));
        assert!(!matches(
            &format!("/{}x", "*a".repeat(30)),
            &format!("/{}", "a".repeat(1000))
        ));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        assert!(matches!(
            Pattern::compile("/topic/{id"),
            Err(DestinationError::UnclosedVariable(_))
        ));
        assert!(matches!(
            Pattern::compile("/t/{id:\\d+}"),
            Err(DestinationError::RegexVariable(_))
        ));
        assert!(matches!(
            Pattern::compile("/t/a**"),
            Err(DestinationError::PartialDoubleStar(_))
        ));
        assert!(matches!(
            validate("topic"),
            Err(DestinationError::NotAbsolute(_))
        ));
        assert!(matches!(
            validate("/a b"),
            Err(DestinationError::BadCharacter(_))
        ));
    }
}

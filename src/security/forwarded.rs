//! The headers in which proxies name whom they forward for: RFC 7239
//! `Forwarded` (its `for=` parameter) and the older `X-Forwarded-For`, read
//! into one hop per proxy, the nearest last. Whether to believe them is
//! `proxies.rs`'s business.
//!
//! Hand-written rather than taken from a crate. Of those on crates.io,
//! `rfc7239` (0.1.3) splits at every `,` and `;` regardless of quoted
//! strings and keeps the optional white space around parameters in their
//! names, so `proto=https; for=1.2.3.4` loses its `for`; and it reads only
//! `Forwarded`. `trusted-proxies` (0.3.0) reads both headers but prefers
//! `Forwarded` and falls through to `X-Forwarded-For` on its own, without
//! saying which one it used: behind a proxy that appends only to
//! `X-Forwarded-For`, a client's own `Forwarded` header would choose its
//! address. `proxies.rs` needs both headers' hops to check them against each
//! other, which is what these functions return.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One hop: whom a proxy says it received the request from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// An IP address, with the port when the proxy gave one.
    Address(IpAddr, Option<u16>),
    /// A hop the proxy chose not to name: `unknown`, an obfuscated
    /// identifier (`_hidden`), or a `Forwarded` element without `for=`.
    Unnamed,
}

/// Why (part of) a forwarding header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    #[error("a quoted string is not closed")]
    UnclosedQuote,
    #[error("{0:?} is not a parameter (name=value)")]
    MalformedPair(String),
    #[error("`for` appears twice in one element")]
    RepeatedFor,
    #[error("{0:?} is not an IP address, optionally with a port")]
    BadNode(String),
}

/// Longest piece of a header quoted back in an error (they are only logged).
const QUOTED_MAX: usize = 64;

fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// The hops of `Forwarded` header lines, in order; one entry per element,
/// `Err` for an element that cannot be read. Empty elements (`a,,b`) are
/// skipped, as the list syntax allows.
pub fn forwarded<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Result<Hop, ForwardedError>> {
    // Each line on its own: a quoted string cannot run from one header line
    // into the next, so one client's unclosed quote spoils only its own line.
    lines
        .into_iter()
        .flat_map(|line| split_unquoted(line, b','))
        .filter_map(|element| match element {
            Ok(element) => element_hop(element),
            Err(error) => Some(Err(error)),
        })
        .collect()
}

/// The hops of `X-Forwarded-For` header lines, in order; `Err` for an entry
/// that is not an address. Empty entries are skipped.
pub fn x_forwarded_for<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Vec<Result<Hop, ForwardedError>> {
    lines
        .into_iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(node)
        .collect()
}

/// Splits `text` at each `separator` outside a quoted string; a last part that
/// ends inside a quoted string is an error.
fn split_unquoted(text: &str, separator: u8) -> Vec<Result<&str, ForwardedError>> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    // Bytes: the separators, quotes and backslashes looked for are ASCII,
    // which never occurs inside a multi-byte character.
    for (index, &byte) in text.as_bytes().iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_quotes = false;
            }
        } else if byte == b'"' {
            in_quotes = true;
        } else if byte == separator {
            parts.push(Ok(&text[start..index]));
            start = index + 1;
        }
    }
    parts.push(if in_quotes {
        Err(ForwardedError::UnclosedQuote)
    } else {
        Ok(&text[start..])
    });
    parts
}

/// The hop one `Forwarded` element names; `None` for an empty element.
fn element_hop(element: &str) -> Option<Result<Hop, ForwardedError>> {
    if element.trim().is_empty() {
        return None;
    }
    let mut hop = None;
    for pair in split_unquoted(element, b';') {
        let pair = match pair {
            Ok(pair) => pair.trim(),
            Err(error) => return Some(Err(error)),
        };
        // `for=a;;proto=b`: the grammar allows empty pairs.
        if pair.is_empty() {
            continue;
        }
        let malformed = || ForwardedError::MalformedPair(quoted(pair));
        let Some((name, value)) = pair.split_once('=') else {
            return Some(Err(malformed()));
        };
        if !is_token(name) {
            return Some(Err(malformed()));
        }
        let Some(value) = unquote(value) else {
            return Some(Err(malformed()));
        };
        if name.eq_ignore_ascii_case("for") {
            if hop.is_some() {
                return Some(Err(ForwardedError::RepeatedFor));
            }
            hop = Some(node(&value));
        }
    }
    // An element without `for` is a proxy that did not say whom it serves.
    Some(hop.unwrap_or(Ok(Hop::Unnamed)))
}

/// RFC 7230 `token`: the characters a parameter name may have.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A parameter value: a quoted string with its escapes undone, or a bare
/// value. RFC 7239 wants addresses with `:` or `[` quoted, but proxies that
/// write `for=[::1]` exist and mean the same; anything with white space or a
/// stray quote is refused.
fn unquote(value: &str) -> Option<Cow<'_, str>> {
    let Some(inner) = value.strip_prefix('"') else {
        let bare = !value.is_empty()
            && !value
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\\');
        return bare.then_some(Cow::Borrowed(value));
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains(['\\', '"']) {
        return Some(Cow::Borrowed(inner));
    }
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return None,
            c => text.push(c),
        }
    }
    Some(Cow::Owned(text))
}

/// A node: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`,
/// a bare IPv6 address, `unknown`, or an obfuscated `_name`.
fn node(text: &str) -> Result<Hop, ForwardedError> {
    let bad = || ForwardedError::BadNode(quoted(text));
    if text.eq_ignore_ascii_case("unknown") || text.starts_with('_') {
        return Ok(Hop::Unnamed);
    }
    let (ip, port) = if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            after => port(after.strip_prefix(':').ok_or_else(bad)?).ok_or_else(bad)?,
        };
        (IpAddr::V6(ip), port)
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        (ip, None)
    } else {
        let (ip, port_text) = text.rsplit_once(':').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        (IpAddr::V4(ip), port(port_text).ok_or_else(bad)?)
    };
    // An IPv4 client seen through an IPv6 socket is still that IPv4 client.
    Ok(Hop::Address(ip.to_canonical(), port))
}

/// A node port: digits, or an obfuscated `_name` (known to be there, not
/// what it is). `None` when it is neither.
fn port(text: &str) -> Option<Option<u16>> {
    if text.len() > 1 && text.starts_with('_') {
        return Some(None);
    }
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8, port: Option<u16>) -> Result<Hop, ForwardedError> {
        Ok(Hop::Address(IpAddr::from([a, b, c, d]), port))
    }

    fn v6(text: &str, port: Option<u16>) -> Result<Hop, ForwardedError> {
        Ok(Hop::Address(IpAddr::V6(text.parse().unwrap()), port))
    }

    #[test]
    fn forwarded_elements_name_their_hops_in_order() {
        assert_eq!(
            forwarded(["for=192.0.2.60;proto=http;by=203.0.113.43, for=198.51.100.17"]),
            vec![v4(192, 0, 2, 60, None), v4(198, 51, 100, 17, None)]
        );
        // RFC 7239's own examples: quoted IPv6 with a port, case-insensitive names.
        assert_eq!(
            forwarded([r#"For="[2001:db8:cafe::17]:4711""#]),
            vec![v6("2001:db8:cafe::17", Some(4711))]
        );
        assert_eq!(
            forwarded([
                "for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com"
            ]),
            vec![v4(192, 0, 2, 43, None), v4(198, 51, 100, 17, None)]
        );
        // White space around parameters, several header lines, empty elements.
        assert_eq!(
            forwarded(["proto=https; for=\"1.2.3.4:8080\" ,, ", "for=5.6.7.8"]),
            vec![v4(1, 2, 3, 4, Some(8080)), v4(5, 6, 7, 8, None)]
        );
        // Commas and semicolons inside quoted strings, and escapes.
        assert_eq!(
            forwarded([r#"host="a,b;c";for="1.2.3.4", for="\[::1\]""#]),
            vec![v4(1, 2, 3, 4, None), v6("::1", None)]
        );
    }

    #[test]
    fn unnamed_hops_are_not_addresses() {
        assert_eq!(
            forwarded(["for=unknown, for=_hidden, proto=https, for=\"_gazonk\""]),
            vec![Ok(Hop::Unnamed); 4]
        );
        assert_eq!(
            forwarded(["for=\"1.2.3.4:_port\""]),
            vec![v4(1, 2, 3, 4, None)]
        );
        assert_eq!(x_forwarded_for(["unknown, 1.2.3.4"])[0], Ok(Hop::Unnamed));
    }

    #[test]
    fn garbage_in_forwarded_is_an_error_for_its_element_only() {
        let hops = forwarded(["for=1.2.3.4, for=999.1.1.1, for=5.6.7.8"]);
        assert_eq!(hops[0], v4(1, 2, 3, 4, None));
        assert!(matches!(hops[1], Err(ForwardedError::BadNode(_))));
        assert_eq!(hops[2], v4(5, 6, 7, 8, None));
        for garbage in [
            "for",
            "for=",
            "=1.2.3.4",
            "f r=1.2.3.4",
            "for=1.2.3.4 5",
            "for=\"1.2.3.4\"x\"\"",
            "for=\"1.2.3.4",
            "for=1.2.3.4;for=5.6.7.8",
            "for=\"[2001:db8::1\"",
            "for=\"[2001:db8::1]4711\"",
            "for=\"[1.2.3.4]\"",
            "for=1.2.3.4:99999",
            "for=1.2.3.4:+80",
            "for=1.2.3.4:",
            "for=example.com",
            "for=\u{e9}t\u{e9}",
            "\u{0}",
        ] {
            let hops = forwarded([garbage]);
            assert_eq!(hops.len(), 1, "{garbage:?}: {hops:?}");
            assert!(hops[0].is_err(), "{garbage:?}: {hops:?}");
        }
        // An unclosed quote spoils the rest of its line, not the next line.
        let hops = forwarded(["for=1.2.3.4, for=\"5.6.7.8, for=9.9.9.9", "for=4.3.2.1"]);
        assert_eq!(
            hops,
            vec![
                v4(1, 2, 3, 4, None),
                Err(ForwardedError::UnclosedQuote),
                v4(4, 3, 2, 1, None)
            ]
        );
    }

    #[test]
    fn x_forwarded_for_entries_are_addresses() {
        assert_eq!(
            x_forwarded_for([
                "1.2.3.4, 127.0.0.1",
                " 2001:db8::1 ,[2001:db8::2]:443,5.6.7.8:80,"
            ]),
            vec![
                v4(1, 2, 3, 4, None),
                v4(127, 0, 0, 1, None),
                v6("2001:db8::1", None),
                v6("2001:db8::2", Some(443)),
                v4(5, 6, 7, 8, Some(80)),
            ]
        );
        // An IPv4 address in IPv6 clothing is the IPv4 address.
        assert_eq!(
            x_forwarded_for(["::ffff:1.2.3.4"]),
            vec![v4(1, 2, 3, 4, None)]
        );
        assert!(x_forwarded_for(["", " , "]).is_empty());
        let hops = x_forwarded_for(["nonsense, 1.2.3.4.5, 1.2.3.4:x, [::1, 1.2.3.4"]);
        assert_eq!(hops.len(), 5);
        assert!(hops[..4].iter().all(Result::is_err), "{hops:?}");
        assert_eq!(hops[4], v4(1, 2, 3, 4, None));
    }

    #[test]
    fn long_garbage_is_quoted_short() {
        let long = "x".repeat(10_000);
        let error = x_forwarded_for([long.as_str()])
            .pop()
            .and_then(Result::err)
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.len() < 200, "{error}");
    }
}

//! Who may use the HTTP API: the read endpoints (stats, sessions, metrics)
//! take `[api] read_token` or `[api] token` when one is set; the write and
//! admin endpoints take `[api] token`, and without one answer loopback
//! clients only, unless `[api] insecure = true`.

use super::http_api::ApiError;
use crate::hub::Hub;
use axum::http::HeaderMap;
use std::net::SocketAddr;

/// Compares in time independent of where the strings differ.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The bearer token of `Authorization`, or the `token` query parameter for
/// what a browser opens without headers (an `EventSource`, a link).
fn given_token<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(query_token)
}

fn matches(given: Option<&str>, expected: &str) -> bool {
    !expected.is_empty()
        && given.is_some_and(|given| same_secret(given.as_bytes(), expected.as_bytes()))
}

/// Stats, sessions, metrics.
pub(crate) fn authorize_read(
    hub: &Hub,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), ApiError> {
    let settings = hub.settings.api.load();
    if settings.token.is_empty() && settings.read_token.is_empty() {
        return Ok(());
    }
    let given = given_token(headers, query_token);
    if matches(given, &settings.read_token) || matches(given, &settings.token) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Publish, close a session, reload.
pub(crate) fn authorize_write(
    hub: &Hub,
    headers: &HeaderMap,
    query_token: Option<&str>,
    peer: SocketAddr,
) -> Result<(), ApiError> {
    let settings = hub.settings.api.load();
    if !settings.token.is_empty() {
        return if matches(given_token(headers, query_token), &settings.token) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        };
    }
    if settings.insecure || is_local(hub, headers, peer) {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "the write endpoints answer loopback clients only while [api] token is empty; \
         set [api] token (or [api] insecure = true to open them to everyone)"
            .into(),
    ))
}

/// A request from this machine: the client (as trusted proxies name it) is
/// on loopback, and no untrusted proxy on loopback forwarded it for someone
/// else (nginx on the same host sends `X-Forwarded-For`).
fn is_local(hub: &Hub, headers: &HeaderMap, peer: SocketAddr) -> bool {
    use crate::security::proxies::ClientAddr;
    let loopback = |addr: &SocketAddr| addr.ip().to_canonical().is_loopback();
    match super::handshake::client_addr(hub, headers, peer) {
        // Without a trusted proxy's word, forwarding headers mean someone
        // else's request passed through a proxy on this machine.
        ClientAddr::Direct(addr) => {
            let forwarded = headers.contains_key("x-forwarded-for")
                || headers.contains_key("forwarded")
                || headers.contains_key("x-real-ip");
            loopback(&addr) && !forwarded
        }
        ClientAddr::Forwarded { client, .. } => loopback(&client),
        // A trusted proxy that named nobody usable: not provably local.
        ClientAddr::Unnamed { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_whole() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abd", b"abc"));
        assert!(!super::same_secret(b"ab", b"abc"));
    }
}

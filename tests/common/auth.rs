//! HS256 bearer tokens and the server configuration that accepts them, for
//! the tests that authenticate clients.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::{SystemTime, UNIX_EPOCH};
use stomphub::config::{JwtAlgorithm, JwtConfig};

pub const SECRET: &str = "a test secret that is long enough for HS256";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An HS256 token for `sub` with `roles`, expiring `expires_in` seconds from now.
pub fn hs256(sub: &str, roles: &[&str], expires_in: i64) -> String {
    let claims = serde_json::json!({ "sub": sub, "roles": roles, "exp": now() + expires_in });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

pub fn hs256_config() -> JwtConfig {
    JwtConfig {
        algorithm: JwtAlgorithm::HS256,
        secret: SECRET.into(),
        secret_file: None,
        public_key_file: None,
        issuer: String::new(),
        audience: String::new(),
        roles_claim: "roles".into(),
        leeway_s: 0,
    }
}

//! Credentials for tests: signed JWTs and password hashes.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::{SystemTime, UNIX_EPOCH};
use stomphub::config::{JwtAlgorithm, JwtConfig, UserConfig};

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

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn rs256_config() -> JwtConfig {
    JwtConfig {
        algorithm: JwtAlgorithm::RS256,
        secret: String::new(),
        secret_file: None,
        public_key_file: Some(fixture("jwt-rs256-public.pem")),
        issuer: "https://issuer.test".into(),
        audience: String::new(),
        roles_claim: "roles".into(),
        leeway_s: 0,
    }
}

/// An RS256 token signed with the fixture's private key.
pub fn rs256(sub: &str, issuer: &str) -> String {
    let pem = std::fs::read(fixture("jwt-rs256-private.pem")).expect("fixture key");
    let claims = serde_json::json!({ "sub": sub, "iss": issuer, "exp": now() + 300 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&pem).expect("RSA key"),
    )
    .expect("sign")
}

pub fn user(name: &str, password_hash: String, roles: &[&str]) -> UserConfig {
    UserConfig {
        name: name.into(),
        password_hash,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

//! The security sections of `broker.toml`: `[auth]` (users, JWT), `[[acl]]`
//! rules, `[server.tls]`, with their validation. Decisions are made in
//! the security module; this module only describes and checks the settings.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accept sessions that present no credentials (their user is unknown, or the
    /// unverified CONNECT `login` with `stomp.user_from_login`).
    pub anonymous: bool,
    /// Query-string parameter of the handshake that may carry a bearer token
    /// (browsers cannot set headers on a WebSocket or EventSource).
    pub query_parameter: String,
    /// `[[auth.user]]` tables: who may log in with `login`/`passcode`.
    #[serde(rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
    /// `[auth.jwt]`: bearer tokens signed with a configured key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous: true,
            query_parameter: "access_token".into(),
            users: Vec::new(),
            jwt: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// An argon2 (`$argon2id$...`) or bcrypt (`$2b$...`) hash; `stomphub hash-password` makes one.
    pub password_hash: String,
    /// Roles for `[[acl]]` rules (`role:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    /// HS256: the shared secret. Prefer `secret_file` so the secret stays out of the config.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// HS256: a file holding the shared secret (surrounding white space is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// RS256: the PEM public key that verifies signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` claim; empty = not checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// Required `aud` claim; empty = not checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audience: String,
    /// Claim holding the user's roles (a string array).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_leeway() -> u64 {
    30
}

/// Who may subscribe to and send to the destinations a pattern matches.
/// Each list holds `*` (anyone), `authenticated`, `user:NAME` or `role:NAME`;
/// a missing list allows anyone, an empty one allows nobody.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AclRuleConfig {
    /// A destination or Ant pattern, e.g. `/topic/admin/**`.
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Vec<String>>,
}

/// `[server.tls]`: serve `https://` and `wss://` directly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.query_parameter.is_empty() {
            return Err(ConfigError::invalid(
                "auth.query_parameter",
                "must not be empty",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for user in &self.users {
            if user.name.is_empty() || user.name.contains(['/', ',', '\n', '\r']) {
                return Err(ConfigError::invalid(
                    "auth.user.name",
                    format!("{:?} is empty or has '/', ',' or a line break", user.name),
                ));
            }
            if !names.insert(&user.name) {
                return Err(ConfigError::invalid(
                    "auth.user.name",
                    format!("{:?} appears twice", user.name),
                ));
            }
        }
        if let Some(jwt) = &self.jwt {
            match jwt.algorithm {
                JwtAlgorithm::HS256 => {
                    if jwt.secret.is_empty() == jwt.secret_file.is_none() {
                        return Err(ConfigError::invalid(
                            "auth.jwt",
                            "HS256 needs exactly one of `secret` and `secret_file`",
                        ));
                    }
                    if jwt.public_key_file.is_some() {
                        return Err(ConfigError::invalid(
                            "auth.jwt.public_key_file",
                            "is for RS256; HS256 uses `secret` or `secret_file`",
                        ));
                    }
                }
                JwtAlgorithm::RS256 => {
                    if jwt.public_key_file.is_none() {
                        return Err(ConfigError::invalid(
                            "auth.jwt",
                            "RS256 needs `public_key_file`",
                        ));
                    }
                    if !jwt.secret.is_empty() || jwt.secret_file.is_some() {
                        return Err(ConfigError::invalid(
                            "auth.jwt.secret",
                            "is for HS256; RS256 uses `public_key_file`",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

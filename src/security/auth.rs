//! Authentication: turns the credentials of a handshake (bearer token in the
//! query string or `Authorization` header) or of a CONNECT frame (`login`/
//! `passcode`, or a bearer token in `passcode` or `Authorization`) into an
//! [`Identity`], or refuses them.

use super::jwt::{JwtVerifier, looks_like_jwt};
use super::password;
use crate::config::{AuthConfig, ConfigError};
use crate::stomp::Headers;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Who a session is, as far as access rules care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
    pub roles: Vec<String>,
    /// The user was proven (password, token, or an application interceptor),
    /// not merely claimed (`stomp.user_from_login`).
    pub authenticated: bool,
}

impl Identity {
    pub fn anonymous() -> Identity {
        Identity::default()
    }

    pub fn verified(user: String, roles: Vec<String>) -> Identity {
        Identity {
            user: Some(user),
            roles,
            authenticated: true,
        }
    }

    /// A name taken on trust from the CONNECT `login` header.
    pub fn claimed(user: String) -> Identity {
        Identity {
            user: Some(user),
            roles: Vec::new(),
            authenticated: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication failed: wrong login or passcode")]
    BadCredentials,
    #[error("authentication failed: invalid bearer token: {0}")]
    BadToken(String),
    #[error("authentication failed: {0}")]
    Malformed(&'static str),
    #[error(
        "authentication required: this server accepts no anonymous sessions (auth.anonymous = false)"
    )]
    Required,
}

#[derive(Debug)]
struct User {
    password_hash: String,
    roles: Vec<String>,
}

pub struct Authenticator {
    anonymous: bool,
    query_parameter: String,
    users: HashMap<String, User>,
    jwt: Option<JwtVerifier>,
    /// Verified when the login names no user, so that a wrong name costs as
    /// much time as a wrong password and names cannot be probed by timing.
    decoy_hash: Option<String>,
    /// Password checks are slow by design; bound how many run at once so a
    /// flood of CONNECTs cannot take every blocking thread.
    checks: Arc<Semaphore>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("anonymous", &self.anonymous)
            .field("users", &self.users.len())
            .field("jwt", &self.jwt)
            .finish()
    }
}

impl Default for Authenticator {
    /// Anonymous sessions only, as with an empty `[auth]`.
    fn default() -> Self {
        Authenticator {
            anonymous: true,
            query_parameter: "access_token".into(),
            users: HashMap::new(),
            jwt: None,
            decoy_hash: None,
            checks: Arc::new(Semaphore::new(1)),
        }
    }
}

/// STOMP header names are case-sensitive; clients write either spelling.
fn authorization(headers: &Headers) -> Option<&str> {
    headers
        .get("Authorization")
        .or_else(|| headers.get("authorization"))
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Authenticator {
    /// Loads keys and users; errors name the configuration key at fault.
    pub fn new(config: &AuthConfig) -> Result<Authenticator, ConfigError> {
        for user in &config.users {
            super::password::check_hash_format(&user.password_hash).map_err(|reason| {
                ConfigError::invalid(
                    "auth.user.password_hash",
                    format!("user {:?}: {reason}", user.name),
                )
            })?;
        }
        let jwt = config.jwt.as_ref().map(JwtVerifier::new).transpose()?;
        let users: HashMap<String, User> = config
            .users
            .iter()
            .map(|user| {
                (
                    user.name.clone(),
                    User {
                        password_hash: user.password_hash.clone(),
                        roles: user.roles.clone(),
                    },
                )
            })
            .collect();
        // The decoy has the cost parameters of a real entry.
        let decoy_hash = users.values().next().map(|user| user.password_hash.clone());
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Authenticator {
            anonymous: config.anonymous,
            query_parameter: config.query_parameter.clone(),
            users,
            jwt,
            decoy_hash,
            checks: Arc::new(Semaphore::new(parallel)),
        })
    }

    pub fn allows_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Whether the server checks credentials at all (users or JWT configured).
    pub fn checks_credentials(&self) -> bool {
        !self.users.is_empty() || self.jwt.is_some()
    }

    /// Whether bearer tokens are checked at all (`[auth.jwt]` configured).
    pub fn accepts_tokens(&self) -> bool {
        self.jwt.is_some()
    }

    pub fn query_parameter(&self) -> &str {
        &self.query_parameter
    }

    fn verify_token(&self, token: &str) -> Result<Identity, AuthError> {
        let verifier = self.jwt.as_ref().ok_or(AuthError::BadToken(
            "bearer tokens are not enabled (auth.jwt)".into(),
        ))?;
        verifier.verify(token).map_err(AuthError::BadToken)
    }

    /// A bearer token from the handshake: the query parameter or the HTTP
    /// `Authorization` header. `Ok(None)` when there is none, or when JWT is not
    /// configured (an application interceptor may read it instead).
    pub fn handshake(
        &self,
        query_token: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Option<Identity>, AuthError> {
        if self.jwt.is_none() {
            return Ok(None);
        }
        let token = match (query_token, authorization) {
            (Some(token), _) => token,
            (None, Some(header)) => bearer(header).ok_or(AuthError::Malformed(
                "Authorization is not `Bearer <token>`",
            ))?,
            (None, None) => return Ok(None),
        };
        self.verify_token(token).map(Some)
    }

    /// Whether checking this CONNECT's credentials means a password hash (slow).
    pub fn needs_password_check(&self, headers: &Headers) -> bool {
        !self.users.is_empty()
            && authorization(headers).is_none()
            && headers.get("login").is_some_and(|login| !login.is_empty())
            && !headers
                .get("passcode")
                .is_some_and(|passcode| self.jwt.is_some() && looks_like_jwt(passcode))
    }

    /// Checks the credentials of a CONNECT frame. `Ok(None)`: none were presented
    /// (or none this server checks). Blocks for a password check: see [`Self::connect_async`].
    pub fn connect(&self, headers: &Headers) -> Result<Option<Identity>, AuthError> {
        if let Some(header) = authorization(headers) {
            let token = bearer(header).ok_or(AuthError::Malformed(
                "the Authorization header is not `Bearer <token>`",
            ))?;
            return self.verify_token(token).map(Some);
        }
        let login = headers.get("login").filter(|login| !login.is_empty());
        let passcode = headers.get("passcode").unwrap_or_default();
        if self.jwt.is_some() && looks_like_jwt(passcode) {
            let identity = self.verify_token(passcode)?;
            if login.is_some_and(|login| Some(login) != identity.user.as_deref()) {
                return Err(AuthError::BadToken(
                    "the token's `sub` differs from the login header".into(),
                ));
            }
            return Ok(Some(identity));
        }
        let Some(login) = login else {
            return Ok(None);
        };
        if self.users.is_empty() {
            // No password users: `login` is a name (user_from_login) or ignored.
            return Ok(None);
        }
        match self.users.get(login) {
            Some(user) if password::verify(passcode, &user.password_hash) => Ok(Some(
                Identity::verified(login.to_owned(), user.roles.clone()),
            )),
            Some(_) => Err(AuthError::BadCredentials),
            None => {
                if let Some(decoy) = &self.decoy_hash {
                    password::verify(passcode, decoy);
                }
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// [`Self::connect`] off the async workers when it has to check a password,
    /// with at most one check per CPU core at a time.
    pub async fn connect_async(
        self: &Arc<Self>,
        headers: &Headers,
    ) -> Result<Option<Identity>, AuthError> {
        if !self.needs_password_check(headers) {
            return self.connect(headers);
        }
        let Ok(_permit) = self.checks.clone().acquire_owned().await else {
            return Err(AuthError::Malformed("the server is shutting down"));
        };
        let this = self.clone();
        let headers = headers.clone();
        tokio::task::spawn_blocking(move || this.connect(&headers))
            .await
            .unwrap_or(Err(AuthError::Malformed("the password check failed")))
    }
}

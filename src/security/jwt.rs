//! Bearer tokens: JWTs signed with HS256 (shared secret) or RS256 (public key
//! from a PEM file). `sub` names the user; a configured claim lists the roles.

use super::auth::Identity;
use crate::config::{ConfigError, JwtAlgorithm, JwtConfig};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    roles_claim: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

fn read(path: &std::path::Path, key: &'static str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| {
        ConfigError::invalid(key, format!("cannot read {}: {error}", path.display()))
    })
}

impl JwtVerifier {
    /// Loads the key; errors name the `auth.jwt` key at fault.
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, ConfigError> {
        let (algorithm, key) = match config.algorithm {
            JwtAlgorithm::HS256 => {
                let secret = match &config.secret_file {
                    Some(path) => {
                        let bytes = read(path, "auth.jwt.secret_file")?;
                        String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec()
                    }
                    None => config.secret.as_bytes().to_vec(),
                };
                if secret.len() < 32 {
                    return Err(ConfigError::invalid(
                        "auth.jwt",
                        format!(
                            "an HS256 secret of {} bytes is too short; use at least 32",
                            secret.len()
                        ),
                    ));
                }
                (Algorithm::HS256, DecodingKey::from_secret(&secret))
            }
            JwtAlgorithm::RS256 => {
                let path = config.public_key_file.as_deref().ok_or_else(|| {
                    ConfigError::invalid("auth.jwt", "RS256 needs `public_key_file`")
                })?;
                let pem = read(path, "auth.jwt.public_key_file")?;
                let key = DecodingKey::from_rsa_pem(&pem).map_err(|error| {
                    ConfigError::invalid(
                        "auth.jwt.public_key_file",
                        format!(
                            "{} is not an RSA public key in PEM: {error}",
                            path.display()
                        ),
                    )
                })?;
                (Algorithm::RS256, key)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_s;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if config.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&config.issuer]);
        }
        if config.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&config.audience]);
        }
        Ok(JwtVerifier {
            key,
            validation,
            roles_claim: config.roles_claim.clone(),
        })
    }

    /// The identity a valid token names, or why it is not valid.
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|error| error.to_string())?;
        let user = match data.claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err("the `sub` claim must be a non-empty string".into()),
        };
        let roles = match data.claims.get(&self.roles_claim) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("the `{}` claim must list strings", self.roles_claim))?,
            Some(_) => return Err(format!("the `{}` claim must be an array", self.roles_claim)),
        };
        Ok(Identity::verified(user, roles))
    }
}

/// True when `text` has the shape of a JWT (three base64url parts), so a
/// `passcode` can be told apart from a password.
pub fn looks_like_jwt(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        parts += 1;
    }
    parts == 3
}

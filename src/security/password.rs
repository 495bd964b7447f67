//! Password hashes as stored in `[[auth.user]]`: argon2 PHC strings and bcrypt.
//! Plain passwords are never accepted in the configuration.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// The scheme of a stored hash, told by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Argon2,
    Bcrypt,
}

fn scheme(hash: &str) -> Option<Scheme> {
    if hash.starts_with("$argon2") {
        Some(Scheme::Argon2)
    } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
    {
        Some(Scheme::Bcrypt)
    } else {
        None
    }
}

/// Checks at load time that `hash` is a well-formed argon2 or bcrypt hash.
pub fn check_hash_format(hash: &str) -> Result<(), String> {
    match scheme(hash) {
        Some(Scheme::Argon2) => argon2::PasswordHash::new(hash)
            .map(|_| ())
            .map_err(|error| format!("not a valid argon2 hash: {error}")),
        // bcrypt hashes are 60 characters: `$2b$`, two cost digits, `$`, 53 of salt and hash.
        Some(Scheme::Bcrypt) if hash.len() == 60 && hash[4..6].parse::<u32>().is_ok() => Ok(()),
        Some(Scheme::Bcrypt) => Err("not a valid bcrypt hash (expected 60 characters)".into()),
        None => Err(
            "must be an argon2 ($argon2id$...) or bcrypt ($2b$...) hash; \
             `stomphub hash-password` makes one"
                .into(),
        ),
    }
}

/// True when `password` matches `hash`. Takes tens of milliseconds on purpose:
/// call it off the async workers.
pub fn verify(password: &str, hash: &str) -> bool {
    match scheme(hash) {
        Some(Scheme::Argon2) => Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok(),
        Some(Scheme::Bcrypt) => bcrypt::verify(password, hash).unwrap_or(false),
        None => false,
    }
}

/// A new argon2id hash of `password` with a random salt and the crate's default cost.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_hashes_verify_only_their_password() {
        let hash = hash("s3cret").unwrap();
        assert!(check_hash_format(&hash).is_ok());
        assert!(verify("s3cret", &hash));
        assert!(!verify("s3cret ", &hash));
    }

    #[test]
    fn bcrypt_hashes_verify_only_their_password() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        assert!(check_hash_format(&hash).is_ok(), "{hash}");
        assert!(verify("s3cret", &hash));
        assert!(!verify("other", &hash));
    }

    #[test]
    fn plain_text_and_mangled_hashes_are_refused() {
        assert!(check_hash_format("s3cret").is_err());
        assert!(check_hash_format("$argon2id$v=19$broken").is_err());
        assert!(check_hash_format("$2b$04$short").is_err());
        assert!(!verify("s3cret", "s3cret"));
    }
}

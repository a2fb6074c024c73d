//! The admin portal's password: generated, shown once, kept only as an argon2id hash.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::PkiError;

/// A new random password (20 characters from an unambiguous alphabet, ~100 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The PHC string (`$argon2id$...`) of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, PkiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PkiError::Tls(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PkiError::Tls(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PkiError::Tls(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the PHC string `hash` (constant time in the hash comparison).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let p = generate_password();
        assert_eq!(p.len(), 20);
        let h = hash_password(&p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains(&p));
        assert!(verify_password(&p, &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password(&p, "not a hash"));
        assert_ne!(hash_password(&p).unwrap(), h, "salted");
    }
}

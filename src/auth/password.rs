//! argon2id password hashes (PHC strings). Both calls are CPU-heavy: run them off the reactor.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher(memory_kib: u32) -> Argon2<'static> {
    let params = Params::new(memory_kib.max(Params::MIN_M_COST), 2, 1, None)
        .expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str, memory_kib: u32) -> String {
    let mut salt = [0_u8; 16];
    rand::fill(&mut salt);
    let phc: PasswordHash = hasher(memory_kib)
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail");
    phc.to_string()
}

/// Verifies with the parameters recorded in the hash itself.
pub fn verify(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_verifies_only_the_right_password() {
        let phc = super::hash("correct horse", 1024);
        assert!(phc.starts_with("$argon2id$"));
        assert!(super::verify(&phc, "correct horse"));
        assert!(!super::verify(&phc, "wrong horse"));
        assert!(!super::verify("not a hash", "correct horse"));
    }
}

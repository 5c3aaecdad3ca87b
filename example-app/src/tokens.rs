//! Random tokens and their digests, for everything the app keeps secret:
//! session keys, CSRF tokens and invitation links are 256 random bits (from
//! the OS), stored (where stored at all) as their SHA-256.

use rand::{TryRngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

/// 256 random bits, as 64 hex digits.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS has randomness");
    hex::encode(bytes)
}

/// The SHA-256 of `text`, as 64 hex digits: what is stored of a token, so a
/// copy of the table opens nothing.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

//! Password hashing (argon2id) off the request workers, a bound on how many
//! hashes run at once, the same work whether or not the account exists,
//! and the password policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use tokio::sync::Semaphore;

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// The longest password accepted (hashing cost is bounded).
pub const MAX_LENGTH: usize = 128;

/// Hashes and verifies passwords on tokio's blocking pool, at most
/// `concurrency` at a time, so a burst of logins cannot take the workers
/// that serve every other page.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Verified against when the e-mail has no account, so an unknown
    /// e-mail costs the same as a wrong password.
    dummy: Arc<str>,
    verifications: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
}

/// Hashing could not run.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Passwords {
    /// At most `concurrency` hashes at once (at least one).
    pub fn new(concurrency: usize) -> Self {
        let dummy = Argon2::default()
            .hash_password(crate::tokens::random_hex().as_bytes())
            .expect("argon2 hashes")
            .to_string();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: dummy.into(),
            verifications: Arc::default(),
            hashes: Arc::default(),
        }
    }

    /// Half the machine's cores (at least one): the rest keep serving pages.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores / 2)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let hashed = self
            .blocking(move || {
                Argon2::default()
                    .hash_password(password.as_bytes())
                    .map(|h| h.to_string())
                    .map_err(|e| HashError(e.to_string()))
            })
            .await??;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        Ok(hashed)
    }

    /// How many hashes have been made (sign-ups of new and known addresses
    /// alike, and password changes).
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Whether `password` matches `stored`; with no stored hash (no such
    /// account) the same work is done against a dummy and the answer is no.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.to_string());
        let matches = self
            .blocking(move || {
                PasswordHash::new(&hash).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                })
            })
            .await?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        Ok(known && matches)
    }

    /// How many verifications have run (known and unknown accounts alike).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

/// Why a new password is refused, in words for the form; `None` if it is
/// acceptable: 10 to 128 characters, and not guessable (zxcvbn's score of
/// at least 3 of 4, which refuses the commonest passwords, keyboard walks,
/// dates, and passwords made of the user's own e-mail or name).
pub fn policy_problem(password: &str, email: &str, name: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(format!(
            "Choose a password of at least {MIN_LENGTH} characters."
        ));
    }
    if length > MAX_LENGTH {
        return Some(format!(
            "Choose a password of at most {MAX_LENGTH} characters."
        ));
    }
    let local = email.split('@').next().unwrap_or_default();
    let inputs: Vec<&str> = [email, local, name]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if estimate.score() >= zxcvbn::Score::Three {
        return None;
    }
    let why = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    Some(format!(
        "That password is too easy to guess{why}: use a few unrelated words, or a password manager."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_short_and_personal_passwords_are_refused() {
        for (password, email) in [
            ("password123", "ada@example.com"),
            ("qwertyuiop", "ada@example.com"),
            ("short", "ada@example.com"),
            ("adalovelace1", "adalovelace@example.com"),
            (&"x".repeat(129), "ada@example.com"),
        ] {
            assert!(
                policy_problem(password, email, "").is_some(),
                "{password} was accepted"
            );
        }
        assert_eq!(
            policy_problem("correct horse battery", "ada@example.com", "Ada"),
            None
        );
    }

    #[tokio::test]
    async fn an_unknown_account_costs_a_verification_and_never_matches() {
        let passwords = Passwords::new(1);
        let stored = passwords
            .hash("correct horse battery".into())
            .await
            .unwrap();
        assert!(
            passwords
                .verify("correct horse battery".into(), Some(stored))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horse battery".into(), None)
                .await
                .unwrap()
        );
        assert_eq!(passwords.verifications(), 2);
    }
}

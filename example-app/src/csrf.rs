//! Cross-site request forgery protection: a random token per session,
//! put in every form, checked on every POST. (Session cookies are also
//! `HttpOnly` and `SameSite=Lax`.)

use actix_session::Session;
use subtle::ConstantTimeEq;

use crate::errors::AppError;

const KEY: &str = "csrf";

/// The session's token, made on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(KEY) {
        return token;
    }
    let token = crate::tokens::random_hex();
    let _ = session.insert(KEY, &token);
    token
}

/// Forgets the session's token (at login): a token read before the user
/// signed in (by whoever planted the session) is worth nothing after.
pub fn rotate(session: &Session) {
    session.remove(KEY);
}

/// Refuses (403, changing nothing) a form whose token is not the session's.
pub fn check(session: &Session, submitted: &str) -> Result<(), AppError> {
    let expected = session
        .get::<String>(KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    if !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) {
        return Ok(());
    }
    Err(AppError::Forged)
}

//! `Octany-Signature`: lowercase hex of HMAC-SHA256 over the body bytes,
//! keyed with the endpoint's secret.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::config::Secret;

/// The header Octany signs deliveries in.
pub(crate) const SIGNATURE_HEADER: &str = "Octany-Signature";

type HmacSha256 = Hmac<Sha256>;

/// Signs `body` as Octany does: `hash_hmac('sha256', $body, $secret)`
/// (the doctor's own test delivery; the fake Octany signs with its own code).
#[cfg_attr(not(any(test, feature = "cli")), allow(dead_code))]
pub(crate) fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex) signs exactly `body` under any of `secrets`.
/// Compares in constant time; a missing or empty signature, or no secret,
/// is never valid.
pub(crate) fn verify(secrets: &[Secret], body: &[u8], signature: &str) -> bool {
    let signature = signature.trim();
    let Ok(expected) = hex::decode(signature) else {
        return false;
    };
    if expected.is_empty() {
        return false;
    }
    secrets
        .iter()
        .filter(|s| !s.expose().is_empty())
        .any(|secret| {
            let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        let sig = sign(&Secret::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rejects_tampering_wrong_secret_and_empty_input() {
        let secret = Secret::new("s3cret-s3cret-s3cret-s3cret-s3cr");
        let body = br#"{"id":1,"name":"order.paid"}"#;
        let sig = sign(&secret, body);
        assert!(verify(std::slice::from_ref(&secret), body, &sig));
        assert!(
            verify(std::slice::from_ref(&secret), body, &sig.to_uppercase()),
            "hex case does not matter"
        );
        assert!(!verify(
            std::slice::from_ref(&secret),
            br#"{"id":2,"name":"order.paid"}"#,
            &sig
        ));
        assert!(!verify(&[Secret::new("another-secret")], body, &sig));
        assert!(!verify(std::slice::from_ref(&secret), body, ""));
        assert!(!verify(std::slice::from_ref(&secret), body, "not hex"));
        assert!(!verify(&[], body, &sig));
        assert!(!verify(
            &[Secret::new("")],
            body,
            &sign(&Secret::new(""), body)
        ));
    }

    #[test]
    fn any_of_several_secrets_while_rotating() {
        let old = Secret::new("old-old-old-old-old-old-old-old-");
        let new = Secret::new("new-new-new-new-new-new-new-new-");
        let body = b"{}";
        let secrets = [old.clone(), new.clone()];
        assert!(verify(&secrets, body, &sign(&old, body)));
        assert!(verify(&secrets, body, &sign(&new, body)));
    }
}

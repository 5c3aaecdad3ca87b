//! JSON bytes as PHP's `json_encode` writes them: slashes escaped as `\/`
//! and every non-ASCII character as `\uXXXX` (UTF-16, surrogate pairs
//! beyond the BMP). Octany signs those bytes, so the fake sends them.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// serde_json's compact output (which matches PHP's) with PHP's string escapes.
struct PhpFormatter;

impl Formatter for PhpFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if ch == '/' || !ch.is_ascii() {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                if ch == '/' {
                    writer.write_all(b"\\/")?;
                } else {
                    let mut units = [0u16; 2];
                    for unit in ch.encode_utf16(&mut units) {
                        write!(writer, "\\u{unit:04x}")?;
                    }
                }
                start = i + ch.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serializes `value` as PHP's `json_encode($value)` would.
pub fn php_json_encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PhpFormatter);
    value.serialize(&mut ser).expect("JSON values serialize");
    out
}

/// The header Octany sends a delivery's signature in.
pub const SIGNATURE_HEADER: &str = "Octany-Signature";

/// The `Octany-Signature` of `body` under `secret`, as Octany's PHP makes
/// it: `hash_hmac('sha256', $body, $secret)`, lowercase hex. The fake's own
/// code, so the library's verification is tested against an independent
/// signer.
///
/// ```
/// // RFC 4231, test case 2.
/// assert_eq!(
///     octany_fake::sign("Jefe", b"what do ya want for nothing?"),
///     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
/// );
/// ```
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_php() {
        let value = serde_json::json!({"url": "https://a.se/x", "name": "Åsa Öberg", "emoji": "😀", "n": 1});
        let text = String::from_utf8(php_json_encode(&value)).unwrap();
        assert_eq!(
            text,
            r#"{"emoji":"\ud83d\ude00","n":1,"name":"\u00c5sa \u00d6berg","url":"https:\/\/a.se\/x"}"#
        );
        // Still JSON that means the same.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}

//! Input checked before it reaches the database: e-mail addresses by an RFC
//! 5322 parser, lengths that fit the columns, no control characters.

use std::str::FromStr;

use email_address::EmailAddress;

/// The longest e-mail address the `users.email` column holds (and SMTP's limit).
pub const EMAIL_MAX: usize = 254;
/// The longest name (of a user or a team).
pub const NAME_MAX: usize = 100;

/// A normalised (trimmed, lower-case) e-mail address, or why it is not one.
pub fn email(input: &str) -> Result<String, &'static str> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err("Enter your e-mail address.");
    }
    if email.len() > EMAIL_MAX {
        return Err("That e-mail address is too long.");
    }
    let parsed = EmailAddress::from_str(&email)
        .map_err(|_| "Enter a valid e-mail address, such as ada@example.com.")?;
    // Deliverable addresses have a domain with a dot (RFC 5322 also allows
    // `ada@localhost`, which no one can be mailed at on the internet).
    let domain = parsed.domain();
    if !domain.contains('.') || domain.starts_with('[') || email.chars().any(char::is_control) {
        return Err("Enter a valid e-mail address, such as ada@example.com.");
    }
    Ok(email)
}

/// A trimmed name of at most [`NAME_MAX`] characters (empty allowed when
/// `required` is false), or why not.
pub fn name(input: &str, required: bool) -> Result<String, &'static str> {
    let name = input.trim();
    if required && name.is_empty() {
        return Err("Enter a name.");
    }
    if name.chars().count() > NAME_MAX {
        return Err("That name is too long: at most 100 characters.");
    }
    if name.chars().any(char::is_control) {
        return Err("A name cannot contain control characters.");
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "a@",
            "@example.com",
            "ada",
            "ada@localhost",
            "a\0b@example.com",
            "",
        ] {
            assert!(email(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(name("  Ada ", false).unwrap(), "Ada");
        assert!(name("", true).is_err());
        assert!(name(&"n".repeat(101), false).is_err());
        assert!(name("a\0b", false).is_err());
    }
}

//! Serde helpers for the places where Octany's JSON is looser than its docs.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use serde_json::Value;
use std::fmt;

/// A JSON scalar as text: strings as they are, numbers in decimal, `false`
/// and `null` (and the empty string) as absent.
pub(crate) fn scalar_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("true".into()),
        Value::Bool(false) | Value::Null => None,
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// `Option<String>` from a string, number, `false` or `null`
/// (`person.phone` has been seen as `false`).
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.and_then(scalar_text))
}

/// A required id: a JSON number or a non-empty string. An integral number
/// written as a float (`424242.0`, as PHP may) is the integer, so it names
/// the same thing as `424242`; a fractional number is no id.
pub(crate) fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(format!("{}", f as i64)),
            _ => Err(de::Error::custom(format!(
                "expected an id, found the fraction {n}"
            ))),
        },
        Value::Number(n) => Ok(n.to_string()),
        other => Err(de::Error::custom(format!(
            "expected an id (number or string), found {other}"
        ))),
    }
}

/// Serializes an id the way Octany sends it today: a number when it is one,
/// a string otherwise.
pub(crate) fn serialize_id<S: Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    match id.parse::<u64>() {
        Ok(n) if n.to_string() == id => s.serialize_u64(n),
        _ => s.serialize_str(id),
    }
}

/// Serializes an optional id-like value as [`serialize_id`] does.
pub(crate) fn serialize_opt_id<S: Serializer>(
    id: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serialize_id(id, s),
        None => s.serialize_none(),
    }
}

/// An integer amount from a number or a numeric string; `null` is 0.
pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_int(d)?.unwrap_or(0))
}

/// An optional integer from a number or a numeric string (`"1"`, `"1.00"`).
pub(crate) fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct IntVisitor;
    impl<'de> Visitor<'de> for IntVisitor {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer, a numeric string or null")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v).map(Some).map_err(E::custom)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(Some(v as i64))
            } else {
                Err(E::custom(format!("{v} is not a whole number")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            if let Ok(n) = v.parse::<i64>() {
                return Ok(Some(n));
            }
            v.parse::<f64>()
                .map_err(|_| E::custom(format!("`{v}` is not a number")))
                .and_then(|f| self.visit_f64(f))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(IntVisitor)
        }
    }
    d.deserialize_any(IntVisitor)
}

/// Parses an Octany timestamp: ISO 8601 with an offset, or Laravel's
/// `Y-m-d H:i:s` taken as UTC.
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// Formats a timestamp as Octany does: `2026-05-25T09:29:51+00:00`.
pub(crate) fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Serde for `Option<DateTime<Utc>>` in Octany's format.
pub(crate) mod opt_timestamp {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => parse_timestamp(&s)
                .map(Some)
                .ok_or_else(|| de::Error::custom(format!("`{s}` is not an ISO 8601 timestamp"))),
            Some(other) => Err(de::Error::custom(format!(
                "expected a timestamp, found {other}"
            ))),
        }
    }

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_timestamp(t)),
            None => s.serialize_none(),
        }
    }
}

/// A value that is an object, or `null`/`false`/`[]` for "none"
/// (PHP serializes an empty map as `[]`).
pub(crate) fn opt_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Option::<Value>::deserialize(d)? {
        Some(v @ Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(de::Error::custom),
        _ => Ok(None),
    }
}

/// A list, or `null` for an empty one.
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Defines a string-valued enum whose unknown values are kept, not refused.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[allow(unreachable_pub)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the library does not know, kept as sent.
            Unknown(String),
        }

        #[allow(unreachable_pub, dead_code)]
        impl $name {
            /// The text Octany uses for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(other) => other,
                }
            }

            /// Every value this version knows.
            pub const KNOWN: &'static [Self] = &[$( Self::$variant, )+];
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Never fails: an unknown text is kept as `Unknown`.
        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(text))
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(d)?;
                let text = $crate::domain::model::lenient::scalar_text(value).unwrap_or_default();
                Ok(Self::from(text.as_str()))
            }
        }
    };
}
pub(crate) use string_enum;

/// Defines a string id newtype that parses from a JSON number or string.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(unreachable_pub)]
        pub struct $name(String);

        #[allow(unreachable_pub, dead_code)]
        impl $name {
            /// Wraps an id as Octany gave it.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<u64> for $name {
            fn from(id: u64) -> Self {
                Self(id.to_string())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::domain::model::lenient::serialize_id(&self.0, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::domain::model::lenient::id_text(d).map(Self)
            }
        }
    };
}
pub(crate) use string_id;

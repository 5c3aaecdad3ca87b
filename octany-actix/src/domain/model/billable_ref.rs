//! Who pays, as the app names them to Octany.

use serde::{Deserialize, Serialize};

/// A billable's reference: `type:id` (`user:42`, `team:7`), sent to Octany
/// as the checkout's `referenceId` and returned on every subscription,
/// order and webhook about it. Parsed once, where Octany's text comes in.
///
/// ```
/// use octany_actix::model::BillableRef;
/// let team = BillableRef::new("team", "7");
/// assert_eq!(team.as_str(), "team:7");
/// assert_eq!((team.kind(), team.id()), ("team", "7"));
/// assert_eq!(BillableRef::parse(" user:42 "), Some(BillableRef::new("user", "42")));
/// assert_eq!(BillableRef::parse("newsletter"), None);
/// ```
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    sea_orm::DeriveValueType,
)]
#[serde(transparent)]
pub struct BillableRef(String);

impl BillableRef {
    /// The reference of billable `id` of type `kind`.
    pub fn new(kind: &str, id: &str) -> Self {
        // Built by hand, not by `format!`: the guard makes one per request.
        let mut reference = String::with_capacity(kind.len() + 1 + id.len());
        reference.push_str(kind);
        reference.push(':');
        reference.push_str(id);
        Self(reference)
    }

    /// A `referenceId` as a billable reference, when it names one: `type:id`
    /// with both parts non-empty (surrounding space ignored).
    pub fn parse(reference_id: &str) -> Option<Self> {
        let reference = reference_id.trim();
        let (kind, id) = reference.split_once(':')?;
        (!kind.is_empty() && !id.is_empty()).then(|| Self(reference.to_owned()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its type (`user`).
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(kind, _)| kind)
    }

    /// Its id (`42`).
    pub fn id(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, id)| id)
    }
}

impl std::ops::Deref for BillableRef {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BillableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for BillableRef {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

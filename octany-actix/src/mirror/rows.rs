//! The mirror's rows as a host reads them: what the billing handle and the
//! guard hand out. Plain structs with public fields; the tables behind them
//! (their sea-orm entities and columns) are the library's own and not part
//! of its API, so a migration can change them without breaking a host.
//! The product cache is read as [`model::Product`](crate::model::Product)
//! ([`Octany::products`](crate::Octany::products)).

pub use crate::mirror::entity::checkout::{CheckoutStatus, Model as CheckoutIntent};
pub use crate::mirror::entity::order::Model as OrderRow;
pub use crate::mirror::entity::subscription::Model as SubscriptionRow;

use chrono::{DateTime, Utc};

use crate::domain::model::ProductId;
use crate::mirror::entity::{api_call, audit, comp};

/// A comp: a plan or features granted to a billable without Octany (a
/// partner, a goodwill month, a trial without a card), with who granted it,
/// when and why. Every guard and check honours it until `ends_at` or its
/// revocation, whichever comes first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Comp {
    /// Its id.
    pub id: String,
    /// Who it is for.
    pub billable: String,
    /// The plan it grants, if any.
    pub plan: Option<ProductId>,
    /// The features it grants (beside its plan's).
    pub features: Vec<String>,
    /// Why it was granted.
    pub reason: String,
    /// Who granted it.
    pub granted_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it ends by itself (`None`: when revoked).
    pub ends_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

impl Comp {
    /// Whether it grants anything at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.ends_at.is_none_or(|end| end > now)
    }
}

impl From<comp::Model> for Comp {
    fn from(row: comp::Model) -> Self {
        Self {
            id: row.id,
            billable: row.billable_ref,
            plan: row.product_id.map(ProductId),
            features: comp::feature_names(row.features),
            reason: row.reason,
            granted_by: row.granted_by,
            created_at: row.created_at,
            ends_at: row.ends_at,
            revoked_at: row.revoked_at,
            revoked_by: row.revoked_by,
        }
    }
}

/// One exchange the library had with Octany, from the API-call log
/// ([`Octany::api_calls`](crate::Octany::api_calls)): never the key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiCall {
    /// When it asked for its turn to be sent.
    pub at: DateTime<Utc>,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path under the account's REST base, e.g. `subscription/42`.
    pub path: String,
    /// Octany's status; `None` when nothing was answered (a timeout, a
    /// connection refused).
    pub status: Option<u16>,
    /// Which attempt of the call (1 for the first; retries count up).
    pub attempt: u32,
    /// From asking for its turn to the answer read, in milliseconds: a
    /// wait for the request budget (Octany's rate limit) is included.
    pub duration_ms: u32,
    /// Whom it was for (`type:id`); `None` for the library's own work
    /// (the reconcile, a backfill).
    pub billable: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl From<api_call::Model> for ApiCall {
    fn from(row: api_call::Model) -> Self {
        Self {
            at: row.at,
            method: row.method,
            path: row.path,
            status: row.status.and_then(|s| u16::try_from(s).ok()),
            attempt: u32::try_from(row.attempt).unwrap_or(0),
            duration_ms: u32::try_from(row.duration_ms).unwrap_or(0),
            billable: row.billable_ref,
            error: row.error,
        }
    }
}

/// What an operator did, from the audit log
/// ([`Octany::audit`](crate::Octany::audit)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// When it began.
    pub at: DateTime<Utc>,
    /// Who, as the host's guard names them.
    pub actor: String,
    /// `resync`, `replay_delivery` or `retry_listeners`.
    pub action: String,
    /// The billable it concerned.
    pub billable: Option<String>,
    /// What it acted on (a delivery's or an event's id).
    pub target: Option<String>,
    /// Why, as the operator said.
    pub reason: String,
    /// `started` (cut off before it ended), `done` or `failed`.
    pub outcome: String,
    /// What came of it, or why it failed.
    pub detail: Option<String>,
}

impl From<audit::Model> for AuditEntry {
    fn from(row: audit::Model) -> Self {
        Self {
            at: row.at,
            actor: row.actor,
            action: row.action,
            billable: row.billable_ref,
            target: row.target,
            reason: row.reason,
            outcome: row.outcome,
            detail: row.detail,
        }
    }
}

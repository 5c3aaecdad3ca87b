//! What the guard reads: of a billable's mirrored subscriptions, only what
//! the decision needs, and whether a checkout awaits Octany, in one narrow
//! indexed query; cached for a short time and dropped by every sync of it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, Value,
};

use crate::domain::clock::Clock;
use crate::domain::model::{AccessPolicy, Entitlement, ProductId, SubscriptionStatus};
use crate::domain::plan::PlanSet;

/// What the guard decides with, of one mirrored subscription: its id, plan,
/// status and dates, and nothing else (the full row, Octany's JSON included,
/// is read only when a handler asks for it:
/// [`RequireSubscription::subscription`](crate::RequireSubscription::subscription)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Octany's subscription id.
    pub id: String,
    /// The product (plan).
    pub product_id: Option<ProductId>,
    /// The status.
    pub status: SubscriptionStatus,
    /// When it renews.
    pub renews_at: Option<DateTime<Utc>>,
    /// When it ends.
    pub ends_at: Option<DateTime<Utc>>,
    /// When the mirror first saw it (an invoice falls due from it).
    pub created_at: DateTime<Utc>,
}

impl Entitlement for Grant {
    fn status(&self) -> SubscriptionStatus {
        self.status.clone()
    }

    fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.ends_at
    }

    fn renews_at(&self) -> Option<DateTime<Utc>> {
        self.renews_at
    }

    fn bought_at(&self) -> Option<DateTime<Utc>> {
        Some(self.created_at)
    }
}

/// One row of the guard's query: a subscription (absent when the billable
/// has none) and whether a checkout awaits Octany.
#[derive(Debug, FromQueryResult)]
struct Row {
    id: Option<String>,
    product_id: Option<ProductId>,
    status: Option<SubscriptionStatus>,
    renews_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    created_at: Option<DateTime<Utc>>,
    awaiting: i64,
}

/// A billable's billing state, as the local mirror has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessState {
    /// Every mirrored subscription, newest first (shared, so the guard
    /// hands them out without copying).
    pub subscriptions: Vec<Arc<Grant>>,
    /// Whether a checkout the buyer came back from awaits Octany's report
    /// (an intent only opened is not one).
    pub checkout_awaiting: bool,
}

impl AccessState {
    /// Reads it from the database in one narrow indexed query: the columns
    /// the decision needs, and the awaiting checkouts counted alongside.
    pub(crate) async fn load(db: &DatabaseConnection, billable: &str) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let (first, second) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };
        let sql = format!(
            "SELECT s.id, s.product_id, s.status, s.renews_at, s.ends_at, s.created_at, \
             (SELECT COUNT(*) FROM octany_checkouts c WHERE c.billable_ref = {first} AND c.status = 'awaiting') AS awaiting \
             FROM (SELECT 1 AS one) o LEFT JOIN octany_subscriptions s ON s.billable_ref = {second} \
             ORDER BY s.created_at DESC, s.id DESC"
        );
        let rows = Row::find_by_statement(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(billable), Value::from(billable)],
        ))
        .all(db)
        .await?;
        let checkout_awaiting = rows.first().is_some_and(|r| r.awaiting > 0);
        let subscriptions = rows
            .into_iter()
            .filter_map(|r| {
                Some(Arc::new(Grant {
                    id: r.id?,
                    product_id: r.product_id,
                    status: r.status?,
                    renews_at: r.renews_at,
                    ends_at: r.ends_at,
                    created_at: r.created_at?,
                }))
            })
            .collect();
        Ok(Self {
            subscriptions,
            checkout_awaiting,
        })
    }

    /// The subscription that grants access to a plan of `P`, if any.
    pub(crate) fn granting<P: PlanSet>(
        &self,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Option<&Arc<Grant>> {
        self.subscriptions
            .iter()
            .find(|s| P::admits(s.product_id) && s.has_access(clock, policy))
    }

    /// The current subscription: the one granting access, else the newest.
    pub(crate) fn current(
        &self,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Option<&Arc<Grant>> {
        self.granting::<crate::domain::plan::AnyPlan>(clock, policy)
            .or(self.subscriptions.first())
    }

    /// Whether a payment is still on its way: a checkout the buyer came
    /// back from, or a subscription Octany reports `pending` (an unpaid
    /// first invoice) that is not yet overdue.
    pub(crate) fn payment_pending(&self, clock: &dyn Clock, policy: AccessPolicy) -> bool {
        self.checkout_awaiting
            || self.subscriptions.iter().any(|s| {
                s.status == crate::domain::model::SubscriptionStatus::Pending
                    && s.invoice_due_at(policy).is_none_or(|due| due > clock.now())
            })
    }
}

/// The guard's per-billable cache: answers for `ttl` (on the clock), and is
/// emptied for a billable whenever a sync changes it.
#[derive(Debug)]
pub(crate) struct AccessCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, Cached>>,
}

/// A cached state and when it stops being trusted.
type Cached = (Arc<AccessState>, DateTime<Utc>);

impl AccessCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::default(),
        }
    }

    pub(crate) fn get(&self, billable: &str, now: DateTime<Utc>) -> Option<Arc<AccessState>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(billable)
            .filter(|(_, expires)| *expires > now)
            .map(|(state, _)| state.clone())
    }

    pub(crate) fn put(&self, billable: &str, state: Arc<AccessState>, now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let expires = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 100_000 {
            entries.retain(|_, (_, e)| *e > now);
        }
        entries.insert(billable.to_owned(), (state, expires));
    }

    /// Forgets every billable.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub(crate) fn invalidate(&self, billable: &str) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(billable);
    }
}

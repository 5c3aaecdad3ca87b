//! What the guard reads: of a billable's mirrored subscriptions, only what
//! the decision needs, in one narrow indexed query (and, only when nothing
//! grants access, whether a checkout awaits Octany); cached for a short
//! time and dropped by every sync of it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    Statement, Value,
};

use crate::domain::clock::Clock;
use crate::domain::model::{AccessPolicy, Entitlement, ProductId, SubscriptionStatus};
use crate::domain::plan::PlanSet;
use crate::mirror::entity::checkout;

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

/// The guard's query: of the billable's subscriptions, the columns the
/// decision needs (`idx_octany_subscriptions_billable_ref`).
const GUARD_QUERY: &str = "SELECT id, product_id, status, renews_at, ends_at, created_at \
     FROM octany_subscriptions WHERE billable_ref = ?";
/// [`GUARD_QUERY`] with PostgreSQL's placeholder.
const GUARD_QUERY_POSTGRES: &str = "SELECT id, product_id, status, renews_at, ends_at, created_at \
     FROM octany_subscriptions WHERE billable_ref = $1";

/// A row of the guard's query.
#[derive(Debug, FromQueryResult)]
struct Row {
    id: String,
    product_id: Option<ProductId>,
    status: SubscriptionStatus,
    renews_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// A billable's billing state, as the local mirror has it.
#[derive(Debug)]
pub(crate) struct AccessState {
    /// Every mirrored subscription, newest first (shared, so the guard
    /// hands them out without copying).
    pub subscriptions: Vec<Arc<Grant>>,
    /// Whether a checkout the buyer came back from awaits Octany's report
    /// (an intent only opened is not one): read only when it matters, when
    /// no subscription grants access, and then kept with the state.
    awaiting: tokio::sync::OnceCell<bool>,
}

impl AccessState {
    /// Reads it from the database in one narrow indexed query: of the
    /// billable's subscriptions, the columns the decision needs.
    pub(crate) async fn load(db: &DatabaseConnection, billable: &str) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => GUARD_QUERY_POSTGRES,
            _ => GUARD_QUERY,
        };
        let mut subscriptions: Vec<Arc<Grant>> = Row::find_by_statement(
            Statement::from_sql_and_values(backend, sql, [Value::from(billable)]),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            Arc::new(Grant {
                id: r.id,
                product_id: r.product_id,
                status: r.status,
                renews_at: r.renews_at,
                ends_at: r.ends_at,
                created_at: r.created_at,
            })
        })
        .collect();
        // Newest first, sorted here (a billable has a handful) rather than
        // by the database.
        subscriptions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(Self {
            subscriptions,
            awaiting: tokio::sync::OnceCell::new(),
        })
    }

    /// Whether a checkout the buyer came back from awaits Octany (one
    /// indexed lookup, the first time it is asked).
    pub(crate) async fn checkout_awaiting(
        &self,
        db: &DatabaseConnection,
        billable: &str,
    ) -> Result<bool, DbErr> {
        self.awaiting
            .get_or_try_init(|| async {
                Ok(checkout::Entity::find()
                    .filter(checkout::Column::BillableRef.eq(billable))
                    .filter(checkout::Column::Status.eq(checkout::CheckoutStatus::Awaiting))
                    .one(db)
                    .await?
                    .is_some())
            })
            .await
            .copied()
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
    pub(crate) fn current(&self, clock: &dyn Clock, policy: AccessPolicy) -> Option<&Arc<Grant>> {
        self.granting::<crate::domain::plan::AnyPlan>(clock, policy)
            .or(self.subscriptions.first())
    }

    /// Whether a payment is still on its way: a checkout the buyer came
    /// back from, or a subscription Octany reports `pending` (an unpaid
    /// first invoice) that is not yet overdue.
    pub(crate) async fn payment_pending(
        &self,
        db: &DatabaseConnection,
        billable: &str,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Result<bool, DbErr> {
        Ok(self.pending_invoice(clock, policy) || self.checkout_awaiting(db, billable).await?)
    }

    /// A subscription Octany reports `pending` whose invoice is not overdue.
    fn pending_invoice(&self, clock: &dyn Clock, policy: AccessPolicy) -> bool {
        self.subscriptions.iter().any(|s| {
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

//! What the guard reads: of a billable's mirrored subscriptions, only what
//! the decision needs, in one narrow indexed query (and, only when nothing
//! grants access, whether a checkout awaits Octany); cached for a short
//! time and dropped by every sync of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
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
    /// Paid below its plan's catalogue price, the plan not sold at any
    /// price: it grants nothing.
    pub underpaid: bool,
    /// A comp (a local grant, `id` its id), not an Octany subscription.
    pub comp: bool,
    /// The features a comp grants beside its plan (if it has one).
    pub comp_features: Vec<String>,
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

    fn underpaid(&self) -> bool {
        self.underpaid
    }
}

/// The guard's query: of the billable's subscriptions, the columns the
/// decision needs (`idx_octany_subscriptions_billable_ref`), and its comps
/// not revoked, in the same shape (`idx_octany_comps_billable_ref`).
const GUARD_QUERY: &str = "SELECT id, product_id, status, renews_at, ends_at, created_at, price, list_price, \
     NULL AS comp_features, 's' AS source \
     FROM octany_subscriptions WHERE billable_ref = ? \
     UNION ALL SELECT id, product_id, 'active', NULL, ends_at, created_at, 0, NULL, features, 'c' \
     FROM octany_comps WHERE billable_ref = ? AND revoked_at IS NULL";
/// [`GUARD_QUERY`] with PostgreSQL's placeholder.
const GUARD_QUERY_POSTGRES: &str = "SELECT id, product_id, status, renews_at, ends_at, created_at, price, list_price, \
     NULL AS comp_features, 's' AS source \
     FROM octany_subscriptions WHERE billable_ref = $1 \
     UNION ALL SELECT id, product_id, 'active', NULL, ends_at, created_at, 0, NULL, features, 'c' \
     FROM octany_comps WHERE billable_ref = $1 AND revoked_at IS NULL";

/// A row of the guard's query.
#[derive(Debug, FromQueryResult)]
struct Row {
    id: String,
    product_id: Option<ProductId>,
    status: SubscriptionStatus,
    renews_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    price: i64,
    list_price: Option<i64>,
    comp_features: Option<String>,
    source: String,
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
    /// billable's subscriptions, the columns the decision needs;
    /// `any_price`: whether a product is a plan sold at any price.
    pub(crate) async fn load(
        db: &DatabaseConnection,
        billable: &str,
        any_price: &(dyn Fn(ProductId) -> bool + Sync),
    ) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let statement = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                GUARD_QUERY_POSTGRES,
                [Value::from(billable)],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                GUARD_QUERY,
                [Value::from(billable), Value::from(billable)],
            ),
        };
        let mut subscriptions: Vec<Arc<Grant>> = Row::find_by_statement(statement)
            .all(db)
            .await?
            .into_iter()
            .map(|r| {
                let underpaid = r.list_price.is_some_and(|list| r.price < list)
                    && !r.product_id.is_some_and(any_price);
                Arc::new(Grant {
                    id: r.id,
                    product_id: r.product_id,
                    status: r.status,
                    renews_at: r.renews_at,
                    ends_at: r.ends_at,
                    created_at: r.created_at,
                    underpaid,
                    comp: r.source == "c",
                    comp_features: crate::mirror::entity::comp::feature_names(r.comp_features),
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

    /// The subscription that grants access to a plan of `P`, if any: an
    /// Octany subscription before a comp (whose row a handler cannot read).
    pub(crate) fn granting<P: PlanSet>(
        &self,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Option<&Arc<Grant>> {
        let grants = |s: &&Arc<Grant>| P::admits(s.product_id) && s.has_access(clock, policy);
        self.subscriptions
            .iter()
            .filter(|s| !s.comp)
            .find(grants)
            // A comp of features only grants those features, no plan.
            .or_else(|| {
                self.subscriptions
                    .iter()
                    .filter(|s| s.comp && s.product_id.is_some())
                    .find(grants)
            })
    }

    /// Every subscription that grants access now.
    pub(crate) fn granted<'s>(
        &'s self,
        clock: &'s dyn Clock,
        policy: AccessPolicy,
    ) -> impl Iterator<Item = &'s Arc<Grant>> + 's {
        self.subscriptions
            .iter()
            .filter(move |s| s.has_access(clock, policy))
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

/// The guard's per-billable cache: answers for `ttl` (on the injected
/// clock), is emptied for a billable whenever a sync changes it, and holds
/// at most about `capacity` billables (a `quick_cache` cache: a read is a
/// sharded hash lookup, and the least used are let go first).
///
/// A state read from the database is put only if no change of its billable
/// was announced since the read began ([`AccessCache::generation`]): a
/// revocation heard between the read and the put would otherwise be
/// overwritten by the state read before it, for the whole TTL.
pub(crate) struct AccessCache {
    ttl: Duration,
    entries: Option<quick_cache::sync::Cache<String, Cached>>,
    /// Announcements so far, per stripe of billables (a billable's stripe
    /// is its hash's); moved on by every [`AccessCache::invalidate`].
    generations: Box<[AtomicU64]>,
}

/// How many stripes of billables the generations count in: a change of one
/// billable makes a read of another of its stripe uncached once, no more.
const STRIPES: usize = 1024;

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.entries.as_ref().map(|e| e.len()))
            .finish()
    }
}

/// A cached state and when it stops being trusted.
type Cached = (Arc<AccessState>, DateTime<Utc>);

impl AccessCache {
    /// A cache trusting an answer for `ttl` (zero: no cache), of at most
    /// about `capacity` billables.
    pub(crate) fn new(ttl: Duration, capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        let entries =
            (!ttl.is_zero() && capacity > 0).then(|| quick_cache::sync::Cache::new(capacity));
        Self {
            ttl,
            entries,
            generations: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stripe(&self, billable: &str) -> &AtomicU64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(billable);
        &self.generations[(hash as usize) % STRIPES]
    }

    /// Where `billable`'s announcements stand: read before loading its
    /// state, handed to [`AccessCache::put`].
    fn generation(&self, billable: &str) -> u64 {
        self.stripe(billable).load(AtomicOrdering::Acquire)
    }

    fn get(&self, billable: &str, now: DateTime<Utc>) -> Option<Arc<AccessState>> {
        self.entries
            .as_ref()?
            .get(billable)
            .filter(|(_, expires)| *expires > now)
            .map(|(state, _)| state)
    }

    /// Caches `state`, read from the database when `billable`'s
    /// announcements stood at `seen`, unless a change was announced since;
    /// whether it is cached.
    fn put(&self, billable: &str, state: Arc<AccessState>, now: DateTime<Utc>, seen: u64) -> bool {
        let Some(entries) = &self.entries else {
            return false;
        };
        if self.generation(billable) != seen {
            return false;
        }
        let expires = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        entries.insert(billable.to_owned(), (state, expires));
        // An announcement between the check and the insert: its removal may
        // have come first, so the entry just put goes.
        if self.generation(billable) != seen {
            entries.remove(billable);
            return false;
        }
        true
    }

    /// `billable`'s state: cached while fresh at `now`, else read
    /// ([`AccessCache::fresh`]).
    pub(crate) async fn state(
        &self,
        db: &DatabaseConnection,
        billable: &str,
        now: DateTime<Utc>,
        any_price: &(dyn Fn(ProductId) -> bool + Sync),
    ) -> Result<Arc<AccessState>, DbErr> {
        if let Some(state) = self.get(billable, now) {
            metrics::counter!("octany_guard_cache_total", "result" => "hit").increment(1);
            return Ok(state);
        }
        metrics::counter!("octany_guard_cache_total", "result" => "miss").increment(1);
        // Boxed, so that a hit's future (every guarded request's) stays
        // small.
        Box::pin(self.fresh(db, billable, now, any_price)).await
    }

    /// `billable`'s state read from the database now; cached, unless a
    /// change of it was announced while it was read.
    pub(crate) async fn fresh(
        &self,
        db: &DatabaseConnection,
        billable: &str,
        now: DateTime<Utc>,
        any_price: &(dyn Fn(ProductId) -> bool + Sync),
    ) -> Result<Arc<AccessState>, DbErr> {
        // Read before the load: a change announced while it runs keeps
        // the state it read out of the cache.
        let seen = self.generation(billable);
        let state = Arc::new(AccessState::load(db, billable, any_price).await?);
        self.put(billable, state.clone(), now, seen);
        Ok(state)
    }

    /// Forgets every billable.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn clear(&self) {
        for generation in &*self.generations {
            generation.fetch_add(1, AtomicOrdering::AcqRel);
        }
        if let Some(entries) = &self.entries {
            entries.clear();
        }
    }

    /// Forgets `billable`'s state: a change of it was announced.
    pub(crate) fn invalidate(&self, billable: &str) {
        self.stripe(billable).fetch_add(1, AtomicOrdering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.remove(billable);
        }
    }

    /// How many billables it holds.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.entries.as_ref().map_or(0, |e| e.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Arc<AccessState> {
        Arc::new(AccessState {
            subscriptions: Vec::new(),
            awaiting: tokio::sync::OnceCell::new(),
        })
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = AccessCache::new(Duration::from_secs(3600), 100);
        let now = Utc::now();
        for i in 0..5_000 {
            let billable = format!("user:{i}");
            cache.put(&billable, state(), now, cache.generation(&billable));
        }
        assert!(cache.len() <= 100, "holds {}", cache.len());
    }

    #[test]
    fn an_answer_is_trusted_for_its_ttl_on_the_injected_clock() {
        let cache = AccessCache::new(Duration::from_secs(5), 100);
        let now = Utc::now();
        cache.put("user:1", state(), now, cache.generation("user:1"));
        assert!(
            cache
                .get("user:1", now + chrono::Duration::seconds(4))
                .is_some()
        );
        assert!(
            cache
                .get("user:1", now + chrono::Duration::seconds(5))
                .is_none()
        );
        cache.invalidate("user:1");
        assert!(cache.get("user:1", now).is_none());
        let off = AccessCache::new(Duration::ZERO, 100);
        off.put("user:1", state(), now, off.generation("user:1"));
        assert!(off.get("user:1", now).is_none());
    }

    #[test]
    fn a_state_read_before_a_change_was_announced_is_not_cached() {
        let cache = AccessCache::new(Duration::from_secs(3600), 100);
        let now = Utc::now();
        let seen = cache.generation("user:1");
        // Read from the database; meanwhile a change of user:1 is announced.
        cache.invalidate("user:1");
        assert!(!cache.put("user:1", state(), now, seen));
        assert!(cache.get("user:1", now).is_none());
        // Announcements of others, and a read after the change, are cached.
        let seen = cache.generation("user:1");
        assert!(cache.put("user:1", state(), now, seen));
        assert!(cache.get("user:1", now).is_some());
        // Clearing (a reconnect that may have missed notices) counts too.
        let seen = cache.generation("user:2");
        cache.clear();
        assert!(!cache.put("user:2", state(), now, seen));
    }
}

//! The unit of work: the one way anything is written to the mirror.
//!
//! [`Syncer::ingest`] takes a [`Batch`] of observations of Octany's state
//! and the [`Origin`] that brought them, and always does the same thing:
//! open a transaction (`READ COMMITTED` on MySQL), run the caller's hook (the webhook receiver claims
//! its delivery there), apply every observation under its ordering mark,
//! derive the billing events from each change and write them to the
//! outbox, commit; run the whole unit again on a transient conflict
//! (recognised by the driver's error code); then drop the changed
//! billables' cached state, deliver the events, and re-fetch the
//! subscriptions whose equally new states disagreed.
//!
//! The common webhook, a newer state of a stored subscription, takes fewer
//! round trips: on SQLite and PostgreSQL the deliveries that arrive
//! together are written in one transaction, a group commit (`group`); a
//! delivery the group did not write runs as above (on PostgreSQL, a lone
//! delivery's claim folded into its write).

use chrono::{DateTime, Utc};
use sea_orm::{
    AccessMode, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel,
    RuntimeErr, TransactionOptions, TransactionTrait,
};

use super::apply::{self, Applied, Local, Source};
use super::events::{self, BillingEvent, Origin};
use super::{Effects, SyncError, Syncer, outbox};
use crate::domain::model::{
    BillableRef, Order, Product, ProductId, Subscription, SubscriptionId, SubscriptionStatus,
};
use crate::mirror::entity::{billable_ref, subscription, webhook_delivery};

mod group;
use group::Grouped;
pub(crate) use group::Writer;

/// When a state was true by Octany's clock: a webhook's `created_at`, or the
/// `Date` of the API answer it came in. Never the local clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mark(i64);

impl Mark {
    /// The mark of an observation Octany dated; an undated one gets the
    /// lowest mark, which fills an absent row but never overwrites a
    /// stored one.
    pub(crate) fn of(at: Option<DateTime<Utc>>) -> Self {
        Self(at.map_or(0, apply::mark))
    }

    /// Whether Octany dated it.
    pub(crate) fn is_dated(self) -> bool {
        self.0 > 0
    }
}

/// Observations of Octany's state, applied together or not at all.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    /// With its JSON, made before the transaction opens (less work while
    /// SQLite's write lock is held).
    Subscription(Subscription, Mark, serde_json::Value),
    Order(Order, Option<SubscriptionId>, Mark),
    Product(Product, Mark),
    ProductDeleted(Product, Mark),
    /// A write of the app's own rows (a checkout intent, a charge).
    Local(Local),
}

impl Batch {
    pub(crate) fn subscription(mut self, s: Subscription, mark: Mark) -> Self {
        let data = apply::subscription_data(&s);
        self.items.push(Item::Subscription(s, mark, data));
        self
    }

    pub(crate) fn subscriptions(mut self, all: Vec<Subscription>, mark: Mark) -> Self {
        self.items.extend(all.into_iter().map(|s| {
            let data = apply::subscription_data(&s);
            Item::Subscription(s, mark, data)
        }));
        self
    }

    /// An order, linked to `subscription` when the caller knows it.
    pub(crate) fn order(
        mut self,
        o: Order,
        subscription: Option<SubscriptionId>,
        mark: Mark,
    ) -> Self {
        self.items.push(Item::Order(o, subscription, mark));
        self
    }

    pub(crate) fn product(mut self, p: Product, mark: Mark) -> Self {
        self.items.push(Item::Product(p, mark));
        self
    }

    pub(crate) fn product_deleted(mut self, p: Product, mark: Mark) -> Self {
        self.items.push(Item::ProductDeleted(p, mark));
        self
    }

    /// A write of the app's own rows; what it did is in
    /// [`Effects::done`], in the batch's order.
    pub(crate) fn local(mut self, write: Local) -> Self {
        self.items.push(Item::Local(write));
        self
    }
}

/// Work a caller adds to the unit's transaction.
#[async_trait::async_trait]
pub(crate) trait Hook: Send + Sync {
    /// Runs first; `false` ends the unit at once, committing only what the
    /// hook wrote (a delivery seen before, say).
    async fn before(&self, txn: &DatabaseTransaction) -> Result<bool, DbErr>;

    /// The row the hook inserts first when the unit is new to it (a new
    /// webhook delivery, recorded processed), for the unit to write with
    /// its first write when that is a newer state of a stored subscription
    /// (fewer round trips); then [`Hook::before`] is not run. When a row
    /// with the claim's key is stored, the unit writes none of it, and
    /// `before` runs and decides. `None` (the default): `before` always
    /// runs.
    fn claim(&self) -> Option<webhook_delivery::ActiveModel> {
        None
    }
}

/// Opens the unit's transaction: `READ COMMITTED` on MySQL (fewer gap
/// locks, fewer deadlocks), the default elsewhere. On SQLite a unit that
/// read a row and then finds it changed by another writer cannot write:
/// SQLite answers `BUSY_SNAPSHOT`, which is transient, so the whole unit
/// runs again and decides from the new row. (`BEGIN IMMEDIATE` gives the
/// same guarantee; in the webhooks benchmark it applied 747 deliveries a
/// second against 780 deferred, 4,000 unique, 16 at a time.)
pub(crate) async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::MySql => {
            db.begin_with_options(TransactionOptions {
                isolation_level: Some(IsolationLevel::ReadCommitted),
                access_mode: Some(AccessMode::ReadWrite),
                sqlite_transaction_mode: None,
            })
            .await
        }
        _ => db.begin().await,
    }
}

/// Whether a database error means "run the transaction again", by the
/// driver's error code: a serialization failure or deadlock (SQLSTATE
/// `40001`, also MySQL's for a deadlock, or PostgreSQL's `40P01`), or
/// SQLite's `BUSY`/`LOCKED` and their extended codes.
pub(crate) fn is_transient(backend: DbBackend, error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = error
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(e) = e.as_ref() else {
        return false;
    };
    let Some(code) = e.code() else { return false };
    match backend {
        DbBackend::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
        _ => matches!(code.as_ref(), "40001" | "40P01"),
    }
}

impl Source {
    fn of(origin: Origin) -> Self {
        match origin {
            Origin::Webhook => Source::Webhook,
            _ => Source::Api,
        }
    }
}

/// What a subscription's write means beyond its row.
struct Consequences {
    /// Re-fetch it from the API (a conflict, or an undated webhook).
    refetch: bool,
    /// The billing events of the change (none if the row did not change).
    events: Vec<BillingEvent>,
    /// The billable it belongs to.
    billable: Option<BillableRef>,
    /// The product whose open checkouts it answers: it became live on it.
    answers_checkouts: Option<ProductId>,
}

impl Consequences {
    fn of(
        s: &Subscription,
        written: &apply::Written<subscription::Model>,
        mark: Mark,
        source: Source,
    ) -> Self {
        let changed = written.applied.changed();
        // An ended subscription answers no checkout; one that was live on
        // this plan already answered it.
        let live = |status: &SubscriptionStatus| {
            !matches!(
                status,
                SubscriptionStatus::Expired | SubscriptionStatus::Unpaid
            )
        };
        let answered = written
            .before
            .as_ref()
            .is_some_and(|b| live(&b.status) && b.product_id == s.product_id());
        let billable = billable_ref(s.reference_id.as_deref());
        Self {
            refetch: written.applied == Applied::Conflict
                || (!mark.is_dated() && source == Source::Webhook),
            events: if changed {
                events::of_subscription(written.before.as_ref(), s)
            } else {
                Vec::new()
            },
            answers_checkouts: s
                .product_id()
                .filter(|_| changed && billable.is_some() && live(&s.status) && !answered),
            billable,
        }
    }
}

/// Tries a unit at most this often when it keeps meeting conflicts.
const TRIES: u32 = 5;

impl Syncer {
    /// Applies `batch`, brought by `origin`, as one unit of work (see the
    /// module's documentation), then does what follows the commit.
    pub(crate) async fn ingest(&self, batch: Batch, origin: Origin) -> Result<Effects, SyncError> {
        Ok(self
            .ingest_with(&batch, origin, None)
            .await?
            .unwrap_or_default())
    }

    /// [`Syncer::ingest`] with a hook in the transaction; `None` when the
    /// hook ended the unit.
    pub(crate) async fn ingest_with(
        &self,
        batch: &Batch,
        origin: Origin,
        hook: Option<&dyn Hook>,
    ) -> Result<Option<Effects>, SyncError> {
        let backend = self.db().get_database_backend();
        let mut tries = 0u32;
        let effects = loop {
            tries += 1;
            match self.unit(batch, origin, hook).await {
                Err(SyncError::Database(error))
                    if tries < TRIES && is_transient(backend, &error) =>
                {
                    tracing::debug!(tries, %error, "transient database conflict; running the unit of work again");
                    self.clock()
                        .sleep(std::time::Duration::from_millis(5 * u64::from(tries)))
                        .await;
                }
                other => break other?,
            }
        };
        if let Some(effects) = &effects {
            self.after_commit(effects).await;
        }
        Ok(effects)
    }

    /// One attempt: begin, hook, apply, events, commit.
    async fn unit(
        &self,
        batch: &Batch,
        origin: Origin,
        hook: Option<&dyn Hook>,
    ) -> Result<Option<Effects>, SyncError> {
        // Held until the commit: on SQLite so that this syncer's writers
        // queue in order, on PostgreSQL by a lone delivery while those
        // arriving meanwhile queue for a group. Taken before a connection,
        // as a group takes it (`group`): whoever holds a turn can always
        // get a connection, none being held by a writer waiting for one.
        let (_turn, txn) = match self.grouped(batch, origin, hook).await {
            Grouped::Written(effects) => return Ok(Some(effects)),
            Grouped::Alone(turn, txn) => (Some(turn), txn),
            Grouped::Own => {
                let turn = match &self.inner.writer {
                    Some(writer) => writer.unit_turn().await,
                    None => None,
                };
                (turn, begin(self.db()).await?)
            }
        };
        let now = self.now();
        // A lone subscription's write on PostgreSQL carries the hook's claim.
        let mut written_first = None;
        if let Some(hook) = hook {
            let lone = match batch.items.as_slice() {
                [Item::Subscription(s, mark, data)] => Some((s, *mark, data)),
                _ => None,
            };
            let claim = (self.db().get_database_backend() == DbBackend::Postgres)
                .then(|| hook.claim())
                .flatten();
            let fused = match (claim, lone) {
                (Some(claim), Some((s, mark, data))) => {
                    apply::claim_and_replace(&txn, claim, s, data, mark.0, now).await?
                }
                _ => apply::Claimed::No,
            };
            match fused {
                apply::Claimed::Yes(Some(before)) => {
                    written_first = Some(apply::Written {
                        applied: Applied::Updated,
                        before: Some(*before),
                    });
                }
                apply::Claimed::Yes(None) => {}
                apply::Claimed::No => {
                    if !hook.before(&txn).await? {
                        txn.commit().await?;
                        return Ok(None);
                    }
                }
            }
        }
        let source = Source::of(origin);
        let mut effects = Effects::default();
        let mut rows = Vec::new();
        let delivered = self.listeners().is_empty();
        let mut record = |events: Vec<BillingEvent>, billable: &Option<BillableRef>, mark: Mark| {
            for event in events {
                rows.push(outbox::row(
                    &event,
                    billable.clone(),
                    origin,
                    mark.0,
                    now,
                    delivered,
                ));
            }
        };
        for item in &batch.items {
            match item {
                Item::Subscription(s, mark, data) => {
                    let written = match written_first.take() {
                        Some(written) => written,
                        None => {
                            apply::apply_subscription(&txn, s, data, mark.0, source, now).await?
                        }
                    };
                    let then = Consequences::of(s, &written, *mark, source);
                    if then.refetch {
                        effects.refetch.push(s.id.clone());
                    }
                    if !written.applied.changed() {
                        continue;
                    }
                    effects.subscriptions += 1;
                    record(then.events, &then.billable, *mark);
                    if let Some(billable) = then.billable {
                        if let Some(product) = then.answers_checkouts {
                            let id = s.id.to_string();
                            apply::complete_checkouts(
                                &txn,
                                &billable,
                                product.0,
                                Some(&id),
                                None,
                                now,
                            )
                            .await?;
                        }
                        effects.changed.insert(billable);
                    }
                }
                Item::Order(o, subscription, mark) => {
                    let link = subscription.as_ref().map(SubscriptionId::as_str);
                    let written = apply::apply_order(&txn, o, link, mark.0, now).await?;
                    if !written.applied.changed() {
                        continue;
                    }
                    effects.orders += 1;
                    let billable = billable_ref(o.reference_id.as_deref());
                    record(
                        events::of_order(written.before.as_ref(), o),
                        &billable,
                        *mark,
                    );
                    if let Some(billable) = billable {
                        if link.is_none() && o.subscription_id.is_none() {
                            let id = o.id.to_string();
                            for product in o.items.iter().filter_map(|i| i.product.as_ref()) {
                                apply::complete_checkouts(
                                    &txn,
                                    &billable,
                                    product.id.0,
                                    None,
                                    Some(&id),
                                    now,
                                )
                                .await?;
                            }
                        }
                        effects.changed.insert(billable);
                    }
                }
                Item::Product(p, mark) => {
                    apply::apply_product(&txn, p, mark.0, now).await?;
                }
                Item::ProductDeleted(p, mark) => {
                    apply::delete_product(&txn, p, mark.0).await?;
                }
                Item::Local(write) => {
                    let (done, changed) = apply::write_local(&txn, write, now).await?;
                    effects.changed.extend(changed);
                    effects.done.push(done);
                }
            }
        }
        if !delivered {
            effects.events = rows.iter().map(|row| row.id.clone().unwrap()).collect();
        }
        outbox::write(&txn, rows).await?;
        // Other instances hear of it when (and only if) it commits: on
        // PostgreSQL the tables' triggers announce it (`mirror::revocation`).
        txn.commit().await?;
        Ok(Some(effects))
    }

    /// The common case of a webhook (a new delivery of a newer state of a
    /// stored subscription), written in a group with the deliveries beside
    /// it (`group`). Not written when it wrote nothing (a duplicate, a
    /// delivery that failed before, a row changed meanwhile) or does not
    /// apply (a replay, an absent or newer row, a checkout to complete, a
    /// state to re-fetch, MySQL): then the unit runs as usual.
    async fn grouped(&self, batch: &Batch, origin: Origin, hook: Option<&dyn Hook>) -> Grouped {
        let (Some(hook), [Item::Subscription(s, mark, data)]) = (hook, batch.items.as_slice())
        else {
            return Grouped::Own;
        };
        let Some(claim) = hook.claim() else {
            return Grouped::Own;
        };
        self.write_grouped(group::Write {
            subscription: s.clone(),
            mark: *mark,
            data: data.clone(),
            claim,
            origin,
        })
        .await
    }

    /// What follows a commit: drop cached state, deliver the events, and
    /// re-fetch conflicting or undated states (failures are logged; the
    /// rows stay flagged for the reconcile).
    async fn after_commit(&self, effects: &Effects) {
        self.notify(effects);
        for id in &effects.events {
            if let Err(error) = self.deliver(id).await {
                tracing::warn!(event = %id, %error, "delivering a billing event failed; it is retried later");
            }
        }
        for id in &effects.refetch {
            // A read of the API: it settles ties, so it cannot conflict again.
            let refetched = Box::pin(self.sync_subscription_by(id, Origin::Reconcile)).await;
            if let Err(error) = refetched {
                tracing::warn!(subscription = %id, %error, "re-fetching a subscription failed; the reconcile will retry");
            }
        }
    }
}

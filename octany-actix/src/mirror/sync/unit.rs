//! The unit of work: the one way a billable's state is written to the
//! mirror (the bookkeeping tables are named in `docs/architecture.md`).
//!
//! [`Syncer::ingest`] takes a [`Batch`] of observations of Octany's state
//! and of writes of the library's own rows (checkout intents, charges:
//! `apply::local`), and the [`Origin`] that brought them, and always does
//! the same thing: open a transaction (`READ COMMITTED` on MySQL,
//! `txn`), run the caller's hook (the webhook receiver claims its delivery
//! there), apply every item (Octany's under its ordering mark), derive the
//! billing events from each change (`consequences`) and write them to the
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
use sea_orm::{DatabaseTransaction, DbBackend, DbErr};

use super::apply::{self, Applied, Local, Mark, Source, Written};
use super::events::{self, Origin};
use super::{Effects, SyncError, Syncer, outbox};
use crate::domain::model::{BillableRef, Order, Product, Subscription, SubscriptionId};
use crate::mirror::entity::{billable_ref, event, subscription};

mod backend;
mod consequences;
mod group;
mod hook;
mod plan;

pub(crate) use backend::Backend;
use consequences::{Consequences, record};
use group::Grouped;
pub(crate) use group::Writer;
pub(crate) use hook::Hook;
use plan::Write;

/// Tries a unit at most this often when it keeps meeting conflicts.
const TRIES: u32 = 5;

/// The part in the unit of work of a database of kind `backend`.
pub(crate) fn backend_of(backend: DbBackend) -> &'static dyn Backend {
    backend::of(backend)
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

    /// What its first observation is about: the billable it names (its
    /// `reference_id`) and the resource's id; what a webhook delivery's
    /// row records of it, for the operator's timeline.
    pub(crate) fn about(&self) -> (Option<String>, Option<String>) {
        match self.items.first() {
            Some(Item::Subscription(s, ..)) => (
                billable_ref(s.reference_id.as_deref()).map(|b| b.to_string()),
                Some(s.id.to_string()),
            ),
            Some(Item::Order(o, ..)) => (
                billable_ref(o.reference_id.as_deref()).map(|b| b.to_string()),
                Some(o.id.to_string()),
            ),
            Some(Item::Product(p, _) | Item::ProductDeleted(p, _)) => {
                (None, Some(p.id.to_string()))
            }
            _ => (None, None),
        }
    }
}

/// What a unit did with Octany's states, as a delivery's row records it:
/// `applied` when any changed a row, else `conflict`, `stale` or
/// `unchanged` (see `webhook_delivery::Model::outcome`).
fn verdict(seen: &[Applied]) -> &'static str {
    if seen.is_empty() || seen.iter().any(|a| a.changed()) {
        "applied"
    } else if seen.contains(&Applied::Conflict) {
        "conflict"
    } else if seen.contains(&Applied::Stale) {
        "stale"
    } else {
        "unchanged"
    }
}

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
        let mut tries = 0u32;
        let effects = loop {
            tries += 1;
            // Boxed, one allocation a unit: in a debug build the unit's
            // future is large enough that, inlined into a deep caller's (a
            // console action run inside a test's request), it overflowed a
            // thread's 2 MiB stack.
            match Box::pin(self.unit(batch, origin, hook)).await {
                Err(SyncError::Database(error))
                    if tries < TRIES && self.backend().is_transient(&error) =>
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
                (turn, self.backend().begin(self.db()).await?)
            }
        };
        let now = self.now();
        // A lone subscription's write carries the hook's claim where the
        // backend folds them (PostgreSQL).
        let mut written_first = None;
        if let Some(hook) = hook {
            let fused = match batch.items.as_slice() {
                [Item::Subscription(s, mark, data)] => {
                    self.backend()
                        .claim_and_write(&txn, hook, s, data, *mark, now)
                        .await?
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
        let mut applying = Applying {
            txn: &txn,
            origin,
            source: Source::of(origin),
            now,
            delivered: self.listeners().is_empty(),
            backend: self.backend(),
            effects: Effects::default(),
            rows: Vec::new(),
            seen: Vec::new(),
        };
        for item in &batch.items {
            applying.item(item, written_first.take()).await?;
        }
        let Applying {
            effects,
            rows,
            seen,
            ..
        } = applying;
        if let Some(hook) = hook {
            hook.after(&txn, verdict(&seen)).await?;
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
        self.write_grouped(Write {
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

/// A unit's items being applied in its transaction, and what they gather:
/// the effects, the outbox rows of the changes, and what each of Octany's
/// states did (for the delivery's outcome).
struct Applying<'a> {
    txn: &'a DatabaseTransaction,
    origin: Origin,
    source: Source,
    now: DateTime<Utc>,
    /// No listener is registered: events are recorded delivered.
    delivered: bool,
    backend: &'static dyn Backend,
    effects: Effects,
    rows: Vec<event::ActiveModel>,
    seen: Vec<Applied>,
}

impl Applying<'_> {
    /// Applies one item; `first`: its write, already done with the hook's
    /// claim (`Backend::claim_and_write`).
    async fn item(
        &mut self,
        item: &Item,
        first: Option<Written<subscription::Model>>,
    ) -> Result<(), DbErr> {
        let (txn, now) = (self.txn, self.now);
        match item {
            Item::Subscription(s, mark, data) => self.subscription(s, *mark, data, first).await,
            Item::Order(o, link, mark) => self.order(o, link.as_ref(), *mark).await,
            Item::Product(p, mark) => apply::apply_product(txn, p, mark.0, now).await.map(drop),
            Item::ProductDeleted(p, mark) => apply::delete_product(txn, p, mark.0).await.map(drop),
            Item::Local(write) => {
                let (done, changed) = apply::write_local(txn, write, now).await?;
                self.effects.changed.extend(changed);
                self.effects.done.push(done);
                Ok(())
            }
        }
    }

    /// A subscription: the backend's one-statement replace, else the
    /// locked read-decide-write; then what the change means
    /// (`consequences`).
    async fn subscription(
        &mut self,
        s: &Subscription,
        mark: Mark,
        data: &serde_json::Value,
        first: Option<Written<subscription::Model>>,
    ) -> Result<(), DbErr> {
        let (txn, now) = (self.txn, self.now);
        if billable_ref(s.reference_id.as_deref()).is_none() {
            tracing::info!(subscription = %s.id, "subscription names no billable (reference_id is not type:id); mirrored unlinked");
        }
        let written = match first {
            Some(written) => written,
            None => match self
                .backend
                .replace_if_older(txn, s, data, mark, now)
                .await?
            {
                Some(before) => Written {
                    applied: Applied::Updated,
                    before: Some(before),
                },
                None => apply::apply_subscription(txn, s, data, mark.0, self.source, now).await?,
            },
        };
        self.seen.push(written.applied);
        let then = Consequences::of(s, &written, mark, self.source);
        if then.refetch {
            self.effects.refetch.push(s.id.clone());
        }
        if !written.applied.changed() {
            return Ok(());
        }
        self.effects.subscriptions += 1;
        self.record(&then.events, &then.billable, mark);
        if let (Some(billable), Some(product)) = (&then.billable, then.answers_checkouts) {
            let id = s.id.to_string();
            apply::complete_checkouts(txn, billable, product.0, Some(&id), None, now).await?;
        }
        Ok(())
    }

    /// An order, linked to `subscription` when the caller knows it; a
    /// one-off order answers the checkouts of its products.
    async fn order(
        &mut self,
        o: &Order,
        subscription: Option<&SubscriptionId>,
        mark: Mark,
    ) -> Result<(), DbErr> {
        let (txn, now) = (self.txn, self.now);
        let link = subscription.map(SubscriptionId::as_str);
        let written = apply::apply_order(txn, o, link, mark.0, now).await?;
        self.seen.push(written.applied);
        if !written.applied.changed() {
            return Ok(());
        }
        self.effects.orders += 1;
        let billable = billable_ref(o.reference_id.as_deref());
        self.record(
            &events::of_order(written.before.as_ref(), o),
            &billable,
            mark,
        );
        if let Some(billable) = billable
            && link.is_none()
            && o.subscription_id.is_none()
        {
            let id = o.id.to_string();
            for product in o.items.iter().filter_map(|i| i.product.as_ref()) {
                apply::complete_checkouts(txn, &billable, product.id.0, None, Some(&id), now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Records a change of `billable`'s state observed at `mark`, which
    /// raised `events` (`consequences::record`).
    fn record(
        &mut self,
        events: &[events::BillingEvent],
        billable: &Option<BillableRef>,
        mark: Mark,
    ) {
        let (origin, now, delivered) = (self.origin, self.now, self.delivered);
        let rows = record(
            events,
            billable,
            origin,
            mark,
            now,
            delivered,
            &mut self.effects,
        );
        self.rows.extend(rows);
    }
}

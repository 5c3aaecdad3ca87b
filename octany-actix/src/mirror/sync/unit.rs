//! The unit of work: the one way a billable's state is written to the
//! mirror (the bookkeeping tables are named in `docs/architecture.md`).
//!
//! [`Syncer::ingest`] takes a [`Batch`] of observations of Octany's state
//! and of writes of the library's own rows (checkout intents, charges:
//! `apply::local`), and the [`Origin`] that brought them: a [`Unit`]. One
//! function writes units, one or many in one transaction
//! ([`Syncer::write`]): the backend's lock of what they touch (on
//! PostgreSQL, advisory locks taken in one order, so that writers never
//! deadlock midway); the backend's fast write of the new webhook
//! deliveries among them (their claims, and their newer states of stored
//! subscriptions, in one or two statements however many); then, for each
//! unit, its webhook delivery's claim (`delivery`: unless the fast write
//! claimed it; a delivery applied before ends the unit there), every item
//! applied (Octany's under its ordering mark) with what each change means
//! (`consequences`), the delivery's outcome; then every unit's billing
//! events to the outbox, in one statement. A unit runs again on a
//! transient conflict (recognised by the driver's error code); after the
//! commit the changed billables' cached state is dropped, the events are
//! delivered, and the subscriptions whose equally new states disagreed
//! are re-fetched.
//!
//! On SQLite and PostgreSQL the new webhook deliveries that arrive
//! together are written as one group (`group`), by the same function that
//! writes a unit alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbBackend, DbErr};

use super::apply::{self, Applied, Mark, Source, Written};
use super::events::{self, Origin};
use super::{Effects, SyncError, Syncer, outbox};
use crate::domain::model::{BillableRef, Order, Subscription, SubscriptionId};
use crate::mirror::entity::{billable_ref, event, subscription};

mod backend;
mod batch;
mod consequences;
mod delivery;
mod group;
#[cfg(test)]
mod tests;

pub(crate) use backend::Backend;
use backend::{Claimed, Fast};
pub(crate) use batch::Batch;
use batch::{Item, Unit};
use consequences::Consequences;
pub(crate) use delivery::Delivery;
use group::Grouped;
pub(crate) use group::Writer;

/// Tries a unit at most this often when it keeps meeting conflicts.
const TRIES: u32 = 5;

/// The part in the unit of work of a database of kind `backend`.
pub(crate) fn backend_of(backend: DbBackend) -> &'static dyn Backend {
    backend::of(backend)
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
            .ingest_with(batch, origin, None)
            .await?
            .unwrap_or_default())
    }

    /// [`Syncer::ingest`] of a webhook `delivery`'s batch, which the unit
    /// records with it; `None` when the delivery was applied before.
    pub(crate) async fn ingest_with(
        &self,
        batch: Batch,
        origin: Origin,
        delivery: Option<Arc<Delivery>>,
    ) -> Result<Option<Effects>, SyncError> {
        let unit = Arc::new(Unit {
            batch,
            origin,
            delivery,
        });
        let mut tries = 0u32;
        let effects = loop {
            tries += 1;
            // Boxed, one allocation a unit: in a debug build the unit's
            // future is large enough that, inlined into a deep caller's (a
            // console action run inside a test's request), it overflowed a
            // thread's 2 MiB stack.
            match Box::pin(self.run(&unit)).await {
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

    /// One attempt: in a group with the deliveries arriving beside it
    /// (`group`), else alone; either way by [`Syncer::write`].
    async fn run(&self, unit: &Arc<Unit>) -> Result<Option<Effects>, SyncError> {
        if unit.fast().is_some()
            && let Grouped::Written(done) = self.write_grouped(unit).await
        {
            return Ok(done);
        }
        // Held until the commit, on SQLite, so that this syncer's writers
        // queue in order. Taken before a connection, as a group takes it:
        // whoever holds a turn can always get a connection, none being
        // held by a writer waiting for one.
        let _turn = match &self.inner.writer {
            Some(writer) => writer.unit_turn().await,
            None => None,
        };
        let txn = self.backend().begin(self.db()).await?;
        let done = self.write(&txn, &[unit.as_ref()]).await?;
        txn.commit().await?;
        Ok(done.into_iter().next().flatten())
    }

    /// Writes `units` in `txn`, one or many alike: the backend's lock of
    /// what they touch (`Backend::lock`), then its fast write
    /// of the new webhook deliveries among them (one a subscription: a
    /// second for the same subscription is applied as usual, after the
    /// first), each unit's delivery and items, every unit's billing events.
    /// For each unit its effects, `None` when its delivery was applied
    /// before.
    pub(super) async fn write(
        &self,
        txn: &DatabaseTransaction,
        units: &[&Unit],
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        let now = self.now();
        let mut keys = Vec::new();
        for unit in units {
            unit.batch.keys(&mut keys);
        }
        self.backend().lock(txn, keys).await?;
        let mut subscriptions = BTreeSet::new();
        let (at, fast): (Vec<usize>, Vec<Fast<'_>>) = units
            .iter()
            .enumerate()
            .filter_map(|(i, unit)| Some((i, unit.fast()?)))
            .filter(|(_, f)| subscriptions.insert(f.subscription.id.as_str()))
            .unzip();
        let mut claimed: Vec<Claimed> = units.iter().map(|_| Claimed::No).collect();
        if !fast.is_empty() {
            let answers = self.backend().claim_and_replace(txn, &fast, now).await?;
            for (i, answer) in at.into_iter().zip(answers) {
                claimed[i] = answer;
            }
        }
        let mut rows = Vec::new();
        let mut done = Vec::with_capacity(units.len());
        for (unit, claimed) in units.iter().zip(claimed) {
            done.push(self.apply(txn, unit, claimed, now, &mut rows).await?);
        }
        outbox::write(txn, rows).await?;
        // Other instances hear of it when (and only if) it commits: on
        // PostgreSQL the tables' triggers announce it (`mirror::revocation`).
        Ok(done)
    }

    /// One unit in `txn`: its delivery's claim (unless the fast write
    /// `claimed` it), its items (the first's write already done when the
    /// fast write replaced its row), its delivery's outcome; its outbox rows
    /// are added to `rows`. `None` when its delivery was applied before.
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        unit: &Unit,
        claimed: Claimed,
        now: DateTime<Utc>,
        rows: &mut Vec<event::ActiveModel>,
    ) -> Result<Option<Effects>, DbErr> {
        let mut first = None;
        match claimed {
            Claimed::Yes(before) => {
                first = before.map(|before| Written {
                    applied: Applied::Updated,
                    before: Some(*before),
                });
            }
            Claimed::No => {
                if let Some(delivery) = &unit.delivery
                    && !delivery.before(txn).await?
                {
                    return Ok(None);
                }
            }
        }
        let mut applying = Applying {
            txn,
            origin: unit.origin,
            source: Source::of(unit.origin),
            now,
            delivered: self.listeners().is_empty(),
            effects: Effects::default(),
            rows,
            seen: Vec::new(),
        };
        for item in &unit.batch.items {
            applying.item(item, first.take()).await?;
        }
        if let Some(delivery) = &unit.delivery {
            delivery.after(txn, verdict(&applying.seen)).await?;
        }
        Ok(Some(applying.effects))
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
    effects: Effects,
    /// The outbox rows of the changes, of this unit and those written
    /// with it.
    rows: &'a mut Vec<event::ActiveModel>,
    seen: Vec<Applied>,
}

impl Applying<'_> {
    /// Applies one item; `first`: its write, already done by the fast
    /// write (`Backend::claim_and_replace`).
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

    /// A subscription: the locked read-decide-write, unless the fast write
    /// did it; then what the change means (`consequences`).
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
            None => apply::apply_subscription(txn, s, data, mark.0, self.source, now).await?,
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
    /// raised `events`: the billable it changed, and its events' outbox
    /// rows (written in the same transaction). Each event is listed in
    /// `effects.events`, to be delivered after the commit, unless no
    /// listener is registered (then recorded delivered).
    fn record(
        &mut self,
        events: &[events::BillingEvent],
        billable: &Option<BillableRef>,
        mark: Mark,
    ) {
        for event in events {
            let row = outbox::row(
                event,
                billable.clone(),
                self.origin,
                mark.0,
                self.now,
                self.delivered,
            );
            if !self.delivered {
                self.effects.events.push(row.id.clone().unwrap());
            }
            self.rows.push(row);
        }
        self.effects.changed.extend(billable.clone());
    }
}

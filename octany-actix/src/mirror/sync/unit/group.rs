//! The group commit of the common webhook: a new delivery of a newer
//! state of a stored subscription, on SQLite and PostgreSQL.
//!
//! A delivery alone in its transaction costs more in round trips than in
//! work: on SQLite each statement is a hop to the driver's worker thread
//! (two threads woken), on PostgreSQL each is a round trip to the server,
//! and every transaction a commit. Deliveries that arrive together are
//! written together: each queues its write; whoever gets a turn to write
//! takes the queue (at most [`GROUP_MAX`]) and, in one transaction, reads
//! the group's rows, derives each delivery's events from its row, and
//! writes them all. A delivery the group did not write (a duplicate, an
//! absent or newer row, a second delivery for the same subscription, a
//! failed group) runs as its own unit, which decides it.
//!
//! - **SQLite** writes one transaction at a time: there is one turn, which
//!   units of work take too. The group's statements go as one batch, each
//!   delivery writing only if its row is as read and its delivery new
//!   ([`apply::replace_claimed`]).
//! - **PostgreSQL** writes concurrently: [`PG_GROUPS`] groups may be written
//!   at once (units take no turn). A group claims its deliveries before it
//!   locks their rows, as a unit does, and both in order, so that groups
//!   and units never deadlock; it writes in five statements whatever its
//!   size ([`apply::claim_all`], [`apply::replace_all`]).
//!
//! The group is written by a task of its own, so that a caller that goes
//! away (a request abandoned mid-way) neither loses the others' answers nor
//! leaves a turn taken.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::consequences::{Consequences, outbox_rows};
use super::txn;
use crate::domain::model::Subscription;
use crate::mirror::entity::{event, subscription, webhook_delivery};
use crate::mirror::sync::apply::{self, Applied, Mark, Source};
use crate::mirror::sync::events::Origin;
use crate::mirror::sync::{Effects, Syncer, outbox};

/// The most deliveries written in one group (SQLite binds at most 32,766
/// values in a statement; a delivery binds about 50).
const GROUP_MAX: usize = 64;

/// PostgreSQL: how many groups may be written at once. One is forming
/// while one commits; more make smaller groups. In the webhooks benchmark
/// over HTTP (16 connections, a pool of 5), 1, 2, 3, 5 and 8 applied 0.99,
/// 0.99, 0.95, 0.83 and 0.72 of the hand-written receiver's deliveries.
const PG_GROUPS: usize = 2;

/// The turns to write and the deliveries waiting to be written in a group
/// (see the module's documentation).
pub(crate) struct Writer {
    /// Taken by whoever writes a group, and on SQLite by a unit of work.
    turns: Arc<Semaphore>,
    /// Whether units of work take a turn (SQLite: one writer at a time).
    serial: bool,
    queue: std::sync::Mutex<Vec<Queued>>,
    /// Numbers the queued deliveries.
    tickets: AtomicU64,
}

impl Writer {
    /// The writer of `backend`'s groups; `None` where groups are not
    /// written (MySQL).
    pub(crate) fn of(backend: DbBackend) -> Option<Self> {
        let (turns, serial) = match backend {
            DbBackend::Sqlite => (1, true),
            DbBackend::Postgres => (PG_GROUPS, false),
            _ => return None,
        };
        Some(Self {
            turns: Arc::new(Semaphore::new(turns)),
            serial,
            queue: std::sync::Mutex::default(),
            tickets: AtomicU64::new(0),
        })
    }

    /// On SQLite, waits for the turn to write; elsewhere a unit of work
    /// takes none.
    pub(super) async fn unit_turn(&self) -> Option<OwnedSemaphorePermit> {
        if !self.serial {
            return None;
        }
        // The semaphore is never closed.
        self.turns.clone().acquire_owned().await.ok()
    }

    /// Takes the delivery of `ticket` out of the queue; false when a group
    /// has already taken it.
    fn withdraw(&self, ticket: u64) -> bool {
        let mut queue = self.queue();
        let before = queue.len();
        queue.retain(|q| q.ticket != ticket);
        queue.len() < before
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // Held only to push or drain, never across a panic.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One delivery's write, as the group needs it.
pub(super) struct Write {
    pub(super) subscription: Subscription,
    pub(super) mark: Mark,
    pub(super) data: serde_json::Value,
    pub(super) claim: webhook_delivery::ActiveModel,
    pub(super) origin: Origin,
}

/// What became of a delivery queued to be written in a group.
pub(super) enum Grouped {
    /// Its group wrote it.
    Written(Effects),
    /// PostgreSQL: it was alone, and runs as its own unit (fewer
    /// statements, its claim folded into its write) in this transaction,
    /// holding this turn, so that the deliveries arriving meanwhile queue
    /// for a group.
    Alone(OwnedSemaphorePermit, DatabaseTransaction),
    /// Its group did not write it, or the backend writes no groups: it runs
    /// as its own unit.
    Own,
}

struct Queued {
    /// Which caller queued it.
    ticket: u64,
    write: Write,
    /// What the group did: `Some` when it wrote the delivery.
    answer: oneshot::Sender<Option<Effects>>,
}

impl Syncer {
    /// Writes `write` in a group with the deliveries waiting beside it.
    pub(super) async fn write_grouped(&self, write: Write) -> Grouped {
        let Some(writer) = self.inner.writer.as_ref() else {
            return Grouped::Own;
        };
        let outcome = |effects: Result<Option<Effects>, _>| match effects {
            Ok(Some(effects)) => Grouped::Written(effects),
            _ => Grouped::Own,
        };
        let (answer, mut answered) = oneshot::channel();
        let ticket = writer.tickets.fetch_add(1, Ordering::Relaxed);
        writer.queue().push(Queued {
            ticket,
            write,
            answer,
        });
        loop {
            tokio::select! {
                biased;
                effects = &mut answered => return outcome(effects),
                Ok(turn) = writer.turns.clone().acquire_owned() => {
                    // PostgreSQL: the group is taken from the queue once it
                    // has a connection, so that it holds every delivery
                    // that arrived while it waited for one.
                    let mut txn = if writer.serial {
                        None
                    } else {
                        match txn::begin(self.db()).await {
                            Ok(txn) => Some(txn),
                            Err(error) => {
                                tracing::debug!(%error, "no transaction for a group of webhook writes; the delivery runs as its own unit");
                                if writer.withdraw(ticket) {
                                    return Grouped::Own;
                                }
                                return outcome(answered.await);
                            }
                        }
                    };
                    let (group, waiting) = {
                        let mut queue = writer.queue();
                        let n = queue.len().min(GROUP_MAX);
                        let group: Vec<Queued> = queue.drain(..n).collect();
                        (group, queue.iter().any(|q| q.ticket == ticket))
                    };
                    if let Some(txn) = txn.take_if(|_| matches!(group.as_slice(), [q] if q.ticket == ticket)) {
                        return Grouped::Alone(turn, txn);
                    }
                    if !group.is_empty() {
                        let syncer = self.clone();
                        tokio::spawn(async move { syncer.write_group(group, turn, txn).await });
                    }
                    // A group has taken this delivery (this one, or one
                    // that gave its turn up before answering): its answer
                    // is on its way.
                    if !waiting {
                        return outcome(answered.await);
                    }
                }
            }
        }
    }

    /// Writes a group and answers each of its deliveries. A transient
    /// conflict (on SQLite, a write of this syncer's that takes no turn,
    /// such as the outbox's, between the group's read and its write) runs
    /// the group again.
    async fn write_group(
        &self,
        group: Vec<Queued>,
        turn: OwnedSemaphorePermit,
        mut txn: Option<DatabaseTransaction>,
    ) {
        let (writes, answers): (Vec<Write>, Vec<_>) =
            group.into_iter().map(|q| (q.write, q.answer)).unzip();
        let backend = self.db().get_database_backend();
        let mut turn = Some(turn);
        let mut tries = 0;
        let written = loop {
            tries += 1;
            match self.try_group(&writes, &mut turn, txn.take()).await {
                Ok(written) => break written,
                Err(error) if tries < txn::TRIES && txn::is_transient(backend, &error) => {
                    tracing::debug!(deliveries = writes.len(), tries, %error, "a group of webhook writes met a conflict; writing it again");
                }
                Err(error) => {
                    tracing::debug!(deliveries = writes.len(), %error, "a group of webhook writes failed; each runs as its own unit");
                    break writes.iter().map(|_| None).collect();
                }
            }
        };
        drop(turn);
        for (answer, effects) in answers.into_iter().zip(written) {
            // A caller that went away has its delivery written all the same.
            let _ = answer.send(effects);
        }
    }

    /// Writes the group in one transaction, as its backend allows; the
    /// turn is given up as soon as the work is committed.
    async fn try_group(
        &self,
        writes: &[Write],
        turn: &mut Option<OwnedSemaphorePermit>,
        txn: Option<DatabaseTransaction>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        match self.db().get_database_backend() {
            DbBackend::Postgres => self.try_group_postgres(writes, txn).await,
            _ => self.try_group_sqlite(writes, turn).await,
        }
    }

    /// What the group writes of each delivery (`None`: it runs as its own
    /// unit), decided from the group's rows as read.
    fn plan<'a>(
        &self,
        writes: &[Write],
        rows: &'a HashMap<String, subscription::Model>,
        now: DateTime<Utc>,
    ) -> Vec<Option<Planned<'a>>> {
        let delivered = self.listeners().is_empty();
        let mut taken = BTreeSet::new();
        writes
            .iter()
            .map(|w| {
                let s = &w.subscription;
                // A second delivery for a subscription would find it changed
                // by the first: it runs as its own unit.
                let before = rows
                    .get(s.id.as_str())
                    .filter(|row| row.sync_mark < w.mark.0 && taken.insert(s.id.as_str()))?;
                let written = apply::Written {
                    applied: Applied::Updated,
                    before: Some(before.clone()),
                };
                let then = Consequences::of(s, &written, w.mark, Source::of(w.origin));
                if then.refetch || then.answers_checkouts.is_some() {
                    return None;
                }
                let events = outbox_rows(
                    &then.events,
                    &then.billable,
                    w.origin,
                    w.mark,
                    now,
                    delivered,
                );
                let mut effects = Effects {
                    subscriptions: 1,
                    ..Effects::default()
                };
                if !delivered {
                    effects.events = events.iter().map(|row| row.id.clone().unwrap()).collect();
                }
                effects.changed.extend(then.billable);
                Some(Planned {
                    before,
                    events,
                    effects,
                })
            })
            .collect()
    }

    /// SQLite, one transaction: read the group's rows, then one batch of
    /// every delivery's statements, ending `COMMIT; BEGIN` (the turn is
    /// given up once it has run; the empty transaction left is closed
    /// after).
    async fn try_group_sqlite(
        &self,
        writes: &[Write],
        turn: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        let txn = txn::begin(self.db()).await?;
        let rows = rows(&txn, ids(writes.iter()), false).await?;
        let now = self.now();
        let mut statements = Vec::new();
        let mut planned = Vec::with_capacity(writes.len());
        for (w, plan) in writes.iter().zip(self.plan(writes, &rows, now)) {
            let Some(plan) = plan else {
                planned.push(None);
                continue;
            };
            statements.extend(apply::replace_claimed(
                &w.subscription,
                &w.data,
                w.mark.0,
                now,
                plan.before,
                w.claim.clone(),
                plan.events,
            ));
            planned.push(Some(plan.effects));
        }
        if statements.is_empty() {
            turn.take();
            txn.commit().await?;
            return Ok(planned);
        }
        for sql in ["COMMIT", "BEGIN"] {
            statements.push(sea_orm::Statement::from_string(DbBackend::Sqlite, sql));
        }
        let answered = txn.query_all_raw(apply::batch(statements)).await?;
        turn.take();
        // The subscriptions written: each delivery's write answers its id.
        let written: BTreeSet<String> = answered
            .iter()
            .filter_map(|row| row.try_get::<String>("", "id").ok())
            .collect();
        // The batch committed the work; this closes the empty transaction.
        if let Err(error) = txn.commit().await {
            tracing::warn!(%error, "closing a group's empty transaction failed; its work is committed");
        }
        Ok(writes
            .iter()
            .zip(planned)
            .map(|(w, effects)| effects.filter(|_| written.contains(w.subscription.id.as_str())))
            .collect())
    }

    /// PostgreSQL, one transaction of five statements whatever the group's
    /// size (a group of one runs as its own unit, in two): read the group's
    /// rows and decide; claim the deliveries it writes (a delivery already
    /// stored is not claimed, and runs as its own unit); lock their rows
    /// (a row changed since it was read has its delivery's claim taken
    /// back, one statement more, and the delivery runs as its own unit);
    /// replace them; insert their events; commit. Every writer claims its
    /// delivery before it locks a row, and a group claims and locks in the
    /// order of the keys, so groups and units cannot deadlock.
    async fn try_group_postgres(
        &self,
        writes: &[Write],
        txn: Option<DatabaseTransaction>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        // Alone, a delivery writes in fewer statements as its own unit.
        if writes.len() == 1 {
            return Ok(vec![None]);
        }
        let key = |w: &Write| {
            w.claim
                .delivery_id
                .try_as_ref()
                .cloned()
                .unwrap_or_default()
        };
        let txn = match txn {
            Some(txn) => txn,
            None => txn::begin(self.db()).await?,
        };
        let seen = rows(&txn, ids(writes.iter()), false).await?;
        let now = self.now();
        let planned = self.plan(writes, &seen, now);
        // A plan writes a subscription once, so a delivery once.
        let claims: Vec<_> = writes
            .iter()
            .zip(&planned)
            .filter(|(_, plan)| plan.is_some())
            .map(|(w, _)| (key(w), w.claim.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        if claims.is_empty() {
            txn.commit().await?;
            return Ok(writes.iter().map(|_| None).collect());
        }
        let claimed: BTreeSet<String> = txn
            .query_all_raw(apply::claim_all(claims))
            .await?
            .iter()
            .filter_map(|row| row.try_get::<String>("", "delivery_id").ok())
            .collect();
        let planned: Vec<_> = writes
            .iter()
            .zip(planned)
            .map(|(w, plan)| plan.filter(|_| claimed.contains(&key(w))))
            .collect();
        let planned_writes = writes
            .iter()
            .zip(&planned)
            .filter(|(_, plan)| plan.is_some())
            .map(|(w, _)| w);
        let locked = rows(&txn, ids(planned_writes), true).await?;
        let mut states = Vec::new();
        let mut events = Vec::new();
        let mut unwritten = Vec::new();
        let mut answers = Vec::with_capacity(writes.len());
        for (w, plan) in writes.iter().zip(planned) {
            let Some(plan) = plan else {
                answers.push(None);
                continue;
            };
            if locked.get(w.subscription.id.as_str()) != Some(plan.before) {
                // Changed since it was read: its claim is taken back.
                unwritten.push(key(w));
                answers.push(None);
                continue;
            }
            states.push((&w.subscription, &w.data, w.mark.0));
            events.extend(plan.events);
            answers.push(Some(plan.effects));
        }
        if !unwritten.is_empty() {
            webhook_delivery::Entity::delete_many()
                .filter(webhook_delivery::Column::DeliveryId.is_in(unwritten))
                .exec(&txn)
                .await?;
        }
        if !states.is_empty() {
            txn.execute_raw(apply::replace_all(&states, now)).await?;
        }
        outbox::write(&txn, events).await?;
        txn.commit().await?;
        Ok(answers)
    }
}

/// The subscriptions `writes` write.
fn ids<'a>(writes: impl Iterator<Item = &'a Write>) -> BTreeSet<&'a str> {
    writes.map(|w| w.subscription.id.as_str()).collect()
}

/// The rows of `ids` by id, read in the order of their ids; `locked`:
/// `FOR UPDATE` (PostgreSQL), so that the group's locks are taken in that
/// order.
async fn rows(
    txn: &DatabaseTransaction,
    ids: BTreeSet<&str>,
    locked: bool,
) -> Result<HashMap<String, subscription::Model>, DbErr> {
    let mut find = subscription::Entity::find()
        .filter(subscription::Column::Id.is_in(ids))
        .order_by_asc(subscription::Column::Id);
    if locked {
        find = find.lock_exclusive();
    }
    Ok(find
        .all(txn)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect())
}

/// What a group writes of one delivery.
struct Planned<'a> {
    /// Its subscription's row as the group read it.
    before: &'a subscription::Model,
    /// Its billing events' outbox rows.
    events: Vec<event::ActiveModel>,
    /// What writing it changed.
    effects: Effects,
}

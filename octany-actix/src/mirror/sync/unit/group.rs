//! SQLite's group commit of the common webhook: a new delivery of a newer
//! state of a stored subscription.
//!
//! SQLite writes one transaction at a time, and each statement is a hop to
//! the driver's worker thread (two threads woken), so a delivery alone in
//! its transaction costs more in hops than in work. Deliveries that arrive
//! together are written together: each queues its write; whoever has the
//! turn to write next takes the queue (at most [`GROUP_MAX`]) and, in one
//! transaction, reads the group's rows, derives each delivery's events from
//! its row, and sends every delivery's statements as one batch, each
//! writing only if its row is as read and its delivery new
//! ([`apply::replace_claimed`]); then it answers each. A delivery the group
//! did not write (a duplicate, an absent or newer row, a second delivery
//! for the same subscription, a failed group) runs as its own unit, which
//! decides it.
//!
//! The group is written by a task of its own, so that a caller that goes
//! away (a request abandoned mid-way) neither loses the others' answers nor
//! leaves the turn taken.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::{Consequences, Mark};
use crate::domain::model::Subscription;
use crate::mirror::entity::{subscription, webhook_delivery};
use crate::mirror::sync::apply::{self, Applied, Source};
use crate::mirror::sync::events::Origin;
use crate::mirror::sync::{Effects, Syncer, outbox};

/// The most deliveries written in one group (SQLite binds at most 32,766
/// values in a statement; a delivery binds about 50).
const GROUP_MAX: usize = 64;

/// On SQLite, the turn to write and the deliveries waiting to be written
/// in a group (see the module's documentation).
#[derive(Default)]
pub(crate) struct Writer {
    /// Held by whoever writes: a unit of work or a group.
    turn: Arc<Mutex<()>>,
    queue: std::sync::Mutex<Vec<Queued>>,
}

impl Writer {
    /// Waits for the turn to write.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
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

struct Queued {
    write: Write,
    /// What the group did: `Some` when it wrote the delivery.
    answer: oneshot::Sender<Option<Effects>>,
}

impl Syncer {
    /// Writes `write` in a group with the deliveries waiting beside it;
    /// `None` when the group did not write it (then it runs as its own
    /// unit) or this is not SQLite.
    pub(super) async fn write_grouped(&self, write: Write) -> Option<Effects> {
        let writer = self.inner.sqlite_writer.as_ref()?;
        let (answer, mut answered) = oneshot::channel();
        writer.queue().push(Queued { write, answer });
        loop {
            tokio::select! {
                biased;
                effects = &mut answered => return effects.ok().flatten(),
                turn = writer.turn.clone().lock_owned() => {
                    if let Ok(effects) = answered.try_recv() {
                        return effects;
                    }
                    let group: Vec<Queued> = {
                        let mut queue = writer.queue();
                        let n = queue.len().min(GROUP_MAX);
                        queue.drain(..n).collect()
                    };
                    // Empty when a group took this delivery and gave the
                    // turn up before answering: the answer is on its way.
                    if !group.is_empty() {
                        let syncer = self.clone();
                        tokio::spawn(async move { syncer.write_group(group, turn).await });
                    }
                }
            }
        }
    }

    /// Writes a group and answers each of its deliveries.
    async fn write_group(&self, group: Vec<Queued>, turn: OwnedMutexGuard<()>) {
        let (writes, answers): (Vec<Write>, Vec<_>) =
            group.into_iter().map(|q| (q.write, q.answer)).unzip();
        let written = match self.try_group(&writes, turn).await {
            Ok(written) => written,
            Err(error) => {
                tracing::debug!(deliveries = writes.len(), %error, "a group of webhook writes failed; each runs as its own unit");
                writes.iter().map(|_| None).collect()
            }
        };
        for (answer, effects) in answers.into_iter().zip(written) {
            // A caller that went away has its delivery written all the same.
            let _ = answer.send(effects);
        }
    }

    /// One transaction: read the group's rows, then one batch of every
    /// delivery's statements, ending `COMMIT; BEGIN` (the turn is given up
    /// once it has run; the empty transaction left is closed after).
    async fn try_group(
        &self,
        writes: &[Write],
        turn: OwnedMutexGuard<()>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        let txn = super::begin(self.db()).await?;
        let ids: BTreeSet<&str> = writes.iter().map(|w| w.subscription.id.as_str()).collect();
        let rows: HashMap<String, subscription::Model> = subscription::Entity::find()
            .filter(subscription::Column::Id.is_in(ids))
            .all(&txn)
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect();
        let now = self.now();
        let delivered = self.listeners().is_empty();
        let mut taken = BTreeSet::new();
        let mut statements = Vec::new();
        let mut planned = Vec::with_capacity(writes.len());
        for w in writes {
            let s = &w.subscription;
            // A second delivery for a subscription would find it changed
            // by the first: it runs as its own unit.
            let before = rows
                .get(s.id.as_str())
                .filter(|row| row.sync_mark < w.mark.0 && taken.insert(s.id.as_str()));
            let Some(before) = before else {
                planned.push(None);
                continue;
            };
            let written = apply::Written {
                applied: Applied::Updated,
                before: Some(before.clone()),
            };
            let then = Consequences::of(s, &written, w.mark, Source::of(w.origin));
            if then.refetch || then.answers_checkouts.is_some() {
                planned.push(None);
                continue;
            }
            let events: Vec<_> = then
                .events
                .iter()
                .map(|event| {
                    outbox::row(
                        event,
                        then.billable.clone(),
                        w.origin,
                        w.mark.0,
                        now,
                        delivered,
                    )
                })
                .collect();
            let mut effects = Effects {
                subscriptions: 1,
                ..Effects::default()
            };
            if !delivered {
                effects.events = events.iter().map(|row| row.id.clone().unwrap()).collect();
            }
            effects.changed.extend(then.billable);
            statements.extend(apply::replace_claimed(
                s,
                &w.data,
                w.mark.0,
                now,
                before,
                w.claim.clone(),
                events,
            ));
            planned.push(Some(effects));
        }
        if statements.is_empty() {
            drop(turn);
            txn.commit().await?;
            return Ok(planned);
        }
        for sql in ["COMMIT", "BEGIN"] {
            statements.push(sea_orm::Statement::from_string(DbBackend::Sqlite, sql));
        }
        let answered = txn.query_all_raw(apply::batch(statements)).await?;
        drop(turn);
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
}

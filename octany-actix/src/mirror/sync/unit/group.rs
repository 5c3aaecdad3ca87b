//! The group commit of the common webhook, a new delivery of one
//! subscription's state, on SQLite and PostgreSQL.
//!
//! A delivery alone in its transaction costs more in round trips than in
//! work: on SQLite each statement is a hop to the driver's worker thread
//! (two threads woken), on PostgreSQL each is a round trip to the server,
//! and every transaction a commit. Deliveries that arrive together are
//! written together: each queues its unit; whoever gets a turn to write
//! takes the queue (at most [`GROUP_MAX`]) and writes it in one
//! transaction by the function that writes a unit alone,
//! [`Syncer::write`]. A failed group has each of its units run alone,
//! which decides it.
//!
//! How many groups may be written at once and whether units take turns
//! too are the backend's (`backend`: SQLite writes one transaction at a
//! time; PostgreSQL two groups at once; MySQL writes no groups).
//!
//! The group is written by a task of its own, so that a caller that goes
//! away (a request abandoned mid-way) neither loses the others' answers nor
//! leaves a turn taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::backend::{Backend, Grouping};
use super::batch::Unit;
use crate::mirror::sync::{Effects, Syncer};

/// The most deliveries written in one group (SQLite binds at most 32,766
/// values in a statement; a delivery binds about 50).
const GROUP_MAX: usize = 64;

/// The turns to write and the units waiting to be written in a group (see
/// the module's documentation).
pub(crate) struct Writer {
    /// Taken by whoever writes a group, and on SQLite by a unit of work.
    turns: Arc<Semaphore>,
    /// Whether units of work take a turn (SQLite: one writer at a time).
    serial: bool,
    queue: std::sync::Mutex<Vec<Queued>>,
    /// Numbers the queued units.
    tickets: AtomicU64,
}

impl Writer {
    /// The writer of `backend`'s groups; `None` where groups are not
    /// written (MySQL).
    pub(crate) fn of(backend: &dyn Backend) -> Option<Self> {
        let Grouping { turns, serial } = backend.grouping()?;
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

    /// Takes the unit of `ticket` out of the queue; false when a group has
    /// already taken it.
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

/// What a unit's group did: its effects (`None`: its delivery was applied
/// before), or
/// nothing when the group failed.
type Answer = Option<Option<Effects>>;

/// What became of a unit queued to be written in a group.
pub(super) enum Grouped {
    /// Its group wrote it: its effects, `None` when its delivery was
    /// applied before.
    Written(Option<Effects>),
    /// Its group failed, or the backend writes no groups: it runs alone.
    Own,
}

struct Queued {
    /// Which caller queued it.
    ticket: u64,
    unit: Arc<Unit>,
    answer: oneshot::Sender<Answer>,
}

impl Syncer {
    /// Writes `unit` in a group with the units waiting beside it.
    pub(super) async fn write_grouped(&self, unit: &Arc<Unit>) -> Grouped {
        let Some(writer) = self.inner.writer.as_ref() else {
            return Grouped::Own;
        };
        let outcome = |answer: Result<Answer, _>| match answer {
            Ok(Some(done)) => Grouped::Written(done),
            _ => Grouped::Own,
        };
        let (answer, mut answered) = oneshot::channel();
        let ticket = writer.tickets.fetch_add(1, Ordering::Relaxed);
        writer.queue().push(Queued {
            ticket,
            unit: unit.clone(),
            answer,
        });
        loop {
            tokio::select! {
                biased;
                answer = &mut answered => return outcome(answer),
                Ok(turn) = writer.turns.clone().acquire_owned() => {
                    // PostgreSQL: the group is taken from the queue once it
                    // has a connection, so that it holds every unit that
                    // arrived while it waited for one.
                    let txn = if writer.serial {
                        None
                    } else {
                        match self.backend().begin(self.db()).await {
                            Ok(txn) => Some(txn),
                            Err(error) => {
                                tracing::debug!(%error, "no transaction for a group of webhook writes; the delivery runs alone");
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
                    if !group.is_empty() {
                        let syncer = self.clone();
                        tokio::spawn(async move { syncer.write_group(group, turn, txn).await });
                    }
                    // A group has taken this unit (this one, or one that
                    // gave its turn up before answering): its answer is on
                    // its way.
                    if !waiting {
                        return outcome(answered.await);
                    }
                }
            }
        }
    }

    /// Writes a group and answers each of its units. A transient conflict
    /// (on SQLite, a write of this syncer's that takes no turn, such as the
    /// outbox's, between the group's read and its write) runs the group
    /// again.
    async fn write_group(
        &self,
        group: Vec<Queued>,
        turn: OwnedSemaphorePermit,
        mut txn: Option<DatabaseTransaction>,
    ) {
        let (units, answers): (Vec<Arc<Unit>>, Vec<_>) =
            group.into_iter().map(|q| (q.unit, q.answer)).unzip();
        let mut tries = 0;
        let written: Vec<Answer> = loop {
            tries += 1;
            match self.try_group(&units, txn.take()).await {
                Ok(done) => break done.into_iter().map(Some).collect(),
                Err(error) if tries < super::TRIES && self.backend().is_transient(&error) => {
                    tracing::debug!(deliveries = units.len(), tries, %error, "a group of webhook writes met a conflict; writing it again");
                }
                Err(error) => {
                    tracing::debug!(deliveries = units.len(), %error, "a group of webhook writes failed; each runs alone");
                    break units.iter().map(|_| None).collect();
                }
            }
        };
        drop(turn);
        for (answer, done) in answers.into_iter().zip(written) {
            // A caller that went away has its delivery written all the same.
            let _ = answer.send(done);
        }
    }

    /// Writes the group in one transaction (`txn` when one was opened
    /// while it waited for a connection).
    async fn try_group(
        &self,
        units: &[Arc<Unit>],
        txn: Option<DatabaseTransaction>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        let txn = match txn {
            Some(txn) => txn,
            None => self.backend().begin(self.db()).await?,
        };
        let units: Vec<&Unit> = units.iter().map(Arc::as_ref).collect();
        let done = self.write(&txn, &units).await?;
        txn.commit().await?;
        Ok(done)
    }
}

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
//! What each delivery writes is decided once for every backend (`plan`);
//! how many groups may be written at once, whether units take turns too,
//! and the group's statements are the backend's (`backend`: SQLite writes
//! one transaction at a time, as one batch; PostgreSQL writes two groups
//! at once, in five statements whatever their size; MySQL writes no
//! groups).
//!
//! The group is written by a task of its own, so that a caller that goes
//! away (a request abandoned mid-way) neither loses the others' answers nor
//! leaves a turn taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::backend::{Backend, Group, Grouping};
use super::plan::Write;
use crate::mirror::sync::{Effects, Syncer};

/// The most deliveries written in one group (SQLite binds at most 32,766
/// values in a statement; a delivery binds about 50).
const GROUP_MAX: usize = 64;

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
                        match self.backend().begin(self.db()).await {
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
        let mut turn = Some(turn);
        let mut tries = 0;
        let written = loop {
            tries += 1;
            match self.try_group(&writes, &mut turn, txn.take()).await {
                Ok(written) => break written,
                Err(error) if tries < super::TRIES && self.backend().is_transient(&error) => {
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
        let group = Group {
            db: self.db(),
            clock: self.clock(),
            delivered: self.listeners().is_empty(),
        };
        self.backend().write_group(group, writes, turn, txn).await
    }
}

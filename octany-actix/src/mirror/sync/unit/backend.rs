//! What differs between the databases in the unit of work, behind one
//! small trait with one implementation per backend (as actix-session puts
//! each store behind `SessionStore`): how a unit's transaction is opened,
//! which errors mean "run it again", whether and how webhook writes that
//! arrive together are grouped, and the fewer-round-trip writes a backend
//! allows. The algorithm (`unit`, `group`, `plan`) has no branch on the
//! backend.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr, TransactionTrait,
};
use tokio::sync::OwnedSemaphorePermit;

use super::hook::Hook;
use super::plan::Write;
use crate::domain::clock::SharedClock;
use crate::domain::model::Subscription;
use crate::mirror::entity::subscription;
use crate::mirror::sync::Effects;
use crate::mirror::sync::apply::{Claimed, Mark};

mod mysql;
mod postgres;
mod sqlite;

/// The backend of `db`'s kind.
pub(crate) fn of(backend: DbBackend) -> &'static dyn Backend {
    match backend {
        DbBackend::Sqlite => &sqlite::Sqlite,
        DbBackend::Postgres => &postgres::Postgres,
        _ => &mysql::MySql,
    }
}

/// How a backend groups the webhook writes that arrive together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    /// How many groups may be written at once.
    pub(crate) turns: usize,
    /// Whether units of work take a turn too (one writer at a time).
    pub(crate) serial: bool,
}

/// What a group's write needs of its syncer.
#[derive(Clone, Copy)]
pub(crate) struct Group<'a> {
    /// The database.
    pub(crate) db: &'a DatabaseConnection,
    /// "Now", read once the group's transaction is open.
    pub(crate) clock: &'a SharedClock,
    /// No listener is registered: events are recorded delivered.
    pub(crate) delivered: bool,
}

/// One database's part in the unit of work (see the module's
/// documentation).
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// Opens a unit's transaction.
    async fn begin(&self, db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
        db.begin().await
    }

    /// Whether `error` means "run the transaction again", by the driver's
    /// error code.
    fn is_transient(&self, error: &DbErr) -> bool;

    /// How webhook writes arriving together are grouped; `None`: each is
    /// its own unit.
    fn grouping(&self) -> Option<Grouping> {
        None
    }

    /// A new delivery's claim (`hook`'s) folded into the write of its one
    /// subscription `s`, one round trip for both: what it did.
    /// [`Claimed::No`] (the default, where a backend folds nothing): the
    /// hook then claims and decides as usual.
    async fn claim_and_write(
        &self,
        _txn: &DatabaseTransaction,
        _hook: &dyn Hook,
        _s: &Subscription,
        _data: &serde_json::Value,
        _mark: Mark,
        _now: DateTime<Utc>,
    ) -> Result<Claimed, DbErr> {
        Ok(Claimed::No)
    }

    /// The common write, a newer state `s` of a stored subscription, in
    /// one round trip where the backend allows: the row as it was when it
    /// wrote. `None` (the default: nothing tried), or a row absent or not
    /// older: the unit runs the locked read-decide-write.
    async fn replace_if_older(
        &self,
        _txn: &DatabaseTransaction,
        _s: &Subscription,
        _data: &serde_json::Value,
        _mark: Mark,
        _now: DateTime<Utc>,
    ) -> Result<Option<subscription::Model>, DbErr> {
        Ok(None)
    }

    /// Writes `writes` as one group; for each, its effects when the group
    /// wrote it (`None`: it runs as its own unit). The turn is given up as
    /// soon as the work is committed; `txn` is the group's transaction when
    /// one was opened while it waited for a connection.
    async fn write_group(
        &self,
        _group: Group<'_>,
        writes: &[Write],
        _turn: &mut Option<OwnedSemaphorePermit>,
        _txn: Option<DatabaseTransaction>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        Ok(writes.iter().map(|_| None).collect())
    }
}

/// The driver's error code of `error`, if the database gave one.
fn driver_code(error: &DbErr) -> Option<Cow<'_, str>> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = error
    else {
        return None;
    };
    let sea_orm::sqlx::Error::Database(e) = e.as_ref() else {
        return None;
    };
    e.code()
}

/// A serialization failure or a deadlock: SQLSTATE `40001` (also MySQL's
/// for a deadlock) or PostgreSQL's `40P01`.
fn sqlstate_transient(error: &DbErr) -> bool {
    driver_code(error).is_some_and(|code| matches!(code.as_ref(), "40001" | "40P01"))
}

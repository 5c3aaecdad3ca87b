//! What differs between the databases in the unit of work, behind one
//! small trait with one implementation per backend (as actix-session puts
//! each store behind `SessionStore`): how a unit's transaction is opened,
//! which errors mean "run it again", whether units arriving together are
//! written in one transaction, and the fast write of new webhook
//! deliveries the backend allows. The algorithm (`unit`, `group`) has no
//! branch on the backend.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr, TransactionTrait,
};

use crate::domain::model::Subscription;
use crate::mirror::entity::{subscription, webhook_delivery};
use crate::mirror::sync::apply::Mark;

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

/// How a backend groups the webhook deliveries that arrive together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    /// How many groups may be written at once.
    pub(crate) turns: usize,
    /// Whether units of work take a turn too (one writer at a time).
    pub(crate) serial: bool,
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

    /// How webhook deliveries arriving together are grouped; `None`: each
    /// is its own unit.
    fn grouping(&self) -> Option<Grouping> {
        None
    }

    /// Locks `keys` (what a unit's writes may touch: `Batch::keys`) for
    /// the rest of `txn`, before its first write, in one order every
    /// writer shares, so that two writers touching the same rows wait for
    /// each other at the start instead of deadlocking midway. The default
    /// locks nothing: SQLite writes one transaction at a time, and MySQL's
    /// units (never grouped) lock their rows as they go; a deadlock there
    /// is detected at once and the unit runs again.
    async fn lock(&self, _txn: &DatabaseTransaction, _keys: Vec<String>) -> Result<(), DbErr> {
        Ok(())
    }

    /// The fast write of new webhook deliveries, one or many (at most one
    /// a subscription), in the fewest round trips the backend allows: each
    /// delivery's claim and, where its state is newer than its stored row,
    /// the row's replacement; what it did with each, in order. The default,
    /// where a backend has none: [`Claimed::No`] for each (each unit claims
    /// its delivery, and its state is applied by the locked
    /// read-decide-write).
    async fn claim_and_replace(
        &self,
        _txn: &DatabaseTransaction,
        fast: &[Fast<'_>],
        _now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        Ok(fast.iter().map(|_| Claimed::No).collect())
    }
}

/// A new webhook delivery of one subscription's state, for the backend's
/// fast write ([`Backend::claim_and_replace`]): its claim (the delivery's
/// row, recorded processed) and the state observed at `mark`.
pub(crate) struct Fast<'a> {
    pub(crate) claim: &'a webhook_delivery::ActiveModel,
    pub(crate) subscription: &'a Subscription,
    /// Its `apply::subscription_data`.
    pub(crate) data: &'a serde_json::Value,
    pub(crate) mark: Mark,
}

impl Fast<'_> {
    /// The delivery's key.
    pub(crate) fn key(&self) -> &str {
        self.claim
            .delivery_id
            .try_as_ref()
            .map_or("", String::as_str)
    }
}

/// What the fast write did with one delivery.
#[derive(Debug)]
pub(crate) enum Claimed {
    /// It claimed nothing (a delivery seen before, a row changed since it
    /// was read, a backend with no fast write): the unit claims or finds
    /// the delivery (`Delivery::before`), and its state is applied as usual.
    No,
    /// Claimed; the row as it was if a newer state replaced it, `None` when
    /// the row is absent or not older (the unit applies it as usual).
    Yes(Option<Box<subscription::Model>>),
}

/// The claim's conflict clause: a delivery already stored is left as it is.
pub(super) fn delivery_seen() -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::column(webhook_delivery::Column::DeliveryId)
        .do_nothing()
        .to_owned()
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

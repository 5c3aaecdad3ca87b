//! The API-call log's writer: the client hands each exchange with Octany
//! to [`DbCallLog`] without waiting (a bounded channel; when it is full the
//! record is dropped and counted in `octany_api_calls_dropped_total`), and
//! one task writes them in batches to `octany_api_calls`. Nothing on the
//! request path waits for the database, and the guard never touches it.
//! Bookkeeping, like the deliveries: pruned with them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::mpsc;

use crate::client::{CallRecord, CallSink};
use crate::mirror::entity::api_call;

/// Records waiting to be written, at most.
const WAITING: usize = 10_000;
/// Records written by one statement, at most.
const BATCH: usize = 200;

/// The sink that writes the client's calls to the database.
#[derive(Debug)]
pub(crate) struct DbCallLog {
    to_writer: mpsc::Sender<CallRecord>,
}

impl DbCallLog {
    /// Starts the writer on the running runtime; `None` outside one (then
    /// no calls are logged, and a warning says so).
    pub(crate) fn start(db: DatabaseConnection) -> Option<Arc<Self>> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "the Octany handle was built outside a Tokio runtime: the API-call log is off"
            );
            return None;
        };
        let (to_writer, from_client) = mpsc::channel(WAITING);
        runtime.spawn(write(db, from_client));
        Some(Arc::new(Self { to_writer }))
    }
}

impl CallSink for DbCallLog {
    fn record(&self, call: CallRecord) {
        if self.to_writer.try_send(call).is_err() {
            metrics::counter!("octany_api_calls_dropped_total").increment(1);
        }
    }
}

/// Writes what arrives until every client holding the sink is gone.
async fn write(db: DatabaseConnection, mut from_client: mpsc::Receiver<CallRecord>) {
    let mut batch = Vec::with_capacity(BATCH);
    while from_client.recv_many(&mut batch, BATCH).await > 0 {
        let rows = batch.drain(..).map(|c| api_call::ActiveModel {
            at: Set(c.at),
            method: Set(c.method),
            path: Set(c.path.chars().take(512).collect()),
            status: Set(c.status.map(i32::from)),
            attempt: Set(i32::try_from(c.attempt).unwrap_or(i32::MAX)),
            duration_ms: Set(i32::try_from(c.duration_ms).unwrap_or(i32::MAX)),
            billable_ref: Set(c.billable),
            error: Set(c.error),
            ..Default::default()
        });
        if let Err(error) = api_call::Entity::insert_many(rows)
            .exec_without_returning(&db)
            .await
        {
            tracing::warn!(%error, "could not write to the API-call log; those records are lost");
        }
    }
}

/// The newest `limit` calls made for `billable`, newest first.
pub(crate) async fn of(
    db: &DatabaseConnection,
    billable: &str,
    limit: u64,
) -> Result<Vec<api_call::Model>, DbErr> {
    api_call::Entity::find()
        .filter(api_call::Column::BillableRef.eq(billable))
        .order_by_desc(api_call::Column::At)
        .order_by_desc(api_call::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Deletes the calls made before `before`; returns how many.
pub(crate) async fn prune(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(api_call::Entity::delete_many()
        .filter(api_call::Column::At.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u32) -> CallRecord {
        CallRecord {
            at: Utc::now(),
            method: "GET".into(),
            path: format!("subscription/{n}"),
            status: Some(200),
            attempt: 1,
            duration_ms: 1,
            billable: None,
            error: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_line_and_never_waits() {
        let (to_writer, mut from_client) = mpsc::channel(1);
        let log = DbCallLog { to_writer };
        // No writer drains it: the second and third lines find it full.
        for n in 1..=3 {
            log.record(call(n));
        }
        assert_eq!(from_client.recv().await.unwrap().path, "subscription/1");
        assert!(from_client.try_recv().is_err(), "the others were dropped");
    }
}

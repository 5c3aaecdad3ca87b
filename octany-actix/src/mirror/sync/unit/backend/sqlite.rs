//! SQLite: one writer at a time, so this syncer's units and groups take
//! turns (one turn); a group's statements go as one batch, each delivery
//! writing only if its row is as read and its delivery new
//! ([`apply::replace_claimed`]). A transient error is `BUSY` or `LOCKED`
//! (and their extended codes): a unit that read a row and finds it
//! changed by another writer cannot write (`BUSY_SNAPSHOT`) and runs
//! again. (`BEGIN IMMEDIATE` gives the same guarantee; in the webhooks
//! benchmark it applied 747 deliveries a second against 780 deferred,
//! 4,000 unique, 16 at a time.)

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};
use tokio::sync::OwnedSemaphorePermit;

use super::{Backend, Group, Grouping, driver_code};
use crate::mirror::sync::Effects;
use crate::mirror::sync::apply;
use crate::mirror::sync::unit::plan::{Write, ids, plan, rows};

/// SQLite.
#[derive(Debug)]
pub(super) struct Sqlite;

#[async_trait::async_trait]
impl Backend for Sqlite {
    fn is_transient(&self, error: &DbErr) -> bool {
        driver_code(error)
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6))
    }

    fn grouping(&self) -> Option<Grouping> {
        Some(Grouping {
            turns: 1,
            serial: true,
        })
    }

    /// SQLite, one transaction: read the group's rows, then one batch of
    /// every delivery's statements, ending `COMMIT; BEGIN` (the turn is
    /// given up once it has run; the empty transaction left is closed
    /// after).
    async fn write_group(
        &self,
        group: Group<'_>,
        writes: &[Write],
        turn: &mut Option<OwnedSemaphorePermit>,
        _txn: Option<DatabaseTransaction>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        let txn = self.begin(group.db).await?;
        let rows = rows(&txn, ids(writes.iter()), false).await?;
        let now = group.clock.now();
        let mut statements = Vec::new();
        let mut planned = Vec::with_capacity(writes.len());
        for (w, plan) in writes.iter().zip(plan(writes, &rows, now, group.delivered)) {
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
}

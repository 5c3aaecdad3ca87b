//! Leaner indexes where PostgreSQL and SQLite allow it: an index that only
//! holds the rows a query looks for (a partial index) costs nothing to
//! keep for the other rows. Most subscriptions are active, not flagged,
//! with no end: migration 000007's indexes on `ends_at`, `needs_sync` and
//! `status` held an entry for each of them, written again on every change
//! of the row. Here they hold only subscriptions that end, are flagged, or
//! wait on Octany (`delayed`, `pending`, by `synced_at`, which is what the
//! reconcile asks of them), and the outbox's due index only undelivered
//! events. The queries state the same conditions as literals, so the
//! planner can use them with parameters bound. MySQL has no partial
//! indexes: it keeps 000007's, and nothing changes there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_partial_indexes"
    }
}

const UP: [&str; 8] = [
    "DROP INDEX idx_octany_subscriptions_ends_at",
    "DROP INDEX idx_octany_subscriptions_needs_sync",
    "DROP INDEX idx_octany_subscriptions_status",
    "DROP INDEX idx_octany_events_due",
    "CREATE INDEX idx_octany_subscriptions_ends_at ON octany_subscriptions (ends_at) \
     WHERE ends_at IS NOT NULL",
    "CREATE INDEX idx_octany_subscriptions_needs_sync ON octany_subscriptions (needs_sync) \
     WHERE needs_sync = TRUE",
    "CREATE INDEX idx_octany_subscriptions_waiting ON octany_subscriptions (synced_at) \
     WHERE status IN ('delayed', 'pending')",
    "CREATE INDEX idx_octany_events_due ON octany_events (next_attempt_at) \
     WHERE delivered_at IS NULL",
];

const DOWN: [&str; 8] = [
    "DROP INDEX idx_octany_subscriptions_ends_at",
    "DROP INDEX idx_octany_subscriptions_needs_sync",
    "DROP INDEX idx_octany_subscriptions_waiting",
    "DROP INDEX idx_octany_events_due",
    "CREATE INDEX idx_octany_subscriptions_ends_at ON octany_subscriptions (ends_at)",
    "CREATE INDEX idx_octany_subscriptions_needs_sync ON octany_subscriptions (needs_sync)",
    "CREATE INDEX idx_octany_subscriptions_status ON octany_subscriptions (status)",
    "CREATE INDEX idx_octany_events_due ON octany_events (delivered_at, next_attempt_at)",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::MySql {
        return Ok(());
    }
    // In one call, so on one connection: another of SQLite's pooled
    // connections could still see the dropped index and refuse to create it.
    manager
        .get_connection()
        .execute_unprepared(&statements.join(";\n"))
        .await?;
    Ok(())
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every backend: the migration's statements run on
    /// one connection (a SQLite pool otherwise spreads them over several,
    /// and a down-and-up can see another connection's stale schema), and
    /// on SQLite and PostgreSQL it applies whole or not at all.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &DOWN).await
    }
}

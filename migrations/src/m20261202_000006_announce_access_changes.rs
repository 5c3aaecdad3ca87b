//! On PostgreSQL, the database itself announces every change the guard
//! reads: a trigger on `octany_subscriptions` (inserted, or its billable,
//! plan, status or end changed, or its renewal moved back) and on
//! `octany_checkouts` (its status changed) sends
//! `NOTIFY octany_access, '{billable_ref}'`, delivered when the change
//! commits. A renewal moving `renews_at` on only extends access and is not
//! announced: renewals are most of an account's changes, and waking every
//! instance for each would buy nothing (an instance that cached a refusal
//! at the very end of the renewal grace refuses until its TTL). Every instance listens and drops that billable from
//! its guard's cache. No round trip of the app's, and no write path (the
//! library's, or the host's own SQL) that can forget it. SQLite and MySQL
//! have no such channel: nothing is created there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000006_announce_access_changes"
    }
}

const UP: &str = r#"
CREATE OR REPLACE FUNCTION octany_announce_access() RETURNS trigger AS $$
BEGIN
    IF NEW.billable_ref IS NOT NULL THEN
        PERFORM pg_notify('octany_access', NEW.billable_ref);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.billable_ref IS DISTINCT FROM NEW.billable_ref
        AND OLD.billable_ref IS NOT NULL THEN
        PERFORM pg_notify('octany_access', OLD.billable_ref);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER octany_subscriptions_inserted
    AFTER INSERT ON octany_subscriptions
    FOR EACH ROW EXECUTE FUNCTION octany_announce_access();

CREATE TRIGGER octany_subscriptions_changed
    AFTER UPDATE ON octany_subscriptions
    FOR EACH ROW
    WHEN (OLD.billable_ref IS DISTINCT FROM NEW.billable_ref
        OR OLD.product_id IS DISTINCT FROM NEW.product_id
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.ends_at IS DISTINCT FROM NEW.ends_at
        OR (OLD.renews_at IS NOT NULL
            AND (NEW.renews_at IS NULL OR NEW.renews_at < OLD.renews_at)))
    EXECUTE FUNCTION octany_announce_access();

CREATE TRIGGER octany_checkouts_changed
    AFTER UPDATE ON octany_checkouts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION octany_announce_access();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS octany_checkouts_changed ON octany_checkouts;
DROP TRIGGER IF EXISTS octany_subscriptions_changed ON octany_subscriptions;
DROP TRIGGER IF EXISTS octany_subscriptions_inserted ON octany_subscriptions;
DROP FUNCTION IF EXISTS octany_announce_access();
"#;

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
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}

//! Telling the other instances at once that a billable's state changed.
//!
//! On PostgreSQL the unit of work sends `NOTIFY octany_access, '{billable}'`
//! in its transaction, so the notice goes out exactly when the change
//! commits; every instance listens (feature `postgres`) and drops that
//! billable from its guard's cache, so it stops granting within
//! milliseconds, not at the end of the cache's TTL. On SQLite and MySQL,
//! which have no such channel, the TTL remains the bound.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};

use crate::domain::model::BillableRef;

/// The channel.
pub(crate) const CHANNEL: &str = "octany_access";

/// Sends the notice for `changed` in `txn` (PostgreSQL; elsewhere nothing).
pub(crate) async fn announce(
    txn: &DatabaseTransaction,
    changed: &BTreeSet<BillableRef>,
) -> Result<(), sea_orm::DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres || changed.is_empty() {
        return Ok(());
    }
    // One statement for every billable of the unit.
    let refs: Vec<String> = changed.iter().map(|b| b.as_str().to_owned()).collect();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, b) FROM unnest(string_to_array($2, chr(31))) AS b",
        [Value::from(CHANNEL), Value::from(refs.join("\u{1f}"))],
    ))
    .await
    .map(drop)
}

#[cfg(feature = "postgres")]
pub(crate) use listen::spawn;

#[cfg(feature = "postgres")]
mod listen {
    use std::sync::Arc;
    use std::time::Duration;

    use sea_orm::DatabaseConnection;
    use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};

    use super::CHANNEL;
    use crate::mirror::access::AccessCache;

    /// Listens for notices and empties `cache` of each billable named; on
    /// (re)connecting it empties the whole cache (notices may have been
    /// missed meanwhile). `None` when `db` is not PostgreSQL or no runtime
    /// runs.
    pub(crate) fn spawn(
        db: &DatabaseConnection,
        cache: Arc<AccessCache>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        // A connection of its own, not one of the app's pool: it is held for
        // as long as the app runs.
        let options = (*db.get_postgres_connection_pool().connect_options()).clone();
        Some(runtime.spawn(async move {
            loop {
                let own = PgPoolOptions::new()
                    .max_connections(1)
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .connect_lazy_with(options.clone());
                match PgListener::connect_with(&own).await {
                    Ok(mut listener) => match listener.listen(CHANNEL).await {
                        Ok(()) => {
                            cache.clear();
                            loop {
                                match listener.recv().await {
                                    Ok(notice) => cache.invalidate(notice.payload()),
                                    Err(error) => {
                                        tracing::warn!(%error, "lost the connection that hears billing changes; the cache's TTL bounds staleness until it is back");
                                        break;
                                    }
                                }
                            }
                        }
                        Err(error) => tracing::warn!(%error, "cannot LISTEN for billing changes"),
                    },
                    Err(error) => tracing::warn!(%error, "cannot connect to hear billing changes"),
                }
                // Waiting for a real server to come back: real time.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

//! Telling the other instances at once that a billable's state changed.
//!
//! On PostgreSQL the database announces it: triggers on
//! `octany_subscriptions` and `octany_checkouts` (migration
//! `m20261202_000006_announce_access_changes`) send
//! `NOTIFY octany_access, '{billable}'` for every change that can take
//! access away or decide a refusal (a new subscription; a change of plan,
//! status or end; a renewal moved back; a checkout's state), delivered
//! exactly when the change commits, whichever path wrote it and at no round
//! trip of the app's. A renewal moving `renews_at` on only extends access
//! and is not announced. Every instance listens (feature
//! `postgres`), drops that billable from its guard's cache, so it stops
//! granting within milliseconds, not at the end of the cache's TTL, and
//! wakes the billable's held status requests (`mirror::watch`). On SQLite
//! and MySQL, which have no such channel, the TTL remains the bound.

/// The channel.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const CHANNEL: &str = "octany_access";

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
    use crate::mirror::watch::Watchers;

    /// Listens for notices: each billable named is dropped from `cache`
    /// and its `watchers` wake; on (re)connecting, everyone is (notices
    /// may have been missed meanwhile). `None` when `db` is not PostgreSQL
    /// or no runtime runs.
    pub(crate) fn spawn(
        db: &DatabaseConnection,
        cache: Arc<AccessCache>,
        watchers: Arc<Watchers>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let heard = move |billable: Option<&str>| match billable {
            Some(billable) => {
                cache.invalidate(billable);
                watchers.changed(billable);
            }
            None => {
                cache.clear();
                watchers.all_changed();
            }
        };
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
                            heard(None);
                            loop {
                                match listener.recv().await {
                                    Ok(notice) => heard(Some(notice.payload())),
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

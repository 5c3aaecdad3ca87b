//! The request budget every instance shares, in the host's database: one
//! row of `octany_budget` per account, a token bucket taken from by one
//! atomic `UPDATE` (refill for the time since it was counted, then take a
//! token if enough are left), on PostgreSQL, MySQL and SQLite alike.
//!
//! If the database cannot be reached, the instance paces itself on a bucket
//! of its own meanwhile (and says so in the log): a budget is no reason to
//! stop billing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::client::{OctanyError, RateLimit, TokenStore};

/// The budget row of one account.
#[derive(Debug)]
pub(crate) struct DbTokens {
    db: DatabaseConnection,
    bucket: String,
    created: AtomicBool,
    fallback: crate::client::LocalTokens,
}

impl DbTokens {
    /// The bucket `bucket` (the account's id) in `db`.
    pub(crate) fn new(db: DatabaseConnection, bucket: &str) -> Self {
        Self {
            db,
            bucket: bucket.to_owned(),
            created: AtomicBool::new(false),
            fallback: crate::client::LocalTokens::default(),
        }
    }

    async fn create(&self, limit: RateLimit, now_us: i64) -> Result<(), sea_orm::DbErr> {
        if self.created.load(Ordering::Relaxed) {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::MySql => {
                "INSERT IGNORE INTO octany_budget (bucket, tokens, counted_us) VALUES (?, ?, ?)"
            }
            DbBackend::Postgres => {
                "INSERT INTO octany_budget (bucket, tokens, counted_us) VALUES ($1, $2, $3) ON CONFLICT (bucket) DO NOTHING"
            }
            _ => {
                "INSERT INTO octany_budget (bucket, tokens, counted_us) VALUES (?, ?, ?) ON CONFLICT (bucket) DO NOTHING"
            }
        };
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    Value::from(self.bucket.clone()),
                    Value::from(limit.capacity()),
                    Value::from(now_us),
                ],
            ))
            .await?;
        self.created.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn take_shared(
        &self,
        now: DateTime<Utc>,
        limit: RateLimit,
        reserve: f64,
    ) -> Result<Option<Duration>, sea_orm::DbErr> {
        let now_us = now.timestamp_micros();
        self.create(limit, now_us).await?;
        let backend = self.db.get_database_backend();
        let capacity = limit.capacity();
        let rate_per_us = limit.per_microsecond();
        let need = 1.0 + reserve;
        // Refilled tokens: min(capacity, tokens + max(0, now - counted) * rate).
        let (sql, values): (&str, Vec<Value>) = match backend {
            DbBackend::Postgres => (
                "UPDATE octany_budget \
                 SET tokens = LEAST($1, tokens + GREATEST(0, $2 - counted_us) * $3) - 1, \
                     counted_us = GREATEST(counted_us, $2) \
                 WHERE bucket = $4 AND LEAST($1, tokens + GREATEST(0, $2 - counted_us) * $3) >= $5",
                vec![
                    capacity.into(),
                    now_us.into(),
                    rate_per_us.into(),
                    self.bucket.clone().into(),
                    need.into(),
                ],
            ),
            // MySQL assigns left to right: `tokens` is computed from the old
            // `counted_us` before that is moved on.
            DbBackend::MySql => (
                "UPDATE octany_budget \
                 SET tokens = LEAST(?, tokens + GREATEST(0, ? - counted_us) * ?) - 1, \
                     counted_us = GREATEST(counted_us, ?) \
                 WHERE bucket = ? AND LEAST(?, tokens + GREATEST(0, ? - counted_us) * ?) >= ?",
                vec![
                    capacity.into(),
                    now_us.into(),
                    rate_per_us.into(),
                    now_us.into(),
                    self.bucket.clone().into(),
                    capacity.into(),
                    now_us.into(),
                    rate_per_us.into(),
                    need.into(),
                ],
            ),
            _ => (
                "UPDATE octany_budget \
                 SET tokens = MIN(?1, tokens + MAX(0, ?2 - counted_us) * ?3) - 1, \
                     counted_us = MAX(counted_us, ?2) \
                 WHERE bucket = ?4 AND MIN(?1, tokens + MAX(0, ?2 - counted_us) * ?3) >= ?5",
                vec![
                    capacity.into(),
                    now_us.into(),
                    rate_per_us.into(),
                    self.bucket.clone().into(),
                    need.into(),
                ],
            ),
        };
        let taken = self
            .db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        if taken.rows_affected() == 1 {
            return Ok(None);
        }
        let select = match backend {
            DbBackend::Postgres => "SELECT tokens, counted_us FROM octany_budget WHERE bucket = $1",
            _ => "SELECT tokens, counted_us FROM octany_budget WHERE bucket = ?",
        };
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                select,
                [Value::from(self.bucket.clone())],
            ))
            .await?;
        let available = match row {
            Some(row) => limit.refilled(
                row.try_get::<f64>("", "tokens")?,
                row.try_get::<i64>("", "counted_us")?,
                now_us,
            ),
            None => {
                // Deleted meanwhile: made again on the next take.
                self.created.store(false, Ordering::Relaxed);
                0.0
            }
        };
        Ok(Some(limit.wait_for(available, need)))
    }
}

#[async_trait::async_trait]
impl TokenStore for DbTokens {
    async fn take(
        &self,
        now: DateTime<Utc>,
        limit: RateLimit,
        reserve: f64,
    ) -> Result<Option<Duration>, OctanyError> {
        match self.take_shared(now, limit, reserve).await {
            Ok(answer) => Ok(answer),
            Err(error) => {
                tracing::warn!(%error, "the shared request budget cannot be read; pacing this instance on its own meanwhile");
                self.fallback.take(now, limit, reserve).await
            }
        }
    }
}

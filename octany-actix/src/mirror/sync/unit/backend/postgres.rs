//! PostgreSQL: writers run concurrently, so [`PG_GROUPS`] groups may be
//! written at once (units take no turn); the fast write claims the
//! deliveries, locks their rows and replaces the older ones in one
//! statement however many ([`apply::claim_and_replace`]). A transient
//! error is a serialization failure or a deadlock (SQLSTATE `40001`,
//! `40P01`).

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use super::{Backend, Grouping, sqlstate_transient};
use crate::mirror::sync::apply::{self, Claimed, Fast};

/// How many groups may be written at once. One is forming while one
/// commits; more make smaller groups. In the webhooks benchmark over HTTP
/// (16 connections, a pool of 5), 1, 2, 3, 5 and 8 applied 0.99, 0.99,
/// 0.95, 0.83 and 0.72 of the hand-written receiver's deliveries.
const PG_GROUPS: usize = 2;

/// PostgreSQL.
#[derive(Debug)]
pub(super) struct Postgres;

#[async_trait::async_trait]
impl Backend for Postgres {
    fn is_transient(&self, error: &DbErr) -> bool {
        sqlstate_transient(error)
    }

    fn grouping(&self) -> Option<Grouping> {
        Some(Grouping {
            turns: PG_GROUPS,
            serial: false,
        })
    }

    async fn claim_and_replace(
        &self,
        txn: &DatabaseTransaction,
        fast: &[Fast<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        apply::claim_and_replace(txn, fast, now).await
    }
}

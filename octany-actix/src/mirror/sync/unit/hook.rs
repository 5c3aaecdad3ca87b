//! What a caller adds to a unit of work (the webhook receiver: its
//! delivery's claim).

use sea_orm::{DatabaseTransaction, DbErr};

use crate::mirror::entity::webhook_delivery;

/// Work a caller adds to the unit's transaction.
#[async_trait::async_trait]
pub(crate) trait Hook: Send + Sync + 'static {
    /// Runs first; `false` ends the unit at once, committing only what the
    /// hook wrote (a delivery seen before, say).
    async fn before(&self, txn: &DatabaseTransaction) -> Result<bool, DbErr>;

    /// The row the hook inserts first when the unit is new to it (a new
    /// webhook delivery, recorded processed), for the backend's fast write
    /// to insert with the unit's one subscription (`apply::Fast`); when
    /// that claimed it, [`Hook::before`] is not run. When a row with the
    /// claim's key is stored, the fast write claims nothing, and `before`
    /// runs and decides. `None` (the default): `before` always runs.
    fn claim(&self) -> Option<&webhook_delivery::ActiveModel> {
        None
    }

    /// Runs last, before the commit, with what the unit did with Octany's
    /// states (`unit::verdict`).
    async fn after(&self, _txn: &DatabaseTransaction, _verdict: &'static str) -> Result<(), DbErr> {
        Ok(())
    }
}

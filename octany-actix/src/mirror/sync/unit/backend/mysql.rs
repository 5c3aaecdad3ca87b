//! MySQL and MariaDB: a unit's transaction runs at `READ COMMITTED` (fewer
//! gap locks, fewer deadlocks); webhook writes are not grouped. A
//! transient error is a deadlock or serialization failure (SQLSTATE
//! `40001`).

use sea_orm::{
    AccessMode, DatabaseConnection, DatabaseTransaction, DbErr, IsolationLevel, TransactionOptions,
    TransactionTrait,
};

use super::{Backend, sqlstate_transient};

/// MySQL and MariaDB.
#[derive(Debug)]
pub(super) struct MySql;

#[async_trait::async_trait]
impl Backend for MySql {
    async fn begin(&self, db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
        db.begin_with_options(TransactionOptions {
            isolation_level: Some(IsolationLevel::ReadCommitted),
            access_mode: Some(AccessMode::ReadWrite),
            sqlite_transaction_mode: None,
        })
        .await
    }

    fn is_transient(&self, error: &DbErr) -> bool {
        sqlstate_transient(error)
    }
}

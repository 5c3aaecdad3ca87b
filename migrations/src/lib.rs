//! Migrations for the tables octany-actix keeps in the host's database:
//! `octany_subscriptions`, `octany_orders`, `octany_products`,
//! `octany_webhook_deliveries`, `octany_checkouts`, `octany_locks` and
//! `octany_events` (the outbox of billing events), `octany_charges`
//! (one-off charges by idempotency key) and `octany_budget` (the request
//! budget all instances share); on PostgreSQL, the triggers that announce
//! every change that can take access away to the other instances (`NOTIFY`).
//!
//! The [`Migrator`] records its history in its own table,
//! `octany_actix_migrations`, so it never collides with the host's
//! `seaql_migrations`. Two ways to use it:
//!
//! 1. **Beside the host's migrator** (simplest): run both at start-up.
//!
//! ```no_run
//! # async fn demo(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::DbErr> {
//! use octany_actix_migrations::{Migrator, MigratorTrait};
//! Migrator::up(db, None).await?; // then the host's own: HostMigrator::up(db, None)
//! # Ok(()) }
//! ```
//!
//! 2. **Spliced into the host's migrator**: add [`migrations()`] to the
//!    host's list. Their history then lives in the host's table.
//!
//! ```text
//! fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!     let mut all = octany_actix_migrations::migrations();
//!     all.push(Box::new(m20260101_create_users::Migration));
//!     all
//! }
//! ```

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

mod m20261123_000001_create_octany_tables;
mod m20261123_000002_create_octany_locks;
mod m20261201_000003_create_octany_events;
mod m20261202_000004_create_octany_charges;
mod m20261202_000005_create_octany_budget;
mod m20261202_000006_announce_access_changes;
mod m20261202_000007_index_due_subscriptions;
mod m20261202_000008_partial_indexes;
mod m20261204_000009_list_price;
mod m20261204_000010_create_octany_usage;
mod m20261204_000011_create_octany_comps;
mod m20261205_000012_create_octany_notices;
mod m20261205_000013_create_octany_api_calls;
mod m20261205_000014_create_octany_audit;
mod m20261205_000015_delivery_outcomes;

/// octany-actix's migrations, oldest first, to splice into a host's migrator.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261123_000001_create_octany_tables::Migration),
        Box::new(m20261123_000002_create_octany_locks::Migration),
        Box::new(m20261201_000003_create_octany_events::Migration),
        Box::new(m20261202_000004_create_octany_charges::Migration),
        Box::new(m20261202_000005_create_octany_budget::Migration),
        Box::new(m20261202_000006_announce_access_changes::Migration),
        Box::new(m20261202_000007_index_due_subscriptions::Migration),
        Box::new(m20261202_000008_partial_indexes::Migration),
        Box::new(m20261204_000009_list_price::Migration),
        Box::new(m20261204_000010_create_octany_usage::Migration),
        Box::new(m20261204_000011_create_octany_comps::Migration),
        Box::new(m20261205_000012_create_octany_notices::Migration),
        Box::new(m20261205_000013_create_octany_api_calls::Migration),
        Box::new(m20261205_000014_create_octany_audit::Migration),
        Box::new(m20261205_000015_delivery_outcomes::Migration),
    ]
}

/// octany-actix's migrator, with its own history table.
#[derive(Debug)]
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "octany_actix_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        migrations()
    }
}

//! Migrations for the tables octany-actix keeps in the host's database.
//!
//! The [`Migrator`] records its history in its own table,
//! `octany_actix_migrations`, so it never collides with the host's
//! `seaql_migrations`.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

/// octany-actix's migrations.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "octany_actix_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![]
    }
}

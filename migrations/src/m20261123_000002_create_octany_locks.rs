//! `octany_locks`: leases that let one of several app instances do a job
//! (the periodic reconcile) at a time.

use sea_orm_migration::prelude::*;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_create_octany_locks"
    }
}

#[derive(DeriveIden)]
enum OctanyLocks {
    Table,
    Name,
    Holder,
    ExpiresAt,
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
        manager
            .create_table(
                Table::create()
                    .table(OctanyLocks::Table)
                    .col(
                        ColumnDef::new(OctanyLocks::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OctanyLocks::Holder)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OctanyLocks::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyLocks::Table).to_owned())
            .await
    }
}

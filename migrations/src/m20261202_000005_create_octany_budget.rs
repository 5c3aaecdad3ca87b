//! `octany_budget`: the request budget every instance of the app shares
//! (a token bucket per account: its tokens, and when they were counted),
//! so N instances together stay within Octany's rate limit.

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000005_create_octany_budget"
    }
}

#[derive(DeriveIden)]
enum OctanyBudget {
    Table,
    Bucket,
    Tokens,
    CountedUs,
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
        let t = Types(manager.get_database_backend());
        use OctanyBudget as B;
        manager
            .create_table(
                Table::create()
                    .table(B::Table)
                    .col(t.string(B::Bucket, 64).not_null().primary_key())
                    .col(ColumnDef::new(B::Tokens).double().not_null())
                    .col(t.big(B::CountedUs).not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyBudget::Table).to_owned())
            .await
    }
}

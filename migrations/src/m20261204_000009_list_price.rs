//! `octany_subscriptions.list_price`: the catalogue price of the
//! subscription's product (before VAT, minor units) as Octany reported it
//! with the subscription. A subscription paid below it grants nothing
//! unless its plan is sold at any price (a buyer who added `amount=1` to
//! the hosted checkout's URL).

use sea_orm_migration::prelude::*;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000009_list_price"
    }
}

#[derive(DeriveIden)]
enum OctanySubscriptions {
    Table,
    ListPrice,
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
            .alter_table(
                Table::alter()
                    .table(OctanySubscriptions::Table)
                    .add_column(
                        ColumnDef::new(OctanySubscriptions::ListPrice)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OctanySubscriptions::Table)
                    .drop_column(OctanySubscriptions::ListPrice)
                    .to_owned(),
            )
            .await
    }
}

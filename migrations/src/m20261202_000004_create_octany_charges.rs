//! `octany_charges`: one row per one-off charge, keyed by the billable and
//! the idempotency key its form carried, written *before* the order is
//! sent, so a second submit with the same key finds the first and never
//! charges again. Checkout intents get their new states: `pending` becomes
//! `awaiting` (the buyer came back through the success URL); an intent
//! only opened is `opened`, which the guard ignores.

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000004_create_octany_charges"
    }
}

#[derive(DeriveIden)]
enum OctanyCharges {
    Table,
    BillableRef,
    Key,
    SubscriptionId,
    ProductId,
    Amount,
    Description,
    State,
    OrderId,
    KnownOrders,
    AttemptedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OctanyCheckouts {
    Table,
    Status,
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
        use OctanyCharges as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(t.string(C::BillableRef, 255).not_null())
                    .col(t.string(C::Key, 128).not_null())
                    .col(t.string(C::SubscriptionId, 64).not_null())
                    .col(t.big(C::ProductId).not_null())
                    .col(t.big(C::Amount).null())
                    .col(ColumnDef::new(C::Description).text().null())
                    .col(t.string(C::State, 16).not_null())
                    .col(t.string(C::OrderId, 64).null())
                    .col(t.long_text(C::KnownOrders).not_null())
                    .col(t.time(C::AttemptedAt).not_null())
                    .col(t.time(C::CreatedAt).not_null())
                    .col(t.time(C::UpdatedAt).not_null())
                    .primary_key(Index::create().col(C::BillableRef).col(C::Key))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(OctanyCheckouts::Table)
                    .value(OctanyCheckouts::Status, "awaiting")
                    .and_where(Expr::col(OctanyCheckouts::Status).eq("pending"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::update()
                    .table(OctanyCheckouts::Table)
                    .value(OctanyCheckouts::Status, "pending")
                    .and_where(Expr::col(OctanyCheckouts::Status).is_in(["awaiting", "opened"]))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(OctanyCharges::Table).to_owned())
            .await
    }
}

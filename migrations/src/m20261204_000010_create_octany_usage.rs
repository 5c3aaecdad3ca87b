//! Metered usage billed in arrears: `octany_usage`, one row per recorded
//! use, keyed by the billable, the meter and the caller's key (the same key
//! twice counts once); and `octany_usage_periods`, one row per closed
//! period of a billable's meter, written once with the quantity and amount
//! charged for it (the charge's idempotency key is the period's key).

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000010_create_octany_usage"
    }
}

#[derive(DeriveIden)]
enum OctanyUsage {
    Table,
    BillableRef,
    Meter,
    Key,
    Quantity,
    RecordedAt,
    PeriodKey,
}

#[derive(DeriveIden)]
enum OctanyUsagePeriods {
    Table,
    BillableRef,
    Key,
    Meter,
    SubscriptionId,
    Quantity,
    Amount,
    PeriodEnd,
    ClosedAt,
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
        use OctanyUsage as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .col(t.string(U::BillableRef, 255).not_null())
                    .col(t.string(U::Meter, 64).not_null())
                    .col(t.string(U::Key, 128).not_null())
                    .col(t.big(U::Quantity).not_null())
                    .col(t.time(U::RecordedAt).not_null())
                    .col(t.string(U::PeriodKey, 255).null())
                    .primary_key(
                        Index::create()
                            .col(U::BillableRef)
                            .col(U::Meter)
                            .col(U::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_usage_open")
                    .table(U::Table)
                    .col(U::BillableRef)
                    .col(U::Meter)
                    .col(U::PeriodKey)
                    .to_owned(),
            )
            .await?;
        use OctanyUsagePeriods as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(t.string(P::BillableRef, 255).not_null())
                    .col(t.string(P::Key, 255).not_null())
                    .col(t.string(P::Meter, 64).not_null())
                    .col(t.string(P::SubscriptionId, 64).not_null())
                    .col(t.big(P::Quantity).not_null())
                    .col(t.big(P::Amount).not_null())
                    .col(t.time(P::PeriodEnd).not_null())
                    .col(t.time(P::ClosedAt).not_null())
                    .primary_key(Index::create().col(P::BillableRef).col(P::Key))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyUsagePeriods::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OctanyUsage::Table).to_owned())
            .await
    }
}

//! The five tables octany-actix keeps.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_create_octany_tables"
    }
}

#[derive(DeriveIden)]
enum OctanySubscriptions {
    Table,
    Id,
    BillableRef,
    ReferenceId,
    Status,
    ProductId,
    ProductName,
    Price,
    Vat,
    Currency,
    RenewsAt,
    EndsAt,
    BillingMethodType,
    BillingEmail,
    UpdateCardUrl,
    InvoicesUrl,
    CancelUrl,
    Data,
    SyncMark,
    NeedsSync,
    CreatedAt,
    UpdatedAt,
    SyncedAt,
}

#[derive(DeriveIden)]
enum OctanyOrders {
    Table,
    Id,
    SubscriptionId,
    BillableRef,
    ReferenceId,
    State,
    Total,
    TotalWithVat,
    Currency,
    RemoteId,
    Items,
    Data,
    SyncMark,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OctanyProducts {
    Table,
    Id,
    Name,
    Kind,
    Interval,
    Price,
    Currency,
    VatRate,
    Data,
    SyncMark,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OctanyWebhookDeliveries {
    Table,
    DeliveryId,
    Event,
    Body,
    ReceivedAt,
    ProcessedAt,
    Attempts,
    LastError,
    ListenerError,
}

#[derive(DeriveIden)]
enum OctanyCheckouts {
    Table,
    Id,
    BillableRef,
    ProductId,
    Status,
    SubscriptionId,
    OrderId,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
}

/// Column helpers that pick a type every backend stores well.
pub(crate) struct Types(pub(crate) DbBackend);

impl Types {
    /// A UTC instant: `timestamptz` on PostgreSQL, `DATETIME` elsewhere
    /// (MySQL's `TIMESTAMP` ends in 2038).
    pub(crate) fn time(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DbBackend::Postgres => def.timestamp_with_time_zone(),
            _ => def.date_time(),
        };
        def
    }

    /// Text of up to a few MiB (MySQL's `TEXT` stops at 64 KiB).
    pub(crate) fn long_text(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DbBackend::MySql => def.custom(Alias::new("MEDIUMTEXT")),
            _ => def.text(),
        };
        def
    }

    pub(crate) fn id(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.string_len(64).not_null();
        def
    }

    pub(crate) fn string(&self, col: impl IntoIden, len: u32) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.string_len(len);
        def
    }

    pub(crate) fn big(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.big_integer();
        def
    }

    pub(crate) fn json(&self, col: impl IntoIden) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.json();
        def
    }
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
        use OctanySubscriptions as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(t.id(S::Id).primary_key())
                    .col(t.string(S::BillableRef, 255).null())
                    .col(t.string(S::ReferenceId, 255).null())
                    .col(t.string(S::Status, 32).not_null())
                    .col(t.big(S::ProductId).null())
                    .col(t.string(S::ProductName, 255).null())
                    .col(t.big(S::Price).not_null())
                    .col(t.big(S::Vat).not_null())
                    .col(t.string(S::Currency, 8).not_null())
                    .col(t.time(S::RenewsAt).null())
                    .col(t.time(S::EndsAt).null())
                    .col(t.string(S::BillingMethodType, 32).null())
                    .col(t.string(S::BillingEmail, 255).null())
                    .col(ColumnDef::new(S::UpdateCardUrl).text().null())
                    .col(ColumnDef::new(S::InvoicesUrl).text().null())
                    .col(ColumnDef::new(S::CancelUrl).text().null())
                    .col(t.json(S::Data).not_null())
                    .col(t.big(S::SyncMark).not_null())
                    .col(
                        ColumnDef::new(S::NeedsSync)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(t.time(S::CreatedAt).not_null())
                    .col(t.time(S::UpdatedAt).not_null())
                    .col(t.time(S::SyncedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_subscriptions_billable_ref")
                    .table(S::Table)
                    .col(S::BillableRef)
                    .to_owned(),
            )
            .await?;

        use OctanyOrders as O;
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .col(t.id(O::Id).primary_key())
                    .col(t.string(O::SubscriptionId, 64).null())
                    .col(t.string(O::BillableRef, 255).null())
                    .col(t.string(O::ReferenceId, 255).null())
                    .col(t.string(O::State, 32).not_null())
                    .col(t.big(O::Total).not_null())
                    .col(t.big(O::TotalWithVat).not_null())
                    .col(t.string(O::Currency, 8).not_null())
                    .col(t.string(O::RemoteId, 255).null())
                    .col(t.json(O::Items).not_null())
                    .col(t.json(O::Data).not_null())
                    .col(t.big(O::SyncMark).not_null())
                    .col(t.time(O::CreatedAt).not_null())
                    .col(t.time(O::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_octany_orders_subscription_id", O::SubscriptionId),
            ("idx_octany_orders_billable_ref", O::BillableRef),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(O::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        use OctanyProducts as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(ColumnDef::new(P::Id).big_integer().not_null().primary_key())
                    .col(t.string(P::Name, 255).not_null())
                    .col(t.string(P::Kind, 64).null())
                    .col(t.string(P::Interval, 32).null())
                    .col(t.big(P::Price).not_null())
                    .col(t.string(P::Currency, 8).not_null())
                    .col(t.big(P::VatRate).not_null())
                    .col(t.json(P::Data).not_null())
                    .col(t.big(P::SyncMark).not_null())
                    .col(t.time(P::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        use OctanyWebhookDeliveries as W;
        manager
            .create_table(
                Table::create()
                    .table(W::Table)
                    .col(t.string(W::DeliveryId, 100).not_null().primary_key())
                    .col(t.string(W::Event, 100).not_null())
                    .col(t.long_text(W::Body).not_null())
                    .col(t.time(W::ReceivedAt).not_null())
                    .col(t.time(W::ProcessedAt).null())
                    .col(ColumnDef::new(W::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(W::LastError).text().null())
                    .col(ColumnDef::new(W::ListenerError).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_webhook_deliveries_processed_at")
                    .table(W::Table)
                    .col(W::ProcessedAt)
                    .to_owned(),
            )
            .await?;

        use OctanyCheckouts as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(t.id(C::Id).primary_key())
                    .col(t.string(C::BillableRef, 255).not_null())
                    .col(ColumnDef::new(C::ProductId).big_integer().not_null())
                    .col(t.string(C::Status, 16).not_null())
                    .col(t.string(C::SubscriptionId, 64).null())
                    .col(t.string(C::OrderId, 64).null())
                    .col(t.time(C::CreatedAt).not_null())
                    .col(t.time(C::UpdatedAt).not_null())
                    .col(t.time(C::CompletedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_checkouts_billable_ref_status")
                    .table(C::Table)
                    .col(C::BillableRef)
                    .col(C::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyCheckouts::Table).to_owned())
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(OctanyWebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(OctanyProducts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OctanyOrders::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OctanySubscriptions::Table).to_owned())
            .await
    }
}

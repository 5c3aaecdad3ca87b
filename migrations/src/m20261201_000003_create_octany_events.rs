//! `octany_events`: the outbox of billing events. Each row is written in
//! the same transaction as the state change it describes, and delivered to
//! the host's listeners after commit. Listeners now run on billing events
//! rather than on webhook deliveries, so `octany_webhook_deliveries` loses
//! its `listener_error`.

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000003_create_octany_events"
    }
}

#[derive(DeriveIden)]
enum OctanyEvents {
    Table,
    Id,
    Kind,
    BillableRef,
    Origin,
    Payload,
    OccurredMark,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    DeliveredAt,
    DoneListeners,
    LastError,
    ClaimedBy,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum OctanyWebhookDeliveries {
    Table,
    ListenerError,
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
        use OctanyEvents as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(t.id(E::Id).primary_key())
                    .col(t.string(E::Kind, 64).not_null())
                    .col(t.string(E::BillableRef, 255).null())
                    .col(t.string(E::Origin, 16).not_null())
                    .col(t.long_text(E::Payload).not_null())
                    .col(t.big(E::OccurredMark).not_null())
                    .col(t.time(E::CreatedAt).not_null())
                    .col(ColumnDef::new(E::Attempts).integer().not_null().default(0))
                    .col(t.big(E::NextAttemptAt).not_null())
                    .col(t.time(E::DeliveredAt).null())
                    .col(ColumnDef::new(E::DoneListeners).text().not_null())
                    .col(ColumnDef::new(E::LastError).text().null())
                    .col(t.string(E::ClaimedBy, 64).null())
                    .col(t.big(E::ClaimedUntil).not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_events_due")
                    .table(E::Table)
                    .col(E::DeliveredAt)
                    .col(E::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_events_billable_ref")
                    .table(E::Table)
                    .col(E::BillableRef)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OctanyWebhookDeliveries::Table)
                    .drop_column(OctanyWebhookDeliveries::ListenerError)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OctanyWebhookDeliveries::Table)
                    .add_column(
                        ColumnDef::new(OctanyWebhookDeliveries::ListenerError)
                            .text()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(OctanyEvents::Table).to_owned())
            .await
    }
}

//! `octany_notices`: each e-mail the library sends about a billing event
//! (a receipt, a failed payment, a cancellation), one row per event and
//! kind, claimed before it is sent and marked once the mail server has
//! accepted it, so a retried listener or a second instance does not send
//! it again.

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000012_create_octany_notices"
    }
}

#[derive(DeriveIden)]
enum OctanyNotices {
    Table,
    EventId,
    Kind,
    BillableRef,
    Recipient,
    State,
    Attempts,
    ClaimedAt,
    SentAt,
    LastError,
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
        use OctanyNotices as N;
        manager
            .create_table(
                Table::create()
                    .table(N::Table)
                    .col(t.string(N::EventId, 64).not_null())
                    .col(t.string(N::Kind, 64).not_null())
                    .col(t.string(N::BillableRef, 255).null())
                    .col(t.string(N::Recipient, 320).not_null())
                    .col(t.string(N::State, 16).not_null())
                    .col(ColumnDef::new(N::Attempts).integer().not_null())
                    .col(t.time(N::ClaimedAt).not_null())
                    .col(t.time(N::SentAt).null())
                    .col(ColumnDef::new(N::LastError).text().null())
                    .primary_key(Index::create().col(N::EventId).col(N::Kind))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyNotices::Table).to_owned())
            .await
    }
}

//! `octany_audit`: what an operator did (resync a billable, replay a
//! delivery, run an event's listeners again), who (as the host's guard
//! names them), when, why and with what outcome. Written before the action
//! runs (`started`) and marked after it (`done` or `failed`), so an action
//! cut off midway still has its row.

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000014_create_octany_audit"
    }
}

#[derive(DeriveIden)]
enum OctanyAudit {
    Table,
    Id,
    At,
    Actor,
    Action,
    BillableRef,
    Target,
    Reason,
    Outcome,
    Detail,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every backend (see `m20261205_000012`).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        use OctanyAudit as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(
                        ColumnDef::new(A::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(t.time(A::At).not_null())
                    .col(t.string(A::Actor, 255).not_null())
                    .col(t.string(A::Action, 64).not_null())
                    .col(t.string(A::BillableRef, 255).null())
                    .col(t.string(A::Target, 255).null())
                    .col(ColumnDef::new(A::Reason).text().not_null())
                    .col(t.string(A::Outcome, 16).not_null())
                    .col(ColumnDef::new(A::Detail).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_audit_billable_at")
                    .table(A::Table)
                    .col(A::BillableRef)
                    .col(A::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyAudit::Table).to_owned())
            .await
    }
}

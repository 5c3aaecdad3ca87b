//! What became of each webhook delivery, for the operator's timeline:
//! `octany_webhook_deliveries` gains the billable it is about
//! (`billable_ref`, from the event's `reference_id`) and the resource
//! (`resource`: the subscription's, order's or product's id), what applying
//! it did (`outcome`: `applied`, `unchanged`, `stale`, `conflict`,
//! `stored`; empty while it has failed, and on rows received before this
//! migration), and how often it came again after it was applied
//! (`duplicates`, the last at `last_duplicate_at`).

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000015_delivery_outcomes"
    }
}

#[derive(DeriveIden)]
enum OctanyWebhookDeliveries {
    Table,
    BillableRef,
    Resource,
    Outcome,
    Duplicates,
    LastDuplicateAt,
    ReceivedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every backend (see `m20261204_000009`).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OctanyWebhookDeliveries as D;
        let t = Types(manager.get_database_backend());
        // One column per statement: SQLite adds one at a time.
        let columns = [
            t.string(D::BillableRef, 255).null().to_owned(),
            t.string(D::Resource, 100).null().to_owned(),
            t.string(D::Outcome, 16).null().to_owned(),
            ColumnDef::new(D::Duplicates)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            t.time(D::LastDuplicateAt).null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(D::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_webhook_deliveries_billable")
                    .table(D::Table)
                    .col(D::BillableRef)
                    .col(D::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_webhook_deliveries_resource")
                    .table(D::Table)
                    .col(D::Resource)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OctanyWebhookDeliveries as D;
        for index in [
            "idx_octany_webhook_deliveries_billable",
            "idx_octany_webhook_deliveries_resource",
        ] {
            manager
                .drop_index(Index::drop().name(index).table(D::Table).to_owned())
                .await?;
        }
        for column in [
            D::BillableRef,
            D::Resource,
            D::Outcome,
            D::Duplicates,
            D::LastDuplicateAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(D::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

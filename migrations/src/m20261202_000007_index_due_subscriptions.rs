//! Indexes for what the reconcile looks for (`renews_at` or `ends_at`
//! passed since the last sync, `needs_sync`, or a `delayed`/`pending`
//! subscription not synced for a while), so finding the due subscriptions
//! reads the few that are due, not the whole account.

use sea_orm_migration::prelude::*;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000007_index_due_subscriptions"
    }
}

#[derive(DeriveIden)]
enum OctanySubscriptions {
    Table,
    RenewsAt,
    EndsAt,
    NeedsSync,
    Status,
}

const INDEXES: [(&str, OctanySubscriptions); 4] = [
    (
        "idx_octany_subscriptions_renews_at",
        OctanySubscriptions::RenewsAt,
    ),
    (
        "idx_octany_subscriptions_ends_at",
        OctanySubscriptions::EndsAt,
    ),
    (
        "idx_octany_subscriptions_needs_sync",
        OctanySubscriptions::NeedsSync,
    ),
    (
        "idx_octany_subscriptions_status",
        OctanySubscriptions::Status,
    ),
];

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
        for (name, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(OctanySubscriptions::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(OctanySubscriptions::Table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

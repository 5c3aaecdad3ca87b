//! `octany_api_calls`: the API-call log, one row per exchange the library
//! had with Octany (method, path, status, attempt, time taken, and the
//! billable it was for), written off the request path and pruned with the
//! deliveries. It never holds the API key.

use sea_orm_migration::prelude::*;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000013_create_octany_api_calls"
    }
}

#[derive(DeriveIden)]
enum OctanyApiCalls {
    Table,
    Id,
    At,
    Method,
    Path,
    Status,
    Attempt,
    DurationMs,
    BillableRef,
    Error,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every backend (see `m20261205_000012`).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());
        use OctanyApiCalls as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(
                        ColumnDef::new(C::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(t.time(C::At).not_null())
                    .col(t.string(C::Method, 8).not_null())
                    .col(t.string(C::Path, 512).not_null())
                    .col(ColumnDef::new(C::Status).integer().null())
                    .col(ColumnDef::new(C::Attempt).integer().not_null())
                    .col(ColumnDef::new(C::DurationMs).integer().not_null())
                    .col(t.string(C::BillableRef, 255).null())
                    .col(ColumnDef::new(C::Error).text().null())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_octany_api_calls_billable_at",
                vec![C::BillableRef, C::At],
            ),
            ("idx_octany_api_calls_at", vec![C::At]),
        ] {
            let mut index = Index::create();
            index.name(name).table(C::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyApiCalls::Table).to_owned())
            .await
    }
}

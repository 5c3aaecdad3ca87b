//! `octany_comps`: local grants a support person or the app makes without
//! Octany (a partner, a goodwill month, a trial without a card): a plan or
//! single features for a billable, until `ends_at` (none: until revoked),
//! with who granted it and why, and who revoked it. The guard reads them
//! with the billable's subscriptions; on PostgreSQL a grant or revocation
//! is announced to every instance (`octany_announce_access`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261123_000001_create_octany_tables::Types;

pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000011_create_octany_comps"
    }
}

#[derive(DeriveIden)]
enum OctanyComps {
    Table,
    Id,
    BillableRef,
    ProductId,
    Features,
    Reason,
    GrantedBy,
    CreatedAt,
    EndsAt,
    RevokedAt,
    RevokedBy,
}

const TRIGGERS: &str = r#"
CREATE TRIGGER octany_comps_inserted
    AFTER INSERT ON octany_comps
    FOR EACH ROW EXECUTE FUNCTION octany_announce_access();

CREATE TRIGGER octany_comps_changed
    AFTER UPDATE ON octany_comps
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.ends_at IS DISTINCT FROM NEW.ends_at)
    EXECUTE FUNCTION octany_announce_access();
"#;

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
        use OctanyComps as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .col(t.string(C::Id, 64).not_null().primary_key())
                    .col(t.string(C::BillableRef, 255).not_null())
                    .col(t.big(C::ProductId).null())
                    .col(ColumnDef::new(C::Features).text().null())
                    .col(ColumnDef::new(C::Reason).text().not_null())
                    .col(t.string(C::GrantedBy, 255).not_null())
                    .col(t.time(C::CreatedAt).not_null())
                    .col(t.time(C::EndsAt).null())
                    .col(t.time(C::RevokedAt).null())
                    .col(t.string(C::RevokedBy, 255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_octany_comps_billable_ref")
                    .table(C::Table)
                    .col(C::BillableRef)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(TRIGGERS)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OctanyComps::Table).to_owned())
            .await
    }
}

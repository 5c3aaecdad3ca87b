//! The database: connect, and migrate (octany-actix's tables beside the
//! app's own, each migrator with its own history).

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;

/// The app's own migrations (just `users`).
#[derive(Debug)]
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsers)]
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    CreatedAt,
}

struct CreateUsers;

impl MigrationName for CreateUsers {
    fn name(&self) -> &str {
        "m20261123_000001_create_users"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut created = ColumnDef::new(Users::CreatedAt);
        match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => created.timestamp_with_time_zone(),
            _ => created.date_time(),
        };
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Users::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(255)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::Name).string_len(255).null())
                    .col(
                        ColumnDef::new(Users::PasswordHash)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(created.not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

/// Connects to `url`.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    octany_actix::install_crypto_provider();
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    // SQLite: write-ahead log and `synchronous = NORMAL`, its production setting.
    options.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
    });
    Database::connect(options).await
}

/// Applies every pending migration of octany-actix and of the app.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    octany_actix_migrations::Migrator::up(db, None).await?;
    Migrator::up(db, None).await
}

/// Whether every migration is applied.
pub async fn migrations_pending(db: &DatabaseConnection) -> Result<usize, DbErr> {
    let octany = octany_actix_migrations::Migrator::get_pending_migrations(db)
        .await?
        .len();
    let app = Migrator::get_pending_migrations(db).await?.len();
    Ok(octany + app)
}

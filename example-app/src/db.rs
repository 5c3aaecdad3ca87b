//! The database: connect, and migrate (octany-actix's tables beside the
//! app's own, each migrator with its own history).

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;

/// The app's own migrations: users, sessions, login attempts, teams, and
/// sign-ups waiting for their e-mail's confirmation.
#[derive(Debug)]
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUsers),
            Box::new(CreateSessions),
            Box::new(CreateAuthAttempts),
            Box::new(CreateTeams),
            Box::new(CreateSignups),
        ]
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
                    .col(timestamp(manager, Users::CreatedAt).not_null())
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

/// A timestamp column: with time zone on PostgreSQL, `DATETIME` elsewhere
/// (MySQL's `TIMESTAMP` ends in 2038).
fn timestamp<T: IntoIden>(manager: &SchemaManager, name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    match manager.get_database_backend() {
        sea_orm::DbBackend::Postgres => column.timestamp_with_time_zone(),
        _ => column.date_time(),
    };
    column
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    State,
    ExpiresAt,
    CreatedAt,
}

/// Server-side sessions: the cookie holds only a random key; the row is
/// found by the key's SHA-256 (a copy of the table logs no one in).
struct CreateSessions;

impl MigrationName for CreateSessions {
    fn name(&self) -> &str {
        "m20261202_000002_create_sessions"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateSessions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Sessions::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Sessions::UserId).big_integer().null())
                    .col(ColumnDef::new(Sessions::State).text().not_null())
                    .col(timestamp(manager, Sessions::ExpiresAt).not_null())
                    .col(timestamp(manager, Sessions::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_sessions_user", Sessions::UserId),
            ("idx_sessions_expires", Sessions::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Sessions::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuthAttempts {
    Table,
    Id,
    Key,
    At,
}

/// Login and sign-up attempts, one row each, counted per account and per
/// client address over a window (rows, so the limit holds across instances).
struct CreateAuthAttempts;

impl MigrationName for CreateAuthAttempts {
    fn name(&self) -> &str {
        "m20261202_000003_create_auth_attempts"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateAuthAttempts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthAttempts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthAttempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuthAttempts::Key).string_len(64).not_null())
                    .col(timestamp(manager, AuthAttempts::At).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_attempts_key_at")
                    .table(AuthAttempts::Table)
                    .col(AuthAttempts::Key)
                    .col(AuthAttempts::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_attempts_at")
                    .table(AuthAttempts::Table)
                    .col(AuthAttempts::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthAttempts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    Name,
    BillingEmail,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TeamMembers {
    Table,
    TeamId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TeamInvites {
    Table,
    Id,
    TeamId,
    Email,
    InvitedBy,
    ExpiresAt,
    AcceptedAt,
    CreatedAt,
}

/// Teams, their members, and invitations (the link's token is kept as its
/// SHA-256 only).
struct CreateTeams;

impl MigrationName for CreateTeams {
    fn name(&self) -> &str {
        "m20261202_000004_create_teams"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateTeams {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Teams::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Teams::Name).string_len(100).not_null())
                    .col(
                        ColumnDef::new(Teams::BillingEmail)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(timestamp(manager, Teams::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TeamMembers::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(TeamMembers::TeamId).big_integer().not_null())
                    .col(ColumnDef::new(TeamMembers::UserId).big_integer().not_null())
                    .col(ColumnDef::new(TeamMembers::Role).string_len(16).not_null())
                    .col(timestamp(manager, TeamMembers::CreatedAt).not_null())
                    .primary_key(
                        Index::create()
                            .col(TeamMembers::TeamId)
                            .col(TeamMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TeamMembers::Table, TeamMembers::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TeamMembers::Table, TeamMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_team_members_user")
                    .table(TeamMembers::Table)
                    .col(TeamMembers::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TeamInvites::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(TeamInvites::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TeamInvites::TeamId).big_integer().not_null())
                    .col(
                        ColumnDef::new(TeamInvites::Email)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TeamInvites::InvitedBy)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp(manager, TeamInvites::ExpiresAt).not_null())
                    .col(timestamp(manager, TeamInvites::AcceptedAt).null())
                    .col(timestamp(manager, TeamInvites::CreatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(TeamInvites::Table, TeamInvites::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_team_invites_team")
                    .table(TeamInvites::Table)
                    .col(TeamInvites::TeamId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TeamInvites::Table.into_iden(),
            TeamMembers::Table.into_iden(),
            Teams::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Signups {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    Next,
    ExpiresAt,
    CreatedAt,
}

/// Sign-ups waiting for the link mailed to their address: the account is
/// made when the link is followed, so the sign-up form answers the same
/// whether or not an address has an account.
struct CreateSignups;

impl MigrationName for CreateSignups {
    fn name(&self) -> &str {
        "m20261205_000005_create_signups"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateSignups {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Signups::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Signups::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Signups::Email).string_len(255).not_null())
                    .col(ColumnDef::new(Signups::Name).string_len(255).null())
                    .col(
                        ColumnDef::new(Signups::PasswordHash)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Signups::Next).string_len(2048).not_null())
                    .col(timestamp(manager, Signups::ExpiresAt).not_null())
                    .col(timestamp(manager, Signups::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_signups_email", Signups::Email),
            ("idx_signups_expires", Signups::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Signups::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Signups::Table).to_owned())
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

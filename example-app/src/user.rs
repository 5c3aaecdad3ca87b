//! The app's users: a sea-orm entity that derives `Billable`.

use sea_orm::entity::prelude::*;

/// A user who can sign in and subscribe.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, octany_actix::Billable)]
#[sea_orm(table_name = "users")]
#[billable(type = "user", id = "id", email = "email", name = "name")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// E-mail, unique.
    #[sea_orm(unique)]
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Signed up.
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

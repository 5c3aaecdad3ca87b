//! Invitations to a team: a link with a random token, for one e-mail
//! address, valid for a week, used once. Only the token's SHA-256 is kept.

use sea_orm::entity::prelude::*;

/// An invitation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_invites")]
pub struct Model {
    /// SHA-256 (hex) of the link's token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The team.
    pub team_id: i64,
    /// Who is invited (the account that accepts must have this e-mail).
    pub email: String,
    /// The owner who invited.
    pub invited_by: i64,
    /// When the link stops working.
    pub expires_at: DateTimeUtc,
    /// When it was accepted (then it works no more).
    pub accepted_at: Option<DateTimeUtc>,
    /// Created.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Who belongs to a team, and as what.

use sea_orm::entity::prelude::*;

/// A user's membership of a team.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_members")]
pub struct Model {
    /// The team.
    #[sea_orm(primary_key, auto_increment = false)]
    pub team_id: i64,
    /// The member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// `owner` (manages billing and invitations) or `member`.
    pub role: String,
    /// Joined.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The role of a team's creator.
pub const OWNER: &str = "owner";
/// The role of an invited member.
pub const MEMBER: &str = "member";

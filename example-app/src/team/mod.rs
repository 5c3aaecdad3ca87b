//! Teams: a sea-orm entity that derives `Billable` (`team:{id}`), so a team
//! pays for its members; its members and invitations are the submodules.

pub mod invite;
pub mod member;

use sea_orm::entity::prelude::*;

/// A team (an organisation) that can subscribe for its members.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, octany_actix::Billable)]
#[sea_orm(table_name = "teams")]
#[billable(type = "team", id = "id", email = "billing_email", name = "name")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Where Octany sends the team's receipts and invoices (its creator's
    /// e-mail to begin with).
    pub billing_email: String,
    /// Created.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

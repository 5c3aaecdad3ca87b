//! `octany_notices`: an e-mail about a billing event, claimed before it is
//! sent and marked once the mail server accepted it.

use sea_orm::entity::prelude::*;

/// A notice.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_notices")]
pub(crate) struct Model {
    /// The billing event it is about.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// What it says (`receipt`, `payment_failed`, `cancelled`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    /// Who it concerns.
    pub billable_ref: Option<String>,
    /// Where it goes.
    pub recipient: String,
    /// `sending`, `sent`, `failed` (refused: tried again) or `uncertain`
    /// (its sender died while sending: not sent again).
    pub state: String,
    /// Sends tried.
    pub attempts: i32,
    /// When the last send was claimed (the app's clock).
    pub claimed_at: DateTimeUtc,
    /// When the mail server accepted it.
    pub sent_at: Option<DateTimeUtc>,
    /// Why the last send failed.
    pub last_error: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

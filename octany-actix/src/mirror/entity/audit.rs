//! `octany_audit`: what an operator did, who, when, why, and how it ended
//! (`mirror::audit`).

use sea_orm::entity::prelude::*;

/// An audit entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_audit")]
pub(crate) struct Model {
    /// In the order written.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When the action began.
    pub at: DateTimeUtc,
    /// Who, as the host's guard names them.
    pub actor: String,
    /// `resync`, `replay_delivery`, `retry_listeners`.
    pub action: String,
    /// The billable it concerned, when one.
    pub billable_ref: Option<String>,
    /// What it acted on (a delivery's or an event's id).
    pub target: Option<String>,
    /// Why, as the operator said.
    pub reason: String,
    /// `started`, `done` or `failed`.
    pub outcome: String,
    /// What came of it, or why it failed.
    pub detail: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

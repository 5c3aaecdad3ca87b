//! `octany_api_calls`: one exchange with Octany, as the API-call log keeps
//! it (`mirror::api_calls`).

use sea_orm::entity::prelude::*;

/// An API call.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_api_calls")]
pub(crate) struct Model {
    /// In the order written.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When it asked for its turn to be sent.
    pub at: DateTimeUtc,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path under the account's REST base.
    pub path: String,
    /// Octany's status; `None` when nothing was answered.
    pub status: Option<i32>,
    /// Which attempt of the call (1 for the first).
    pub attempt: i32,
    /// From asking for its turn to the answer read (a budget wait included).
    pub duration_ms: i32,
    /// Whom it was for (`type:id`), when known.
    pub billable_ref: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

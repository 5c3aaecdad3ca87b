//! `octany_usage`: one recorded use of a meter, by the billable, the meter
//! and the caller's key; `period_key` is set when a closed period took it.

use sea_orm::entity::prelude::*;

/// A recorded use.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_usage")]
pub(crate) struct Model {
    /// Who used it (`team:7`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub billable_ref: String,
    /// The meter ([`Meter::NAME`](crate::Meter::NAME)).
    #[sea_orm(primary_key, auto_increment = false)]
    pub meter: String,
    /// The caller's key: the same key twice counts once.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// How much.
    pub quantity: i64,
    /// When (the app's clock).
    pub recorded_at: DateTimeUtc,
    /// The closed period that billed it; `None` while open.
    pub period_key: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

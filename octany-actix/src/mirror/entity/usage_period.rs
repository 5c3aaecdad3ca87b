//! `octany_usage_periods`: a closed period of a billable's meter, written
//! once with what it is charged; its key is the charge's idempotency key.

use sea_orm::entity::prelude::*;

/// A closed period.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_usage_periods")]
pub(crate) struct Model {
    /// Who is charged.
    #[sea_orm(primary_key, auto_increment = false)]
    pub billable_ref: String,
    /// `usage:{meter}:{subscription}:{period end}`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The meter.
    pub meter: String,
    /// The subscription whose renewal closed it (and whose billing method pays).
    pub subscription_id: String,
    /// The period's total.
    pub quantity: i64,
    /// What it costs, in minor units.
    pub amount: i64,
    /// The renewal that ended it (records before it are in it).
    pub period_end: DateTimeUtc,
    /// When it was closed (the app's clock).
    pub closed_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

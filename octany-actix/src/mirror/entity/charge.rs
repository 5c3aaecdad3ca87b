//! `octany_charges`: a one-off charge by the billable's idempotency key,
//! recorded before the order is sent to Octany.

use sea_orm::entity::prelude::*;

/// Where a charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub(crate) enum ChargeState {
    /// Sent (or about to be); Octany's answer not yet recorded.
    #[sea_orm(string_value = "sending")]
    Sending,
    /// Octany made the order (`order_id`); its state says how it ended.
    #[sea_orm(string_value = "made")]
    Made,
}

/// A charge.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_charges")]
pub(crate) struct Model {
    /// Who is charged (`user:42`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub billable_ref: String,
    /// The idempotency key the request carried.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The subscription whose billing method pays.
    pub subscription_id: String,
    /// What.
    pub product_id: i64,
    /// A price other than the product's.
    pub amount: Option<i64>,
    /// The order line's text.
    pub description: Option<String>,
    /// Where it stands.
    pub state: ChargeState,
    /// The order Octany made.
    pub order_id: Option<String>,
    /// The subscription's orders before the charge was sent (a JSON list of
    /// ids): what a later request lists against to find a lost answer.
    pub known_orders: String,
    /// When it was last sent (local time).
    pub attempted_at: DateTimeUtc,
    /// Created (local time).
    pub created_at: DateTimeUtc,
    /// Last changed (local time).
    pub updated_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

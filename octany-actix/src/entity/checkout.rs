//! `octany_checkouts`: the local intent recorded before redirecting a buyer
//! to Octany's checkout; completed when its subscription (or order) appears.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A checkout is waiting for Octany.
pub const PENDING: &str = "pending";
/// Octany reported what was bought.
pub const COMPLETED: &str = "completed";
/// Nothing came of it in time.
pub const ABANDONED: &str = "abandoned";

/// A checkout intent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "octany_checkouts")]
pub struct Model {
    /// Its id (a UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Who is buying (`user:42`).
    pub billable_ref: String,
    /// What.
    pub product_id: i64,
    /// `pending`, `completed` or `abandoned`.
    pub status: String,
    /// The subscription it made.
    pub subscription_id: Option<String>,
    /// The order it made (one-off products).
    pub order_id: Option<String>,
    /// Created (local time).
    pub created_at: DateTimeUtc,
    /// Last changed (local time).
    pub updated_at: DateTimeUtc,
    /// Completed (local time).
    pub completed_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! `octany_orders`: every order Octany reported.

pub(crate) use self::table::ActiveModel;
pub use self::table::{Column, Entity, Model};

/// The sea-orm plumbing of the table (its active model, iterators and
/// relation type): not part of the API.
#[doc(hidden)]
pub mod table {
    use sea_orm::entity::prelude::*;
    use serde::Serialize;

    use crate::domain::model::{BillableRef, Order, OrderState};

    /// A mirrored order.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "octany_orders")]
    pub struct Model {
        /// Octany's id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Its subscription, once known (orders listed under a subscription
        /// say so; an `order.*` webhook does not).
        pub subscription_id: Option<String>,
        /// The billable it belongs to, when its `reference_id` names one.
        pub billable_ref: Option<BillableRef>,
        /// The `reference_id` as Octany has it.
        pub reference_id: Option<String>,
        /// The state (an unknown one kept as text).
        pub state: OrderState,
        /// Total, VAT excluded.
        pub total: i64,
        /// Total, VAT included.
        pub total_with_vat: i64,
        /// Currency.
        pub currency: String,
        /// The card processor's charge id.
        pub remote_id: Option<String>,
        /// The lines, as JSON.
        pub items: Json,
        /// The whole order as last seen.
        pub data: Json,
        /// Octany's time of the stored state, microseconds since the epoch.
        pub sync_mark: i64,
        /// First mirrored (local time).
        pub created_at: DateTimeUtc,
        /// Last changed here (local time).
        pub updated_at: DateTimeUtc,
    }

    /// No relations are declared; join on `subscription_id` as needed.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The order as Octany last reported it.
        pub fn order(&self) -> Option<Order> {
            serde_json::from_value(self.data.clone()).ok()
        }
    }
}

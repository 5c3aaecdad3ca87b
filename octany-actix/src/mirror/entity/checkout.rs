//! `octany_checkouts`: the local intent recorded before redirecting a buyer
//! to Octany's checkout (or to a swap's confirmation). *Opened* changes
//! nothing the guard answers; the buyer's return through the success URL
//! makes it *awaiting* (the guard then says "payment processing"); the
//! subscription or order appearing completes it; opened intents that
//! never returned lapse to *abandoned*.

pub(crate) use self::table::ActiveModel;
pub use self::table::{CheckoutStatus, Column, Entity, Model};

/// The sea-orm plumbing of the table (its active model, iterators and
/// relation type): not part of the API.
#[doc(hidden)]
pub mod table {
    use sea_orm::entity::prelude::*;

    use crate::domain::model::{BillableRef, ProductId};
    use serde::Serialize;

    /// Where a checkout intent stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
    #[serde(rename_all = "snake_case")]
    pub enum CheckoutStatus {
        /// Opened: the buyer was sent to the checkout (or the swap page)
        /// and has not come back.
        #[sea_orm(string_value = "opened")]
        Opened,
        /// The buyer came back through the success URL; waiting for Octany
        /// to report the payment.
        #[sea_orm(string_value = "awaiting")]
        Awaiting,
        /// Octany reported what was bought.
        #[sea_orm(string_value = "completed")]
        Completed,
        /// Never came back, or nothing came of it in time.
        #[sea_orm(string_value = "abandoned")]
        Abandoned,
    }

    /// A checkout intent.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "octany_checkouts")]
    pub struct Model {
        /// Its id (a UUID).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Who is buying (`user:42`).
        pub billable_ref: BillableRef,
        /// What.
        pub product_id: ProductId,
        /// Where it stands.
        pub status: CheckoutStatus,
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
}

//! `octany_webhook_deliveries`: every verified delivery, kept for dedupe
//! and replay.

pub(crate) use self::table::ActiveModel;
pub use self::table::{Column, Entity, Model};

/// The sea-orm plumbing of the table (its active model, iterators and
/// relation type): not part of the API.
#[doc(hidden)]
pub mod table {
    use sea_orm::entity::prelude::*;
    use serde::Serialize;

    /// A received delivery.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "octany_webhook_deliveries")]
    pub struct Model {
        /// Octany's delivery id (the dedupe key).
        #[sea_orm(primary_key, auto_increment = false)]
        pub delivery_id: String,
        /// The event name.
        pub event: String,
        /// The body exactly as received.
        pub body: String,
        /// First received (local time).
        pub received_at: DateTimeUtc,
        /// Applied (local time); `None` while applying failed.
        pub processed_at: Option<DateTimeUtc>,
        /// How many times it was received or replayed.
        pub attempts: i32,
        /// Why applying failed last.
        pub last_error: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

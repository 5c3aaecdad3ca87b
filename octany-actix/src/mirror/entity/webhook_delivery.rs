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
        /// The billable the event is about (its `reference_id`), if it
        /// names one.
        pub billable_ref: Option<String>,
        /// The id of the subscription, order or product it carries.
        pub resource: Option<String>,
        /// What applying it did: `applied`, `unchanged` (the mirror had
        /// that state), `stale` (older than the mirror's), `conflict` (as
        /// new but different: re-read from Octany), `stored` (an event this
        /// version does not know); `None` while it has failed.
        pub outcome: Option<String>,
        /// How often it came again after it was applied (acknowledged,
        /// not applied again).
        pub duplicates: i32,
        /// When it last came again.
        pub last_duplicate_at: Option<DateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

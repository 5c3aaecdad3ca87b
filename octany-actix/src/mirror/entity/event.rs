//! `octany_events`: the outbox of billing events. A row is written in the
//! transaction that made the change it describes, and delivered to the
//! host's listeners after commit (see [`crate::mirror::sync::Listeners`]).

pub(crate) use self::table::ActiveModel;
pub use self::table::{Column, Entity, Model};

/// The sea-orm plumbing of the table (its active model, iterators and
/// relation type): not part of the API.
#[doc(hidden)]
pub mod table {
    use sea_orm::entity::prelude::*;

    use crate::domain::model::BillableRef;
    use serde::Serialize;

    /// A recorded billing event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "octany_events")]
    pub struct Model {
        /// Its id (a UUID).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// What happened, e.g. `subscription.started`.
        pub kind: String,
        /// The billable it concerns (`user:42`), when known.
        pub billable_ref: Option<BillableRef>,
        /// Which path brought the change: `webhook`, `poll`, `reconcile`,
        /// `backfill` or `action`.
        pub origin: String,
        /// The event with the resource as it was after the change (JSON).
        pub payload: String,
        /// When it happened by Octany's clock (microseconds since the epoch).
        pub occurred_mark: i64,
        /// Recorded (local time).
        pub created_at: DateTimeUtc,
        /// Delivery attempts so far.
        pub attempts: i32,
        /// Not delivered again before this (microseconds, the syncer's clock).
        pub next_attempt_at: i64,
        /// Every listener has handled it (local time).
        pub delivered_at: Option<DateTimeUtc>,
        /// The listeners that have handled it (a JSON array of names).
        pub done_listeners: String,
        /// Why a listener failed last.
        pub last_error: Option<String>,
        /// The instance delivering it now.
        pub claimed_by: Option<String>,
        /// Until when that instance holds it (microseconds).
        pub claimed_until: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

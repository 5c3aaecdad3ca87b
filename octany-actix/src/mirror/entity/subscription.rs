//! `octany_subscriptions`: every subscription Octany reported.

pub(crate) use self::table::ActiveModel;
pub use self::table::{Column, Entity, Model};

/// The sea-orm plumbing of the table (its active model, iterators and
/// relation type): not part of the API.
#[doc(hidden)]
pub mod table {
    use chrono::{DateTime, Utc};
    use sea_orm::entity::prelude::*;
    use serde::Serialize;

    use crate::domain::model::{
        BillableRef, Entitlement, ProductId, Subscription, SubscriptionStatus,
    };

    /// A mirrored subscription.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "octany_subscriptions")]
    pub struct Model {
        /// Octany's id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The billable it belongs to (`user:42`), when its `reference_id` names one.
        pub billable_ref: Option<BillableRef>,
        /// The `reference_id` as Octany has it.
        pub reference_id: Option<String>,
        /// The status (an unknown one kept as text).
        pub status: SubscriptionStatus,
        /// The product's id.
        pub product_id: Option<ProductId>,
        /// The product's name.
        pub product_name: Option<String>,
        /// Price in minor units, VAT excluded.
        pub price: i64,
        /// The catalogue price of its product (minor units, VAT excluded)
        /// as Octany reported it with the subscription; paid below it, a
        /// subscription grants nothing unless its plan is sold at any price.
        pub list_price: Option<i64>,
        /// VAT in minor units.
        pub vat: i64,
        /// Currency.
        pub currency: String,
        /// Next renewal.
        pub renews_at: Option<DateTimeUtc>,
        /// End.
        pub ends_at: Option<DateTimeUtc>,
        /// `stripe`, `swish`, ...
        pub billing_method_type: Option<String>,
        /// The billing e-mail.
        pub billing_email: Option<String>,
        /// Octany's page to update the card.
        pub update_card_url: Option<String>,
        /// Octany's page of invoices.
        pub invoices_url: Option<String>,
        /// Octany's page to cancel.
        pub cancel_url: Option<String>,
        /// The whole subscription as last seen.
        pub data: Json,
        /// When (Octany's time, microseconds since the epoch) the stored state
        /// was true; older updates are refused.
        pub sync_mark: i64,
        /// Two updates with the same mark disagreed: re-fetch it.
        pub needs_sync: bool,
        /// First mirrored (local time).
        pub created_at: DateTimeUtc,
        /// Last changed here (local time).
        pub updated_at: DateTimeUtc,
        /// Last confirmed from Octany (local time, to the second: Octany's
        /// dates have no finer grain).
        pub synced_at: DateTimeUtc,
    }

    /// No relations are declared; join on `id` as needed.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The subscription as Octany last reported it.
        pub fn subscription(&self) -> Option<Subscription> {
            serde_json::from_value(self.data.clone()).ok()
        }
    }

    impl Entitlement for Model {
        fn status(&self) -> SubscriptionStatus {
            self.status.clone()
        }

        fn ends_at(&self) -> Option<DateTime<Utc>> {
            self.ends_at
        }

        fn renews_at(&self) -> Option<DateTime<Utc>> {
            self.renews_at
        }

        fn bought_at(&self) -> Option<DateTime<Utc>> {
            Some(self.created_at)
        }
    }
}

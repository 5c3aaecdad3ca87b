use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::entitlement::Entitlement;
use super::lenient::{self, opt_timestamp, string_id};
use super::{BillingMethod, Product, SubscriptionStatus};

string_id! {
    /// A subscription id: opaque text (Octany sends integers today).
    SubscriptionId
}

/// A subscription, as Octany reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// Octany's customer id.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        serialize_with = "lenient::serialize_opt_id"
    )]
    pub customer_id: Option<String>,
    /// Price in minor units, VAT excluded.
    #[serde(default, deserialize_with = "lenient::int")]
    pub price: i64,
    /// VAT in minor units.
    #[serde(default, deserialize_with = "lenient::int")]
    pub vat: i64,
    /// Lower-case currency code.
    #[serde(default)]
    pub currency: String,
    /// When it renews next; `None` once cancelled.
    #[serde(default, with = "opt_timestamp")]
    pub renews_at: Option<DateTime<Utc>>,
    /// When it ends; `None` while it renews.
    #[serde(default, with = "opt_timestamp")]
    pub ends_at: Option<DateTime<Utc>>,
    /// The app's id for the buyer, set at checkout (e.g. `user:42`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reference_id: Option<String>,
    /// The label shown in Octany's admin.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reference_name: Option<String>,
    /// Its status.
    #[serde(default)]
    pub status: SubscriptionStatus,
    /// The product (and so the price) subscribed to.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub product: Option<Product>,
    /// How it is paid.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub billing_method: Option<BillingMethod>,
    /// Octany's page to update the card.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub update_card_url: Option<String>,
    /// Octany's page listing invoices.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub invoices_url: Option<String>,
    /// Octany's page to cancel.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub cancel_url: Option<String>,
    /// When it was created, if Octany says (not in its documented shape).
    #[serde(
        default,
        with = "opt_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed, if Octany says (not in its documented shape).
    #[serde(
        default,
        with = "opt_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Subscription {
    /// The subscribed product's id, if the product is embedded.
    pub fn product_id(&self) -> Option<super::ProductId> {
        self.product.as_ref().map(|p| p.id)
    }
}

impl Entitlement for Subscription {
    fn status(&self) -> SubscriptionStatus {
        self.status.clone()
    }

    fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.ends_at
    }

    fn renews_at(&self) -> Option<DateTime<Utc>> {
        self.renews_at
    }
}

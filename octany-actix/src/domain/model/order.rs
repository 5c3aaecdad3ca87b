use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lenient::{self, opt_timestamp, string_enum, string_id};
use super::{BillingMethod, Product, ProductId, SubscriptionId};

string_id! {
    /// An order id: opaque text (Octany sends integers today).
    OrderId
}

string_enum! {
    /// An order's state. Octany documents `paid`; the others are expected.
    /// Stored as its text; an unknown one is kept as sent.
    #[derive(sea_orm::DeriveValueType)]
    #[sea_orm(value_type = "String")]
    pub enum OrderState {
        /// Created, not yet paid.
        Pending = "pending",
        /// Confirmed by the visitor; payment may not have settled.
        Confirmed = "confirmed",
        /// Paid.
        Paid = "paid",
        /// Payment failed.
        Failed = "failed",
        /// Refunded.
        Refunded = "refunded",
    }
}

impl Default for OrderState {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

/// An order: a subscription's first payment, a renewal, or a one-off charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// Octany's customer id.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        serialize_with = "lenient::serialize_opt_id"
    )]
    pub customer_id: Option<String>,
    /// Total in minor units, VAT excluded.
    #[serde(default, deserialize_with = "lenient::int")]
    pub total: i64,
    /// Total in minor units, VAT included.
    #[serde(default, deserialize_with = "lenient::int")]
    pub total_with_vat: i64,
    /// Lower-case currency code.
    #[serde(default)]
    pub currency: String,
    /// The app's id for the buyer.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reference_id: Option<String>,
    /// The label shown in Octany's admin.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub reference_name: Option<String>,
    /// Its state.
    #[serde(default)]
    pub state: OrderState,
    /// The card processor's charge id.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub remote_id: Option<String>,
    /// How it was paid.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub billing_method: Option<BillingMethod>,
    /// Its lines.
    #[serde(default, deserialize_with = "lenient::list")]
    pub items: Vec<OrderItem>,
    /// The subscription it belongs to, when Octany says (not in its
    /// documented shape; the mirror also learns it from the orders listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    /// When it was created, if Octany says (not in its documented shape).
    #[serde(
        default,
        with = "opt_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
}

impl Order {
    /// Whether this order charges `product` (optionally for exactly
    /// `amount` minor units, with or without VAT, and with `description`).
    /// Used to recognise a one-off charge whose response was lost.
    pub fn charges(
        &self,
        product: ProductId,
        amount: Option<i64>,
        description: Option<&str>,
    ) -> bool {
        let amount_matches = amount.is_none_or(|a| {
            self.total == a || self.total_with_vat == a || self.items.iter().any(|i| i.price == a)
        });
        amount_matches
            && self.items.iter().any(|item| {
                item.product.as_ref().map(|p| p.id) == Some(product)
                    && description.is_none_or(|d| item.description.as_deref() == Some(d))
            })
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    /// What it is for.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub description: Option<String>,
    /// How many; Octany sends it as a string (`"1"`).
    #[serde(
        default = "one",
        deserialize_with = "quantity",
        serialize_with = "quantity_text"
    )]
    pub quantity: i64,
    /// Unit price in minor units, VAT excluded.
    #[serde(default, deserialize_with = "lenient::int")]
    pub price: i64,
    /// VAT in minor units.
    #[serde(default, deserialize_with = "lenient::int")]
    pub vat: i64,
    /// The product, if embedded.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub product: Option<Product>,
}

fn one() -> i64 {
    1
}

fn quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(lenient::opt_int(d)?.unwrap_or(1))
}

fn quantity_text<S: serde::Serializer>(q: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&q.to_string())
}

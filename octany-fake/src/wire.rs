//! The fake's own types for Octany's resources, written exactly as API.md
//! shapes Octany's JSON: integer ids, timestamps with an offset
//! (`2026-05-25T09:29:51+00:00`), an item's `quantity` as a string,
//! statuses as lower-case text. They share no code with the library's
//! model, so a serde mistake there cannot hide behind the same mistake
//! here: the client is tested against an independent writer.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

/// `2026-05-25T09:29:51+00:00`, as Octany writes instants.
pub(crate) fn timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn opt_timestamp<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&timestamp(at)),
        None => s.serialize_none(),
    }
}

fn quantity<S: Serializer>(quantity: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&quantity.to_string())
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )+
        }

        impl $name {
            /// The text Octany uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// A subscription's status (API.md section 6).
    SubscriptionStatus {
        Active = "active",
        Trialing = "trialing",
        Pending = "pending",
        FutureStart = "future_start",
        Delayed = "delayed",
        Unpaid = "unpaid",
        Cancelled = "cancelled",
        Expired = "expired",
    }
}

text_enum! {
    /// An order's state.
    OrderState {
        Pending = "pending",
        Confirmed = "confirmed",
        Paid = "paid",
        Failed = "failed",
        Refunded = "refunded",
    }
}

text_enum! {
    /// How a customer pays.
    BillingMethodKind {
        Stripe = "stripe",
        Fortnox = "fortnox",
    }
}

text_enum! {
    /// A webhook event's name (API.md section 8).
    EventName {
        SubscriptionCreated = "subscription.created",
        SubscriptionUpdated = "subscription.updated",
        SubscriptionRenewed = "subscription.renewed",
        SubscriptionCancelled = "subscription.cancelled",
        OrderConfirmed = "order.confirmed",
        OrderPaid = "order.paid",
        ProductUpdated = "product.updated",
        ProductDeleted = "product.deleted",
        ProductGroupUpdated = "product-group.updated",
        ProductGroupDeleted = "product-group.deleted",
        TestHook = "test.hook",
    }
}

/// A product: a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its kind (`recurring_donation`, ...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// How often it renews; `null` for a one-off product.
    pub interval: Option<String>,
    /// The price in minor units, VAT excluded.
    pub price: i64,
    /// Lower-case currency.
    pub currency: String,
    /// VAT, percent times 100.
    pub vat_rate: i64,
}

impl Product {
    /// The price with VAT, rounded to the nearest minor unit.
    pub fn price_with_vat(&self) -> i64 {
        self.price + (self.price * self.vat_rate + 5000).div_euclid(10000)
    }

    /// How often it renews, if it does.
    pub fn billing_interval(&self) -> Option<&str> {
        self.interval.as_deref()
    }

    /// Whether it is a recurring donation (not swappable).
    pub fn is_recurring_donation(&self) -> bool {
        self.kind.as_deref() == Some("recurring_donation")
    }
}

/// A product group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ProductGroup {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) products: Vec<Product>,
}

/// The person behind a billing method.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Person {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Phone; Octany has been seen sending `false` for none, as the fake does.
    #[serde(serialize_with = "phone")]
    pub phone: Option<String>,
    /// `sv` or `en`.
    pub locale: Option<String>,
    /// Swedish personal identity number.
    pub personal_identity_number: Option<String>,
}

fn phone<S: Serializer>(phone: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match phone {
        Some(phone) => s.serialize_str(phone),
        None => s.serialize_bool(false),
    }
}

/// A company paying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Company {
    /// Its name.
    pub name: Option<String>,
    /// Its VAT number.
    pub vat_number: Option<String>,
}

/// How a customer pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillingMethod {
    /// The kind.
    #[serde(rename = "type")]
    pub kind: BillingMethodKind,
    /// A label (`Visa **** 4242`).
    pub name: Option<String>,
    /// The billing e-mail.
    pub email: Option<String>,
    /// The person.
    pub person: Option<Person>,
    /// The address (the fake keeps none).
    pub address: Option<()>,
    /// The company.
    pub company: Option<Company>,
}

impl Default for BillingMethod {
    fn default() -> Self {
        Self {
            kind: BillingMethodKind::Stripe,
            name: None,
            email: None,
            person: None,
            address: None,
            company: None,
        }
    }
}

/// A subscription as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Subscription {
    pub(crate) id: u64,
    pub(crate) customer_id: u64,
    pub(crate) price: i64,
    pub(crate) vat: i64,
    pub(crate) currency: String,
    #[serde(serialize_with = "opt_timestamp")]
    pub(crate) renews_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_timestamp")]
    pub(crate) ends_at: Option<DateTime<Utc>>,
    pub(crate) reference_id: Option<String>,
    pub(crate) reference_name: Option<String>,
    pub(crate) status: SubscriptionStatus,
    pub(crate) product: Product,
    pub(crate) billing_method: BillingMethod,
    pub(crate) update_card_url: String,
    pub(crate) invoices_url: String,
    pub(crate) cancel_url: String,
}

/// An order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct OrderItem {
    pub(crate) description: String,
    #[serde(serialize_with = "quantity")]
    pub(crate) quantity: i64,
    pub(crate) price: i64,
    pub(crate) vat: i64,
    pub(crate) product: Product,
}

/// An order as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Order {
    pub(crate) id: u64,
    pub(crate) customer_id: u64,
    pub(crate) total: i64,
    pub(crate) total_with_vat: i64,
    pub(crate) currency: String,
    pub(crate) reference_id: Option<String>,
    pub(crate) reference_name: Option<String>,
    pub(crate) state: OrderState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) remote_id: Option<String>,
    pub(crate) billing_method: BillingMethod,
    pub(crate) items: Vec<OrderItem>,
}

/// Reads what the fake wrote with the library's own parser: how the fake's
/// Rust API hands out the library's types (the same path as over HTTP).
pub(crate) fn parsed<T: serde::de::DeserializeOwned>(written: &impl Serialize) -> T {
    serde_json::from_value(serde_json::to_value(written).expect("the fake's types serialize"))
        .expect("octany-actix reads what the fake writes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_api_md_shapes_it() {
        let product = Product {
            id: 1225,
            name: "Pro monthly".into(),
            kind: Some("subscription".into()),
            interval: Some("month".into()),
            price: 9900,
            currency: "sek".into(),
            vat_rate: 2500,
        };
        let at: DateTime<Utc> = "2026-05-25T09:29:51Z".parse().unwrap();
        let order = Order {
            id: 7,
            customer_id: 5,
            total: 9900,
            total_with_vat: 12375,
            currency: "sek".into(),
            reference_id: Some("user:1".into()),
            reference_name: None,
            state: OrderState::Paid,
            remote_id: None,
            billing_method: BillingMethod {
                person: Some(Person::default()),
                ..BillingMethod::default()
            },
            items: vec![OrderItem {
                description: "Pro".into(),
                quantity: 1,
                price: 9900,
                vat: 2475,
                product: product.clone(),
            }],
        };
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["state"], "paid");
        assert_eq!(json["items"][0]["quantity"], "1");
        assert_eq!(json["items"][0]["product"]["type"], "subscription");
        assert_eq!(json["billing_method"]["type"], "stripe");
        assert_eq!(json["billing_method"]["person"]["phone"], false);
        assert_eq!(timestamp(&at), "2026-05-25T09:29:51+00:00");
        assert_eq!(product.price_with_vat(), 12375);
    }
}

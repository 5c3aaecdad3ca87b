use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{self, opt_timestamp, string_enum, string_id};
use super::{Order, Product, ProductGroup, Subscription};

string_id! {
    /// A webhook delivery id: the same when Octany retries a delivery, so it
    /// is the dedupe key. An integer in current docs, a UUID in older ones.
    DeliveryId
}

string_enum! {
    /// The name of a webhook event (API.md section 8).
    pub enum EventName {
        /// A subscription was activated after its first payment.
        SubscriptionCreated = "subscription.created",
        /// A subscription's product, method, status or another field changed.
        SubscriptionUpdated = "subscription.updated",
        /// A renewal order was made and (usually) paid.
        SubscriptionRenewed = "subscription.renewed",
        /// A subscription was cancelled; it may run until `ends_at`.
        SubscriptionCancelled = "subscription.cancelled",
        /// The visitor confirmed an order; payment may not have settled.
        OrderConfirmed = "order.confirmed",
        /// An order reached `paid`.
        OrderPaid = "order.paid",
        /// A product changed.
        ProductUpdated = "product.updated",
        /// A product was deleted.
        ProductDeleted = "product.deleted",
        /// A product group changed.
        ProductGroupUpdated = "product-group.updated",
        /// A product group was deleted.
        ProductGroupDeleted = "product-group.deleted",
        /// A test sent from Octany's admin.
        TestHook = "test.hook",
    }
}

/// What Octany POSTs to a webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEnvelope {
    /// The delivery id (the dedupe key).
    pub id: DeliveryId,
    /// The event name, e.g. `subscription.created`.
    pub name: String,
    /// Octany's numeric account id.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account: Option<String>,
    /// When the event happened.
    #[serde(default, with = "opt_timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// The resource, shaped as the REST API shapes it.
    #[serde(default)]
    pub data: Value,
}

impl WebhookEnvelope {
    /// The event name, typed.
    pub fn event_name(&self) -> EventName {
        EventName::from(self.name.as_str())
    }

    /// The event with its `data` parsed into the resource it carries.
    /// Unknown event names give [`WebhookEvent::Unknown`]; a known event
    /// whose `data` does not parse is an error.
    pub fn event(&self) -> Result<WebhookEvent, serde_json::Error> {
        fn data<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, serde_json::Error> {
            T::deserialize(v)
        }
        let d = &self.data;
        Ok(match self.event_name() {
            EventName::SubscriptionCreated => WebhookEvent::SubscriptionCreated(data(d)?),
            EventName::SubscriptionUpdated => WebhookEvent::SubscriptionUpdated(data(d)?),
            EventName::SubscriptionRenewed => WebhookEvent::SubscriptionRenewed(data(d)?),
            EventName::SubscriptionCancelled => WebhookEvent::SubscriptionCancelled(data(d)?),
            EventName::OrderConfirmed => WebhookEvent::OrderConfirmed(data(d)?),
            EventName::OrderPaid => WebhookEvent::OrderPaid(data(d)?),
            EventName::ProductUpdated => WebhookEvent::ProductUpdated(data(d)?),
            EventName::ProductDeleted => WebhookEvent::ProductDeleted(data(d)?),
            EventName::ProductGroupUpdated => WebhookEvent::ProductGroupUpdated(data(d)?),
            EventName::ProductGroupDeleted => WebhookEvent::ProductGroupDeleted(data(d)?),
            EventName::TestHook => WebhookEvent::TestHook(d.clone()),
            EventName::Unknown(name) => WebhookEvent::Unknown {
                name,
                data: d.clone(),
            },
        })
    }
}

/// A webhook event with its resource parsed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// `subscription.created`.
    SubscriptionCreated(Subscription),
    /// `subscription.updated`.
    SubscriptionUpdated(Subscription),
    /// `subscription.renewed`.
    SubscriptionRenewed(Subscription),
    /// `subscription.cancelled`.
    SubscriptionCancelled(Subscription),
    /// `order.confirmed`.
    OrderConfirmed(Order),
    /// `order.paid`.
    OrderPaid(Order),
    /// `product.updated`.
    ProductUpdated(Product),
    /// `product.deleted`.
    ProductDeleted(Product),
    /// `product-group.updated`.
    ProductGroupUpdated(ProductGroup),
    /// `product-group.deleted`.
    ProductGroupDeleted(ProductGroup),
    /// `test.hook`, with whatever it carried.
    TestHook(Value),
    /// An event this version does not know: stored and acknowledged.
    Unknown {
        /// Its name.
        name: String,
        /// Its data, unparsed.
        data: Value,
    },
}

impl WebhookEvent {
    /// The subscription this event is about, if it is a subscription event.
    pub fn subscription(&self) -> Option<&Subscription> {
        match self {
            Self::SubscriptionCreated(s)
            | Self::SubscriptionUpdated(s)
            | Self::SubscriptionRenewed(s)
            | Self::SubscriptionCancelled(s) => Some(s),
            _ => None,
        }
    }

    /// The order this event is about, if it is an order event.
    pub fn order(&self) -> Option<&Order> {
        match self {
            Self::OrderConfirmed(o) | Self::OrderPaid(o) => Some(o),
            _ => None,
        }
    }
}

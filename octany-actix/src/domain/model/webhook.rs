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
pub(crate) struct WebhookEnvelope {
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
    pub(crate) fn event_name(&self) -> EventName {
        EventName::from(self.name.as_str())
    }

    /// The event with its `data` parsed into the resource it carries.
    /// Unknown event names give [`WebhookEvent::Unknown`]; a known event
    /// whose `data` does not parse is an error.
    pub(crate) fn event(&self) -> Result<WebhookEvent, serde_json::Error> {
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
pub(crate) enum WebhookEvent {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{OrderState, SubscriptionStatus};

    #[test]
    fn webhook_with_integer_delivery_id() {
        let env: WebhookEnvelope = serde_json::from_str(include_str!(
            "../../../tests/fixtures/webhook_subscription_created.json"
        ))
        .unwrap();
        assert_eq!(env.id, DeliveryId::new("912345"));
        assert_eq!(env.account.as_deref(), Some("1042"));
        assert_eq!(env.event_name(), EventName::SubscriptionCreated);
        match env.event().unwrap() {
            WebhookEvent::SubscriptionCreated(s) => {
                assert_eq!(s.id.as_str(), "76963688");
                assert_eq!(s.status, SubscriptionStatus::Active);
            }
            other => panic!("wrong event {other:?}"),
        }
    }

    #[test]
    fn webhook_with_uuid_delivery_id() {
        let env: WebhookEnvelope = serde_json::from_str(include_str!(
            "../../../tests/fixtures/webhook_order_paid_uuid.json"
        ))
        .unwrap();
        assert_eq!(env.id.as_str(), "3f2c9a1e-5b7d-4c8e-9f10-2a3b4c5d6e7f");
        match env.event().unwrap() {
            WebhookEvent::OrderPaid(o) => assert_eq!(o.state, OrderState::Paid),
            other => panic!("wrong event {other:?}"),
        }
    }

    #[test]
    fn unknown_webhook_event_is_kept() {
        let env: WebhookEnvelope =
            serde_json::from_str(include_str!("../../../tests/fixtures/webhook_unknown.json"))
                .unwrap();
        assert_eq!(
            env.event_name(),
            EventName::Unknown("customer.merged".into())
        );
        match env.event().unwrap() {
            WebhookEvent::Unknown { name, data } => {
                assert_eq!(name, "customer.merged");
                assert_eq!(data["to"], 2);
            }
            other => panic!("wrong event {other:?}"),
        }
    }
}

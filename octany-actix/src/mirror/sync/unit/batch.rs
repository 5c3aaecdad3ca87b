//! What a unit of work is made of: a [`Batch`] of observations of
//! Octany's state and of writes of the library's own rows, and the
//! [`Unit`] that adds the origin that brought it and the webhook delivery
//! that brought it, if one did.

use std::sync::Arc;

use super::Delivery;
use super::backend::Fast;
use crate::domain::model::{
    Order, Product, Subscription, SubscriptionId, WebhookEnvelope, WebhookEvent,
};
use crate::mirror::entity::billable_ref;
use crate::mirror::sync::SyncError;
use crate::mirror::sync::apply::{self, Local, Mark};
use crate::mirror::sync::events::Origin;

/// Observations of Octany's state, applied together or not at all.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(super) items: Vec<Item>,
}

#[derive(Debug)]
pub(super) enum Item {
    /// With its JSON, made before the transaction opens (less work while
    /// SQLite's write lock is held).
    Subscription(Subscription, Mark, serde_json::Value),
    Order(Order, Option<SubscriptionId>, Mark),
    Product(Product, Mark),
    ProductDeleted(Product, Mark),
    /// A write of the app's own rows (a checkout intent, a charge).
    Local(Local),
}

impl Batch {
    /// The observations a webhook event carries, under its mark.
    pub(crate) fn webhook(envelope: &WebhookEnvelope) -> Result<Self, SyncError> {
        let event = envelope.event().map_err(|source| SyncError::Payload {
            event: envelope.name.clone(),
            source,
        })?;
        let mark = Mark::of(envelope.created_at);
        let batch = Self::default();
        Ok(match event {
            WebhookEvent::SubscriptionCreated(s)
            | WebhookEvent::SubscriptionUpdated(s)
            | WebhookEvent::SubscriptionRenewed(s)
            | WebhookEvent::SubscriptionCancelled(s) => batch.subscription(s, mark),
            WebhookEvent::OrderConfirmed(o) | WebhookEvent::OrderPaid(o) => {
                batch.order(o, None, mark)
            }
            WebhookEvent::ProductUpdated(p) => batch.product(p, mark),
            WebhookEvent::ProductDeleted(p) => batch.product_deleted(p, mark),
            _ => batch,
        })
    }

    pub(crate) fn subscription(mut self, s: Subscription, mark: Mark) -> Self {
        let data = apply::subscription_data(&s);
        self.items.push(Item::Subscription(s, mark, data));
        self
    }

    pub(crate) fn subscriptions(mut self, all: Vec<Subscription>, mark: Mark) -> Self {
        self.items.extend(all.into_iter().map(|s| {
            let data = apply::subscription_data(&s);
            Item::Subscription(s, mark, data)
        }));
        self
    }

    /// An order, linked to `subscription` when the caller knows it.
    pub(crate) fn order(
        mut self,
        o: Order,
        subscription: Option<SubscriptionId>,
        mark: Mark,
    ) -> Self {
        self.items.push(Item::Order(o, subscription, mark));
        self
    }

    pub(crate) fn product(mut self, p: Product, mark: Mark) -> Self {
        self.items.push(Item::Product(p, mark));
        self
    }

    pub(crate) fn product_deleted(mut self, p: Product, mark: Mark) -> Self {
        self.items.push(Item::ProductDeleted(p, mark));
        self
    }

    /// A write of the app's own rows; what it did is in
    /// [`Effects::done`], in the batch's order.
    pub(crate) fn local(mut self, write: Local) -> Self {
        self.items.push(Item::Local(write));
        self
    }

    /// Adds to `keys` what its writes may lock, for the backend to lock
    /// first (`Backend::lock`): each subscription, order and product it
    /// observes, and each billable whose checkouts it may answer (a
    /// subscription's or an order's) or open or return from.
    pub(super) fn keys(&self, keys: &mut Vec<String>) {
        let billable =
            |reference: Option<&str>| billable_ref(reference).map(|b| format!("billable:{b}"));
        for item in &self.items {
            match item {
                Item::Subscription(s, ..) => {
                    keys.push(format!("subscription:{}", s.id));
                    keys.extend(billable(s.reference_id.as_deref()));
                }
                Item::Order(o, ..) => {
                    keys.push(format!("order:{}", o.id));
                    keys.extend(billable(o.reference_id.as_deref()));
                }
                Item::Product(p, _) | Item::ProductDeleted(p, _) => {
                    keys.push(format!("product:{}", p.id));
                }
                Item::Local(
                    Local::OpenIntent { billable, .. } | Local::Returned { billable, .. },
                ) => keys.push(format!("billable:{billable}")),
                Item::Local(_) => {}
            }
        }
    }

    /// What its first observation is about: the billable it names (its
    /// `reference_id`) and the resource's id; what a webhook delivery's
    /// row records of it, for the operator's timeline.
    pub(crate) fn about(&self) -> (Option<String>, Option<String>) {
        match self.items.first() {
            Some(Item::Subscription(s, ..)) => (
                billable_ref(s.reference_id.as_deref()).map(|b| b.to_string()),
                Some(s.id.to_string()),
            ),
            Some(Item::Order(o, ..)) => (
                billable_ref(o.reference_id.as_deref()).map(|b| b.to_string()),
                Some(o.id.to_string()),
            ),
            Some(Item::Product(p, _) | Item::ProductDeleted(p, _)) => {
                (None, Some(p.id.to_string()))
            }
            _ => (None, None),
        }
    }
}

/// A batch, the origin that brought it, and the webhook delivery that
/// brought it, recorded with it: what one write of the mirror is made of.
pub(crate) struct Unit {
    pub(super) batch: Batch,
    pub(super) origin: Origin,
    pub(super) delivery: Option<Arc<Delivery>>,
}

impl Unit {
    /// A new webhook delivery of one subscription's state: what the
    /// backend's fast write takes (see `backend::Fast`).
    pub(super) fn fast(&self) -> Option<Fast<'_>> {
        let (Some(delivery), [Item::Subscription(s, mark, data)]) =
            (&self.delivery, &self.batch.items[..])
        else {
            return None;
        };
        Some(Fast {
            claim: delivery.claim()?,
            subscription: s,
            data,
            mark: *mark,
        })
    }
}

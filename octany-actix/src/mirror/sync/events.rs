//! Billing events: what a change of the mirror means to the host.
//!
//! Events are derived from the state change itself (the row before and the
//! resource after), inside the unit of work that makes the change, so they
//! are the same whichever path brought it: a webhook, a poll, the
//! reconcile, a backfill or one of the app's own billing actions. A change
//! that arrives twice (by a webhook and a poll) changes the row once, so it
//! yields its events once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::model::{
    BillableRef, Order, OrderState, ProductId, Subscription, SubscriptionStatus,
};
use crate::mirror::entity::{order, subscription};

/// Which path brought a change into the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A verified webhook delivery.
    Webhook,
    /// A poll: the success page, the status route, or `Billing::sync`.
    Poll,
    /// The periodic reconcile (or a re-fetch it ordered).
    Reconcile,
    /// A backfill of the whole account.
    Backfill,
    /// One of the app's own billing actions (cancel, swap, charge).
    Action,
}

impl Origin {
    /// Its name, as stored in `octany_events.origin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Webhook => "webhook",
            Origin::Poll => "poll",
            Origin::Reconcile => "reconcile",
            Origin::Backfill => "backfill",
            Origin::Action => "action",
        }
    }

    /// The origin a stored name stands for (a name this version does not
    /// know reads as a poll).
    pub(crate) fn from_name(name: &str) -> Self {
        [
            Origin::Webhook,
            Origin::Reconcile,
            Origin::Backfill,
            Origin::Action,
        ]
        .into_iter()
        .find(|origin| origin.as_str() == name)
        .unwrap_or(Origin::Poll)
    }
}

/// What happened to a subscription or an order, with the resource as it
/// was after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BillingEvent {
    /// A subscription began granting access: first seen `active` or
    /// `trialing`, or it left `pending`/`future_start` for one of those.
    SubscriptionStarted {
        /// The subscription.
        subscription: Subscription,
    },
    /// A paid period began: `renews_at` moved forward on a live subscription.
    SubscriptionRenewed {
        /// The subscription.
        subscription: Subscription,
        /// The renewal date it passed: the end of the paid period that
        /// closed (metered usage before it is billed for that period).
        #[serde(default)]
        period_end: Option<DateTime<Utc>>,
    },
    /// The subscription will not renew; it may run until `ends_at`.
    SubscriptionCancelled {
        /// The subscription.
        subscription: Subscription,
    },
    /// The subscription is over.
    SubscriptionExpired {
        /// The subscription.
        subscription: Subscription,
    },
    /// The subscription moved to another product.
    SubscriptionSwapped {
        /// The subscription, on its new product.
        subscription: Subscription,
        /// The product it left.
        from: ProductId,
    },
    /// A renewal failed (`delayed`, Octany retries) or retries gave up (`unpaid`).
    PaymentFailed {
        /// The subscription.
        subscription: Subscription,
    },
    /// An order reached `paid`.
    OrderPaid {
        /// The order.
        order: Order,
    },
    /// An order's payment failed.
    OrderFailed {
        /// The order.
        order: Order,
    },
    /// An order was refunded.
    OrderRefunded {
        /// The order.
        order: Order,
    },
}

impl BillingEvent {
    /// Its name, as stored in `octany_events.kind` (e.g. `subscription.started`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SubscriptionStarted { .. } => "subscription.started",
            Self::SubscriptionRenewed { .. } => "subscription.renewed",
            Self::SubscriptionCancelled { .. } => "subscription.cancelled",
            Self::SubscriptionExpired { .. } => "subscription.expired",
            Self::SubscriptionSwapped { .. } => "subscription.swapped",
            Self::PaymentFailed { .. } => "payment.failed",
            Self::OrderPaid { .. } => "order.paid",
            Self::OrderFailed { .. } => "order.failed",
            Self::OrderRefunded { .. } => "order.refunded",
        }
    }

    /// The subscription it is about, if it is about one.
    pub fn subscription(&self) -> Option<&Subscription> {
        match self {
            Self::SubscriptionStarted { subscription }
            | Self::SubscriptionRenewed { subscription, .. }
            | Self::SubscriptionCancelled { subscription }
            | Self::SubscriptionExpired { subscription }
            | Self::SubscriptionSwapped { subscription, .. }
            | Self::PaymentFailed { subscription } => Some(subscription),
            _ => None,
        }
    }

    /// The order it is about, if it is about one.
    pub fn order(&self) -> Option<&Order> {
        match self {
            Self::OrderPaid { order }
            | Self::OrderFailed { order }
            | Self::OrderRefunded { order } => Some(order),
            _ => None,
        }
    }
}

/// A billing event as delivered to listeners: what happened, to whom, when
/// and by which path it was learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id (stable across redeliveries: use it to make a listener idempotent).
    pub id: String,
    /// The billable it concerns (`user:42`), when the resource names one.
    pub billable: Option<BillableRef>,
    /// Which path brought the change.
    pub origin: Origin,
    /// When it was true by Octany's clock.
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub event: BillingEvent,
}

fn is_live(status: &SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing
    )
}

/// The events of a subscription's change from `before` (the stored row,
/// `None` when first seen) to `after`.
pub(crate) fn of_subscription(
    before: Option<&subscription::Model>,
    after: &Subscription,
) -> Vec<BillingEvent> {
    let was = before.map(|b| b.status.clone());
    let now = &after.status;
    let mut events = Vec::new();
    let event = |make: fn(Subscription) -> BillingEvent| make(after.clone());
    let started_from = matches!(
        was,
        None | Some(SubscriptionStatus::Pending) | Some(SubscriptionStatus::FutureStart)
    );
    if is_live(now) && started_from {
        events.push(event(|subscription| BillingEvent::SubscriptionStarted {
            subscription,
        }));
    }
    if let (Some(before), Some(was)) = (before, &was) {
        let moved_on =
            matches!((before.renews_at, after.renews_at), (Some(old), Some(new)) if new > old);
        let was_live = is_live(was) || *was == SubscriptionStatus::Delayed;
        if moved_on && was_live && *now == SubscriptionStatus::Active {
            events.push(BillingEvent::SubscriptionRenewed {
                subscription: after.clone(),
                period_end: before.renews_at,
            });
        }
        if let (Some(from), Some(to)) = (before.product_id, after.product_id())
            && from != to
        {
            events.push(BillingEvent::SubscriptionSwapped {
                subscription: after.clone(),
                from,
            });
        }
    }
    let changed_to = |status: SubscriptionStatus| *now == status && was.as_ref() != Some(&status);
    if changed_to(SubscriptionStatus::Cancelled) {
        events.push(event(|subscription| BillingEvent::SubscriptionCancelled {
            subscription,
        }));
    }
    if changed_to(SubscriptionStatus::Expired) {
        events.push(event(|subscription| BillingEvent::SubscriptionExpired {
            subscription,
        }));
    }
    if changed_to(SubscriptionStatus::Delayed) || changed_to(SubscriptionStatus::Unpaid) {
        events.push(event(|subscription| BillingEvent::PaymentFailed {
            subscription,
        }));
    }
    events
}

/// The events of an order's change from `before` to `after`.
pub(crate) fn of_order(before: Option<&order::Model>, after: &Order) -> Vec<BillingEvent> {
    let was = before.map(|b| b.state.clone());
    if was.as_ref() == Some(&after.state) {
        return Vec::new();
    }
    let order = after.clone();
    match after.state {
        OrderState::Paid => vec![BillingEvent::OrderPaid { order }],
        OrderState::Failed => vec![BillingEvent::OrderFailed { order }],
        OrderState::Refunded => vec![BillingEvent::OrderRefunded { order }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(status: &str, product: i64, renews: Option<&str>) -> Subscription {
        serde_json::from_value(serde_json::json!({
            "id": 7, "status": status, "renews_at": renews, "reference_id": "user:1",
            "product": {"id": product, "name": "Pro", "price": 100, "currency": "sek", "vat_rate": 2500}
        }))
        .unwrap()
    }

    fn row(s: &Subscription) -> subscription::Model {
        subscription::Model {
            id: s.id.to_string(),
            billable_ref: s.reference_id.as_deref().and_then(BillableRef::parse),
            reference_id: s.reference_id.clone(),
            status: s.status.clone(),
            product_id: s.product_id(),
            product_name: None,
            price: s.price,
            list_price: None,
            vat: s.vat,
            currency: s.currency.clone(),
            renews_at: s.renews_at,
            ends_at: s.ends_at,
            billing_method_type: None,
            billing_email: None,
            update_card_url: None,
            invoices_url: None,
            cancel_url: None,
            data: serde_json::to_value(s).unwrap(),
            sync_mark: 0,
            needs_sync: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            synced_at: Utc::now(),
        }
    }

    fn kinds(events: &[BillingEvent]) -> Vec<&'static str> {
        events.iter().map(BillingEvent::kind).collect()
    }

    const JAN: Option<&str> = Some("2026-01-01T00:00:00+00:00");
    const FEB: Option<&str> = Some("2026-02-01T00:00:00+00:00");

    #[test]
    fn each_change_names_what_happened() {
        let active = sub("active", 1, JAN);
        assert_eq!(
            kinds(&of_subscription(None, &active)),
            ["subscription.started"]
        );
        let pending = sub("pending", 1, JAN);
        assert_eq!(kinds(&of_subscription(None, &pending)), Vec::<&str>::new());
        assert_eq!(
            kinds(&of_subscription(Some(&row(&pending)), &active)),
            ["subscription.started"]
        );
        assert_eq!(
            kinds(&of_subscription(
                Some(&row(&active)),
                &sub("active", 1, FEB)
            )),
            ["subscription.renewed"]
        );
        assert_eq!(
            kinds(&of_subscription(
                Some(&row(&active)),
                &sub("active", 2, JAN)
            )),
            ["subscription.swapped"]
        );
        assert_eq!(
            kinds(&of_subscription(
                Some(&row(&active)),
                &sub("cancelled", 1, None)
            )),
            ["subscription.cancelled"]
        );
        let cancelled = sub("cancelled", 1, None);
        assert_eq!(
            kinds(&of_subscription(
                Some(&row(&cancelled)),
                &sub("expired", 1, None)
            )),
            ["subscription.expired"]
        );
        assert_eq!(
            kinds(&of_subscription(
                Some(&row(&active)),
                &sub("delayed", 1, JAN)
            )),
            ["payment.failed"]
        );
        assert_eq!(
            kinds(&of_subscription(
                Some(&row(&sub("delayed", 1, JAN))),
                &sub("active", 1, FEB)
            )),
            ["subscription.renewed"]
        );
    }

    #[test]
    fn the_same_state_again_means_nothing() {
        let active = sub("active", 1, JAN);
        assert!(of_subscription(Some(&row(&active)), &active).is_empty());
        let cancelled = sub("cancelled", 1, None);
        assert!(of_subscription(Some(&row(&cancelled)), &cancelled).is_empty());
    }

    #[test]
    fn origins_round_trip_through_their_stored_names() {
        for origin in [
            Origin::Webhook,
            Origin::Poll,
            Origin::Reconcile,
            Origin::Backfill,
            Origin::Action,
        ] {
            assert_eq!(Origin::from_name(origin.as_str()), origin);
        }
    }

    #[test]
    fn events_round_trip_through_their_stored_json() {
        let event = BillingEvent::SubscriptionSwapped {
            subscription: sub("active", 2, JAN),
            from: ProductId(1),
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains(r#""kind":"subscription_swapped""#), "{text}");
        assert_eq!(serde_json::from_str::<BillingEvent>(&text).unwrap(), event);
    }
}

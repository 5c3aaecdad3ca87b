//! What a subscription's write means beyond its row: the billing events
//! it raises, whether it must be re-fetched, which billable it changed,
//! and which checkout intents it answers. Derived once, here, for every
//! unit, alone or in a group.

use crate::domain::model::{BillableRef, ProductId, Subscription, SubscriptionStatus};
use crate::mirror::entity::{billable_ref, subscription};
use crate::mirror::sync::apply::{self, Applied, Mark, Source};
use crate::mirror::sync::events::{self, BillingEvent};

/// What a subscription's write means beyond its row.
pub(crate) struct Consequences {
    /// Re-fetch it from the API (a conflict, or an undated webhook).
    pub(crate) refetch: bool,
    /// The billing events of the change (none if the row did not change).
    pub(crate) events: Vec<BillingEvent>,
    /// The billable it belongs to.
    pub(crate) billable: Option<BillableRef>,
    /// The product whose open checkouts it answers: it became live on it.
    pub(crate) answers_checkouts: Option<ProductId>,
}

impl Consequences {
    pub(crate) fn of(
        s: &Subscription,
        written: &apply::Written<subscription::Model>,
        mark: Mark,
        source: Source,
    ) -> Self {
        let changed = written.applied.changed();
        // An ended subscription answers no checkout; one that was live on
        // this plan already answered it.
        let live = |status: &SubscriptionStatus| {
            !matches!(
                status,
                SubscriptionStatus::Expired | SubscriptionStatus::Unpaid
            )
        };
        let answered = written
            .before
            .as_ref()
            .is_some_and(|b| live(&b.status) && b.product_id == s.product_id());
        let billable = billable_ref(s.reference_id.as_deref());
        Self {
            refetch: written.applied == Applied::Conflict
                || (!mark.is_dated() && source == Source::Webhook),
            events: if changed {
                events::of_subscription(written.before.as_ref(), s)
            } else {
                Vec::new()
            },
            answers_checkouts: s
                .product_id()
                .filter(|_| changed && billable.is_some() && live(&s.status) && !answered),
            billable,
        }
    }
}

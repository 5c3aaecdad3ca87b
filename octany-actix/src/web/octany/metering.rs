//! Metered usage's billing: the meters a host registers, and the built-in
//! billing listener that, when a subscription renews (by webhook, poll or
//! reconcile, whichever sees it first), closes each meter's period and
//! charges it once.
//!
//! Exactly once: the period's row is written once (the first closer fixes
//! its quantity and amount; `mirror::sync::apply::usage`), and each attempt
//! to charge it goes through the idempotent charge path under a key of its
//! own (the period's key, then `#2`, `#3`, …), so two instances closing it
//! together, a crash between the order and its mark, or a lost answer all
//! end in one order per attempt. A declined charge is the `order.failed`
//! billing event of its order; the next attempt is made by the retry
//! policy ([`OctanyBuilder::usage_retries`]) only once the previous order
//! is known to have failed, and none after one is paid, so a period is
//! never paid twice.

use std::sync::{Arc, OnceLock, Weak};

use chrono::{DateTime, Utc};

use super::{Inner, Octany, OctanyBuilder};
use crate::client::NewOrder;
use crate::domain::features::Meter;
use crate::domain::model::{BillableRef, ProductId};
use crate::mirror::sync::apply::usage::Price;
use crate::mirror::sync::outbox::NotBefore;
use crate::mirror::sync::{BillingEvent, Event, ListenerName, Listeners};
use crate::web::billable::Billable;
use crate::web::error::BillingError;

/// The name of the built-in listener that bills metered usage.
const LISTENER: ListenerName = ListenerName::library("octany.usage");

/// A registered meter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MeterSpec {
    name: &'static str,
    product: ProductId,
    price: Price,
}

/// The registered meters and how a declined charge of theirs is retried.
#[derive(Debug, Clone)]
pub(crate) struct Metering {
    meters: Vec<MeterSpec>,
    /// The pause after each declined attempt before the next one; no
    /// attempt after the last.
    retries: Vec<chrono::Duration>,
}

impl Default for Metering {
    fn default() -> Self {
        Self {
            meters: Vec::new(),
            retries: DEFAULT_RETRIES
                .iter()
                .map(|days| chrono::Duration::days(*days))
                .collect(),
        }
    }
}

/// The default pauses, in days, before the second, third and fourth
/// attempt at a declined usage charge (about two weeks in all, as card
/// networks and Octany's own renewal retries allow for a card to be
/// updated).
const DEFAULT_RETRIES: [i64; 3] = [3, 5, 7];

/// The `Octany` the listener bills through, set once it is built (a weak
/// handle: the listener lives inside it).
pub(super) type Slot = Arc<OnceLock<(Weak<Inner>, Arc<crate::web::settings::Settings>)>>;

impl OctanyBuilder {
    /// Bills the meter `M` in arrears: each renewal of a billable's
    /// subscription charges the closed period's usage once, as an order of
    /// [`Meter::PRODUCT`] (see [`Billing::record_usage`](crate::billing::Billing::record_usage)).
    pub fn meter<M: Meter>(mut self) -> Self {
        self.metering.meters.retain(|m| m.name != M::NAME);
        self.metering.meters.push(MeterSpec {
            name: M::NAME,
            product: M::PRODUCT,
            price: Price {
                unit_price: M::UNIT_PRICE,
                per: M::PER,
            },
        });
        self
    }

    /// How a declined usage charge is tried again: after the first attempt
    /// is declined, a second one is made `after[0]` later, a third
    /// `after[1]` after the second is declined, and so on; none after the
    /// last pause, and none after an attempt is paid. Each attempt is a new
    /// order (Octany does not retry a one-off order), made only once the
    /// one before is known to have failed, so a period is never paid
    /// twice. The default is 3, 5 and 7 days; an empty list makes one
    /// attempt only. The waits are judged on the app's clock and run by
    /// the outbox (so [`Octany::spawn_background`] must run).
    ///
    /// ```
    /// # fn demo(builder: octany_actix::OctanyBuilder) -> octany_actix::OctanyBuilder {
    /// use std::time::Duration;
    /// const DAY: Duration = Duration::from_secs(86_400);
    /// builder.usage_retries([DAY, 2 * DAY])
    /// # }
    /// ```
    pub fn usage_retries(mut self, after: impl IntoIterator<Item = std::time::Duration>) -> Self {
        self.metering.retries = after
            .into_iter()
            .map(|pause| chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::MAX))
            .collect();
        self
    }
}

/// The `Octany` of `slot`, while it runs.
pub(super) fn upgrade(slot: &Slot) -> Option<Octany> {
    let (inner, settings) = slot.get()?;
    Some(Octany {
        inner: inner.upgrade()?,
        settings: settings.clone(),
    })
}

/// `listeners` with the usage listener, when there are meters; the slot
/// to fill with the built `Octany`.
pub(super) fn with_usage_listener(listeners: Listeners, metering: &Metering) -> (Listeners, Slot) {
    let slot: Slot = Arc::default();
    if metering.meters.is_empty() {
        return (listeners, slot);
    }
    let handle = slot.clone();
    let listeners = listeners.on(LISTENER, move |event: Arc<Event>| {
        let handle = handle.clone();
        async move {
            let Some(octany) = upgrade(&handle) else {
                // Shutting down: the outbox delivers it again later.
                return Err("octany-actix is not running".into());
            };
            match octany.bill_usage(&event).await? {
                None => Ok(()),
                Some(at) => Err(NotBefore(at).into()),
            }
        }
    });
    (listeners, slot)
}

/// The billable of a period's charge, by its reference alone.
struct Account(BillableRef);

impl Billable for Account {
    fn billable_id(&self) -> String {
        self.0.id().to_owned()
    }

    fn billable_ref(&self) -> BillableRef {
        self.0.clone()
    }
}

impl Octany {
    /// On a renewal, closes each meter's period that ended with it and
    /// charges it (nothing for a period with no usage), trying a declined
    /// charge again by the retry policy. The built-in listener runs it for
    /// every billing event; running it again for the same event (a retry,
    /// another instance) charges nothing more. `Some(time)`: a declined
    /// charge's next attempt is due then (run it again at that time).
    #[doc(hidden)]
    pub async fn bill_usage(&self, event: &Event) -> Result<Option<DateTime<Utc>>, BillingError> {
        let (
            BillingEvent::SubscriptionRenewed {
                subscription,
                period_end: Some(end),
            },
            Some(billable),
        ) = (&event.event, &event.billable)
        else {
            return Ok(None);
        };
        let account = Account(billable.clone());
        let group = subscription
            .product_id()
            .and_then(|p| self.sold_as(p))
            .and_then(|p| p.group)
            .unwrap_or(crate::domain::plan::DEFAULT_GROUP);
        let billing = self.billing(&account).in_group_named(group);
        let mut next: Option<DateTime<Utc>> = None;
        for meter in &self.inner.metering.meters {
            let key = format!(
                "usage:{}:{}:{}",
                meter.name,
                subscription.id,
                end.timestamp()
            );
            let period = self
                .mirror()
                .close_period(
                    billable,
                    meter.name,
                    &key,
                    &subscription.id,
                    *end,
                    meter.price,
                )
                .await?;
            if period.amount <= 0 {
                continue;
            }
            let order = NewOrder {
                product_id: meter.product,
                amount: Some(period.amount),
                description: Some(format!(
                    "{}: {} used in the period ending {}",
                    meter.name,
                    period.quantity,
                    end.format("%Y-%m-%d")
                )),
            };
            let retries = &self.inner.metering.retries;
            let due = billing
                .charge_period(&key, &subscription.id, &order, retries)
                .await?;
            next = next.into_iter().chain(due).min();
        }
        Ok(next)
    }
}

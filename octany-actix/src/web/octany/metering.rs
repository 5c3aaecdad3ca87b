//! Metered usage's billing: the meters a host registers, and the built-in
//! billing listener that, when a subscription renews (by webhook, poll or
//! reconcile, whichever sees it first), closes each meter's period and
//! charges it once.
//!
//! Exactly once: the period's row is written once (the first closer fixes
//! its quantity and amount; `mirror::sync::apply::usage`), and its charge
//! goes through the idempotent charge path under the period's key, so two
//! instances closing it together, a crash between the order and its mark,
//! or a lost answer all end in one order. A declined charge is the
//! `order.failed` billing event of its order, and is not sent again.

use std::sync::{Arc, OnceLock, Weak};

use super::{Inner, Octany, OctanyBuilder};
use crate::client::NewOrder;
use crate::domain::features::Meter;
use crate::domain::model::{BillableRef, ProductId};
use crate::mirror::sync::apply::usage::Price;
use crate::mirror::sync::{BillingEvent, Event, Listeners};
use crate::web::billable::Billable;
use crate::web::error::BillingError;

/// The name of the built-in listener that bills metered usage.
const LISTENER: &str = "octany.usage";

/// A registered meter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MeterSpec {
    name: &'static str,
    product: ProductId,
    price: Price,
}

/// The `Octany` the listener bills through, set once it is built (a weak
/// handle: the listener lives inside it).
pub(super) type Slot = Arc<OnceLock<(Weak<Inner>, Arc<crate::web::settings::Settings>)>>;

impl OctanyBuilder {
    /// Bills the meter `M` in arrears: each renewal of a billable's
    /// subscription charges the closed period's usage once, as an order of
    /// [`Meter::PRODUCT`] (see [`Billing::record_usage`](crate::billing::Billing::record_usage)).
    pub fn meter<M: Meter>(mut self) -> Self {
        self.meters.retain(|m| m.name != M::NAME);
        self.meters.push(MeterSpec {
            name: M::NAME,
            product: M::PRODUCT,
            price: Price {
                unit_price: M::UNIT_PRICE,
                per: M::PER,
            },
        });
        self
    }
}

/// `listeners` with the usage listener, when there are meters; the slot
/// to fill with the built `Octany`.
pub(super) fn with_usage_listener(listeners: Listeners, meters: &[MeterSpec]) -> (Listeners, Slot) {
    let slot: Slot = Arc::default();
    if meters.is_empty() {
        return (listeners, slot);
    }
    let handle = slot.clone();
    let listeners = listeners.on(LISTENER, move |event: Arc<Event>| {
        let handle = handle.clone();
        async move {
            let Some(octany) = handle
                .get()
                .and_then(|(inner, settings)| Some((inner.upgrade()?, settings.clone())))
                .map(|(inner, settings)| Octany { inner, settings })
            else {
                // Shutting down: the outbox delivers it again later.
                return Err("octany-actix is not running".into());
            };
            octany.bill_usage(&event).await.map_err(Into::into)
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
    /// charges it once (nothing for a period with no usage). The built-in
    /// listener runs it for every billing event; running it again for the
    /// same event (a retry, another instance) charges nothing more.
    #[doc(hidden)]
    pub async fn bill_usage(&self, event: &Event) -> Result<(), BillingError> {
        let (
            BillingEvent::SubscriptionRenewed {
                subscription,
                period_end: Some(end),
            },
            Some(billable),
        ) = (&event.event, &event.billable)
        else {
            return Ok(());
        };
        let account = Account(billable.clone());
        let group = subscription
            .product_id()
            .and_then(|p| self.sold_as(p))
            .and_then(|p| p.group)
            .unwrap_or(crate::domain::plan::DEFAULT_GROUP);
        let billing = self.billing(&account).in_group_named(group);
        for meter in &self.inner.meters {
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
            // Boxed: the charge path's future is large.
            match Box::pin(billing.charge_on(&key, &subscription.id, order)).await {
                Ok(_) => {}
                Err(BillingError::ChargeDeclined { order }) => {
                    // Reported as the order's `order.failed` event; never
                    // sent again under this period's key.
                    tracing::warn!(order = %order.id, meter = meter.name, "a usage charge was declined");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

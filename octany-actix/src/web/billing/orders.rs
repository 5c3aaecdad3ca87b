//! Orders: one-off charges, the order history, Octany's portal links.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Billing;
use crate::client::{NewOrder, OctanyError};
use crate::domain::model::{Order, OrderId, OrderState, SubscriptionId};
use crate::domain::receipt::Receipt;
use crate::mirror::entity::charge;
use crate::mirror::rows::OrderRow;
use crate::web::billable::Billable;
use crate::web::error::BillingError;

/// Links to Octany's own billing portal for the current subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortalUrls {
    /// Update the card.
    pub update_card: Option<String>,
    /// See invoices.
    pub invoices: Option<String>,
    /// Cancel.
    pub cancel: Option<String>,
}

/// How long a charge being sent is left to the request sending it; after
/// that a request with the same key takes it over (the first one died).
const CHARGE_CLAIM: chrono::Duration = chrono::Duration::minutes(5);

/// The longest idempotency key kept.
const MAX_KEY_LEN: usize = 128;

impl<U: Billable> Billing<'_, U> {
    /// A one-off charge of `order` on the billing method of the group's live
    /// subscription, made at most once per idempotency `key`: the charge is
    /// recorded under the key *before* it is sent, so a second request with
    /// the same key (a form posted twice, a retry) returns the first one's
    /// result instead of charging again, and a lost answer is settled by
    /// listing the subscription's orders. Render a new key with each form.
    ///
    /// A declined or failed order is [`BillingError::ChargeDeclined`], never
    /// `Ok`. Without a live subscription the answer is
    /// [`BillingError::ChargeNeedsSubscription`]: sell the product at
    /// checkout instead ([`OctanyBuilder::one_off_products`](crate::OctanyBuilder::one_off_products)).
    ///
    /// ```no_run
    /// # async fn demo(octany: &octany_actix::Octany, user: &impl octany_actix::Billable, key: &str) -> Result<(), octany_actix::BillingError> {
    /// use octany_actix::client::NewOrder;
    /// use octany_actix::model::ProductId;
    /// let order = octany
    ///     .billing(user)
    ///     .charge(key, NewOrder { product_id: ProductId(1400), amount: None, description: Some("Extra seats".into()) })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn charge(&self, key: &str, order: NewOrder) -> Result<OrderRow, BillingError> {
        self.in_lane(self.charge_in_lane(key, order, None)).await
    }

    /// Charges one closed period of metered usage on `subscription` (the
    /// built-in usage listener's charge): its attempts in turn, each under a
    /// key of its own (`key`, then `key#2`, …), the next one only once the one
    /// before is declined and its pause in `retries` has passed. `Some(time)`
    /// when the next attempt is not due yet.
    pub(crate) async fn charge_period(
        &self,
        key: &str,
        subscription: &SubscriptionId,
        order: &NewOrder,
        retries: &[chrono::Duration],
    ) -> Result<Option<DateTime<Utc>>, BillingError> {
        for attempt in 0..=retries.len() {
            let key = match attempt {
                0 => key.to_owned(),
                n => format!("{key}#{}", n + 1),
            };
            // Boxed: the charge path's future is large.
            match Box::pin(self.charge_on(&key, subscription, order.clone())).await {
                Ok(_) => return Ok(None),
                Err(BillingError::ChargeDeclined { order: declined }) => {
                    let Some(pause) = retries.get(attempt) else {
                        tracing::warn!(order = %declined.id, attempts = attempt + 1, "a usage charge was declined on its last attempt; it is not tried again");
                        return Ok(None);
                    };
                    let charged = self
                        .octany
                        .mirror()
                        .charge(self.reference().as_str(), &key)
                        .await?
                        .map_or_else(|| self.octany.clock().now(), |row| row.attempted_at);
                    let due = charged
                        .checked_add_signed(*pause)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    if due > self.octany.clock().now() {
                        tracing::warn!(order = %declined.id, attempt = attempt + 1, next = %due, "a usage charge was declined; it is tried again then");
                        return Ok(Some(due));
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// [`Billing::charge`] on the subscription `on` (the one a period of
    /// metered usage belongs to), not the group's live one.
    async fn charge_on(
        &self,
        key: &str,
        on: &SubscriptionId,
        order: NewOrder,
    ) -> Result<OrderRow, BillingError> {
        self.in_lane(self.charge_in_lane(key, order, Some(on)))
            .await
    }

    async fn charge_in_lane(
        &self,
        key: &str,
        order: NewOrder,
        on: Option<&SubscriptionId>,
    ) -> Result<OrderRow, BillingError> {
        self.may_act()?;
        if key.is_empty() || key.chars().count() > MAX_KEY_LEN {
            return Err(BillingError::invalid(format!(
                "an idempotency key is 1 to {MAX_KEY_LEN} characters"
            )));
        }
        let reference = self.reference();
        let mirror = self.octany.mirror();
        if let Some(row) = mirror.charge(reference.as_str(), key).await? {
            return self.charged_before(row, &order).await;
        }
        let subscription = match on {
            Some(on) => on.clone(),
            None => match self.live_subscription().await {
                Ok(s) => SubscriptionId::new(s.id),
                Err(BillingError::NoSubscription) => {
                    return Err(BillingError::ChargeNeedsSubscription);
                }
                Err(other) => return Err(other),
            },
        };
        let before = self.octany.client().order_ids(&subscription).await?;
        let known: Vec<&str> = before.iter().map(OrderId::as_str).collect();
        let recorded = mirror
            .record_charge(&reference, key, &subscription, &order, &known)
            .await?;
        if recorded {
            return self.send_charge(key, &subscription, &order, &before).await;
        }
        // Another request with this key got there first.
        match mirror.charge(reference.as_str(), key).await? {
            Some(row) => self.charged_before(row, &order).await,
            None => Err(BillingError::ChargeInProgress),
        }
    }

    /// Sends the charge recorded under `key` and records how it ended. A
    /// definite refusal (nothing was made) frees the key; an unsettled one
    /// keeps the row for the next request with the key to settle.
    async fn send_charge(
        &self,
        key: &str,
        subscription: &SubscriptionId,
        order: &NewOrder,
        before: &HashSet<OrderId>,
    ) -> Result<OrderRow, BillingError> {
        let client = self.octany.client();
        match client.create_order_after(subscription, order, before).await {
            Ok(made) => self.record_charge(key, subscription, made).await,
            Err(error)
                if error.is_ambiguous() || matches!(error, OctanyError::Unconfirmed { .. }) =>
            {
                Err(error.into())
            }
            Err(error) => {
                self.octany
                    .mirror()
                    .release_charge(&self.reference(), key)
                    .await?;
                Err(error.into())
            }
        }
    }

    /// Writes the order Octany made and marks the charge under `key` made,
    /// in one unit of work, and answers by the order's state.
    async fn record_charge(
        &self,
        key: &str,
        subscription: &SubscriptionId,
        (made, date): (Order, Option<DateTime<Utc>>),
    ) -> Result<OrderRow, BillingError> {
        let client = self.octany.client();
        let (made, date) = match date {
            Some(date) => (made, Some(date)),
            // Found by listing after a lost answer: read it for Octany's time.
            None => client.get_order_observed(&made.id).await?,
        };
        let order_id = made.id.to_string();
        self.octany
            .mirror()
            .charge_made(&self.reference(), key, subscription, made, date)
            .await?;
        self.charge_outcome(&order_id).await
    }

    /// The mirrored order of a charge: `Ok` unless it failed.
    async fn charge_outcome(&self, order_id: &str) -> Result<OrderRow, BillingError> {
        let mirror = self.octany.mirror();
        let made = match mirror.order(order_id).await? {
            Some(made) => made,
            None => {
                let (o, date) = self
                    .octany
                    .client()
                    .get_order_observed(&OrderId::new(order_id))
                    .await?;
                mirror.record_order(o, date).await?;
                mirror
                    .order(order_id)
                    .await?
                    .ok_or(BillingError::NoSubscription)?
            }
        };
        if made.state == OrderState::Failed {
            return Err(BillingError::ChargeDeclined {
                order: Box::new(made),
            });
        }
        Ok(made)
    }

    /// A request with a key used before: the same charge's result, or the
    /// charge settled (found by listing, or taken over when the request
    /// that sent it died), or "in progress".
    async fn charged_before(
        &self,
        row: charge::Model,
        order: &NewOrder,
    ) -> Result<OrderRow, BillingError> {
        if row.product_id != order.product_id.0
            || row.amount != order.amount
            || row.description != order.description
        {
            return Err(BillingError::KeyReused);
        }
        if let (charge::ChargeState::Made, Some(id)) = (row.state, row.order_id.as_deref()) {
            return self.charge_outcome(id).await;
        }
        let subscription = SubscriptionId::new(row.subscription_id.clone());
        let known: Vec<String> = serde_json::from_str(&row.known_orders).unwrap_or_default();
        let before: HashSet<OrderId> = known.into_iter().map(OrderId::new).collect();
        let client = self.octany.client();
        if let Some(found) = client.find_order(&subscription, order, &before).await? {
            return self
                .record_charge(&row.key, &subscription, (found, None))
                .await;
        }
        let now = self.octany.clock().now();
        if row.attempted_at + CHARGE_CLAIM > now {
            return Err(BillingError::ChargeInProgress);
        }
        // The request that sent it died before Octany made anything: take it over.
        let taken = self
            .octany
            .mirror()
            .take_over_charge(&self.reference(), &row.key, row.attempted_at)
            .await?;
        if !taken {
            return Err(BillingError::ChargeInProgress);
        }
        self.send_charge(&row.key, &subscription, order, &before)
            .await
    }

    /// Every mirrored order, newest first.
    pub async fn orders(&self) -> Result<Vec<OrderRow>, BillingError> {
        Ok(self
            .octany
            .mirror()
            .orders_of(self.reference().as_str())
            .await?)
    }

    /// The receipt of the billable's paid order `order_id`, sold by the
    /// [seller](crate::OctanyBuilder::seller) configured. Another
    /// billable's order, an unknown one or one not paid is
    /// [`BillingError::NoSuchReceipt`], the same answer for each, so
    /// nobody learns of another's orders. Only who may manage the
    /// billable's billing sees its receipts (a team's owners).
    pub async fn receipt(&self, order_id: &str) -> Result<Receipt, BillingError> {
        self.may_act()?;
        let seller = self
            .octany
            .settings()
            .seller
            .clone()
            .ok_or(BillingError::ReceiptsOff)?;
        let missing = || BillingError::NoSuchReceipt {
            order: order_id.to_owned(),
        };
        let row = self
            .octany
            .mirror()
            .order(order_id)
            .await?
            .ok_or_else(missing)?;
        if row.billable_ref.as_ref() != Some(&self.reference()) || row.state != OrderState::Paid {
            return Err(missing());
        }
        let order = row.order().ok_or_else(missing)?;
        let date = order.created_at.unwrap_or(row.created_at);
        Ok(Receipt::of(&order, date, &seller))
    }

    /// Octany's portal links of the current subscription.
    pub async fn portal_urls(&self) -> Result<Option<PortalUrls>, BillingError> {
        Ok(self.subscription().await?.map(|s| PortalUrls {
            update_card: s.update_card_url,
            invoices: s.invoices_url,
            cancel: s.cancel_url,
        }))
    }
}

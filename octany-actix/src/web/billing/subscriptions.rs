//! Subscriptions: questions and the actions on the group's current one.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Billing;
use crate::client::OctanyError;
use crate::domain::model::{Entitlement, ProductId, Subscription, SubscriptionId};
use crate::domain::plan::Plan;
use crate::mirror::access::{AccessState, Grant};
use crate::mirror::rows::SubscriptionRow;
use crate::web::billable::Billable;
use crate::web::error::BillingError;

impl<U: Billable> Billing<'_, U> {
    /// Every mirrored subscription of every group, newest first (whole rows,
    /// read from the database).
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, BillingError> {
        Ok(self
            .octany
            .mirror()
            .subscriptions_of(self.reference().as_str())
            .await?)
    }

    /// The group's subscriptions, newest first (shared with the cache).
    async fn in_this_group(&self) -> Result<Vec<Arc<Grant>>, BillingError> {
        let state = self.state().await?;
        Ok(self.of_group(&state, self.group))
    }

    /// The group's current subscription as the guard sees it: the one
    /// granting access, else the newest (an Octany subscription: a comp is
    /// not one, though it grants access).
    async fn current(&self) -> Result<Option<Arc<Grant>>, BillingError> {
        let mut mine = self.in_this_group().await?;
        mine.retain(|s| !s.comp);
        let clock = self.octany.clock();
        let policy = self.octany.settings().policy;
        Ok(mine
            .iter()
            .find(|s| s.has_access(clock.as_ref(), policy))
            .or(mine.first())
            .cloned())
    }

    /// The subscriptions of `state` in `group`, newest first.
    pub(super) fn of_group(&self, state: &AccessState, group: &str) -> Vec<Arc<Grant>> {
        state
            .subscriptions
            .iter()
            .filter(|s| self.octany.group_of(s.product_id) == group)
            .cloned()
            .collect()
    }

    /// The group's current subscription: the one granting access, else the
    /// newest.
    pub async fn subscription(&self) -> Result<Option<SubscriptionRow>, BillingError> {
        match self.current().await? {
            Some(grant) => Ok(self.octany.mirror().subscription(&grant.id).await?),
            None => Ok(None),
        }
    }

    /// Whether it has access through a subscription of this group (paying,
    /// on trial, on a grace period, or as the access policy allows), or a
    /// comp of one of its plans.
    pub async fn subscribed(&self) -> Result<bool, BillingError> {
        let clock = self.octany.clock();
        let policy = self.octany.settings().policy;
        Ok(self
            .in_this_group()
            .await?
            .iter()
            .any(|s| s.has_access(clock.as_ref(), policy)))
    }

    /// Whether it has access to `plan`.
    pub async fn subscribed_to<P: Plan>(&self, plan: P) -> Result<bool, BillingError> {
        let state = self.state().await?;
        let clock = self.octany.clock();
        let policy = self.octany.settings().policy;
        Ok(state.subscriptions.iter().any(|s| {
            s.product_id == Some(plan.product_id()) && s.has_access(clock.as_ref(), policy)
        }))
    }

    async fn current_is(&self, test: impl Fn(&Grant) -> bool) -> Result<bool, BillingError> {
        Ok(self.current().await?.as_deref().is_some_and(test))
    }

    /// In a free trial.
    pub async fn on_trial(&self) -> Result<bool, BillingError> {
        let clock = self.octany.clock().clone();
        self.current_is(|s| s.on_trial(clock.as_ref())).await
    }

    /// Cancelled but paid until a date still ahead.
    pub async fn on_grace_period(&self) -> Result<bool, BillingError> {
        let clock = self.octany.clock().clone();
        self.current_is(|s| s.on_grace_period(clock.as_ref())).await
    }

    /// Paying by Octany's own rule.
    pub async fn is_paying(&self) -> Result<bool, BillingError> {
        let clock = self.octany.clock().clone();
        self.current_is(|s| s.is_paying(clock.as_ref())).await
    }

    /// When the first invoice of the group's subscription falls due, while
    /// it is `pending` on an unpaid invoice (see
    /// [`AccessPolicy::invoice_grants_access`](crate::model::AccessPolicy)).
    pub async fn invoice_due_at(&self) -> Result<Option<DateTime<Utc>>, BillingError> {
        let policy = self.octany.settings().policy;
        Ok(self.current().await?.and_then(|s| s.invoice_due_at(policy)))
    }

    /// The group's subscription that has not ended, if any: the one a
    /// checkout of another plan of the group would duplicate.
    pub(crate) async fn live_subscription(&self) -> Result<SubscriptionRow, BillingError> {
        let clock = self.octany.clock().clone();
        self.subscription()
            .await?
            .filter(|s| !s.has_ended(clock.as_ref()))
            .ok_or(BillingError::NoSubscription)
    }

    /// Writes what Octany answered to an action through the unit of work,
    /// and reads the row back.
    async fn record(
        &self,
        (s, date): (Subscription, Option<DateTime<Utc>>),
    ) -> Result<SubscriptionRow, BillingError> {
        let id = s.id.clone();
        let mirror = self.octany.mirror();
        mirror.record_subscription(s, date).await?;
        mirror
            .subscription(id.as_str())
            .await?
            .ok_or(BillingError::NoSubscription)
    }

    /// A write whose answer was lost may have happened: read the
    /// subscription back, and if it shows what was asked, that is the
    /// answer; otherwise the write's own error stands.
    async fn settle(
        &self,
        id: &SubscriptionId,
        answer: Result<(Subscription, Option<DateTime<Utc>>), OctanyError>,
        done: impl Fn(&Subscription) -> bool,
    ) -> Result<SubscriptionRow, BillingError> {
        match answer {
            Ok(answer) => self.record(answer).await,
            Err(error) if error.is_ambiguous() => {
                tracing::warn!(subscription = %id, %error, "the answer was lost; reading the subscription back");
                let read = self.octany.client().get_subscription_observed(id).await;
                match read {
                    Ok(read) if done(&read.0) => self.record(read).await,
                    Ok(read) => {
                        // It did not happen: record what is true, report the failure.
                        self.record(read).await?;
                        Err(error.into())
                    }
                    Err(_) => Err(error.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Cancels the group's current subscription at the end of its paid
    /// period; it keeps access until then (a grace period). Octany has no
    /// cancel-now. A lost answer is settled by reading the subscription back.
    pub async fn cancel(&self) -> Result<SubscriptionRow, BillingError> {
        self.may_act()?;
        let id = SubscriptionId::new(self.live_subscription().await?.id);
        self.in_lane(async {
            let answer = self.octany.client().cancel_subscription_observed(&id).await;
            self.settle(&id, answer, |s| {
                s.status == crate::domain::model::SubscriptionStatus::Cancelled
            })
            .await
        })
        .await
    }

    /// Moves the subscription of `plan`'s group to `plan` (Octany changes
    /// the product at once; the new price applies from the next renewal,
    /// with no proration). A lost answer is settled by reading it back.
    ///
    /// A swap to a plan whose limits the billable's usage exceeds
    /// ([`OctanyBuilder::usage_counts`](crate::OctanyBuilder::usage_counts))
    /// is refused with [`BillingError::OverLimit`] before anything is sent.
    pub async fn swap<P: Plan>(&self, plan: P) -> Result<SubscriptionRow, BillingError> {
        self.octany
            .billing(self.billable)
            .in_group::<P>()
            .swap_to(plan.product_id())
            .await
    }

    /// [`Billing::swap`] by product id, in this handle's group.
    pub(crate) async fn swap_to(
        &self,
        product: ProductId,
    ) -> Result<SubscriptionRow, BillingError> {
        self.may_act()?;
        let current = self.live_subscription().await?;
        if current.product_id == Some(product) {
            return Ok(current);
        }
        self.fits(product).await?;
        let id = SubscriptionId::new(current.id);
        self.in_lane(async {
            let answer = self
                .octany
                .client()
                .swap_subscription_product_observed(&id, product)
                .await;
            self.settle(&id, answer, |s| s.product_id() == Some(product))
                .await
        })
        .await
    }
}

//! Subscriptions: questions and the actions on the current one.

use super::Billing;
use crate::domain::plan::{AnyPlan, Plan};
use crate::mirror::entity::subscription;
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use chrono::{DateTime, Utc};

use crate::domain::model::{Entitlement, Subscription, SubscriptionId};
use crate::mirror::sync::{Batch, Mark, Origin};

impl<U: Billable> Billing<'_, U> {
    /// Every mirrored subscription, newest first.
    pub async fn subscriptions(&self) -> Result<Vec<subscription::Model>, BillingError> {
        Ok(self
            .state()
            .await?
            .subscriptions
            .iter()
            .map(|s| s.as_ref().clone())
            .collect())
    }

    /// The current subscription: the one granting access, else the newest.
    pub async fn subscription(&self) -> Result<Option<subscription::Model>, BillingError> {
        let state = self.state().await?;
        let settings = self.octany.settings();
        Ok(state
            .current(self.octany.clock().as_ref(), settings.policy)
            .map(|s| s.as_ref().clone()))
    }

    /// Whether it has access (paying, on trial or on a grace period).
    pub async fn subscribed(&self) -> Result<bool, BillingError> {
        let state = self.state().await?;
        Ok(state
            .granting::<AnyPlan>(self.octany.clock().as_ref(), self.octany.settings().policy)
            .is_some())
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

    async fn current_is(
        &self,
        test: impl Fn(&subscription::Model) -> bool,
    ) -> Result<bool, BillingError> {
        Ok(self.subscription().await?.as_ref().is_some_and(test))
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

    pub(super) async fn live_subscription(&self) -> Result<subscription::Model, BillingError> {
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
    ) -> Result<subscription::Model, BillingError> {
        let id = s.id.clone();
        self.octany
            .syncer()
            .ingest(
                Batch::default().subscription(s, Mark::of(date)),
                Origin::Action,
            )
            .await?;
        subscription::Entity::find_by_id(id.as_str())
            .one(self.octany.syncer().db())
            .await?
            .ok_or(BillingError::NoSubscription)
    }

    /// Cancels the current subscription at the end of its paid period; it
    /// keeps access until then (a grace period).
    pub async fn cancel(&self) -> Result<subscription::Model, BillingError> {
        let id = SubscriptionId::new(self.live_subscription().await?.id);
        let answer = self
            .octany
            .client()
            .cancel_subscription_observed(&id)
            .await?;
        self.record(answer).await
    }

    /// Moves the current subscription to `plan`.
    pub async fn swap<P: Plan>(&self, plan: P) -> Result<subscription::Model, BillingError> {
        let id = SubscriptionId::new(self.live_subscription().await?.id);
        let answer = self
            .octany
            .client()
            .swap_subscription_product_observed(&id, plan.product_id())
            .await?;
        self.record(answer).await
    }
}

use sea_orm::EntityTrait;

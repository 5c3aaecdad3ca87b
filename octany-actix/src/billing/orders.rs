//! Orders: one-off charges, the order history, Octany's portal links.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Billing;
use crate::api::NewOrder;
use crate::billable::Billable;
use crate::entity::order;
use crate::error::BillingError;
use crate::model::{ProductId, SubscriptionId};
use crate::sync::apply;

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

impl<U: Billable> Billing<'_, U> {
    /// A one-off charge of `product` on the current subscription's billing
    /// method, made exactly once even if Octany's answer is lost.
    pub async fn charge(
        &self,
        product: ProductId,
        amount: Option<i64>,
        description: Option<&str>,
    ) -> Result<order::Model, BillingError> {
        let subscription = self.live_subscription().await?;
        let id = SubscriptionId::new(subscription.id);
        let new = NewOrder {
            product_id: product,
            amount,
            description: description.map(str::to_owned),
        };
        let made = self.octany.client().create_order(&id, &new).await?;
        let syncer = self.octany.syncer();
        let mark = apply::mark(self.octany.clock().now());
        syncer
            .record_order(syncer.db(), &made, Some(id.as_str()), mark)
            .await?;
        self.octany.forget(&self.reference());
        order::Entity::find_by_id(made.id.as_str())
            .one(syncer.db())
            .await?
            .ok_or(BillingError::NoSubscription)
    }

    /// Every mirrored order, newest first.
    pub async fn orders(&self) -> Result<Vec<order::Model>, BillingError> {
        Ok(order::Entity::find()
            .filter(order::Column::BillableRef.eq(self.reference()))
            .order_by_desc(order::Column::CreatedAt)
            .order_by_desc(order::Column::Id)
            .all(self.octany.syncer().db())
            .await?)
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

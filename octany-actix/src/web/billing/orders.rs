//! Orders: one-off charges, the order history, Octany's portal links.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Billing;
use crate::client::NewOrder;
use crate::domain::model::{ProductId, SubscriptionId};
use crate::mirror::entity::order;
use crate::mirror::sync::{Batch, Mark, Origin};
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
        let client = self.octany.client();
        let (made, date) = match client.create_order_observed(&id, &new).await? {
            // Found by listing after a lost answer: read it for Octany's time.
            (made, None) => client.get_order_observed(&made.id).await?,
            answered => answered,
        };
        let syncer = self.octany.syncer();
        let order_id = made.id.clone();
        syncer
            .ingest(
                Batch::default().order(made, Some(id), Mark::of(date)),
                Origin::Action,
            )
            .await?;
        order::Entity::find_by_id(order_id.as_str())
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

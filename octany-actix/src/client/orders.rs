use std::collections::HashSet;

use futures_util::stream::{BoxStream, TryStreamExt};
use serde::Serialize;

use super::OctanyClient;
use super::pagination::{Page, walk};
use super::transport::Call;
use crate::client::Result;
use crate::domain::model::{Order, OrderId, ProductId, SubscriptionId};

/// A one-off charge on a subscription's billing method
/// (`POST /subscription/{id}/order`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrder {
    /// The product charged for.
    pub product_id: ProductId,
    /// An amount other than the product's price, in minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// The order line's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Page size used when walking a subscription's orders.
const ORDERS_PER_PAGE: u32 = 100;

impl OctanyClient {
    /// `GET /subscription/{id}/orders`: one page.
    pub async fn list_subscription_orders(
        &self,
        id: &SubscriptionId,
        page: u32,
        per_page: u32,
    ) -> Result<Page<Order>> {
        let call = Call::get(
            "subscription/{id}/orders",
            "subscription",
            format!("subscription/{id}/orders"),
        )
        .query("page", page.max(1))
        .query("per_page", per_page.clamp(1, 100));
        self.page(call).await
    }

    /// Every order of a subscription, one page in memory at a time.
    pub fn stream_subscription_orders(
        &self,
        id: &SubscriptionId,
    ) -> BoxStream<'static, Result<Order>> {
        let (client, id) = (self.clone(), id.clone());
        walk(move |page| {
            let (client, id) = (client.clone(), id.clone());
            async move {
                client
                    .list_subscription_orders(&id, page, ORDERS_PER_PAGE)
                    .await
            }
        })
    }

    /// `GET /order/{id}`.
    pub async fn get_order(&self, id: &OrderId) -> Result<Order> {
        self.get_order_observed(id).await.map(|(o, _)| o)
    }

    /// [`OctanyClient::get_order`] with the answer's `Date`.
    pub(crate) async fn get_order_observed(
        &self,
        id: &OrderId,
    ) -> Result<(Order, Option<chrono::DateTime<chrono::Utc>>)> {
        self.data_observed(Call::get("order/{id}", "order", format!("order/{id}")))
            .await
    }

    /// `POST /subscription/{id}/order`: a one-off charge on the
    /// subscription's billing method, made exactly once.
    ///
    /// Octany has no idempotency key, so the client notes the orders that
    /// exist before, and after an ambiguous failure (timeout, broken
    /// connection, 5xx) lists them again for a new one charging the same
    /// product, amount and description (API.md section 7). Found, it is
    /// returned; not found, the charge is sent again within the retry
    /// policy. If the check itself fails the error is
    /// [`OctanyError::Unconfirmed`](crate::OctanyError::Unconfirmed).
    pub async fn create_order(
        &self,
        subscription: &SubscriptionId,
        order: &NewOrder,
    ) -> Result<Order> {
        self.create_order_observed(subscription, order)
            .await
            .map(|(o, _)| o)
    }

    /// [`OctanyClient::create_order`] with the answer's `Date` (none when
    /// the order was found by listing after a lost answer).
    pub(crate) async fn create_order_observed(
        &self,
        subscription: &SubscriptionId,
        order: &NewOrder,
    ) -> Result<(Order, Option<chrono::DateTime<chrono::Utc>>)> {
        let before = self.order_ids(subscription).await?;
        self.create_order_after(subscription, order, &before).await
    }

    /// The ids of a subscription's orders: what a charge lists against
    /// after a lost answer.
    pub(crate) async fn order_ids(
        &self,
        subscription: &SubscriptionId,
    ) -> Result<HashSet<OrderId>> {
        self.stream_subscription_orders(subscription)
            .map_ok(|o| o.id)
            .try_collect()
            .await
    }

    /// The order `order` made on `subscription` that is not one of
    /// `before`, if Octany has one (list after write, API.md section 7).
    pub(crate) async fn find_order(
        &self,
        subscription: &SubscriptionId,
        order: &NewOrder,
        before: &HashSet<OrderId>,
    ) -> Result<Option<Order>> {
        std::pin::pin!(self.orders_made(subscription, order, before))
            .try_next()
            .await
    }

    fn orders_made<'a>(
        &'a self,
        subscription: &'a SubscriptionId,
        order: &NewOrder,
        before: &'a HashSet<OrderId>,
    ) -> impl futures_util::Stream<Item = Result<Order>> + 'a {
        let (product, amount, description) =
            (order.product_id, order.amount, order.description.clone());
        self.stream_subscription_orders(subscription)
            .try_filter(move |o| {
                std::future::ready(
                    !before.contains(&o.id) && o.charges(product, amount, description.as_deref()),
                )
            })
    }

    /// Sends a charge, given the orders that existed before it; an
    /// ambiguous failure is settled by listing against them.
    pub(crate) async fn create_order_after(
        &self,
        subscription: &SubscriptionId,
        order: &NewOrder,
        before: &HashSet<OrderId>,
    ) -> Result<(Order, Option<chrono::DateTime<chrono::Utc>>)> {
        let body = serde_json::to_value(order).expect("plain struct serializes");
        self.write_reconciled(
            "create order",
            || {
                Call::post(
                    "subscription/{id}/order",
                    "subscription",
                    format!("subscription/{subscription}/order"),
                    &body,
                )
            },
            || self.orders_made(subscription, order, before),
        )
        .await
    }
}

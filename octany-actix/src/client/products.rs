use futures_util::stream::BoxStream;
use serde::Serialize;

use super::OctanyClient;
use super::pagination::{Page, walk};
use super::transport::Call;
use crate::client::Result;
use crate::domain::model::{Product, ProductId};

/// Changes to a product (`POST /product/{id}`); unset fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductUpdate {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new price in minor units, VAT excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// A new VAT rate, percent times 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vat_rate: Option<i64>,
}

impl OctanyClient {
    /// The most this app's clock may differ from Octany's before the
    /// mirror's background task and `doctor` say so (a `Date` header counts
    /// whole seconds).
    pub const CLOCK_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

    /// `GET /products`: one page (100 a page).
    pub async fn list_products(&self, page: u32) -> Result<Page<Product>> {
        self.page(
            Call::get("products", "product list", "products".into()).query("page", page.max(1)),
        )
        .await
    }

    /// How far this app's clock is ahead of Octany's (negative: behind), by
    /// the `Date` header of one small request (the first page of products);
    /// `None` when Octany sent no `Date`. Renewals, grace periods and trials
    /// are judged on this app's clock, so more than
    /// [`OctanyClient::CLOCK_TOLERANCE`] is a fault to fix: the machine's
    /// clock (NTP), or, on an in-process fake, `.clock(fake.app_clock())`.
    pub async fn clock_skew(&self) -> Result<Option<chrono::TimeDelta>> {
        let page = self.list_products(1).await?;
        Ok(page.observed_at.map(|theirs| self.clock().now() - theirs))
    }

    /// Every product, one page in memory at a time.
    pub fn stream_products(&self) -> BoxStream<'static, Result<Product>> {
        let client = self.clone();
        walk(move |page| {
            let client = client.clone();
            async move { client.list_products(page).await }
        })
    }

    /// `GET /product/{id}`.
    pub async fn get_product(&self, id: ProductId) -> Result<Product> {
        self.data(Call::get(
            "product/{id}",
            "product",
            format!("product/{id}"),
        ))
        .await
    }

    /// `POST /product/{id}`: updates and returns the product.
    pub async fn update_product(&self, id: ProductId, update: &ProductUpdate) -> Result<Product> {
        let body = serde_json::to_value(update).expect("plain struct serializes");
        self.data(Call::post(
            "product/{id}",
            "product",
            format!("product/{id}"),
            &body,
        ))
        .await
    }

    /// `DELETE /product/{id}`.
    pub async fn delete_product(&self, id: ProductId) -> Result<()> {
        let mut call = Call::get("product/{id}", "product", format!("product/{id}"));
        call.method = reqwest::Method::DELETE;
        self.unit(call).await
    }
}

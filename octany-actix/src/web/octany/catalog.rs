//! What the app sells, as the `Octany` value knows it: its catalog of
//! plans and one-off products, by slug, product and group, and what a
//! billable's state is granted of their features and limits.

use super::Octany;
use crate::domain::clock::Clock;
use crate::domain::features::{Allowed, larger};
use crate::domain::model::{Product, ProductId};
use crate::domain::plan::DEFAULT_GROUP;
use crate::mirror::access::AccessState;
use crate::web::error::BillingError;
use crate::web::settings::CatalogPlan;

impl Octany {
    /// The catalog as the product cache has it, by product id: what a
    /// pricing page lists ([`Octany::sync_products`] fills the cache; the
    /// background task keeps it fresh).
    pub async fn products(&self) -> Result<Vec<Product>, BillingError> {
        Ok(self
            .mirror()
            .products()
            .await?
            .into_iter()
            .map(Product::from)
            .collect())
    }

    /// Loads Octany's product catalog into the product cache, page by
    /// page, and answers how many products it holds: what
    /// [`Octany::products`], the pricing and the swap pages read.
    /// [`Octany::spawn_background`] loads it at start-up, and again until
    /// it has loaded once; call it yourself to have prices before the first
    /// request.
    pub async fn sync_products(&self) -> Result<u64, BillingError> {
        Ok(self.inner.syncer.sync_products().await?)
    }

    /// Every limit a plan of the catalog names.
    pub(crate) fn limit_names(&self) -> Vec<&'static str> {
        self.catalog_names(|p| p.limits.iter().map(|(name, _)| *name).collect())
    }

    /// Every feature a plan of the catalog carries.
    pub(crate) fn feature_names(&self) -> Vec<&'static str> {
        self.catalog_names(|p| p.features.to_vec())
    }

    /// The names `of` each catalog plan, sorted, each once.
    fn catalog_names(&self, of: impl Fn(&CatalogPlan) -> Vec<&'static str>) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.inner.catalog.iter().flat_map(of).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// What the catalog sells.
    pub(crate) fn plans(&self) -> &[CatalogPlan] {
        &self.inner.catalog
    }

    /// What the catalog sells at `slug`.
    pub(crate) fn sold_at(&self, slug: &str) -> Option<&CatalogPlan> {
        self.inner.catalog.iter().find(|p| p.slug == slug)
    }

    /// What the catalog sells as `product`.
    pub(crate) fn sold_as(&self, product: ProductId) -> Option<&CatalogPlan> {
        self.inner.catalog.iter().find(|p| p.product == product)
    }

    /// The group a subscription to `product` is in: its plan's, or
    /// [`DEFAULT_GROUP`] for a product outside the catalog.
    pub(crate) fn group_of(&self, product: Option<ProductId>) -> &str {
        product
            .and_then(|p| self.sold_as(p))
            .and_then(|p| p.group)
            .unwrap_or(DEFAULT_GROUP)
    }

    /// Whether `state` turns on the feature `feature` at the clock's now:
    /// a subscription granting access to a plan that carries it.
    pub(crate) fn carries_feature(
        &self,
        state: &AccessState,
        clock: &dyn Clock,
        feature: &str,
    ) -> bool {
        state.granted(clock, self.settings().policy).any(|g| {
            g.comp_features.iter().any(|f| f == feature)
                || g.product_id
                    .and_then(|p| self.sold_as(p))
                    .is_some_and(|plan| plan.features.contains(&feature))
        })
    }

    /// What `state` allows of the limit `limit` (`free` without a plan):
    /// the largest allowance of the plans granting access, never below
    /// `free`.
    pub(crate) fn allowed(
        &self,
        state: &AccessState,
        clock: &dyn Clock,
        limit: &str,
        free: u64,
    ) -> Allowed {
        state
            .granted(clock, self.settings().policy)
            .filter_map(|g| g.product_id.and_then(|p| self.sold_as(p)))
            .map(|plan| plan.allowance(limit))
            .fold(Some(free), larger)
    }
}

//! What the app sells, as the `Octany` value knows it: its catalog of
//! plans and one-off products, by slug, product and group.

use super::Octany;
use crate::domain::model::ProductId;
use crate::domain::plan::DEFAULT_GROUP;
use crate::web::settings::CatalogPlan;

impl Octany {
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
}

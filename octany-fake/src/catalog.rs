//! What the fake sells: products and product groups seeded from Rust.

use serde::{Deserialize, Serialize};

use crate::wire::{Product, ProductGroup};

/// A product of the fake's catalog.
///
/// ```
/// use octany_fake::FakeProduct;
/// let pro = FakeProduct::recurring(1225, "Pro monthly", 9900, "month").trial_days(14);
/// assert_eq!(pro.trial_days, Some(14));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeProduct {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Price in minor units, VAT excluded.
    pub price: i64,
    /// Lower-case currency code (default `sek`).
    #[serde(default = "sek")]
    pub currency: String,
    /// VAT, percent times 100 (default 2500 = 25 %).
    #[serde(default = "vat25")]
    pub vat_rate: i64,
    /// `day`, `week`, `month`, `quarter`, `half_year`, `year`; `None` for a one-off product.
    #[serde(default)]
    pub interval: Option<String>,
    /// Free trial days, if checkout may start with a trial.
    #[serde(default)]
    pub trial_days: Option<u32>,
    /// The kind, e.g. `recurring_donation` (which cannot be swapped).
    #[serde(default)]
    pub kind: Option<String>,
}

fn sek() -> String {
    "sek".into()
}

fn vat25() -> i64 {
    2500
}

impl FakeProduct {
    /// A subscription product renewing every `interval`.
    pub fn recurring(id: i64, name: &str, price: i64, interval: &str) -> Self {
        Self {
            id,
            name: name.into(),
            price,
            currency: sek(),
            vat_rate: vat25(),
            interval: Some(interval.into()),
            trial_days: None,
            kind: Some("subscription".into()),
        }
    }

    /// A one-off product.
    pub fn one_off(id: i64, name: &str, price: i64) -> Self {
        Self {
            interval: None,
            kind: Some("product".into()),
            ..Self::recurring(id, name, price, "month")
        }
    }

    /// Allows a free trial of `days` at checkout.
    pub fn trial_days(mut self, days: u32) -> Self {
        self.trial_days = Some(days);
        self
    }

    /// Sets the kind (e.g. `recurring_donation`).
    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Sets the VAT rate (percent times 100).
    pub fn vat_rate(mut self, vat_rate: i64) -> Self {
        self.vat_rate = vat_rate;
        self
    }

    /// As Octany's API shows it.
    pub fn to_product(&self) -> Product {
        Product {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind.clone(),
            interval: self.interval.clone(),
            price: self.price,
            currency: self.currency.clone(),
            vat_rate: self.vat_rate,
        }
    }

    /// VAT on the price, in minor units.
    pub fn vat(&self) -> i64 {
        self.to_product().price_with_vat() - self.price
    }
}

/// A small catalog: Pro monthly (14-day trial), Pro yearly, Basic monthly,
/// a monthly donation, a one-off add-on, and API usage (billed in arrears
/// by the order's `amount`).
pub fn sample_catalog() -> Vec<FakeProduct> {
    vec![
        FakeProduct::recurring(1225, "Pro monthly", 9900, "month").trial_days(14),
        FakeProduct::recurring(1226, "Pro yearly", 99000, "year"),
        FakeProduct::recurring(1227, "Basic monthly", 4900, "month"),
        FakeProduct::recurring(1300, "Monthly donation", 10000, "month")
            .kind("recurring_donation")
            .vat_rate(0),
        FakeProduct::one_off(1400, "Extra seats", 5000),
        FakeProduct::one_off(1401, "API usage", 2),
    ]
}

/// A product group of the fake's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeProductGroup {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The ids of its products.
    #[serde(default)]
    pub products: Vec<i64>,
}

impl FakeProductGroup {
    pub(crate) fn to_group(&self, products: &[Product]) -> ProductGroup {
        ProductGroup {
            id: self.id,
            name: self.name.clone(),
            products: products
                .iter()
                .filter(|p| self.products.contains(&p.id))
                .cloned()
                .collect(),
        }
    }
}

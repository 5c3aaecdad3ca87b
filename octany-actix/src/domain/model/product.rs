use serde::{Deserialize, Serialize};

use super::lenient;

/// A product id. Octany's product ids are integers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sea_orm::DeriveValueType,
)]
#[serde(transparent)]
pub struct ProductId(pub i64);

impl<'de> Deserialize<'de> for ProductId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::opt_int(d)?
            .map(ProductId)
            .ok_or_else(|| serde::de::Error::custom("a product id is required"))
    }
}

impl std::fmt::Display for ProductId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A product, which in Octany is also its price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its kind (e.g. `recurring_donation`); older embedded copies put the
    /// interval here. See [`Product::billing_interval`].
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    /// `month`, `year`, ...; absent for a one-off product.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub interval: Option<String>,
    /// Price in minor units, VAT excluded.
    #[serde(default, deserialize_with = "lenient::int")]
    pub price: i64,
    /// Lower-case currency code.
    #[serde(default)]
    pub currency: String,
    /// VAT as percent times 100 (`2500` = 25 %).
    #[serde(default, deserialize_with = "lenient::int")]
    pub vat_rate: i64,
}

const INTERVALS: &[&str] = &["day", "week", "month", "quarter", "half_year", "year"];

impl Product {
    /// How often it renews: `interval`, or (in older embedded copies) `type`
    /// when that holds an interval. `None` for a one-off product.
    pub fn billing_interval(&self) -> Option<&str> {
        self.interval
            .as_deref()
            .or_else(|| self.kind.as_deref().filter(|k| INTERVALS.contains(k)))
    }

    /// Whether it is a recurring donation (such a product cannot be swapped).
    pub fn is_recurring_donation(&self) -> bool {
        self.kind.as_deref() == Some("recurring_donation")
    }

    /// The price with VAT, in minor units, rounded to the nearest unit.
    ///
    /// ```
    /// # use octany_actix::model::{Product, ProductId};
    /// let p = Product { id: ProductId(1), name: "Pro".into(), kind: None,
    ///     interval: Some("month".into()), price: 10000, currency: "sek".into(), vat_rate: 2500 };
    /// assert_eq!(p.price_with_vat(), 12500);
    /// ```
    pub fn price_with_vat(&self) -> i64 {
        self.price + (self.price * self.vat_rate + 5000).div_euclid(10000)
    }
}

/// A group of products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProductGroup {
    /// Its id.
    #[serde(deserialize_with = "lenient::id_text")]
    pub id: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// Its products, when sent.
    #[serde(default, deserialize_with = "lenient::list")]
    pub products: Vec<Product>,
}

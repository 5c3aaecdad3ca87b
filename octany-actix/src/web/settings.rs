//! Where the library's routes and pages are, and how long things last.

use std::time::Duration;

use url::Url;

use crate::domain::model::{AccessPolicy, ProductId};

/// Where things are, and how long things last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The app's public address (success URLs are built from it, never
    /// from the `Host` header).
    pub public_base_url: Url,
    /// Where the billing routes are mounted (default `/billing`).
    pub billing_path: String,
    /// Where a browser without a subscription is sent (default `/pricing`).
    pub pricing_path: String,
    /// Where the success page forwards once access is granted (default `/`).
    pub after_checkout_path: String,
    /// What the guard allows.
    pub policy: AccessPolicy,
    /// How long the guard trusts a cached answer (default 5 s; every sync of
    /// the billable drops it at once).
    pub cache_ttl: Duration,
    /// How many billables the guard's cache holds at most (default 10,000;
    /// the least used are let go first).
    pub cache_capacity: u64,
    /// The status route syncs a user at most this often (default 3 s).
    pub status_sync_interval: Duration,
    /// After this long since checkout the success page says the payment is
    /// still being processed (default 2 minutes).
    pub success_timeout: Duration,
}

impl Settings {
    /// The path of one of the mounted routes, e.g. `route_path("status")`
    /// is `/billing/status`.
    pub fn route_path(&self, route: &str) -> String {
        format!("{}/{route}", self.billing_path.trim_end_matches('/'))
    }

    /// The public URL of one of the mounted routes, e.g. the success page's.
    pub fn route_url(&self, route: &str) -> Url {
        self.public_base_url
            .join(self.route_path(route).trim_start_matches('/'))
            .expect("a local path joins onto an absolute URL")
    }
}

/// A product of the catalog the checkout route sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogPlan {
    /// Its name in URLs.
    pub(crate) slug: String,
    /// Its Octany product.
    pub(crate) product: ProductId,
    /// The group of a plan; `None` for a one-off product.
    pub(crate) group: Option<&'static str>,
    /// Sold at any price ([`Plan::pay_what_you_want`](crate::Plan::pay_what_you_want)).
    pub(crate) any_price: bool,
    /// The features it turns on ([`Plan::features`](crate::Plan::features)).
    pub(crate) features: &'static [&'static str],
    /// The limits it sets ([`Plan::limits`](crate::Plan::limits)).
    pub(crate) limits: &'static [(&'static str, Option<u64>)],
}

impl CatalogPlan {
    /// Its allowance of the limit `limit`: `Some(n)`, `None` for unlimited,
    /// `Some(0)` when it does not name the limit.
    pub(crate) fn allowance(&self, limit: &str) -> Option<u64> {
        self.limits
            .iter()
            .find(|(name, _)| *name == limit)
            .map_or(Some(0), |(_, allowed)| *allowed)
    }
}

/// `path` as a local path: one leading slash, no trailing one; the root
/// stays `/` (a pricing page at the root is common).
pub(crate) fn local_path(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    format!("/{trimmed}")
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn a_local_path_has_one_leading_slash_and_the_root_stays_the_root() {
        assert_eq!(local_path("/"), "/");
        assert_eq!(local_path(""), "/");
        assert_eq!(local_path("/pricing/"), "/pricing");
        assert_eq!(local_path("pricing"), "/pricing");
        assert_eq!(local_path(" /team/pricing "), "/team/pricing");
    }
}

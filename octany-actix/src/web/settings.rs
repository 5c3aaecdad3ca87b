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
    /// Whether the success page holds a stream of the status open and is
    /// told of the payment the moment it settles (default `true`); `false`
    /// leaves it polling the status route.
    pub status_stream: bool,
    /// How often a held status stream sends a keep-alive comment (default
    /// 10 s): no database work, and how a closed tab is found out (its
    /// slot is freed by the second write after it went).
    pub status_heartbeat: Duration,
    /// How many status streams one billable may hold open at once (its
    /// tabs; default 4). Past it, 429 and the page polls.
    pub status_waits_per_billable: usize,
    /// How many status streams this instance holds open at most (default
    /// 1,000). Past it, 429 and the page polls.
    pub status_waits: usize,
    /// Who sells, as printed on receipts; without it there are none.
    pub seller: Option<crate::domain::receipt::Seller>,
    /// A stylesheet the billing page links after its own styles (the
    /// host's look), e.g. `/static/billing.css`.
    pub stylesheet: Option<String>,
}

impl Settings {
    /// The defaults, before the builder's changes.
    pub(crate) fn defaults() -> Self {
        Self {
            public_base_url: Url::parse("http://127.0.0.1:8080").expect("valid"),
            billing_path: "/billing".into(),
            pricing_path: "/pricing".into(),
            after_checkout_path: "/".into(),
            policy: AccessPolicy::default(),
            cache_ttl: Duration::from_secs(5),
            cache_capacity: 10_000,
            status_sync_interval: Duration::from_secs(3),
            success_timeout: Duration::from_secs(120),
            status_stream: true,
            status_heartbeat: Duration::from_secs(10),
            status_waits_per_billable: 4,
            status_waits: 1_000,
            seller: None,
            stylesheet: None,
        }
    }

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

/// The app's public address, checked: absolute, and https (http only on
/// localhost), as Octany requires of success URLs.
pub(crate) fn checked_base_url(
    url: Option<&str>,
) -> Result<Url, crate::domain::config::ConfigError> {
    use crate::domain::config::ConfigError;
    let Some(url) = url else {
        return Err(ConfigError::Missing {
            var: "public_base_url",
            what: "the app's public address (OctanyBuilder::public_base_url), from which success and webhook URLs are built",
        });
    };
    let parsed = Url::parse(url).map_err(|e| ConfigError::Invalid {
        var: "public_base_url",
        reason: format!("`{url}` is not an absolute URL ({e})"),
    })?;
    if !crate::client::is_acceptable_success_url(&parsed) {
        return Err(ConfigError::Invalid {
            var: "public_base_url",
            reason: format!(
                "`{url}` must be https (http only for localhost), as Octany requires of success URLs"
            ),
        });
    }
    Ok(parsed)
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

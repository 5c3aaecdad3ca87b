//! What the billable's plans carry: features and limits, answered from the
//! guard's cached state (no Octany request, no database read while the
//! cache is fresh).

use serde::Serialize;

use super::Billing;
use crate::domain::features::{Feature, Limit, larger};
use crate::domain::model::ProductId;
use crate::web::billable::Billable;
use crate::web::error::BillingError;

/// A billable's allowance of one [`Limit`], beside what it uses now (the
/// host's count).
///
/// ```
/// # async fn demo(octany: &octany_actix::Octany, team: &impl octany_actix::Billable) -> Result<(), octany_actix::BillingError> {
/// #[derive(octany_actix::Limit)]
/// struct Seats;
///
/// let members = 4; // the host's own count
/// let seats = octany.billing(team).allowance::<Seats>(members).await?;
/// seats.check(1)?; // BillingError::OverLimit when a fifth is one too many
/// println!("{:?} seats left", seats.left());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Allowance {
    /// The limit's name ([`Limit::NAME`]).
    pub limit: &'static str,
    /// How many the billable's plans allow; `None`: unlimited.
    pub allowed: Option<u64>,
    /// How many it uses now.
    pub used: u64,
}

impl Allowance {
    /// How many more it may add (`None`: no limit).
    pub fn left(&self) -> Option<u64> {
        self.allowed.map(|a| a.saturating_sub(self.used))
    }

    /// Whether it is over its allowance now (a downgrade, a comp ended).
    pub fn exceeded(&self) -> bool {
        self.allowed.is_some_and(|a| self.used > a)
    }

    /// `Ok` when `adding` more stay within the allowance; otherwise
    /// [`BillingError::OverLimit`], naming the limit and the numbers.
    pub fn check(&self, adding: u64) -> Result<(), BillingError> {
        let would_be = self.used.saturating_add(adding);
        match self.allowed {
            Some(allowed) if would_be > allowed => Err(BillingError::OverLimit {
                limit: self.limit,
                allowed,
                would_be,
            }),
            _ => Ok(()),
        }
    }
}

impl<U: Billable> Billing<'_, U> {
    /// Whether the billable may use `F`: a plan granting access turns it
    /// on, or a comp grants it. Answered from the guard's cache; cheap
    /// enough for every request.
    pub async fn allows<F: Feature>(&self) -> Result<bool, BillingError> {
        let state = self.state().await?;
        let now = crate::domain::clock::Frozen(self.octany.clock().now());
        Ok(self.octany.carries_feature(&state, &now, F::NAME))
    }

    /// How many of `L` the billable's plans allow (`None`: unlimited).
    pub async fn limit<L: Limit>(&self) -> Result<Option<u64>, BillingError> {
        let state = self.state().await?;
        let now = crate::domain::clock::Frozen(self.octany.clock().now());
        Ok(self.octany.allowed(&state, &now, L::NAME, L::FREE))
    }

    /// The billable's allowance of `L` beside `used`, the host's count of
    /// it now: how many are left, and a [`check`](Allowance::check) before
    /// adding more.
    pub async fn allowance<L: Limit>(&self, used: u64) -> Result<Allowance, BillingError> {
        Ok(Allowance {
            limit: L::NAME,
            allowed: self.limit::<L>().await?,
            used,
        })
    }
}

impl<U: Billable> Billing<'_, U> {
    /// Refuses a swap of this handle's group to `product` when the
    /// billable uses more of a limit than it would then allow (the new
    /// plan's allowance, or a plan of another group still held), asking
    /// the host's [`UsageCounts`](crate::UsageCounts) (a comp's plan still
    /// counts: it is not swapped); without them, or
    /// for a product outside the catalog, nothing is checked.
    pub(crate) async fn fits(&self, product: ProductId) -> Result<(), BillingError> {
        let (Some(counts), Some(target)) =
            (self.octany.usage_counts(), self.octany.sold_as(product))
        else {
            return Ok(());
        };
        // Read past the cache: a swap is not undone.
        let state = self.octany.access_fresh(&self.reference()).await?;
        let now = crate::domain::clock::Frozen(self.octany.clock().now());
        let policy = self.octany.settings().policy;
        for name in self.octany.limit_names() {
            let allowed = state
                .granted(&now, policy)
                // The swap replaces this group's subscription; other
                // groups' plans and every comp still grant.
                .filter(|g| g.comp || self.octany.group_of(g.product_id) != self.group)
                .filter_map(|g| g.product_id.and_then(|p| self.octany.sold_as(p)))
                .map(|plan| plan.allowance(name))
                .fold(target.allowance(name), larger);
            let Some(allowed) = allowed else {
                continue;
            };
            let used = counts
                .count(&self.reference(), name)
                .await
                .map_err(|error| BillingError::UsageUnknown {
                    limit: name,
                    reason: error.to_string(),
                })?;
            if used > allowed {
                return Err(BillingError::OverLimit {
                    limit: name,
                    allowed,
                    would_be: used,
                });
            }
        }
        Ok(())
    }
}

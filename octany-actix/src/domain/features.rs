//! What a plan carries: features it turns on and limits it sets, each a
//! host type, so a misspelt feature or limit does not compile.

use crate::domain::model::{BillableRef, ProductId};

/// A feature a plan can turn on (exports, an API, SSO). Derive it on a unit
/// struct and name it in a plan's `features(...)`:
///
/// ```
/// use octany_actix::{Feature, Limit, Plan};
///
/// #[derive(Feature)]
/// struct Exports;
///
/// #[derive(Limit)]
/// #[octany(free = 1)]
/// struct Seats;
///
/// #[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
/// enum Plans {
///     #[plan(product = 1225, limits(Seats = 5))]
///     Basic,
///     #[plan(product = 1226, features(Exports), limits(Seats = unlimited))]
///     Pro,
/// }
///
/// assert_eq!(Exports::NAME, "exports");
/// assert!(Plans::Pro.grants(Exports::NAME));
/// assert!(!Plans::Basic.grants(Exports::NAME));
/// assert_eq!(Plans::Basic.limit(Seats::NAME), Some(Some(5)));
/// assert_eq!(Plans::Pro.limit(Seats::NAME), Some(None));
/// assert_eq!(Seats::FREE, 1);
/// ```
///
/// A misspelt feature or limit does not compile:
///
/// ```compile_fail
/// # use octany_actix::{Feature, Plan};
/// #[derive(Feature)]
/// struct Exports;
///
/// #[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
/// enum Plans {
///     #[plan(product = 1226, features(Exprots))]
///     Pro,
/// }
/// ```
///
/// A billable has a feature while a subscription to a plan that turns it
/// on grants access (or a comp grants it); ask with
/// [`Billing::allows`](crate::billing::Billing::allows), or guard a route
/// with [`RequireFeature`](crate::guard::RequireFeature).
pub trait Feature: Send + Sync + 'static {
    /// Its name (the struct's in snake case, or `#[octany(name = "...")]`):
    /// what the status route and the comps table say.
    const NAME: &'static str;
}

/// A limit a plan sets (seats, projects, API calls a month): a count the
/// host keeps, checked against the plan's number
/// ([`Billing::allowance`](crate::billing::Billing::allowance)). A plan names
/// it in `limits(Seats = 5)` or `limits(Seats = unlimited)`; a plan that
/// does not name it allows none of it, and a billable with no plan
/// granting access allows [`Limit::FREE`] (`#[octany(free = 1)]`, default 0).
/// With several plans granting access at once (a main plan and an add-on
/// group), the largest allowance counts.
pub trait Limit: Send + Sync + 'static {
    /// Its name (the struct's in snake case, or `#[octany(name = "...")]`).
    const NAME: &'static str;
    /// What a billable without a plan granting access may have.
    const FREE: u64 = 0;
}

/// A meter: usage billed in arrears, once per paid period. Record uses
/// with [`Billing::record_usage`](crate::billing::Billing::record_usage)
/// (no request to Octany); when the billable's subscription renews, the
/// closed period's total is charged once, as a one-off order of
/// [`Meter::PRODUCT`] on that subscription, for total × price. Register it
/// with [`OctanyBuilder::meter`](crate::OctanyBuilder::meter).
///
/// ```
/// use octany_actix::Meter;
/// use octany_actix::model::ProductId;
///
/// /// API calls: 2 öre each, VAT excluded, billed as product 1401.
/// struct ApiCalls;
///
/// impl Meter for ApiCalls {
///     const NAME: &'static str = "api_calls";
///     const PRODUCT: ProductId = ProductId(1401);
///     const UNIT_PRICE: i64 = 2;
/// }
/// ```
pub trait Meter: Send + Sync + 'static {
    /// Its name, as the ledger and the order's description say it.
    const NAME: &'static str;
    /// The Octany product the period's charge is an order of.
    const PRODUCT: ProductId;
    /// The price of [`Meter::PER`] units, in minor units (öre), VAT
    /// excluded.
    const UNIT_PRICE: i64;
    /// How many units [`Meter::UNIT_PRICE`] buys (default 1; e.g. 1000 for
    /// a price per thousand calls). A period's amount is rounded to the
    /// nearest minor unit.
    const PER: u64 = 1;
}

/// The host's counts of what a billable uses of each [`Limit`] (its
/// members, its projects), asked before a swap to a plan with smaller
/// limits: a swap that would leave the billable over a limit is refused
/// before anything is sent to Octany. Register it with
/// [`OctanyBuilder::usage_counts`](crate::OctanyBuilder::usage_counts): a
/// closure `(billable, limit) -> future of the count` is one.
///
/// ```
/// use octany_actix::UsageCounts;
/// use octany_actix::model::BillableRef;
///
/// fn counts() -> impl UsageCounts {
///     |team: BillableRef, limit: &'static str| async move {
///         // SELECT COUNT(*) FROM members WHERE team = … (the host's tables)
///         Ok(if limit == "seats" { 4 } else { 0 })
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait UsageCounts: Send + Sync + 'static {
    /// How many of the limit named `limit` ([`Limit::NAME`]) `billable`
    /// uses now. An error refuses the swap (503): a limit is never
    /// assumed met.
    async fn count(
        &self,
        billable: &BillableRef,
        limit: &'static str,
    ) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
}

#[async_trait::async_trait]
impl<F, Fut> UsageCounts for F
where
    F: Fn(BillableRef, &'static str) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u64, Box<dyn std::error::Error + Send + Sync>>> + Send,
{
    async fn count(
        &self,
        billable: &BillableRef,
        limit: &'static str,
    ) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        self(billable.clone(), limit).await
    }
}

/// A plan's allowance of a limit: `Some(n)`, or `None` for unlimited.
pub(crate) type Allowed = Option<u64>;

/// The larger of two allowances (unlimited is the largest).
pub(crate) fn larger(a: Allowed, b: Allowed) -> Allowed {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(a), Some(b)) => Some(a.max(b)),
    }
}

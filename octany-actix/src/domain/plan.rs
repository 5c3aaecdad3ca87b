//! Typed plans: a host enum whose variants are Octany products.

use crate::domain::model::ProductId;

/// A typed plan: a host enum whose variants are Octany products, so guards
/// and checkout take plans by type, not by magic numbers. Derive it:
///
/// ```
/// use octany_actix::Plan;
///
/// #[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
/// enum Pro {
///     #[plan(product = 1225)]
///     Monthly,
///     #[plan(product = 1226, slug = "pro-yearly")]
///     Yearly,
/// }
///
/// assert_eq!(Pro::Monthly.slug(), "monthly");
/// assert_eq!(Pro::from_slug("pro-yearly"), Some(Pro::Yearly));
/// assert_eq!(Pro::from_product(octany_actix::model::ProductId(1225)), Some(Pro::Monthly));
/// ```
///
/// A guard typed `RequireSubscription<User, Pro>` admits a subscriber to
/// any plan of `Pro`.
///
/// Plans belong to a **group**, Cashier's named subscription: a billable
/// holds at most one live subscription per group, so a checkout for another
/// plan of a group it already holds becomes a swap. Every plan type is in
/// the default group unless it names another, e.g. an add-on subscription
/// sold beside the main plan (the default group is `"default"`):
///
/// ```
/// use octany_actix::Plan;
///
/// #[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
/// #[plan(group = "support")]
/// enum Support {
///     #[plan(product = 1500)]
///     Priority,
/// }
///
/// assert_eq!(Support::GROUP, "support");
/// ```
pub trait Plan: Copy + Send + Sync + 'static {
    /// The group its plans belong to: one live subscription per billable
    /// and group.
    const GROUP: &'static str = DEFAULT_GROUP;

    /// The Octany product this plan is.
    fn product_id(&self) -> ProductId;

    /// Its name in URLs (`/billing/checkout/{slug}`).
    fn slug(&self) -> &'static str;

    /// Every plan of the type.
    fn all() -> &'static [Self];

    /// Whether it is sold at any price (`#[plan(pay_what_you_want)]`): a
    /// subscription to it grants access whatever it was paid. Any other
    /// plan grants nothing when paid below its catalogue price (an
    /// `amount` added to the checkout URL by the buyer, say).
    fn pay_what_you_want(&self) -> bool {
        false
    }

    /// The features it turns on (`#[plan(features(Exports, Api))]`), by
    /// [`Feature::NAME`](crate::Feature::NAME).
    fn features(&self) -> &'static [&'static str] {
        &[]
    }

    /// The limits it sets (`#[plan(limits(Seats = 5, Projects =
    /// unlimited))]`): each [`Limit::NAME`](crate::Limit::NAME) with its
    /// allowance, `None` for unlimited.
    fn limits(&self) -> &'static [(&'static str, Option<u64>)] {
        &[]
    }

    /// Whether it turns on the feature named `feature`.
    fn grants(&self, feature: &str) -> bool {
        self.features().contains(&feature)
    }

    /// Its allowance of the limit named `limit`: `None` when it does not
    /// name the limit (it allows none), `Some(None)` when unlimited.
    fn limit(&self, limit: &str) -> Option<Option<u64>> {
        self.limits()
            .iter()
            .find(|(name, _)| *name == limit)
            .map(|(_, allowed)| *allowed)
    }

    /// The plan of a product, if it is one of these.
    fn from_product(product: ProductId) -> Option<Self> {
        Self::all()
            .iter()
            .copied()
            .find(|p| p.product_id() == product)
    }

    /// The plan with this slug.
    fn from_slug(slug: &str) -> Option<Self> {
        Self::all().iter().copied().find(|p| p.slug() == slug)
    }
}

/// The group of every plan that names none (and of subscriptions to
/// products outside the catalog).
pub(crate) const DEFAULT_GROUP: &str = "default";

/// The plan set of "any subscription at all": the default of
/// [`RequireSubscription`](crate::web::guard::RequireSubscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyPlan {}

/// Whether a plan type admits a subscription's product.
#[doc(hidden)]
pub trait PlanSet: Send + Sync + 'static {
    fn admits(product: Option<ProductId>) -> bool;
}

impl PlanSet for AnyPlan {
    fn admits(_: Option<ProductId>) -> bool {
        true
    }
}

impl<P: Plan> PlanSet for P {
    fn admits(product: Option<ProductId>) -> bool {
        product.and_then(P::from_product).is_some()
    }
}

//! What the host implements: [`Billable`] for who pays, [`Plan`] for what
//! they can buy.

use crate::model::ProductId;

/// Who pays: a user, a team, an organisation. Implement it (or
/// `#[derive(Billable)]`) on the host's model; the library writes no code
/// against the host's tables and never reads sessions.
///
/// ```
/// use octany_actix::Billable;
/// struct Team { id: u64, owner_email: String }
/// impl Billable for Team {
///     fn billable_id(&self) -> String { self.id.to_string() }
///     fn billable_type(&self) -> &'static str { "team" }
///     fn billing_email(&self) -> Option<String> { Some(self.owner_email.clone()) }
/// }
/// let team = Team { id: 7, owner_email: "ops@example.com".into() };
/// assert_eq!(team.billable_ref(), "team:7");
/// ```
pub trait Billable {
    /// A stable id, unique within [`Billable::billable_type`].
    fn billable_id(&self) -> String;

    /// What kind of billable it is (default `"user"`).
    fn billable_type(&self) -> &'static str {
        "user"
    }

    /// The e-mail to pre-fill at checkout.
    fn billing_email(&self) -> Option<String> {
        None
    }

    /// The name to pre-fill at checkout and show in Octany's admin.
    fn billing_name(&self) -> Option<String> {
        None
    }

    /// The Octany `referenceId`: `{type}:{id}`, e.g. `user:42`.
    fn billable_ref(&self) -> String {
        format!("{}:{}", self.billable_type(), self.billable_id())
    }
}

/// Turns the fields `#[derive(Billable)]` points at into billing text.
#[doc(hidden)]
pub trait BillingText {
    fn billing_text(&self) -> Option<String>;
}

impl BillingText for String {
    fn billing_text(&self) -> Option<String> {
        (!self.trim().is_empty()).then(|| self.clone())
    }
}

impl BillingText for &str {
    fn billing_text(&self) -> Option<String> {
        (!self.trim().is_empty()).then(|| (*self).to_owned())
    }
}

impl<T: BillingText> BillingText for Option<T> {
    fn billing_text(&self) -> Option<String> {
        self.as_ref().and_then(BillingText::billing_text)
    }
}

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
pub trait Plan: Copy + Send + Sync + 'static {
    /// The Octany product this plan is.
    fn product_id(&self) -> ProductId;

    /// Its name in URLs (`/billing/checkout/{slug}`).
    fn slug(&self) -> &'static str;

    /// Every plan of the type.
    fn all() -> &'static [Self];

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

/// The plan set of "any subscription at all": the default of
/// [`RequireSubscription`](crate::guard::RequireSubscription).
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

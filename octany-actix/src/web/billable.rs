//! What the host implements for who pays: [`Billable`]. (What they can
//! buy is a [`Plan`](crate::Plan).)

use crate::domain::model::BillableRef;

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

    /// Whether the one acting may buy, swap, cancel and charge for this
    /// billable (default: yes; a user acts for themself). A team's member
    /// who is not an owner only uses what the team pays for: answer
    /// `false`, and every mounted route and [`Billing`](crate::billing::Billing)
    /// action refuses with [`BillingError::NotAllowed`](crate::BillingError::NotAllowed)
    /// (403), naming who can act ([`Billable::billing_managers`]).
    fn may_manage_billing(&self) -> bool {
        true
    }

    /// Who may act for this billable, as told to one who may not (e.g.
    /// "the team's owners").
    fn billing_managers(&self) -> Option<String> {
        None
    }

    /// The Octany `referenceId`: `{type}:{id}`, e.g. `user:42`.
    fn billable_ref(&self) -> BillableRef {
        BillableRef::new(self.billable_type(), &self.billable_id())
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

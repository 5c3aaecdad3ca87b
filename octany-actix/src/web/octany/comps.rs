//! Comps: a plan or features granted to a billable without Octany, by an
//! operator (support, the app's own code), audited and revocable.
//!
//! Who may: an operator, never the billable. These are methods of
//! [`Octany`], not of a billable's [`Billing`](crate::billing::Billing), so
//! no mounted route reaches them; expose them only to your staff (the CLI's
//! `comp` commands do).

use chrono::{DateTime, Utc};

use super::Octany;
use crate::domain::features::Feature;
use crate::domain::model::{BillableRef, ProductId};
use crate::domain::plan::Plan;
use crate::mirror::entity::comp;
use crate::mirror::rows::Comp;
use crate::web::error::BillingError;

/// What to grant: a plan, features, or both; until when; why; by whom.
///
/// ```
/// use octany_actix::billing::NewComp;
/// # #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)] enum Plans { #[plan(product = 1225)] Pro }
/// # #[derive(octany_actix::Feature)] struct Exports;
/// let partner = NewComp::new("partner agreement 2026-12", "anna@support")
///     .plan(Plans::Pro)
///     .until("2027-01-01T00:00:00Z".parse().unwrap());
/// let exports_only = NewComp::new("goodwill: export bug", "anna@support").feature::<Exports>();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComp {
    /// The plan it grants (a plan the app sells), if any.
    pub plan: Option<ProductId>,
    /// Features it grants (names of [`Feature`]s a plan carries).
    pub features: Vec<String>,
    /// When it ends by itself (`None`: when revoked). Expiry needs no
    /// webhook: the guard compares it with the clock.
    pub ends_at: Option<DateTime<Utc>>,
    /// Why (kept for the audit).
    pub reason: String,
    /// Who grants it (kept for the audit).
    pub granted_by: String,
}

impl NewComp {
    /// A comp granting nothing yet, for `reason`, by `granted_by`.
    pub fn new(reason: impl Into<String>, granted_by: impl Into<String>) -> Self {
        Self {
            plan: None,
            features: Vec::new(),
            ends_at: None,
            reason: reason.into(),
            granted_by: granted_by.into(),
        }
    }

    /// It grants `plan`.
    pub fn plan<P: Plan>(mut self, plan: P) -> Self {
        self.plan = Some(plan.product_id());
        self
    }

    /// It grants the feature `F`.
    pub fn feature<F: Feature>(mut self) -> Self {
        self.features.push(F::NAME.to_owned());
        self
    }

    /// It ends at `ends_at`.
    pub fn until(mut self, ends_at: DateTime<Utc>) -> Self {
        self.ends_at = Some(ends_at);
        self
    }
}

impl Octany {
    /// Grants `comp` to `billable`: every guard and check honours it at
    /// once (the billable's cached state is dropped, on every instance on
    /// PostgreSQL), until it ends or is revoked. Refused (400) without a
    /// reason or a grantor, with nothing to grant, a plan the app does not
    /// sell, a feature no plan carries, or an end already past.
    pub async fn grant_comp(
        &self,
        billable: &BillableRef,
        comp: NewComp,
    ) -> Result<Comp, BillingError> {
        let now = self.clock().now();
        if comp.reason.trim().is_empty() || comp.granted_by.trim().is_empty() {
            return Err(BillingError::invalid(
                "a comp needs a reason and who grants it",
            ));
        }
        if comp.plan.is_none() && comp.features.is_empty() {
            return Err(BillingError::invalid(
                "a comp grants a plan, features, or both",
            ));
        }
        if let Some(plan) = comp.plan
            && self.sold_as(plan).and_then(|p| p.group).is_none()
        {
            return Err(BillingError::UnknownPlan(plan.to_string()));
        }
        let known = self.feature_names();
        if let Some(unknown) = comp.features.iter().find(|f| !known.contains(&f.as_str())) {
            return Err(BillingError::invalid(format!(
                "no plan carries the feature `{unknown}` (known: {})",
                known.join(", ")
            )));
        }
        if comp.ends_at.is_some_and(|end| end <= now) {
            return Err(BillingError::invalid("a comp's end must be ahead"));
        }
        let row = comp::Model {
            id: uuid::Uuid::new_v4().to_string(),
            billable_ref: billable.to_string(),
            product_id: comp.plan.map(|p| p.0),
            features: (!comp.features.is_empty()).then(|| comp.features.join(",")),
            reason: comp.reason,
            granted_by: comp.granted_by,
            created_at: now,
            ends_at: comp.ends_at,
            revoked_at: None,
            revoked_by: None,
        };
        tracing::info!(comp = %row.id, billable = %billable, by = %row.granted_by, "comp granted");
        self.mirror().grant_comp(row.clone()).await?;
        Ok(Comp::from(row))
    }

    /// Revokes the comp `id`, by `by`: it grants nothing from now on.
    /// False when it was revoked before; [`BillingError::NoSuchComp`]
    /// when there is no such comp.
    pub async fn revoke_comp(&self, id: &str, by: &str) -> Result<bool, BillingError> {
        if by.trim().is_empty() {
            return Err(BillingError::invalid("say who revokes the comp"));
        }
        let mirror = self.mirror();
        let Some(row) = mirror.comp(id).await? else {
            return Err(BillingError::NoSuchComp { id: id.to_owned() });
        };
        let billable = BillableRef::parse(&row.billable_ref).ok_or_else(|| {
            BillingError::invalid(format!(
                "the comp's billable `{}` is unreadable",
                row.billable_ref
            ))
        })?;
        let revoked = mirror.revoke_comp(&billable, id, by).await?;
        if revoked {
            tracing::info!(comp = %id, billable = %billable, by = %by, "comp revoked");
        }
        Ok(revoked)
    }

    /// Every comp of `billable`, ended and revoked ones too, newest first:
    /// the audit.
    pub async fn comps(&self, billable: &BillableRef) -> Result<Vec<Comp>, BillingError> {
        Ok(self
            .mirror()
            .comps_of(billable.as_str())
            .await?
            .into_iter()
            .map(Comp::from)
            .collect())
    }
}

//! An operator's actions: resync a billable from Octany, replay a stored
//! webhook delivery, run an event's failed listeners again, cancel or swap
//! a billable's subscription, grant or revoke a comp. Each is
//! recorded in the audit log (`octany_audit`) before it runs and marked
//! with its outcome after, with who (as the host's guard names them), when
//! and why; [`Octany::audit`] reads it.
//!
//! Who may: an operator, never the billable. They are reached through
//! [`Octany::operator`], and through the console
//! ([`Octany::console`]), which mounts only behind the host's own
//! [`Staff`] extractor.

use std::future::Future;

use crate::domain::model::BillableRef;
use crate::mirror::audit::Begun;
use crate::mirror::rows::{Comp, SubscriptionRow};
use crate::mirror::sync::SyncError;
use crate::mirror::webhook::{Received, WebhookError};
use crate::web::billable::Billable;
use crate::web::billing::NewComp;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub use crate::web::console::Staff;

/// A billable an operator acts for: may manage its billing, as its own
/// managers may.
struct ActingFor(BillableRef);

impl Billable for ActingFor {
    fn billable_id(&self) -> String {
        self.0.id().to_owned()
    }

    fn billable_ref(&self) -> BillableRef {
        self.0.clone()
    }
}

/// An operator acting on the library's state, with a reason, every action
/// audited ([`Octany::operator`]).
///
/// ```
/// # async fn demo(octany: octany_actix::Octany) -> Result<(), octany_actix::BillingError> {
/// use octany_actix::model::BillableRef;
/// let ada = BillableRef::parse("user:1").unwrap();
/// let support = octany.operator("anna@support", "ticket 4711: paid but locked out")?;
/// support.resync(&ada).await?;
/// for entry in octany.audit(&ada, 20).await? {
///     println!("{} {} {} {}", entry.at, entry.actor, entry.action, entry.outcome);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Operator<'a> {
    octany: &'a Octany,
    by: String,
    why: String,
}

impl Octany {
    /// `by` (as your staff guard names them) acting for `why`: refused
    /// (400) without either, so every audit entry says who and why.
    pub fn operator(&self, by: &str, why: &str) -> Result<Operator<'_>, BillingError> {
        if by.trim().is_empty() || why.trim().is_empty() {
            return Err(BillingError::Octany(
                crate::client::OctanyError::InvalidRequest {
                    reason: "an operator's action needs who takes it and why".into(),
                },
            ));
        }
        Ok(Operator {
            octany: self,
            by: by.trim().to_owned(),
            why: why.trim().to_owned(),
        })
    }
}

impl Operator<'_> {
    /// Re-reads `billable`'s subscriptions and their orders from Octany
    /// into the mirror (after a lost webhook, say); returns how many rows
    /// changed.
    pub async fn resync(&self, billable: &BillableRef) -> Result<u64, BillingError> {
        let syncer = self.octany.syncer();
        self.audited("resync", Some(billable.as_str()), None, async {
            // In the billable's lane, so its requests are logged as its own.
            let effects =
                crate::client::on_behalf_of(billable.as_str(), syncer.sync_billable(billable))
                    .await?;
            let changed = effects.subscriptions + effects.orders;
            Ok((changed, format!("{changed} row(s) changed")))
        })
        .await
    }

    /// Applies the stored webhook delivery `delivery_id` again.
    pub async fn replay_delivery(&self, delivery_id: &str) -> Result<Received, WebhookError> {
        let receiver = self.octany.receiver();
        let about = self
            .octany
            .mirror()
            .console()
            .delivery(delivery_id)
            .await
            .map_err(SyncError::from)?
            .and_then(|d| d.billable_ref);
        let run = async {
            let received = receiver.replay(delivery_id).await?;
            Ok((received, format!("{received:?}")))
        };
        self.audited("replay_delivery", about.as_deref(), Some(delivery_id), run)
            .await
    }

    /// Runs the listeners of the billing event `event_id` that have not
    /// succeeded, now rather than at its next retry: true when every one
    /// has now succeeded; an unknown or delivered event is `Ok(false)`,
    /// and the audit entry says which.
    pub async fn retry_listeners(&self, event_id: &str) -> Result<bool, BillingError> {
        let mirror = self.octany.mirror();
        let billable = mirror.event_billable(event_id).await?;
        let syncer = self.octany.syncer();
        let run = async {
            Ok(match syncer.retry_event(event_id).await? {
                None => (false, "no undelivered event of that id".to_owned()),
                Some(true) => (true, "every listener has run".to_owned()),
                Some(false) => (
                    false,
                    "a listener failed again, or another instance holds the event".to_owned(),
                ),
            })
        };
        self.audited("retry_listeners", billable.as_deref(), Some(event_id), run)
            .await
    }

    /// Cancels `billable`'s current subscription in the group of the plan
    /// `slug` (the default group when `None`) at the end of its paid
    /// period, as [`Billing::cancel`](crate::billing::Billing::cancel) does.
    pub async fn cancel(
        &self,
        billable: &BillableRef,
        slug: Option<&str>,
    ) -> Result<SubscriptionRow, BillingError> {
        let acting = ActingFor(billable.clone());
        let billing = self.octany.billing(&acting);
        let billing = match slug {
            None => billing,
            Some(slug) => {
                let plan = self
                    .octany
                    .sold_at(slug)
                    .and_then(|p| p.group)
                    .ok_or_else(|| BillingError::UnknownPlan(slug.to_owned()))?;
                billing.in_group_named(plan)
            }
        };
        self.audited("cancel", Some(billable.as_str()), slug, async {
            let row = billing.cancel().await?;
            let detail = format!("subscription {} is {}", row.id, row.status);
            Ok((row, detail))
        })
        .await
    }

    /// Moves `billable`'s subscription of the plan `slug`'s group to that
    /// plan, as [`Billing::swap`](crate::billing::Billing::swap) does.
    pub async fn swap(
        &self,
        billable: &BillableRef,
        slug: &str,
    ) -> Result<SubscriptionRow, BillingError> {
        let plan = self
            .octany
            .sold_at(slug)
            .filter(|p| p.group.is_some())
            .ok_or_else(|| BillingError::UnknownPlan(slug.to_owned()))?;
        let (product, group) = (plan.product, plan.group.unwrap_or_default());
        let acting = ActingFor(billable.clone());
        self.audited("swap", Some(billable.as_str()), Some(slug), async {
            let billing = self.octany.billing(&acting).in_group_named(group);
            let row = billing.swap_to(product).await?;
            let detail = format!("subscription {} is on {slug}", row.id);
            Ok((row, detail))
        })
        .await
    }

    /// Grants `billable` a comp ([`Octany::grant_comp`]), granted by this
    /// operator for this reason (what `comp` says of either is replaced).
    pub async fn grant_comp(
        &self,
        billable: &BillableRef,
        comp: NewComp,
    ) -> Result<Comp, BillingError> {
        let comp = NewComp {
            reason: self.why.clone(),
            granted_by: self.by.clone(),
            ..comp
        };
        self.audited("grant_comp", Some(billable.as_str()), None, async {
            let granted = self.octany.grant_comp(billable, comp).await?;
            let detail = format!("comp {} granted", granted.id);
            Ok((granted, detail))
        })
        .await
    }

    /// Revokes the comp `id` ([`Octany::revoke_comp`]); false when it was
    /// revoked before.
    pub async fn revoke_comp(&self, id: &str) -> Result<bool, BillingError> {
        let billable = self.octany.mirror().comp(id).await?.map(|c| c.billable_ref);
        self.audited("revoke_comp", billable.as_deref(), Some(id), async {
            let revoked = self.octany.revoke_comp(id, &self.by).await?;
            let detail = if revoked {
                "revoked"
            } else {
                "was revoked before"
            };
            Ok((revoked, detail.to_owned()))
        })
        .await
    }

    /// Posts a signed `test.hook` to this app's own webhook URL, as
    /// `doctor` does: `Ok(what it answered)` when the endpoint verified
    /// it, `Err(what to fix)` when not; audited `done` or `failed` either
    /// way (`Err` of the outer result: the audit log could not be written).
    pub async fn check_webhook_endpoint(&self) -> Result<Result<String, String>, BillingError> {
        let log = self.octany.mirror().audit();
        let url = self.octany.settings().route_url("webhook").to_string();
        let id = log
            .begin(Begun {
                at: self.octany.clock().now(),
                actor: &self.by,
                action: "check_endpoint",
                billable: None,
                target: Some(&url),
                reason: &self.why,
            })
            .await?;
        let checked = self.octany.check_webhook_endpoint().await;
        let (done, detail) = match &checked {
            Ok(said) => (true, said),
            Err(fix) => (false, fix),
        };
        log.finish(id, done, detail).await?;
        Ok(checked)
    }

    /// Records the action, runs `work`, marks the outcome.
    async fn audited<T, E: From<SyncError> + std::fmt::Display>(
        &self,
        action: &str,
        billable: Option<&str>,
        target: Option<&str>,
        work: impl Future<Output = Result<(T, String), E>>,
    ) -> Result<T, E> {
        let log = self.octany.mirror().audit();
        let id = log
            .begin(Begun {
                at: self.octany.clock().now(),
                actor: &self.by,
                action,
                billable,
                target,
                reason: &self.why,
            })
            .await
            .map_err(SyncError::from)?;
        tracing::info!(action, by = %self.by, billable, target, "operator action");
        match work.await {
            Ok((value, detail)) => {
                log.finish(id, true, &detail)
                    .await
                    .map_err(SyncError::from)?;
                Ok(value)
            }
            Err(error) => {
                let detail = error.to_string();
                log.finish(id, false, &detail)
                    .await
                    .map_err(SyncError::from)?;
                Err(error)
            }
        }
    }
}

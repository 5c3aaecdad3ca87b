//! Operations: everything an operator does, in one place.
//!
//! - For one billable: resync it from Octany, replay a stored webhook
//!   delivery, run an event's failed listeners again, cancel or swap its
//!   subscription, grant or revoke a comp.
//! - For the whole mirror: backfill it from Octany, reconcile what is due,
//!   replay the failed deliveries or those received in a window, prune old
//!   deliveries and API-call log lines, check the webhook endpoint.
//!
//! Each is recorded in the audit log (`octany_audit`) before it runs and
//! marked with its outcome after, with who (as the host's guard names
//! them), when and why; [`Octany::audit`] and
//! [`Octany::audit_of_operations`] read it. The CLI's commands
//! (`octany_actix::cli`, feature `cli`) are these.
//!
//! Who may: an operator, never the billable. They are reached through
//! [`Octany::operator`], and through the console
//! ([`Octany::console`]), which mounts only behind the host's own
//! [`Staff`] extractor. (The engine the library runs by itself, the
//! background task of [`Octany::spawn_background`] and the webhook route,
//! is not an operator and is not audited; its syncer and receiver are not
//! part of the API.)

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::model::BillableRef;
use crate::mirror::audit::Begun;
use crate::mirror::rows::{Comp, SubscriptionRow};
use crate::mirror::sync::SyncError;
use crate::mirror::webhook::{Received, WebhookError};
use crate::web::billable::Billable;
use crate::web::billing::NewComp;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub use crate::mirror::sync::backfill::{BackfillOptions, BackfillProgress};
pub use crate::mirror::sync::reconcile::ReconcileReport;
pub use crate::mirror::webhook::receiver::ReplayReport;
pub use crate::web::console::Staff;

/// What [`Operator::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Applied webhook deliveries (failed ones are kept for replay).
    pub deliveries: u64,
    /// Lines of the API-call log.
    pub api_calls: u64,
}

/// The shortest age [`Operator::prune`] deletes: a delivery's row is its
/// dedupe, and Octany retries a delivery for days.
const PRUNE_MIN_AGE: Duration = Duration::from_secs(7 * 86_400);

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
            return Err(BillingError::invalid(
                "an operator's action needs who takes it and why",
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

    /// Mirrors every subscription of the account from Octany, page after
    /// page, each page in one transaction, calling `progress` after each;
    /// stopped, it resumes from [`BackfillProgress::next_page`]. One page
    /// is in memory at a time; requests go through the client, which waits
    /// out 429s with `Retry-After`.
    pub async fn backfill(
        &self,
        options: BackfillOptions,
        progress: impl FnMut(&BackfillProgress) + Send,
    ) -> Result<BackfillProgress, BillingError> {
        let from = format!("from page {}", options.start_page);
        let run = async {
            let done = self.octany.syncer().backfill(options, progress).await?;
            let detail = format!(
                "{} subscription(s), {} order(s); {}",
                done.subscriptions,
                done.orders,
                match done.next_page {
                    None => "done".to_owned(),
                    Some(page) => format!("resume from page {page}"),
                }
            );
            Ok((done, detail))
        };
        self.audited("backfill", None, Some(&from), run).await
    }

    /// Re-reads from Octany what is due now (renewals and ends passed,
    /// rows flagged) and lapses abandoned checkouts, as the periodic
    /// reconcile does.
    pub async fn reconcile(&self) -> Result<ReconcileReport, BillingError> {
        let run = async {
            let report = self.octany.syncer().reconcile().await?;
            let detail = format!(
                "re-read {}, {} failed; {} checkout(s) abandoned",
                report.synced, report.failed, report.abandoned
            );
            Ok((report, detail))
        };
        self.audited("reconcile", None, None, run).await
    }

    /// Applies again every stored delivery whose applying failed.
    pub async fn replay_failed(&self) -> Result<ReplayReport, WebhookError> {
        let run = async {
            let report = self.octany.receiver().replay_failed().await?;
            Ok((report.clone(), replayed(&report)))
        };
        self.audited("replay_failed", None, None, run).await
    }

    /// Applies again every delivery first received at or after `since`
    /// (and before `until`, if given), applied or not: after a bug fix,
    /// say. An older state never overwrites a newer one, so it is safe.
    pub async fn replay_received(
        &self,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<ReplayReport, WebhookError> {
        let window = match until {
            Some(until) => format!("{} .. {}", since.to_rfc3339(), until.to_rfc3339()),
            None => format!("{} ..", since.to_rfc3339()),
        };
        let run = async {
            let receiver = self.octany.receiver();
            let report = receiver.replay_received_since(since, until).await?;
            Ok((report.clone(), replayed(&report)))
        };
        self.audited("replay_received", None, Some(&window), run)
            .await
    }

    /// Deletes the webhook deliveries applied more than `older_than` ago
    /// (those that failed are kept) and the API-call log's lines as old.
    /// Refused (400) under seven days: a delivery's row is what
    /// recognises it when Octany sends it again.
    pub async fn prune(&self, older_than: Duration) -> Result<Pruned, BillingError> {
        if older_than < PRUNE_MIN_AGE {
            return Err(BillingError::invalid(format!(
                "prune keeps at least {} days: Octany retries a delivery for days, and its row is the dedupe",
                PRUNE_MIN_AGE.as_secs() / 86_400
            )));
        }
        let age = format!("older than {} day(s)", older_than.as_secs() / 86_400);
        let run = async {
            let deliveries = self.octany.receiver().prune(older_than).await?;
            let api_calls = match crate::domain::clock::ago(self.octany.clock().now(), older_than) {
                Some(before) => self.octany.mirror().prune_api_calls(before).await?,
                None => 0,
            };
            let detail = format!("{deliveries} delivery(ies), {api_calls} API call(s) deleted");
            Ok((
                Pruned {
                    deliveries,
                    api_calls,
                },
                detail,
            ))
        };
        self.audited("prune", None, Some(&age), run).await
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

/// What a replay's audit entry says of it.
fn replayed(report: &ReplayReport) -> String {
    format!(
        "replayed {}; {} failed again",
        report.replayed, report.failed
    )
}

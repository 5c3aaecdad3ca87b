use chrono::{DateTime, Utc};

use super::SubscriptionStatus;
use crate::domain::clock::Clock;

/// What the guard allows beyond Octany's own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Keep access while a renewal is `delayed` (Octany retrying a failed
    /// charge), as Laravel Cashier does for past-due. Off by default.
    pub delayed_keeps_access: bool,
    /// How long past `renews_at` a subscription keeps access with no
    /// renewal seen (webhooks may be late or lost); after that it waits for
    /// a sync to confirm it. `None` trusts `renews_at` forever. Default 2 days.
    pub renewal_grace: Option<std::time::Duration>,
    /// Grant access to a `pending` subscription whose first invoice is not
    /// yet due (customers who pay by invoice: Fortnox, Billecta,
    /// e-faktura), and take it away once the invoice is overdue. Off by
    /// default: until the invoice is paid, nothing has been paid.
    pub invoice_grants_access: bool,
    /// How long after the purchase an invoice falls due (API.md section 6:
    /// 14 days).
    pub invoice_terms: std::time::Duration,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            delayed_keeps_access: false,
            renewal_grace: Some(std::time::Duration::from_secs(2 * 86_400)),
            invoice_grants_access: false,
            invoice_terms: std::time::Duration::from_secs(14 * 86_400),
        }
    }
}

/// The entitlement rules of API.md section 6, for anything that has a
/// status and an end date: a [`Subscription`](super::Subscription) from
/// the API, or a row of the local mirror.
///
/// Every question takes a [`Clock`]: "now" is never read inline.
///
/// ```
/// use octany_actix::clock::ManualClock;
/// use octany_actix::model::{AccessPolicy, Entitlement, SubscriptionStatus};
/// use chrono::{DateTime, Utc};
///
/// struct Row { status: SubscriptionStatus, ends_at: Option<DateTime<Utc>> }
/// impl Entitlement for Row {
///     fn status(&self) -> SubscriptionStatus { self.status.clone() }
///     fn ends_at(&self) -> Option<DateTime<Utc>> { self.ends_at }
/// }
///
/// let clock = ManualClock::at("2026-06-01T00:00:00Z".parse().unwrap());
/// let row = Row {
///     status: SubscriptionStatus::Cancelled,
///     ends_at: Some("2026-06-30T00:00:00Z".parse().unwrap()),
/// };
/// assert!(!row.is_paying(&clock));
/// assert!(row.on_grace_period(&clock));
/// assert!(row.has_access(&clock, AccessPolicy::default()));
/// ```
pub trait Entitlement {
    /// The status.
    fn status(&self) -> SubscriptionStatus;

    /// When it ends, if it does.
    fn ends_at(&self) -> Option<DateTime<Utc>>;

    /// When it renews next, if known.
    fn renews_at(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// When it was bought, if known (the mirror: when it was first seen).
    /// An invoice's due date is counted from it.
    fn bought_at(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// When the first invoice of a `pending` subscription falls due:
    /// [`AccessPolicy::invoice_terms`] after it was bought. `None` when it
    /// is not waiting for an invoice (or its purchase time is unknown).
    fn invoice_due_at(&self, policy: AccessPolicy) -> Option<DateTime<Utc>> {
        if self.status() != SubscriptionStatus::Pending {
            return None;
        }
        let terms = chrono::Duration::from_std(policy.invoice_terms).ok()?;
        self.bought_at()?.checked_add_signed(terms)
    }

    /// Waiting for its first invoice to be paid, which is not yet due.
    fn awaiting_invoice(&self, clock: &dyn Clock, policy: AccessPolicy) -> bool {
        self.invoice_due_at(policy)
            .is_some_and(|due| due > clock.now())
    }

    /// Paid below its plan's catalogue price (before VAT), and the plan is
    /// not sold at any price: it grants nothing. `false` where unknown.
    fn underpaid(&self) -> bool {
        false
    }

    /// Whether a renewal was due more than the policy's grace ago and has
    /// not been seen: such a state is stale until a sync confirms it.
    fn renewal_overdue(&self, clock: &dyn Clock, policy: AccessPolicy) -> bool {
        match (self.renews_at(), policy.renewal_grace) {
            (Some(due), Some(grace)) => {
                let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
                due.checked_add_signed(grace)
                    .is_some_and(|limit| limit < clock.now())
            }
            _ => false,
        }
    }

    /// Whether `ends_at` is still ahead (or there is none).
    #[doc(hidden)]
    fn runs_at(&self, now: DateTime<Utc>) -> bool {
        self.ends_at().is_none_or(|end| end > now)
    }

    /// Octany's own rule: `active` or `trialing`, and not past `ends_at`.
    fn is_paying(&self, clock: &dyn Clock) -> bool {
        matches!(
            self.status(),
            SubscriptionStatus::Active | SubscriptionStatus::Trialing
        ) && self.runs_at(clock.now())
    }

    /// In a free trial that has not ended.
    fn on_trial(&self, clock: &dyn Clock) -> bool {
        self.status() == SubscriptionStatus::Trialing && self.runs_at(clock.now())
    }

    /// Cancelled, but paid until an `ends_at` still ahead.
    fn on_grace_period(&self, clock: &dyn Clock) -> bool {
        self.status() == SubscriptionStatus::Cancelled
            && self.ends_at().is_some_and(|end| end > clock.now())
    }

    /// What the guard checks: paying, or on a grace period; and, when the
    /// policy says so, `delayed` (until `ends_at`, if one is set) and
    /// `pending` with an invoice not yet due. An unknown status never grants
    /// access and is logged; neither does a subscription
    /// [`underpaid`](Entitlement::underpaid).
    fn has_access(&self, clock: &dyn Clock, policy: AccessPolicy) -> bool {
        let (granted, why) = access_reason(self, clock, policy);
        if !granted && let SubscriptionStatus::Unknown(status) = self.status() {
            tracing::warn!(status = %status, why, "unknown subscription status; denying access");
        }
        granted
    }

    /// Over for good: `expired` or `unpaid`, or past its `ends_at`.
    fn has_ended(&self, clock: &dyn Clock) -> bool {
        matches!(
            self.status(),
            SubscriptionStatus::Expired | SubscriptionStatus::Unpaid
        ) || self.ends_at().is_some_and(|end| end <= clock.now())
    }
}

/// The guard's rule, with the reason it grants or denies (what
/// [`Entitlement::has_access`] answers, and what the operator's console
/// shows): the first that applies of the rules in the order below.
pub(crate) fn access_reason<E: Entitlement + ?Sized>(
    e: &E,
    clock: &dyn Clock,
    policy: AccessPolicy,
) -> (bool, &'static str) {
    use SubscriptionStatus as S;
    // In the order the old `has_access` asked, so that the guard's common
    // case (active) costs what it did: no more clock reads.
    let status = e.status();
    if let S::Unknown(_) = status {
        return (false, "denied: a status this version does not know");
    }
    if e.underpaid() {
        return (false, "denied: paid below its plan's price");
    }
    if e.renewal_overdue(clock, policy) {
        return (
            false,
            "denied: the renewal is overdue past the grace; waiting for a sync to confirm it",
        );
    }
    if e.is_paying(clock) {
        return (
            true,
            if status == S::Trialing {
                "granted: on trial"
            } else {
                "granted: active"
            },
        );
    }
    if e.on_grace_period(clock) {
        return (true, "granted: cancelled, paid until it ends");
    }
    let now = clock.now();
    let runs = e.runs_at(now);
    if policy.delayed_keeps_access && status == S::Delayed && runs {
        return (
            true,
            "granted: the renewal failed and Octany retries; the policy keeps access",
        );
    }
    if policy.invoice_grants_access && e.awaiting_invoice(clock, policy) {
        return (true, "granted: its invoice is not yet due");
    }
    match status {
        S::Delayed if runs => (
            false,
            "denied: the renewal failed and Octany retries the charge",
        ),
        S::Pending => (false, "denied: pending, not paid"),
        _ if e.has_ended(clock) => (false, "denied: ended"),
        _ => (false, "denied: its status grants nothing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::ManualClock;

    struct Row(SubscriptionStatus, Option<DateTime<Utc>>);
    impl Entitlement for Row {
        fn status(&self) -> SubscriptionStatus {
            self.0.clone()
        }
        fn ends_at(&self) -> Option<DateTime<Utc>> {
            self.1
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    /// `ends_at` at each edge: none, past, exactly now, future.
    fn ends() -> [(&'static str, Option<DateTime<Utc>>); 4] {
        let now = now();
        [
            ("none", None),
            ("past", Some(now - chrono::Duration::seconds(1))),
            ("now", Some(now)),
            ("future", Some(now + chrono::Duration::seconds(1))),
        ]
    }

    /// (status, ends_at) -> expected (paying, trial, grace, access, access with delayed, ended)
    fn expected(status: &SubscriptionStatus, end: &str) -> [bool; 6] {
        use SubscriptionStatus as S;
        let runs = matches!(end, "none" | "future");
        let passed = matches!(end, "past" | "now");
        let paying = matches!(status, S::Active | S::Trialing) && runs;
        let trial = *status == S::Trialing && runs;
        let grace = *status == S::Cancelled && end == "future";
        let access = paying || grace;
        let delayed = access || (*status == S::Delayed && runs);
        let ended = matches!(status, S::Expired | S::Unpaid) || passed;
        [paying, trial, grace, access, delayed, ended]
    }

    #[test]
    fn the_reason_names_the_rule_that_decided() {
        use SubscriptionStatus as S;
        let clock = ManualClock::at(now());
        let ahead = Some(now() + chrono::Duration::days(3));
        let past = Some(now() - chrono::Duration::days(3));
        let keeps = AccessPolicy {
            delayed_keeps_access: true,
            ..AccessPolicy::default()
        };
        let cases = [
            (S::Active, None, AccessPolicy::default(), "granted: active"),
            (
                S::Trialing,
                ahead,
                AccessPolicy::default(),
                "granted: on trial",
            ),
            (
                S::Cancelled,
                ahead,
                AccessPolicy::default(),
                "granted: cancelled, paid until it ends",
            ),
            (S::Cancelled, past, AccessPolicy::default(), "denied: ended"),
            (
                S::Delayed,
                None,
                AccessPolicy::default(),
                "denied: the renewal failed and Octany retries the charge",
            ),
            (
                S::Delayed,
                None,
                keeps,
                "granted: the renewal failed and Octany retries; the policy keeps access",
            ),
            (
                S::Pending,
                None,
                AccessPolicy::default(),
                "denied: pending, not paid",
            ),
            (
                S::Unknown("paused".into()),
                None,
                AccessPolicy::default(),
                "denied: a status this version does not know",
            ),
        ];
        for (status, end, policy, said) in cases {
            let row = Row(status.clone(), end);
            let (granted, why) = access_reason(&row, &clock, policy);
            assert_eq!(why, said, "{status}");
            assert_eq!(granted, said.starts_with("granted"), "{status}");
            assert_eq!(
                granted,
                row.has_access(&clock, policy),
                "{status}: one rule"
            );
        }
    }

    #[test]
    fn every_status_at_every_ends_at_edge() {
        let clock = ManualClock::at(now());
        let mut statuses = SubscriptionStatus::KNOWN.to_vec();
        statuses.push(SubscriptionStatus::Unknown("paused".into()));
        let mut checked = 0;
        for status in &statuses {
            for (label, end) in ends() {
                let row = Row(status.clone(), end);
                let got = [
                    row.is_paying(&clock),
                    row.on_trial(&clock),
                    row.on_grace_period(&clock),
                    row.has_access(&clock, AccessPolicy::default()),
                    row.has_access(
                        &clock,
                        AccessPolicy {
                            delayed_keeps_access: true,
                            ..AccessPolicy::default()
                        },
                    ),
                    row.has_ended(&clock),
                ];
                assert_eq!(
                    got,
                    expected(status, label),
                    "{status} with ends_at {label}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 9 * 4);
    }

    struct Renewing(DateTime<Utc>);
    impl Entitlement for Renewing {
        fn status(&self) -> SubscriptionStatus {
            SubscriptionStatus::Active
        }
        fn ends_at(&self) -> Option<DateTime<Utc>> {
            None
        }
        fn renews_at(&self) -> Option<DateTime<Utc>> {
            Some(self.0)
        }
    }

    #[test]
    fn an_overdue_renewal_stops_access_after_the_grace() {
        let clock = ManualClock::at(now());
        let policy = AccessPolicy::default();
        let one_day_late = Renewing(now() - chrono::Duration::days(1));
        assert!(
            one_day_late.has_access(&clock, policy),
            "within the 2-day grace"
        );
        let three_days_late = Renewing(now() - chrono::Duration::days(3));
        assert!(!three_days_late.has_access(&clock, policy));
        assert!(
            three_days_late.is_paying(&clock),
            "Octany's own rule is untouched"
        );
        let trusting = AccessPolicy {
            renewal_grace: None,
            ..policy
        };
        assert!(three_days_late.has_access(&clock, trusting));
    }

    #[test]
    fn spot_checks_of_the_rules() {
        let clock = ManualClock::at(now());
        let future = Some(now() + chrono::Duration::days(3));
        // Octany: `cancelled` does not mean revoke access; look at ends_at.
        assert!(
            Row(SubscriptionStatus::Cancelled, future).has_access(&clock, AccessPolicy::default())
        );
        // A cancelled subscription with no end date is not a grace period.
        assert!(
            !Row(SubscriptionStatus::Cancelled, None).has_access(&clock, AccessPolicy::default())
        );
        // delayed: no access unless opted in.
        assert!(
            !Row(SubscriptionStatus::Delayed, None).has_access(&clock, AccessPolicy::default())
        );
        // pending and future_start never grant access.
        assert!(
            !Row(SubscriptionStatus::Pending, None).has_access(&clock, AccessPolicy::default())
        );
        assert!(
            !Row(SubscriptionStatus::FutureStart, None).has_access(&clock, AccessPolicy::default())
        );
        // Moving the clock past ends_at ends the grace period.
        let row = Row(SubscriptionStatus::Cancelled, future);
        clock.advance(std::time::Duration::from_secs(3 * 86_400));
        assert!(!row.on_grace_period(&clock));
        assert!(row.has_ended(&clock));
    }

    struct Invoiced(SubscriptionStatus, DateTime<Utc>);
    impl Entitlement for Invoiced {
        fn status(&self) -> SubscriptionStatus {
            self.0.clone()
        }
        fn ends_at(&self) -> Option<DateTime<Utc>> {
            None
        }
        fn bought_at(&self) -> Option<DateTime<Utc>> {
            Some(self.1)
        }
    }

    #[test]
    fn an_unpaid_invoice_grants_access_until_due_when_opted_in() {
        let clock = ManualClock::at(now());
        let opted_in = AccessPolicy {
            invoice_grants_access: true,
            ..AccessPolicy::default()
        };
        let bought = now() - chrono::Duration::days(13);
        let pending = Invoiced(SubscriptionStatus::Pending, bought);
        assert_eq!(
            pending.invoice_due_at(opted_in),
            Some(bought + chrono::Duration::days(14))
        );
        assert!(pending.has_access(&clock, opted_in), "due tomorrow");
        assert!(
            !pending.has_access(&clock, AccessPolicy::default()),
            "off by default"
        );
        clock.advance(std::time::Duration::from_secs(86_400));
        assert!(!pending.has_access(&clock, opted_in), "overdue: no access");
        let unpaid = Invoiced(SubscriptionStatus::Unpaid, now());
        assert_eq!(unpaid.invoice_due_at(opted_in), None);
        assert!(!unpaid.has_access(&clock, opted_in));
    }
}

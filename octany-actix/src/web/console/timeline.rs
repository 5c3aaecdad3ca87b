//! A billable's timeline: every source's entries, merged newest first.

use chrono::{DateTime, Utc};

use crate::mirror::console::History;
use crate::mirror::entity::{api_call, audit, comp};

/// One line of the timeline.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) at: DateTime<Utc>,
    /// `webhook`, `event`, `api`, `checkout`, `charge`, `comp`, `audit`.
    pub(super) source: &'static str,
    /// What happened, in a few words.
    pub(super) what: String,
    /// Its outcome, as a word the page styles (`applied`, `stale`,
    /// `duplicate`, `failed`, `done`, ...).
    pub(super) outcome: String,
    /// More: ids, errors, the listeners that ran.
    pub(super) detail: String,
    /// A webhook's body as received.
    pub(super) body: Option<String>,
    /// The form of the action that fixes it, if any.
    pub(super) action: Option<Action>,
}

impl Entry {
    /// Its outcome as a CSS class.
    pub(super) fn class(&self) -> String {
        self.outcome.replace(' ', "-")
    }
}

/// A button on a timeline line.
#[derive(Debug)]
pub(super) struct Action {
    pub(super) url: String,
    pub(super) label: &'static str,
    pub(super) token: String,
}

/// What the timeline is made of, beside the billable's history.
pub(super) struct Sources {
    pub(super) history: History,
    pub(super) calls: Vec<api_call::Model>,
    pub(super) audit: Vec<audit::Model>,
    pub(super) comps: Vec<comp::Model>,
}

/// How a button for an action on `target` is made (its URL and token).
pub(super) trait Forms {
    fn replay(&self, delivery: &str) -> Action;
    fn retry(&self, event: &str) -> Action;
}

/// The entries of `sources`, newest first (equal times keep the order
/// each source lists them in, newest first).
pub(super) fn entries(sources: Sources, forms: &dyn Forms) -> Vec<Entry> {
    let Sources {
        history,
        calls,
        audit,
        comps,
    } = sources;
    let mut all = Vec::new();
    for d in history.deliveries {
        if d.duplicates > 0 {
            all.push(Entry {
                at: d.last_duplicate_at.unwrap_or(d.received_at),
                source: "webhook",
                what: format!("{} delivered again", d.event),
                outcome: "duplicate".into(),
                detail: format!(
                    "delivery {}: came {} more time(s), acknowledged, not applied again",
                    d.delivery_id, d.duplicates
                ),
                body: None,
                action: None,
            });
        }
        let failed = d.processed_at.is_none();
        all.push(Entry {
            at: d.received_at,
            source: "webhook",
            what: d.event.clone(),
            outcome: if failed {
                "failed".into()
            } else {
                d.outcome.clone().unwrap_or_else(|| "applied".into())
            },
            detail: format!(
                "delivery {}{}; {} attempt(s){}",
                d.delivery_id,
                d.resource
                    .as_deref()
                    .map(|r| format!(" about {r}"))
                    .unwrap_or_default(),
                d.attempts,
                d.last_error
                    .as_deref()
                    .map(|e| format!("; {e}"))
                    .unwrap_or_default()
            ),
            action: failed.then(|| forms.replay(&d.delivery_id)),
            body: Some(d.body),
        });
    }
    for e in history.events {
        let listeners: Vec<String> = serde_json::from_str(&e.done_listeners).unwrap_or_default();
        let delivered = e.delivered_at.is_some();
        all.push(Entry {
            at: e.created_at,
            source: "event",
            what: format!("{} (from a {})", e.kind, e.origin),
            outcome: match (delivered, &e.last_error) {
                (true, _) => "delivered".into(),
                (false, Some(_)) => "listener failed".into(),
                (false, None) => "pending".into(),
            },
            detail: format!(
                "event {}; listeners run: {}; {} attempt(s){}",
                e.id,
                if listeners.is_empty() {
                    "none".to_owned()
                } else {
                    listeners.join(", ")
                },
                e.attempts,
                e.last_error
                    .as_deref()
                    .map(|err| format!("; {err}"))
                    .unwrap_or_default()
            ),
            body: None,
            action: (!delivered).then(|| forms.retry(&e.id)),
        });
    }
    for c in calls {
        all.push(Entry {
            at: c.at,
            source: "api",
            what: format!("{} {}", c.method, c.path),
            outcome: c
                .status
                .map_or_else(|| "no answer".into(), |s| s.to_string()),
            detail: format!(
                "attempt {}, {} ms{}",
                c.attempt,
                c.duration_ms,
                c.error
                    .as_deref()
                    .map(|e| format!("; {e}"))
                    .unwrap_or_default()
            ),
            body: None,
            action: None,
        });
    }
    for c in history.checkouts {
        all.push(Entry {
            at: c.created_at,
            source: "checkout",
            what: format!("checkout of product {}", c.product_id),
            outcome: format!("{:?}", c.status).to_lowercase(),
            detail: format!(
                "intent {}{}{}",
                c.id,
                c.subscription_id
                    .as_deref()
                    .map(|s| format!("; subscription {s}"))
                    .unwrap_or_default(),
                c.order_id
                    .as_deref()
                    .map(|o| format!("; order {o}"))
                    .unwrap_or_default()
            ),
            body: None,
            action: None,
        });
    }
    for c in history.charges {
        all.push(Entry {
            at: c.created_at,
            source: "charge",
            what: format!(
                "charge{} on subscription {}",
                c.amount
                    .map(|a| format!(" of {a} (minor units)"))
                    .unwrap_or_default(),
                c.subscription_id
            ),
            outcome: format!("{:?}", c.state).to_lowercase(),
            detail: format!(
                "key {}{}{}",
                c.key,
                c.description
                    .as_deref()
                    .map(|d| format!("; {d}"))
                    .unwrap_or_default(),
                c.order_id
                    .as_deref()
                    .map(|o| format!("; order {o}"))
                    .unwrap_or_default()
            ),
            body: None,
            action: None,
        });
    }
    for c in comps {
        if let Some(revoked) = c.revoked_at {
            all.push(Entry {
                at: revoked,
                source: "comp",
                what: format!("comp {} revoked", c.id),
                outcome: "revoked".into(),
                detail: format!("by {}", c.revoked_by.clone().unwrap_or_default()),
                body: None,
                action: None,
            });
        }
        all.push(Entry {
            at: c.created_at,
            source: "comp",
            what: format!("comp {} granted", c.id),
            outcome: "granted".into(),
            detail: format!("by {}: {}", c.granted_by, c.reason),
            body: None,
            action: None,
        });
    }
    for a in audit {
        all.push(Entry {
            at: a.at,
            source: "audit",
            what: format!(
                "{} by {}{}",
                a.action,
                a.actor,
                a.target
                    .as_deref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default()
            ),
            outcome: a.outcome,
            detail: format!(
                "why: {}{}",
                a.reason,
                a.detail
                    .as_deref()
                    .map(|d| format!("; {d}"))
                    .unwrap_or_default()
            ),
            body: None,
            action: None,
        });
    }
    // Newest first; a stable sort keeps each source's own order on ties.
    all.sort_by_key(|e| std::cmp::Reverse(e.at));
    all
}

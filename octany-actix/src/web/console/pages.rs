//! The console's pages: the search, a billable's, the health page.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::timeline::{self, Action, Entry, Forms, Sources};
use super::{Mount, Staff, not_found, token};
use crate::domain::model::{BillableRef, Entitlement, access_reason};
use crate::domain::plan::AnyPlan;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

/// How many of each source a page lists.
const LIMIT: u64 = 100;

/// A rendered page: never cached (it shows live state), never framed (its
/// buttons act), its only resource its stylesheet, its forms posting here.
fn page(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[derive(Template)]
#[template(path = "octany/console/search.html")]
struct SearchPage {
    css: String,
    home: String,
    health: String,
    staff: String,
    query: String,
    /// Each found billable and its page.
    found: Vec<(String, String)>,
    searched: bool,
}

/// `GET {console}?q=`: the search; one match goes straight to its page.
pub(super) async fn search<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, BillingError> {
    let q = query.get("q").map(|q| q.trim()).unwrap_or_default();
    let mut found = Vec::new();
    if !q.is_empty() {
        let mut refs = octany.mirror().console().find(q).await?;
        let named = BillableRef::parse(q).into_iter();
        for host in staff.find(q).await.into_iter().chain(named) {
            if !refs.contains(&host.to_string()) {
                refs.push(host.to_string());
            }
        }
        found = refs
            .into_iter()
            .filter(|r| BillableRef::parse(r).is_some_and(|b| staff.may_see(&b)))
            .map(|r| {
                let url = mount.billable(&r);
                (r, url)
            })
            .collect();
        if let [(_, url)] = found.as_slice() {
            return Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, url.clone()))
                .finish());
        }
    }
    let body = SearchPage {
        css: mount.path("console.css"),
        home: mount.path(""),
        health: mount.path("health"),
        staff: staff.staff_name(),
        query: q.to_owned(),
        found,
        searched: !q.is_empty(),
    }
    .render()?;
    Ok(page(body))
}

/// A subscription, as the billable's page shows it.
struct SubscriptionLine {
    id: String,
    plan: String,
    status: String,
    renews: String,
    ends: String,
    /// The guard's rule for it: granted or denied, and why.
    reason: String,
    /// The slug of its plan, for its cancel form (`None`: not a plan the
    /// app sells, or over).
    cancel: Option<String>,
}

/// A comp, as the billable's page shows it.
struct CompLine {
    id: String,
    what: String,
    state: String,
    revoke: Option<Action>,
}

#[derive(Template)]
#[template(path = "octany/console/billable.html")]
struct BillablePage {
    css: String,
    home: String,
    health: String,
    staff: String,
    billable: String,
    /// The guard's answer now, with the rule behind it.
    answer: String,
    granted: bool,
    subscriptions: Vec<SubscriptionLine>,
    comps: Vec<CompLine>,
    /// The plans the swap and the comp may name (slug), and the features.
    plans: Vec<String>,
    features: Vec<&'static str>,
    resync: Action,
    cancel: Action,
    swap: Action,
    grant: Action,
    entries: Vec<Entry>,
    /// What the last action said, when it came back here.
    done: Option<String>,
}

/// The forms of one member of staff.
struct StaffForms<'a> {
    octany: &'a Octany,
    mount: &'a Mount,
    staff: &'a str,
}

impl StaffForms<'_> {
    fn form(&self, url: String, label: &'static str, action: &str, target: &str) -> Action {
        Action {
            url,
            label,
            token: token(self.octany, self.staff, action, target),
        }
    }
}

impl Forms for StaffForms<'_> {
    fn replay(&self, delivery: &str) -> Action {
        let url = self
            .mount
            .path(&format!("deliveries/{}/replay", super::encode(delivery)));
        self.form(url, "Replay", "replay", delivery)
    }

    fn retry(&self, event: &str) -> Action {
        let url = self
            .mount
            .path(&format!("events/{}/retry", super::encode(event)));
        self.form(url, "Run its listeners again", "retry", event)
    }
}

/// `GET {console}/b/{billable}`: its plans, the guard's answer, its
/// timeline, its actions.
pub(super) async fn billable<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, BillingError> {
    let Some(billable) = BillableRef::parse(&path).filter(|b| staff.may_see(b)) else {
        return Ok(not_found());
    };
    let name = staff.staff_name();
    let forms = StaffForms {
        octany: &octany,
        mount: &mount,
        staff: &name,
    };
    let b = billable.as_str();
    let mirror = octany.mirror();
    let clock = octany.clock().as_ref();
    let policy = octany.settings().policy;
    let state = octany.access_fresh(&billable).await?;
    let (answer, granted) = match state.granting::<AnyPlan>(clock, policy) {
        Some(grant) => (
            format!(
                "{} by {} {}",
                access_reason(grant.as_ref(), clock, policy).1,
                if grant.comp { "comp" } else { "subscription" },
                grant.id
            ),
            true,
        ),
        None => match state.subscriptions.first() {
            Some(newest) => (
                format!(
                    "{} (the newest, {})",
                    access_reason(newest.as_ref(), clock, policy).1,
                    newest.id
                ),
                false,
            ),
            None => ("denied: no subscription and no comp".to_owned(), false),
        },
    };
    let subscriptions = mirror.subscriptions_of(b).await?;
    let orders = mirror.orders_of(b).await?;
    let mut resources: Vec<String> = subscriptions.iter().map(|s| s.id.clone()).collect();
    resources.extend(orders.iter().map(|o| o.id.clone()));
    let history = mirror.console().history(b, &resources, LIMIT).await?;
    let calls = mirror.api_calls_of(b, LIMIT).await?;
    let audit = mirror.audit().of(Some(b), LIMIT).await?;
    let comps = mirror.comps_of(b).await?;
    let now = octany.clock().now();
    let day = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let subscription_lines = subscriptions
        .iter()
        .map(|s| {
            let grant = state.subscriptions.iter().find(|g| g.id == s.id);
            let plan = s.product_id.and_then(|p| octany.sold_as(p));
            SubscriptionLine {
                id: s.id.clone(),
                plan: plan.map_or_else(
                    || s.product_name.clone().unwrap_or_else(|| "?".into()),
                    |p| p.slug.clone(),
                ),
                status: s.status.to_string(),
                renews: day(s.renews_at),
                ends: day(s.ends_at),
                reason: grant
                    .map(|g| access_reason(g.as_ref(), clock, policy).1.to_owned())
                    .unwrap_or_default(),
                cancel: plan
                    .filter(|_| grant.is_some_and(|g| g.has_access(clock, policy)))
                    .filter(|_| s.status != crate::domain::model::SubscriptionStatus::Cancelled)
                    .map(|p| p.slug.clone()),
            }
        })
        .collect();
    let comp_lines = comps
        .iter()
        .map(|c| {
            let plan = c
                .product_id
                .and_then(|p| octany.sold_as(crate::domain::model::ProductId(p)))
                .map(|p| p.slug.clone());
            let features = c.features.clone().unwrap_or_default();
            let active = c.revoked_at.is_none() && c.ends_at.is_none_or(|end| end > now);
            CompLine {
                id: c.id.clone(),
                what: format!(
                    "{}{}{} ({}: {})",
                    plan.unwrap_or_default(),
                    if features.is_empty() { "" } else { " + " },
                    features,
                    c.granted_by,
                    c.reason
                ),
                state: if c.revoked_at.is_some() {
                    "revoked".into()
                } else if active {
                    format!("active until {}", day(c.ends_at))
                } else {
                    "ended".into()
                },
                revoke: active.then(|| {
                    forms.form(
                        mount.path(&format!("comps/{}/revoke", super::encode(&c.id))),
                        "Revoke",
                        "revoke_comp",
                        &c.id,
                    )
                }),
            }
        })
        .collect();
    let entries = timeline::entries(
        Sources {
            history,
            calls,
            audit,
            comps,
        },
        &forms,
    );
    let on = |action: &'static str, label: &'static str| {
        forms.form(format!("{}/{action}", mount.billable(b)), label, action, b)
    };
    let body = BillablePage {
        css: mount.path("console.css"),
        home: mount.path(""),
        health: mount.path("health"),
        staff: name.clone(),
        billable: b.to_owned(),
        answer,
        granted,
        subscriptions: subscription_lines,
        comps: comp_lines,
        plans: octany
            .plans()
            .iter()
            .filter(|p| p.group.is_some())
            .map(|p| p.slug.clone())
            .collect(),
        features: octany.feature_names(),
        resync: on("resync", "Resync from Octany"),
        cancel: on("cancel", "Cancel at period end"),
        swap: on("swap", "Swap"),
        grant: on("comps", "Grant comp"),
        entries,
        done: query.get("done").cloned(),
    }
    .render()?;
    Ok(page(body))
}

/// A stored row the health page lists.
struct HealthLine {
    at: String,
    what: String,
    detail: String,
    /// The billable's page, when it is about one the staff may see.
    billable: Option<String>,
    action: Option<Action>,
}

#[derive(Template)]
#[template(path = "octany/console/health.html")]
struct HealthPage {
    css: String,
    home: String,
    staff: String,
    failed_deliveries: u64,
    failed: Vec<HealthLine>,
    undelivered_events: u64,
    oldest_undelivered: String,
    undelivered: Vec<HealthLine>,
    budget: String,
    waiting: [usize; 3],
    calls: String,
    leases: Vec<String>,
    backlog: u64,
    drift: u64,
    drifted: Vec<HealthLine>,
    /// The newest operations on the whole mirror (backfill, reconcile,
    /// replays, prunes, endpoint checks), as audited.
    operations: Vec<HealthLine>,
    webhook_url: String,
    secrets: String,
    last_delivery: String,
    /// The endpoint check's form.
    check: Action,
    /// What the last action said, when it came back here.
    done: Option<String>,
}

/// `GET {console}/health`.
pub(super) async fn health<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, BillingError> {
    let name = staff.staff_name();
    let forms = StaffForms {
        octany: &octany,
        mount: &mount,
        staff: &name,
    };
    let now = octany.clock().now();
    let since = now - chrono::Duration::hours(24);
    let mirror = octany.mirror();
    let stored = mirror.console().stored(since, 20).await?;
    let backlog = mirror.reconcile_backlog().await?;
    let operations = mirror.audit().of(None, 20).await?;
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    // A line about a billable the staff may not see is left out.
    let visible = |billable: Option<&str>| match billable.map(BillableRef::parse) {
        None => Some(None),
        Some(Some(b)) if staff.may_see(&b) => Some(Some(mount.billable(b.as_str()))),
        Some(_) => None,
    };
    let failed = stored
        .newest_failed
        .into_iter()
        .filter_map(|d| {
            let billable = visible(d.billable_ref.as_deref())?;
            Some(HealthLine {
                at: at(d.received_at),
                what: d.event.clone(),
                detail: format!(
                    "delivery {}, {} attempt(s): {}",
                    d.delivery_id,
                    d.attempts,
                    d.last_error.unwrap_or_default()
                ),
                billable,
                action: Some(forms.replay(&d.delivery_id)),
            })
        })
        .collect();
    let events = |rows: Vec<crate::mirror::entity::event::Model>, retry: bool| -> Vec<HealthLine> {
        rows.into_iter()
            .filter_map(|e| {
                let billable = visible(e.billable_ref.as_ref().map(|b| b.as_str()))?;
                Some(HealthLine {
                    at: at(e.created_at),
                    what: format!("{} (from a {})", e.kind, e.origin),
                    detail: format!(
                        "event {}, {} attempt(s){}",
                        e.id,
                        e.attempts,
                        e.last_error
                            .as_deref()
                            .map(|err| format!(": {err}"))
                            .unwrap_or_default()
                    ),
                    billable,
                    action: retry.then(|| forms.retry(&e.id)),
                })
            })
            .collect()
    };
    let config = octany.client().config();
    let calls_line = format!(
        "{} request(s) to Octany in the last 24 hours; {} refused for the rate (429), {} failed (5xx or no answer)",
        stored.calls, stored.calls_limited, stored.calls_failed
    );
    let body = HealthPage {
        css: mount.path("console.css"),
        home: mount.path(""),
        staff: name.clone(),
        failed_deliveries: stored.failed_deliveries,
        failed,
        undelivered_events: stored.undelivered_events,
        oldest_undelivered: stored
            .oldest_undelivered
            .map(|t| format!("{} ({} min ago)", at(t), (now - t).num_minutes()))
            .unwrap_or_else(|| "none".into()),
        undelivered: events(stored.undelivered, true),
        budget: match config.rate_limit() {
            Some(limit) => format!(
                "{} requests a minute, bursts of {}",
                limit.per_minute, limit.burst
            ),
            None => "no rate limit".into(),
        },
        waiting: octany.client().waiting(),
        calls: calls_line,
        leases: stored
            .leases
            .iter()
            .map(|l| {
                let until = chrono::DateTime::from_timestamp_micros(l.expires_at)
                    .map(|t| {
                        if t > now {
                            format!("held until {}", at(t))
                        } else {
                            format!("free (lapsed {})", at(t))
                        }
                    })
                    .unwrap_or_default();
                format!("{}: {} by {}", l.name, until, l.holder)
            })
            .collect(),
        backlog,
        drift: stored.drift,
        drifted: events(stored.newest_drift, false),
        operations: operations
            .into_iter()
            .map(|e| HealthLine {
                at: at(e.at),
                what: format!(
                    "{}{} by {}",
                    e.action,
                    e.target.map(|t| format!(" ({t})")).unwrap_or_default(),
                    e.actor
                ),
                detail: format!(
                    "{}{}; why: {}",
                    e.outcome,
                    e.detail.map(|d| format!(": {d}")).unwrap_or_default(),
                    e.reason
                ),
                billable: None,
                action: None,
            })
            .collect(),
        webhook_url: octany.settings().route_url("webhook").to_string(),
        secrets: octany.webhook_secret_check().1,
        last_delivery: stored
            .last_delivery
            .map(|d| format!("{} ({}, {})", at(d.received_at), d.event, d.delivery_id))
            .unwrap_or_else(|| "none received from Octany yet".into()),
        check: forms.form(
            mount.path("health/endpoint"),
            "Check the endpoint now",
            "check_endpoint",
            "webhook",
        ),
        done: query.get("done").cloned(),
    }
    .render()?;
    Ok(page(body))
}

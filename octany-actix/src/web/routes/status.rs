//! `GET status`: the current user's billing state as JSON. `GET
//! status/stream`: the same, held open as server-sent events and sent
//! again the moment it changes: what the success page waits on.
//!
//! A held stream waits on a [`Watch`] of the billable (`mirror::watch`),
//! woken by this instance's commit of a change or, on PostgreSQL, another
//! instance's; it does no database work while it waits. While the billable
//! has no access yet (a payment on its way) it also syncs from Octany at
//! the status route's pace, so a lost webhook is found as the polling page
//! found it. It sends a keep-alive comment every
//! [`Settings::status_heartbeat`](crate::Settings::status_heartbeat), which
//! is how a closed tab is found out, and ends after [`HOLD`] (the browser
//! reconnects). Slots are bounded per billable and per instance; past
//! them the stream is refused with 429 and the page polls.

use std::convert::Infallible;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::answers::Query;
use crate::client::Priority;
use crate::domain::model::{BillableRef, Entitlement, format_timestamp};
use crate::domain::plan::AnyPlan;
use crate::mirror::watch::{Full, Watch};
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

/// How long one stream is held (counted in keep-alives) before it ends and
/// the browser reconnects.
const HOLD: std::time::Duration = std::time::Duration::from_secs(300);

/// The pause before the browser reconnects to an ended stream, in ms.
const RETRY_MS: u64 = 2_500;

pub(super) async fn status<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let billable = user.billable_ref();
    // A poll: it waits behind people's requests, and when the budget's
    // queue is full it is not sent and the mirror answers.
    Priority::Poll.scope(octany.sync_throttled(&billable)).await;
    let body = state_json(
        &octany,
        &billable,
        query.get("checkout").map(String::as_str),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

pub(super) async fn status_stream<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if !octany.settings().status_stream {
        return Ok(HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "error": "status_stream_off",
                "message": "this app does not hold status streams; poll the status route",
            })));
    }
    let billable = user.billable_ref();
    // The slot first, so a change committed from here on wakes it.
    let watch = match octany.watch(billable.as_str()) {
        Ok(watch) => watch,
        Err(full) => return Ok(refused(&octany, full)),
    };
    let mut held = Held {
        checkout: query.get("checkout").cloned(),
        last: None,
        waiting: true,
        beats: 0,
        beat: None,
        sync: None,
        octany,
        billable,
        watch,
    };
    // The first state read here: a database outage is a 503, not a stream.
    let first = held.event().await?.unwrap_or_default();
    let opening = Bytes::from(format!("retry: {RETRY_MS}\n\n{first}"));
    let events =
        futures_util::stream::unfold((Some(opening), held), |(opening, mut held)| async move {
            let chunk = match opening {
                Some(opening) => opening,
                None => held.next().await?,
            };
            Some((Ok::<_, Infallible>(chunk), (None, held)))
        });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Not compressed (a compressing middleware would hold events back)
        // nor buffered by a proxy.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events))
}

/// 429: no slot; the page polls instead.
fn refused(octany: &Octany, full: Full) -> HttpResponse {
    let why = match full {
        Full::Billable => "this account has as many status streams open as it may",
        Full::Instance => "this server holds as many status streams as it may",
    };
    tracing::debug!(reason = why, "status stream refused");
    HttpResponse::TooManyRequests()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::RETRY_AFTER, "3"))
        .json(json!({
            "error": "too_many_waits",
            "message": format!("{why}; poll {} instead", octany.settings().route_path("status")),
        }))
}

/// A timer of a held stream (a clock's sleep, kept across wake-ups).
type Timer = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One held stream.
struct Held {
    octany: Octany,
    billable: BillableRef,
    checkout: Option<String>,
    watch: Watch,
    /// The last state sent.
    last: Option<String>,
    /// Whether the page still waits on Octany (as of the last state sent):
    /// no access yet, or a one-off purchase not yet completed.
    waiting: bool,
    /// Keep-alives sent: the stream ends after [`HOLD`] of them.
    beats: u32,
    /// The next keep-alive, on its own schedule (wake-ups do not delay it:
    /// it is how a closed tab is found out).
    beat: Option<Timer>,
    /// The next sync from Octany, while the page waits on a payment.
    sync: Option<Timer>,
}

impl Held {
    /// The next chunk to send: the state when it changed, or a keep-alive;
    /// `None` when the stream is over (its hold ran out, or the state
    /// could not be read: the browser reconnects).
    async fn next(&mut self) -> Option<Bytes> {
        let (heartbeat, sync_every) = {
            let settings = self.octany.settings();
            (settings.status_heartbeat, settings.status_sync_interval)
        };
        let clock = self.octany.clock().clone();
        let most = HOLD.as_secs_f64() / heartbeat.as_secs_f64().max(0.001);
        loop {
            if f64::from(self.beats) >= most {
                return None;
            }
            if self.waiting {
                // The page's load has just synced: the first at the route's pace.
                self.sync.get_or_insert_with(|| clock.sleep(sync_every));
            } else {
                self.sync = None;
            }
            let beat = self.beat.get_or_insert_with(|| clock.sleep(heartbeat));
            let sync = async {
                match self.sync.as_mut() {
                    Some(timer) => timer.await,
                    None => std::future::pending().await,
                }
            };
            enum Woke {
                Changed,
                Sync,
                Beat,
            }
            let woke = tokio::select! {
                () = self.watch.changed() => Woke::Changed,
                () = sync => Woke::Sync,
                () = beat => Woke::Beat,
            };
            match woke {
                Woke::Changed => {}
                Woke::Sync => {
                    self.sync = None;
                    Priority::Poll
                        .scope(self.octany.sync_throttled(&self.billable))
                        .await;
                }
                Woke::Beat => {
                    self.beat = None;
                    self.beats += 1;
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
            match self.event().await {
                Ok(Some(event)) => return Some(Bytes::from(event)),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "a status stream could not read the state; it ends and the browser reconnects");
                    return None;
                }
            }
        }
    }

    /// The state as an event, when it differs from the last one sent.
    async fn event(&mut self) -> Result<Option<String>, BillingError> {
        // Seen before reading: a change committed during the read wakes
        // the next wait.
        self.watch.seen();
        let body = state_json(&self.octany, &self.billable, self.checkout.as_deref()).await?;
        let text = body.to_string();
        if self.last.as_deref() == Some(text.as_str()) {
            return Ok(None);
        }
        self.waiting = body["access"] != Value::Bool(true)
            || (self.checkout.is_some() && body["checkout"]["status"] != json!("completed"));
        self.last = Some(text.clone());
        Ok(Some(format!("data: {text}\n\n")))
    }
}

/// The billable's state, as the status route and its stream answer it.
async fn state_json(
    octany: &Octany,
    billable: &BillableRef,
    checkout: Option<&str>,
) -> Result<Value, BillingError> {
    let state = octany.access(billable).await?;
    let clock = octany.clock().as_ref();
    let policy = octany.settings().policy;
    let current = state.current(clock, policy);
    let plan = current
        .and_then(|s| s.product_id)
        .and_then(|id| octany.sold_as(id))
        .map(|p| p.slug.clone());
    let access = state.granting::<AnyPlan>(clock, policy).is_some();
    let pending = !access
        && octany
            .mirror()
            .payment_pending(&state, billable.as_str(), clock, policy)
            .await?;
    let checkout = match checkout {
        Some(id) => octany.mirror().intent(billable, id).await?,
        None => None,
    };
    Ok(json!({
        "access": access,
        "reason": (!access).then(|| refusal(current.map(|s| s.as_ref()), pending, clock, policy)),
        "pending": pending,
        "invoice_due_at": current
            .and_then(|s| s.invoice_due_at(policy))
            .map(|t| format_timestamp(&t)),
        "checkout": checkout.map(|c| json!({
            "status": c.status,
            "subscription_id": c.subscription_id,
            "order_id": c.order_id,
        })),
        "status": current.map(|s| s.status.clone()),
        "plan": plan,
        "product_id": current.and_then(|s| s.product_id),
        "on_trial": current.is_some_and(|s| s.on_trial(clock)),
        "on_grace_period": current.is_some_and(|s| s.on_grace_period(clock)),
        "renews_at": current.and_then(|s| s.renews_at).map(|t| format_timestamp(&t)),
        "ends_at": current.and_then(|s| s.ends_at).map(|t| format_timestamp(&t)),
        "comps": state
            .granted(clock, policy)
            .filter(|s| s.comp)
            .map(|s| json!({
                "id": s.id,
                "plan": s.product_id.and_then(|id| octany.sold_as(id)).map(|p| p.slug.clone()),
                "features": s.comp_features,
                "ends_at": s.ends_at.map(|t| format_timestamp(&t)),
            }))
            .collect::<Vec<_>>(),
    }))
}

/// Why a billable has no access, for the status route: a payment on its
/// way, no subscription, paid below the plan's price, a renewal overdue
/// and unconfirmed, ended, or not paying (its status says how).
fn refusal(
    current: Option<&crate::mirror::access::Grant>,
    pending: bool,
    clock: &dyn crate::domain::clock::Clock,
    policy: crate::domain::model::AccessPolicy,
) -> &'static str {
    match current {
        _ if pending => "payment_pending",
        None => "no_subscription",
        Some(s) if s.underpaid => "underpaid",
        Some(s) if s.renewal_overdue(clock, policy) => "renewal_overdue",
        Some(s) if s.has_ended(clock) => "ended",
        Some(_) => "not_paying",
    }
}

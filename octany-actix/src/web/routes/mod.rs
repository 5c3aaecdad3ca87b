//! The billing routes [`Octany::scope`](crate::Octany::scope) mounts at the billing path:
//!
//! - `GET ` (the billing path itself): the billing page: plans, actions,
//!   Octany's portal links, orders with VAT and their receipts;
//! - `GET checkout/{plan}`: records the intent, 303 to Octany's checkout
//!   (409 if the plan is already held; 303 to `swap/{plan}` if another
//!   plan of its group is);
//! - `GET swap/{plan}`, `POST swap/{plan}`: the swap's confirmation page,
//!   saying what changes and when, and its form;
//! - `GET cancel`, `POST cancel`: the cancellation's confirmation page,
//!   saying until when access lasts, and its form;
//! - `GET success`: waits for the payment to settle, then forwards (or,
//!   for a one-off product, confirms the order); says so when the
//!   checkout was abandoned; `GET success.js`, its polling script (a file,
//!   so a host's `Content-Security-Policy` can forbid inline scripts);
//! - `GET status`: the current user's billing state as JSON (syncs at
//!   most every few seconds per user); `GET status/stream`, the same held
//!   open as server-sent events, sent again the moment it changes;
//! - `GET receipts/{order}`, `GET receipts/{order}/pdf`: the receipt of a
//!   paid order of the current billable, as a page or a PDF;
//! - `POST webhook`: the signed webhook receiver.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde_json::json;

use crate::domain::plan::AnyPlan;
use crate::mirror::rows::CheckoutStatus;
use crate::mirror::webhook::{Received, SIGNATURE_HEADER, WebhookError, WebhookReceiver};
use crate::web::billable::Billable;
use crate::web::billing::{CheckoutOptions, is_local_path};
use crate::web::error::BillingError;
use crate::web::octany::Octany;

impl Octany {
    /// The billing routes, mounted at [`Settings::billing_path`](crate::Settings::billing_path); `U` is the
    /// host's user extractor. Register the `Octany` on the `App` too, for
    /// the guards outside this scope.
    ///
    /// - `GET` the billing path itself: the billing page (each plan, its
    ///   status and dates, the change and cancel actions, Octany's
    ///   update-card and invoices links, the orders with VAT and receipts);
    /// - `GET checkout/{plan}`: records the intent, 303 to Octany's
    ///   checkout (409 if the plan is already held, 303 to the swap's
    ///   confirmation if another plan of its group is);
    /// - `GET`/`POST swap/{plan}`: the swap's confirmation page and form;
    /// - `GET`/`POST cancel` (`?plan=` picks a group): the cancellation's
    ///   confirmation page, saying until when access lasts, and its form;
    /// - `GET success`: waits for the payment to settle, then forwards (a
    ///   one-off purchase: confirms its order), and `GET success.js`, its
    ///   polling script;
    /// - `GET status`: the current user's billing state as JSON, and
    ///   `GET status/stream`: the same as server-sent events, sent again
    ///   the moment it changes (what the success page waits on);
    /// - `GET receipts/{order}` and `GET receipts/{order}/pdf`: the
    ///   receipt of a paid order of the current billable, as a page or a
    ///   PDF (see [`OctanyBuilder::seller`](crate::OctanyBuilder::seller));
    /// - `POST webhook`: the signed webhook receiver.
    pub fn scope<U: Billable + actix_web::FromRequest + 'static>(&self) -> actix_web::Scope {
        web::scope(&self.settings().billing_path)
            .app_data(web::Data::new(self.clone()))
            .configure(routes::<U>)
    }
}

/// Adds the billing routes to a scope; `U` is the host's user extractor.
pub(crate) fn routes<U: Billable + FromRequest + 'static>(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(billing_page::<U>))
        .route("/", web::get().to(billing_page::<U>))
        .route("/checkout/{plan}", web::get().to(start_checkout::<U>))
        .route("/swap/{plan}", web::get().to(swap_page::<U>))
        .route("/swap/{plan}", web::post().to(confirm_swap::<U>))
        .route("/cancel", web::get().to(cancel_page::<U>))
        .route("/cancel", web::post().to(confirm_cancel::<U>))
        .route("/success", web::get().to(success::<U>))
        .route("/success.js", web::get().to(success_script))
        .route("/status", web::get().to(status::<U>))
        .route("/status/stream", web::get().to(status_stream::<U>))
        .route("/receipts/{order}", web::get().to(receipt_page::<U>))
        .route("/receipts/{order}/pdf", web::get().to(receipt_pdf::<U>))
        .route("/webhook", web::post().to(webhook));
}

mod cancel;
mod swap;

mod account;
mod answers;
mod receipts;
mod status;

use account::billing_page;
use answers::{Query, busy_page, next_path, refuse_unless_allowed, see_other, with_next};
use cancel::{cancel_page, confirm_cancel};
use receipts::{receipt_page, receipt_pdf};
use status::{status, status_stream};
use swap::{confirm_swap, swap_page};

async fn start_checkout<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    plan: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if let Some(refused) = refuse_unless_allowed(&req, &user, &octany)? {
        return Ok(refused);
    }
    let slug = plan.into_inner();
    let product = octany
        .sold_at(&slug)
        .map(|p| p.product)
        .ok_or(BillingError::UnknownPlan(slug))?;
    let options = CheckoutOptions {
        next: query.get("next").filter(|n| is_local_path(n)).cloned(),
        ..CheckoutOptions::default()
    };
    let outcome = match octany
        .billing(&user)
        .checkout_url_for(product, options)
        .await
    {
        Ok(url) => Ok(see_other(url.as_str())),
        // Another plan of the group is held: a swap, confirmed first.
        Err(BillingError::SwapInstead {
            swap_path: Some(swap_path),
        }) => Ok(see_other(&with_next(swap_path, &query))),
        Err(other) => Err(other),
    };
    busy_page(&req, &octany, outcome)
}

/// What the success page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Waiting for Octany (polling).
    Waiting,
    /// Waited longer than the success timeout.
    TimedOut,
    /// No checkout came back: nothing is on its way.
    Abandoned,
    /// A one-off purchase, confirmed on its order.
    Purchased,
}

/// `GET success.js`: the success page's polling, as a file of its own so
/// a host's `Content-Security-Policy` can forbid inline scripts.
async fn success_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../templates/octany/success.js"))
}

#[derive(Template)]
#[template(path = "octany/success.html")]
struct SuccessPage {
    status_url: String,
    /// The status stream's URL; empty when streams are off.
    stream_url: String,
    script_url: String,
    next: String,
    pricing_path: String,
    poll_ms: u64,
    outcome: Outcome,
    order: Option<String>,
}

async fn success<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let billable = user.billable_ref();
    let billing = octany.billing(&user);
    // Coming back through the success URL moves the intent to "awaiting".
    let named = match query.get("checkout") {
        Some(id) => billing.returned(id).await?,
        None => None,
    };
    octany.sync_throttled(&billable).await;
    let next = next_path(&query, &octany);
    let settings = octany.settings();
    let one_off = named
        .as_ref()
        .and_then(|c| octany.sold_as(c.product_id))
        .is_some_and(|p| p.group.is_none());
    let state = octany.access(&billable).await?;
    if !one_off
        && state
            .granting::<AnyPlan>(octany.clock().as_ref(), settings.policy)
            .is_some()
    {
        return Ok(see_other(&next));
    }
    // The named intent, re-read (a sync may have completed it), else the newest.
    let intent = match &named {
        Some(named) => billing.intent(&named.id).await?,
        None => octany.mirror().newest_intent(&billable, false).await?,
    };
    let now = octany.clock().now();
    let mut order = None;
    let outcome = match &intent {
        None => Outcome::Abandoned,
        Some(c) if matches!(c.status, CheckoutStatus::Opened | CheckoutStatus::Abandoned) => {
            Outcome::Abandoned
        }
        Some(c) if one_off && c.status == CheckoutStatus::Completed => {
            order = c.order_id.clone();
            Outcome::Purchased
        }
        Some(c) => {
            let waited = (now - c.updated_at).to_std().unwrap_or_default();
            if waited > settings.success_timeout {
                Outcome::TimedOut
            } else {
                Outcome::Waiting
            }
        }
    };
    let mut status_url = settings.route_path("status");
    let mut stream_url = settings.route_path("status/stream");
    if let Some(c) = intent.as_ref().filter(|_| one_off) {
        status_url = format!("{status_url}?checkout={}", c.id);
        stream_url = format!("{stream_url}?checkout={}", c.id);
    }
    if !settings.status_stream {
        stream_url.clear();
    }
    let page = SuccessPage {
        status_url,
        stream_url,
        script_url: settings.route_path("success.js"),
        next,
        pricing_path: settings.pricing_path.clone(),
        poll_ms: 2500,
        outcome,
        order,
    };
    let body = page.render()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body))
}

async fn webhook(
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let octany = Octany::from_request(&req)?;
    Ok(receive_http(octany.receiver(), &req, payload).await?)
}

/// Reads a delivery's body within the limit and receives it.
async fn receive_http(
    receiver: &WebhookReceiver,
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, WebhookError> {
    let limit = receiver.body_limit();
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(WebhookError::TooLarge { limit });
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| WebhookError::Malformed(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let received = receiver.receive(signature, &body).await?;
    let status = match received {
        Received::Applied => "applied",
        Received::Stored => "stored",
        Received::Duplicate => "duplicate",
    };
    Ok(HttpResponse::Ok().json(json!({ "status": status })))
}

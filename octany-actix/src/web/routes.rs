//! The billing routes [`Octany::scope`](crate::Octany::scope) mounts at the billing path:
//!
//! - `GET checkout/{plan}`: records the intent, 303 to Octany's checkout
//!   (409 if the plan is already held);
//! - `GET success`: waits for the payment to settle, then forwards;
//! - `GET status`: the current user's billing state as JSON (syncs at
//!   most every few seconds per user);
//! - `POST webhook`: the signed webhook receiver.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::domain::model::{Entitlement, format_timestamp};
use crate::domain::plan::AnyPlan;
use crate::mirror::entity::checkout;
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
    /// - `GET checkout/{plan}`: records the intent, 303 to Octany's
    ///   checkout (409 if the plan is already held);
    /// - `GET success`: waits for the payment to settle, then forwards;
    /// - `GET status`: the current user's billing state as JSON;
    /// - `POST webhook`: the signed webhook receiver.
    pub fn scope<U: Billable + actix_web::FromRequest + 'static>(&self) -> actix_web::Scope {
        web::scope(&self.settings().billing_path)
            .app_data(web::Data::new(self.clone()))
            .configure(routes::<U>)
    }
}

/// Adds the billing routes to a scope; `U` is the host's user extractor.
pub(crate) fn routes<U: Billable + FromRequest + 'static>(cfg: &mut web::ServiceConfig) {
    cfg.route("/checkout/{plan}", web::get().to(start_checkout::<U>))
        .route("/success", web::get().to(success::<U>))
        .route("/status", web::get().to(status::<U>))
        .route("/webhook", web::post().to(webhook));
}

type Query = web::Query<HashMap<String, String>>;

fn next_path(query: &HashMap<String, String>, octany: &Octany) -> String {
    query
        .get("next")
        .filter(|next| is_local_path(next))
        .cloned()
        .unwrap_or_else(|| octany.settings().after_checkout_path.clone())
}

async fn start_checkout<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    plan: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let slug = plan.into_inner();
    let product = octany
        .catalog()
        .iter()
        .find(|p| p.slug == slug)
        .map(|p| p.product)
        .ok_or(BillingError::UnknownPlan(slug))?;
    let options = CheckoutOptions {
        next: query.get("next").filter(|n| is_local_path(n)).cloned(),
        ..CheckoutOptions::default()
    };
    let url = octany
        .billing(&user)
        .checkout_url_for(product, options)
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.as_str()))
        .finish())
}

#[derive(Template)]
#[template(path = "octany/success.html")]
struct SuccessPage {
    status_url: String,
    next: String,
    pricing_path: String,
    poll_ms: u64,
    timed_out: bool,
}

async fn success<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let billable = user.billable_ref();
    octany.sync_throttled(&billable).await;
    let state = octany.access(&billable).await?;
    let next = next_path(&query, &octany);
    let settings = octany.settings();
    if state
        .granting::<AnyPlan>(octany.clock().as_ref(), settings.policy)
        .is_some()
    {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next))
            .finish());
    }
    // How long has the payment been on its way? Since the checkout named in
    // the URL, else the user's newest (completed only means Octany has
    // reported it, not that it is paid).
    let db = octany.syncer().db();
    let named = match query.get("checkout") {
        Some(id) => checkout::Entity::find_by_id(id.as_str())
            .one(db)
            .await?
            .filter(|c| c.billable_ref == billable),
        None => None,
    };
    let newest = match named {
        Some(named) => Some(named),
        None => {
            checkout::Entity::find()
                .filter(checkout::Column::BillableRef.eq(billable.as_str()))
                .order_by_desc(checkout::Column::CreatedAt)
                .one(db)
                .await?
        }
    };
    let now = octany.clock().now();
    let started = newest.map(|c| c.created_at).unwrap_or(now);
    let timed_out = (now - started).to_std().unwrap_or_default() > settings.success_timeout;
    let page = SuccessPage {
        status_url: settings.route_path("status"),
        next,
        pricing_path: settings.pricing_path.clone(),
        poll_ms: 2500,
        timed_out,
    };
    let body = page.render()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body))
}

async fn status<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let billable = user.billable_ref();
    octany.sync_throttled(&billable).await;
    let state = octany.access(&billable).await?;
    let clock = octany.clock().as_ref();
    let policy = octany.settings().policy;
    let current = state.current(clock, policy);
    let plan = current
        .and_then(|s| s.product_id)
        .and_then(|id| octany.catalog().iter().find(|p| p.product == id))
        .map(|p| p.slug.clone());
    let access = state.granting::<AnyPlan>(clock, policy).is_some();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "access": access,
            "pending": !access && state.payment_pending(),
            "status": current.map(|s| s.status.clone()),
            "plan": plan,
            "product_id": current.and_then(|s| s.product_id),
            "on_trial": current.is_some_and(|s| s.on_trial(clock)),
            "on_grace_period": current.is_some_and(|s| s.on_grace_period(clock)),
            "renews_at": current.and_then(|s| s.renews_at).map(|t| format_timestamp(&t)),
            "ends_at": current.and_then(|s| s.ends_at).map(|t| format_timestamp(&t)),
        })))
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

//! `GET`/`POST cancel`: the cancellation's confirmation page, saying until
//! when access lasts, and its form. `?plan={slug}` picks the group of that
//! plan (default: the default group); `?next=` is where to go after.
//!
//! The form's token is an HMAC, under the API key, of the billable and the
//! subscription it would cancel: another site cannot make one, and a token
//! for one subscription cancels no other.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::answers::{Query, busy_page, money, next_path, refuse_unless_allowed, see_other};
use crate::domain::model::SubscriptionStatus;
use crate::domain::plan::DEFAULT_GROUP;
use crate::mirror::rows::SubscriptionRow;
use crate::web::billable::Billable;
use crate::web::billing::is_local_path;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

#[derive(Template)]
#[template(path = "octany/cancel.html")]
struct CancelPage {
    plan: String,
    price: String,
    /// The last day of access, when known.
    until: Option<String>,
    /// Already cancelled: the page says so and shows no form.
    cancelled: bool,
    action: String,
    token: String,
    back: String,
}

/// The group `?plan=` names (its slug's), else the default group.
fn group_of(
    octany: &Octany,
    query: &HashMap<String, String>,
) -> Result<&'static str, BillingError> {
    match query.get("plan") {
        None => Ok(DEFAULT_GROUP),
        Some(slug) => octany
            .sold_at(slug)
            .and_then(|p| p.group)
            .ok_or_else(|| BillingError::UnknownPlan(slug.clone())),
    }
}

/// The MAC of the form's token for `subscription` of `reference`.
fn mac(octany: &Octany, reference: &str, subscription: &str) -> Hmac<Sha256> {
    let key = octany.client().config().api_key().expose().as_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"octany-actix cancel\0");
    mac.update(reference.as_bytes());
    mac.update(b"\0");
    mac.update(subscription.as_bytes());
    mac
}

fn token(octany: &Octany, reference: &str, subscription: &str) -> String {
    hex::encode(mac(octany, reference, subscription).finalize().into_bytes())
}

fn token_matches(octany: &Octany, reference: &str, subscription: &str, given: &str) -> bool {
    hex::decode(given).is_ok_and(|given| {
        mac(octany, reference, subscription)
            .verify_slice(&given)
            .is_ok()
    })
}

/// This route's path with its `plan` and (local) `next` kept.
fn cancel_path(octany: &Octany, query: &HashMap<String, String>) -> String {
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    if let Some(plan) = query.get("plan") {
        kept.append_pair("plan", plan);
    }
    if let Some(next) = query.get("next").filter(|n| is_local_path(n)) {
        kept.append_pair("next", next);
    }
    let kept = kept.finish();
    let path = octany.settings().route_path("cancel");
    if kept.is_empty() {
        path
    } else {
        format!("{path}?{kept}")
    }
}

fn last_day(row: &SubscriptionRow) -> Option<String> {
    row.ends_at
        .or(row.renews_at)
        .map(|t| t.format("%Y-%m-%d").to_string())
}

/// The group's live subscription the page and its form act on; `None`
/// when there is none to cancel.
async fn cancellable<U: Billable>(
    billing: &crate::web::billing::Billing<'_, U>,
) -> Result<Option<SubscriptionRow>, BillingError> {
    match billing.live_subscription().await {
        Ok(current) => Ok(Some(current)),
        Err(BillingError::NoSubscription) => Ok(None),
        Err(other) => Err(other),
    }
}

pub(super) async fn cancel_page<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if let Some(refused) = refuse_unless_allowed(&req, &user, &octany)? {
        return Ok(refused);
    }
    let group = group_of(&octany, &query)?;
    let billing = octany.billing(&user).in_group_named(group);
    let Some(current) = cancellable(&billing).await? else {
        // Nothing to cancel: the pricing page says what there is to buy.
        return Ok(see_other(&octany.settings().pricing_path));
    };
    let interval = current
        .subscription()
        .and_then(|s| s.product)
        .and_then(|p| p.billing_interval().map(str::to_owned));
    let page = CancelPage {
        plan: current
            .product_name
            .clone()
            .unwrap_or_else(|| "your plan".into()),
        price: money(
            current.price + current.vat,
            &current.currency,
            interval.as_deref(),
        ),
        until: last_day(&current),
        cancelled: current.status == SubscriptionStatus::Cancelled,
        action: cancel_path(&octany, &query),
        token: token(&octany, billing.reference().as_str(), &current.id),
        back: next_path(&query, &octany),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

pub(super) async fn confirm_cancel<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    query: Query,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if let Some(refused) = refuse_unless_allowed(&req, &user, &octany)? {
        return Ok(refused);
    }
    let group = group_of(&octany, &query)?;
    let billing = octany.billing(&user).in_group_named(group);
    let Some(current) = cancellable(&billing).await? else {
        // Nothing to cancel: the pricing page says what there is to buy.
        return Ok(see_other(&octany.settings().pricing_path));
    };
    let reference = billing.reference();
    let given = form.get("token").map(String::as_str).unwrap_or_default();
    if !token_matches(&octany, reference.as_str(), &current.id, given) {
        // Not this page's form (another site's, or a page of a subscription
        // since replaced): nothing is cancelled; the page asks again.
        return Ok(see_other(&cancel_path(&octany, &query)));
    }
    if current.status != SubscriptionStatus::Cancelled {
        // Posted twice: the first cancelled it, the second has nothing to do.
        let cancelled = billing.cancel().await;
        if let Err(error) = cancelled {
            return busy_page(&req, &octany, Err(error));
        }
    }
    Ok(see_other(&next_path(&query, &octany)))
}

//! What the billing routes answer in common: the refusal of one who may
//! not act, redirects that keep a local `next`, and amounts as pages show
//! them.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::web::billable::Billable;
use crate::web::billing::is_local_path;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub(super) type Query = web::Query<HashMap<String, String>>;

#[derive(Template)]
#[template(path = "octany/not_allowed.html")]
struct NotAllowedPage {
    message: String,
    back: String,
}

#[derive(Template)]
#[template(path = "octany/busy.html")]
struct BusyPage {
    message: &'static str,
    again: String,
    back: String,
}

/// A browser's answer to a request not sent because too many wait for
/// Octany (this billable's, or everyone's): 503 with `Retry-After` and a
/// page that offers to try again; anything else stands as it is.
pub(super) fn busy_page(
    req: &HttpRequest,
    octany: &Octany,
    outcome: Result<HttpResponse, BillingError>,
) -> Result<HttpResponse, BillingError> {
    match outcome {
        Err(BillingError::Octany(crate::client::OctanyError::Busy { .. }))
            if crate::web::error::wants_html(req) =>
        {
            let page = BusyPage {
                message: crate::web::error::BUSY,
                again: req.uri().to_string(),
                back: octany.settings().pricing_path.clone(),
            };
            Ok(HttpResponse::ServiceUnavailable()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::RETRY_AFTER, "5"))
                .content_type("text/html; charset=utf-8")
                .body(page.render()?))
        }
        other => other,
    }
}

/// The answer to one who may not change `user`'s billing: a page naming
/// who can for a browser, the JSON error otherwise; `None` when they may.
pub(super) fn refuse_unless_allowed<U: Billable>(
    req: &HttpRequest,
    user: &U,
    octany: &Octany,
) -> Result<Option<HttpResponse>, BillingError> {
    // The rule the billing handle's actions apply, asked here first so a
    // browser gets a page rather than the error's JSON.
    let Err(refused) = octany.billing(user).may_act() else {
        return Ok(None);
    };
    if !crate::web::error::wants_html(req) {
        return Ok(Some(actix_web::ResponseError::error_response(&refused)));
    }
    let mut message = refused.to_string();
    if let Some(first) = message.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let page = NotAllowedPage {
        message,
        back: octany.settings().pricing_path.clone(),
    };
    Ok(Some(
        HttpResponse::Forbidden()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(page.render()?),
    ))
}

pub(super) fn next_path(query: &HashMap<String, String>, octany: &Octany) -> String {
    query
        .get("next")
        .filter(|next| is_local_path(next))
        .cloned()
        .unwrap_or_else(|| octany.settings().after_checkout_path.clone())
}

pub(super) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `path` with `next` kept, when there is one.
pub(super) fn with_next(path: String, query: &HashMap<String, String>) -> String {
    match query.get("next").filter(|n| is_local_path(n)) {
        Some(next) => {
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            url.append_pair("next", next);
            format!("{path}?{}", url.finish())
        }
        None => path,
    }
}

/// An amount in minor units as a page shows it: `123,00 SEK a month`.
pub(super) fn money(minor: i64, currency: &str, interval: Option<&str>) -> String {
    let per = interval.map(|i| format!(" a {i}")).unwrap_or_default();
    format!("{}{per}", crate::domain::receipt::amount(minor, currency))
}

//! Every error's answer, in one place: the app's error type and its HTTP
//! status, the one error page every 4xx and 5xx is shown with (database
//! and Octany detail go to the log, never to the browser), and the
//! hardening headers every response carries.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use octany_actix::BillingError;
use serde_json::json;

use crate::passwords::HashError;
use crate::throttle::TooMany;

/// What can go wrong in the app's own handlers.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The database failed.
    #[error("the database failed: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Billing failed (answered as the library answers it).
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// A form without the session's CSRF token.
    #[error("a form without this session's CSRF token")]
    Forged,
    /// Too many attempts.
    #[error("too many attempts; retry after {:?}", .0.retry_after)]
    TooMany(TooMany),
    /// Nothing there (or nothing this user may see).
    #[error("not found")]
    NotFound,
    /// Only a team's owner may do this.
    #[error("only an owner of the team can do that")]
    NotOwner,
    /// Password hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The session could not be written.
    #[error("the session could not be written: {0}")]
    Session(String),
    /// A mail of the app's own (a sign-up link) could not be sent.
    #[error("the mail could not be sent: {0}")]
    Mail(String),
}

impl AppError {
    fn code(&self) -> &'static str {
        match self {
            Self::Database(_) => "unavailable",
            Self::Billing(_) => "billing",
            Self::Forged => "form_refused",
            Self::TooMany(_) => "too_many_attempts",
            Self::NotFound => "not_found",
            Self::NotOwner => "owner_only",
            Self::Hash(_) | Self::Session(_) => "internal",
            Self::Mail(_) => "mail_unavailable",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Database(_) | Self::Mail(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Billing(e) => e.status_code(),
            Self::Forged | Self::NotOwner => StatusCode::FORBIDDEN,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Hash(_) | Self::Session(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Billing(e) = self {
            return e.error_response();
        }
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::warn!(error = %self, "request refused");
        }
        let mut answer = HttpResponse::build(status);
        if let Self::TooMany(too_many) = self {
            answer.insert_header((header::RETRY_AFTER, retry_after_secs(too_many).to_string()));
        }
        answer.json(json!({ "error": self.code(), "message": message(status, retry_after(self)) }))
    }
}

fn retry_after_secs(too_many: &TooMany) -> u64 {
    too_many.retry_after.as_secs_f64().ceil() as u64
}

fn retry_after(error: &AppError) -> Option<u64> {
    match error {
        AppError::TooMany(t) => Some(retry_after_secs(t)),
        _ => None,
    }
}

/// The words for a status (the same for every error of that status).
fn message(status: StatusCode, retry_after: Option<u64>) -> String {
    match status.as_u16() {
        400 => "That request could not be read.".into(),
        401 => "Log in to continue.".into(),
        402 => "That needs a subscription.".into(),
        403 => "That was refused, so nothing was changed. If it was a form, it expired or came from another site: go back, reload the page and try again.".into(),
        404 => "There is nothing here.".into(),
        405 => "That page does not do that.".into(),
        409 => "That was already done, or another request is doing it.".into(),
        413 => "That was too large.".into(),
        422 => "That could not be accepted.".into(),
        429 => match retry_after {
            Some(secs) => format!("Too many attempts: wait {secs} seconds, then try again."),
            None => "Too many attempts: wait a minute, then try again.".into(),
        },
        500..=599 => "Something went wrong on our side, and nothing was lost. Try again in a moment.".into(),
        _ => "That did not work.".into(),
    }
}

/// The one error page.
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    status: u16,
    title: String,
    message: String,
}

/// A page the app rendered, answered with `status` (a form shown again
/// with its error, say), as HTML.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render().unwrap_or_default())
}

/// Whether the client wants a page rather than JSON (a browser, or one
/// that says nothing).
pub fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|accept| {
            accept.contains("text/html") || accept.contains("*/*") && !accept.contains("json")
        })
}

fn content_type(res: &HttpResponse<impl MessageBody>) -> String {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Middleware (`from_fn`): every 4xx and 5xx answered the same way. A page
/// the app rendered itself (a form shown again with its error) passes;
/// anything else becomes the error page (or, for a JSON client, the JSON
/// error shape); a 5xx never carries its original body, which goes to the
/// log. (An error raised by the session middleware itself, when its store
/// cannot be read, is answered by actix with the store's fixed words, which
/// carry no database text either.)
pub async fn error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let html = wants_html(req.request());
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let kind = content_type(res.response());
    if kind.starts_with("text/html") && !status.is_server_error() {
        return Ok(res);
    }
    if !html && kind.starts_with("application/json") && !status.is_server_error() {
        return Ok(res);
    }
    let (request, response) = res.into_parts();
    let kept: Vec<_> = [
        header::RETRY_AFTER,
        header::LOCATION,
        header::WWW_AUTHENTICATE,
        header::ALLOW,
    ]
    .into_iter()
    .filter_map(|name| response.headers().get(&name).map(|v| (name, v.clone())))
    .collect();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap_or_default();
    // A 4xx's JSON message is written for people (the library's and ours);
    // a 5xx's words are always the fixed ones.
    let said = (!status.is_server_error() && kind.starts_with("application/json"))
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten();
    let words = said
        .as_ref()
        .and_then(|v| v["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| message(status, retry));
    if status.is_server_error() && !body.is_empty() && !kind.starts_with("application/json") {
        tracing::error!(status = status.as_u16(), body = %String::from_utf8_lossy(&body), "an error body was replaced by the error page");
    }
    let mut answer = HttpResponse::build(status);
    for (name, value) in kept {
        answer.insert_header((name, value));
    }
    let response = if html {
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: words,
        };
        answer
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_default())
    } else {
        let code = said
            .as_ref()
            .and_then(|v| v["error"].as_str())
            .unwrap_or(match status.as_u16() {
                500..=599 => "unavailable",
                _ => "refused",
            })
            .to_owned();
        answer.json(json!({ "error": code, "message": words }))
    };
    Ok(ServiceResponse::new(request, response))
}

/// What browsers are told on every response: no framing, no MIME sniffing,
/// no referrer to other sites, no inline scripts (the library's success page
/// loads its script as a file), no caching of pages (a page seen before
/// logout is not shown again from the cache), and HSTS when served over https.
pub fn hardening_headers(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .add((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .add((header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .add((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ))
        .add((
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ))
        .add((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .add((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if https {
        headers = headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    headers
}

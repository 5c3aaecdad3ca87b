//! `GET receipts/{order}` and `GET receipts/{order}/pdf`: the receipt of
//! one of the current billable's paid orders, as a page or a PDF, in
//! Swedish or English (`?lang=sv|en`, else the browser's first language).
//! Another billable's order is 404, the same as an unknown one.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::answers::Query;
use crate::domain::config::Locale;
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub(super) async fn receipt_page<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    order: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let receipt = octany.billing(&user).receipt(&order).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .content_type("text/html; charset=utf-8")
        .body(receipt.to_html(locale(&req, &query))))
}

pub(super) async fn receipt_pdf<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    order: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    let receipt = octany.billing(&user).receipt(&order).await?;
    let locale = locale(&req, &query);
    let name = match locale {
        Locale::Sv => "kvitto",
        Locale::En => "receipt",
    };
    // An order id is Octany's; only its safe characters reach the header.
    let id: String = receipt
        .order_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{name}-{id}.pdf\""),
        ))
        .content_type("application/pdf")
        .body(receipt.to_pdf(locale)))
}

/// `?lang=`, else the browser's first language; English unless Swedish.
fn locale(req: &HttpRequest, query: &Query) -> Locale {
    let asked = query.get("lang").map(String::as_str).or_else(|| {
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split([',', ';', '-']).next())
    });
    match asked.map(str::trim) {
        Some("sv") => Locale::Sv,
        _ => Locale::En,
    }
}

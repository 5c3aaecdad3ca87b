//! The hosted checkout page (API.md section 9): a page where a person
//! picks the outcome, and the same outcomes by a plain POST for scripts.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use std::time::Duration;

use chrono::DateTime;

use super::Shared;
use super::catalog::FakeProduct;
use super::state::{CheckoutOutcome, CheckoutParams, CheckoutResult, Refusal};
/// Whether Octany takes `url` as a success URL: https, or http on this
/// machine (API.md section 9).
fn is_acceptable_success_url(url: &url::Url) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
}

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/checkout/{account}/product/{product}", web::get().to(page))
        .route("/checkout/{account}/product/{product}", web::post().to(pay));
}

#[derive(Template)]
#[template(path = "fake/checkout.html")]
struct CheckoutPage {
    product: FakeProduct,
    price_with_vat: String,
    interval: String,
    email: String,
    name: String,
    reference: String,
    action: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "fake/message.html")]
struct MessagePage {
    title: String,
    message: String,
}

fn html(status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => HttpResponse::InternalServerError().body(format!("template error: {e}")),
    }
}

fn problem(status: StatusCode, title: &str, message: impl Into<String>) -> HttpResponse {
    html(
        status,
        MessagePage {
            title: title.into(),
            message: message.into(),
        }
        .render(),
    )
}

fn boxed_problem(status: StatusCode, title: &str, message: impl Into<String>) -> Box<HttpResponse> {
    Box::new(problem(status, title, message))
}

pub(crate) fn money(minor: i64, currency: &str) -> String {
    format!(
        "{},{:02} {}",
        minor / 100,
        (minor % 100).abs(),
        currency.to_uppercase()
    )
}

struct Checkout {
    account: usize,
    product: FakeProduct,
    params: CheckoutParams,
    success_url: url::Url,
}

/// Checks the URL's account, product and parameters.
fn read(
    shared: &Shared,
    req: &HttpRequest,
    query: &HashMap<String, String>,
) -> Result<Checkout, Box<HttpResponse>> {
    let account = req.match_info().get("account").unwrap_or_default();
    let product: Option<i64> = req.match_info().get("product").and_then(|p| p.parse().ok());
    let found = shared.with_state(|s, _| {
        let account = s.account_index(account)?;
        let product = s.accounts[account].products.get(&product?)?.clone();
        Some((account, product))
    });
    let Some((account, product)) = found else {
        return Err(boxed_problem(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such account or product.",
        ));
    };
    let Some(success) = query.get("successUrl") else {
        return Err(boxed_problem(
            StatusCode::BAD_REQUEST,
            "Missing successUrl",
            "The checkout URL needs a successUrl.",
        ));
    };
    let success_url = match url::Url::parse(success) {
        Ok(url) if is_acceptable_success_url(&url) => url,
        _ => {
            return Err(boxed_problem(
                StatusCode::BAD_REQUEST,
                "Refused successUrl",
                format!(
                    "successUrl `{success}` must be an https URL (http only for 127.0.0.1 and localhost)."
                ),
            ));
        }
    };
    let text = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
    let list = |name: &str| -> Vec<String> {
        text(name)
            .map(|v| {
                v.split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let amount = match text("amount").map(|a| a.parse::<i64>()) {
        Some(Ok(a)) if a > 0 => Some(a),
        Some(_) => {
            return Err(boxed_problem(
                StatusCode::BAD_REQUEST,
                "Bad amount",
                "amount must be a positive whole number of minor units.",
            ));
        }
        None => None,
    };
    let params = CheckoutParams {
        reference_id: text("referenceId"),
        reference_name: text("referenceName"),
        email: text("email"),
        first_name: text("firstName"),
        last_name: text("lastName"),
        company_name: text("companyName"),
        amount,
        locale: text("locale"),
        start_date: None,
        methods: list("methods"),
        roles: [list("role"), list("roles")].concat(),
    };
    if params
        .reference_id
        .as_ref()
        .is_some_and(|r| r.chars().count() > 250)
    {
        return Err(boxed_problem(
            StatusCode::BAD_REQUEST,
            "Bad referenceId",
            "referenceId may be at most 250 characters.",
        ));
    }
    Ok(Checkout {
        account,
        product,
        params,
        success_url,
    })
}

fn render_page(
    checkout: &Checkout,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let product = &checkout.product;
    let price = checkout.params.amount.unwrap_or(product.price);
    let with_vat = FakeProduct {
        price,
        ..product.clone()
    };
    let name = [&checkout.params.first_name, &checkout.params.last_name]
        .iter()
        .filter_map(|n| n.as_deref())
        .collect::<Vec<_>>()
        .join(" ");
    let page = CheckoutPage {
        product: product.clone(),
        price_with_vat: money(price + with_vat.vat(), &product.currency),
        interval: product.interval.clone().unwrap_or_default(),
        email: checkout.params.email.clone().unwrap_or_default(),
        name,
        reference: checkout.params.reference_id.clone().unwrap_or_default(),
        action: req.uri().to_string(),
        error,
    };
    html(status, page.render())
}

async fn page(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    match read(&shared, &req, &query) {
        Ok(checkout) => render_page(&checkout, &req, StatusCode::OK, None),
        Err(response) => *response,
    }
}

async fn pay(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let mut checkout = match read(&shared, &req, &query) {
        Ok(checkout) => checkout,
        Err(response) => return *response,
    };
    let outcome: CheckoutOutcome = match form.get("outcome").map(|o| o.parse()) {
        Some(Ok(outcome)) => outcome,
        Some(Err(message)) => {
            return render_page(
                &checkout,
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(message),
            );
        }
        None => {
            return render_page(
                &checkout,
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Pick an outcome.".into()),
            );
        }
    };
    if let Some(start) = form.get("start_date").filter(|d| !d.is_empty()) {
        match DateTime::parse_from_rfc3339(start) {
            Ok(start) => checkout.params.start_date = Some(start.to_utc()),
            Err(_) => {
                let message = format!("start_date `{start}` is not an ISO 8601 timestamp.");
                return render_page(
                    &checkout,
                    &req,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(message),
                );
            }
        }
    }
    let (delay, quiet) = shared.with_state(|s, _| {
        (
            s.faults.settlement_delay_ms,
            s.faults.settlement_without_webhooks,
        )
    });
    if delay > 0 && outcome != CheckoutOutcome::Decline {
        settle_later(
            &shared,
            &checkout,
            outcome,
            Duration::from_millis(delay),
            quiet,
        );
        let pending = CheckoutResult {
            subscription: None,
            order: None,
            customer_id: 0,
        };
        return HttpResponse::SeeOther()
            .insert_header(("Location", fill_placeholders(&checkout, &pending)))
            .finish();
    }
    let result = shared.with_state(|s, now| {
        s.checkout(
            checkout.account,
            checkout.product.id,
            &checkout.params,
            outcome,
            now,
        )
    });
    match result {
        Ok(result) => HttpResponse::SeeOther()
            .insert_header(("Location", fill_placeholders(&checkout, &result)))
            .finish(),
        Err(Refusal::Declined) => render_page(
            &checkout,
            &req,
            StatusCode::PAYMENT_REQUIRED,
            Some("The card was declined. Nothing was charged.".into()),
        ),
        Err(Refusal::Invalid { message, .. }) => render_page(
            &checkout,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
        ),
        Err(Refusal::NotFound) => problem(StatusCode::NOT_FOUND, "Not found", "No such product."),
    }
}

/// The payment of `checkout` settles `after` from now (real time): the
/// subscription or order is made then, with its webhooks unless `quiet`.
fn settle_later(
    shared: &web::Data<Shared>,
    checkout: &Checkout,
    outcome: CheckoutOutcome,
    after: Duration,
    quiet: bool,
) {
    let shared = shared.clone();
    let (account, product, params) = (
        checkout.account,
        checkout.product.id,
        checkout.params.clone(),
    );
    actix_web::rt::spawn(async move {
        tokio::time::sleep(after).await;
        let settled = shared.with_state(|s, now| {
            let queued = s.outbox.len();
            let settled = s.checkout(account, product, &params, outcome, now);
            if quiet {
                s.outbox.truncate(queued);
            }
            settled
        });
        if let Err(refusal) = settled {
            tracing::warn!(?refusal, "a delayed settlement was refused");
        }
    });
}

/// Fills `{subscriptionId}` and friends in the success URL, raw or
/// percent-encoded, with URL-encoded values: `{product}` is the product's
/// name and `{total}` today's total without VAT (API.md section 9).
fn fill_placeholders(checkout: &Checkout, result: &CheckoutResult) -> String {
    let params = &checkout.params;
    let total = result.order.as_ref().map(|o| o.total).unwrap_or_default();
    let values = [
        (
            "subscriptionId",
            result
                .subscription
                .as_ref()
                .map(|s| s.id.to_string())
                .unwrap_or_default(),
        ),
        ("customerId", result.customer_id.to_string()),
        ("email", params.email.clone().unwrap_or_default()),
        ("firstName", params.first_name.clone().unwrap_or_default()),
        ("lastName", params.last_name.clone().unwrap_or_default()),
        ("product", checkout.product.name.clone()),
        ("total", total.to_string()),
    ];
    let mut url = checkout.success_url.to_string();
    for (name, value) in values {
        let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        url = url
            .replace(&format!("{{{name}}}"), &value)
            .replace(&format!("%7B{name}%7D"), &value);
    }
    url
}

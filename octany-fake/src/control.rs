//! The control API under `/_fake/` (not Octany's): clock, faults, products,
//! endpoints, deliveries, a state dump, and an HTML page with clock buttons.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Months, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::api::refusal_response;
use super::catalog::FakeProduct;
use super::checkout::money;
use super::deliveries::DeliveryRecord;
use super::faults::Faults;
use super::state::{Refusal, State};
use crate::wire::timestamp as format_timestamp;
use octany_actix::clock::Clock;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_fake")
            .route("/", web::get().to(page))
            .route("", web::get().to(page))
            .route("/clock", web::get().to(clock))
            .route("/clock/advance", web::post().to(advance))
            .route("/clock/set", web::post().to(set_clock))
            .route("/faults", web::get().to(get_faults))
            .route("/faults", web::post().to(set_faults))
            .route("/config", web::post().to(set_config))
            .route("/products", web::get().to(products))
            .route("/products", web::post().to(add_product))
            .route("/endpoints", web::get().to(endpoints))
            .route("/endpoints", web::post().to(add_endpoint))
            .route("/endpoints/{id}/pause", web::post().to(pause))
            .route("/endpoints/{id}/release", web::post().to(release))
            .route("/deliveries", web::get().to(deliveries))
            .route("/state", web::get().to(state))
            .route("/subscriptions/{id}/card", web::post().to(card))
            .route("/orders/{id}/pay", web::post().to(pay_invoice))
            .route("/webhooks/test", web::post().to(test_hook))
            .route("/portal/{id}/{what}", web::get().to(portal)),
    );
}

/// A browser's form goes back to the page; a script gets JSON.
fn answer(req: &HttpRequest, body: Value) -> HttpResponse {
    let from_browser = req
        .headers()
        .get("Accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if from_browser {
        HttpResponse::SeeOther()
            .insert_header(("Location", "/_fake/"))
            .finish()
    } else {
        HttpResponse::Ok().json(body)
    }
}

fn bad(message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"message": message.into()}))
}

fn now_json(now: DateTime<Utc>) -> Value {
    json!({"now": format_timestamp(&now)})
}

async fn clock(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(now_json(shared.clock.now()))
}

async fn advance(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let number = |name: &str| query.get(name).map(|v| v.parse::<u32>());
    let now = shared.clock.now();
    let target = match (number("seconds"), number("days"), number("months")) {
        (Some(Ok(s)), None, None) => now + chrono::Duration::seconds(i64::from(s)),
        (None, Some(Ok(d)), None) => now + chrono::Duration::days(i64::from(d)),
        (None, None, Some(Ok(m))) => now.checked_add_months(Months::new(m)).unwrap_or(now),
        _ => return bad("give exactly one of ?seconds=N, ?days=N or ?months=N, a whole number"),
    };
    shared.clock.set(target);
    shared.with_state(|_, _| ());
    answer(&req, now_json(target))
}

async fn set_clock(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(Ok(now)) = query.get("now").map(|n| DateTime::parse_from_rfc3339(n)) else {
        return bad("give ?now= an ISO 8601 timestamp, e.g. 2026-06-01T00:00:00Z");
    };
    shared.clock.set(now.to_utc());
    shared.with_state(|_, _| ());
    answer(&req, now_json(now.to_utc()))
}

async fn get_faults(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.with_state(|s, _| s.faults.clone()))
}

async fn set_faults(
    shared: web::Data<Shared>,
    query: web::Query<HashMap<String, String>>,
    faults: web::Json<Faults>,
) -> HttpResponse {
    let seed = match query.get("seed").map(|s| s.parse::<u64>()) {
        Some(Ok(seed)) => Some(seed),
        Some(Err(_)) => return bad("?seed= must be a whole number"),
        None => None,
    };
    let faults = faults.into_inner();
    shared.with_state(|s, _| {
        s.faults = faults.clone();
        if let Some(seed) = seed {
            s.reseed(seed);
        }
    });
    HttpResponse::Ok().json(faults)
}

async fn set_config(
    shared: web::Data<Shared>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    match query.get("legacy_pagination").map(|v| v.parse::<bool>()) {
        Some(Ok(legacy)) => {
            shared.with_state(|s, _| s.legacy = legacy);
            HttpResponse::Ok().json(json!({"legacy_pagination": legacy}))
        }
        _ => bad("give ?legacy_pagination=true or false"),
    }
}

async fn products(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(
        shared.with_state(|s, _| s.accounts[0].products.values().cloned().collect::<Vec<_>>()),
    )
}

async fn add_product(shared: web::Data<Shared>, product: web::Json<FakeProduct>) -> HttpResponse {
    let product = product.into_inner();
    shared.with_state(|s, _| s.accounts[0].products.insert(product.id, product.clone()));
    HttpResponse::Created().json(product)
}

async fn endpoints(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.with_state(|s, _| s.accounts[0].endpoints.clone()))
}

#[derive(Deserialize)]
struct NewEndpoint {
    url: String,
    secret: Option<String>,
}

async fn add_endpoint(shared: web::Data<Shared>, body: web::Json<NewEndpoint>) -> HttpResponse {
    match shared.with_state(|s, _| s.add_endpoint(0, &body.url, body.secret.clone())) {
        Ok(endpoint) => HttpResponse::Created().json(endpoint),
        Err(refusal) => refusal_response(&refusal, false),
    }
}

fn endpoint_id(req: &HttpRequest) -> Option<u64> {
    req.match_info().get("id").and_then(|id| id.parse().ok())
}

async fn pause(shared: web::Data<Shared>, req: HttpRequest) -> HttpResponse {
    let Some(id) = endpoint_id(&req) else {
        return bad("the endpoint id is a number");
    };
    shared.dispatcher.pause(id);
    answer(&req, json!({"endpoint": id, "paused": true}))
}

async fn release(shared: web::Data<Shared>, req: HttpRequest) -> HttpResponse {
    let Some(id) = endpoint_id(&req) else {
        return bad("the endpoint id is a number");
    };
    shared.dispatcher.release(id);
    answer(&req, json!({"endpoint": id, "paused": false}))
}

async fn deliveries(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.dispatcher.records())
}

async fn state(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.with_state(|s, now| dump(s, now)))
}

pub(crate) fn dump(state: &State, now: DateTime<Utc>) -> Value {
    let accounts: Vec<Value> = state
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({
                "uuid": a.uuid,
                "numeric_id": a.numeric_id,
                "products": a.products.values().collect::<Vec<_>>(),
                "product_groups": a.product_groups.values().collect::<Vec<_>>(),
                "subscriptions": a.subscriptions.keys().map(|id| state.subscription_view(i, *id)).collect::<Vec<_>>(),
                "orders": a.orders.keys().map(|id| state.order_view(i, *id)).collect::<Vec<_>>(),
                "endpoints": a.endpoints,
            })
        })
        .collect();
    json!({"now": format_timestamp(&now), "faults": state.faults, "legacy_pagination": state.legacy, "accounts": accounts})
}

async fn card(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let id: Option<u64> = req.match_info().get("id").and_then(|id| id.parse().ok());
    let failing = query.get("failing").map(|f| f.parse::<bool>());
    let (Some(id), Some(Ok(failing))) = (id, failing) else {
        return bad("POST /_fake/subscriptions/{id}/card?failing=true|false");
    };
    match shared.with_state(|s, _| s.set_card_failing(0, id, failing)) {
        Ok(()) => answer(&req, json!({"subscription": id, "card_failing": failing})),
        Err(refusal) => refusal_response(&refusal, false),
    }
}

async fn pay_invoice(shared: web::Data<Shared>, req: HttpRequest) -> HttpResponse {
    let Some(id) = req
        .match_info()
        .get("id")
        .and_then(|id| id.parse::<u64>().ok())
    else {
        return bad("POST /_fake/orders/{id}/pay");
    };
    match shared.with_state(|s, now| s.pay_open_invoice(0, id, now)) {
        Ok(()) => answer(&req, json!({"order": id, "paid": true})),
        Err(refusal) => refusal_response(&refusal, false),
    }
}

async fn test_hook(shared: web::Data<Shared>, req: HttpRequest) -> HttpResponse {
    shared.with_state(|s, now| s.test_hook(0, now));
    answer(&req, json!({"sent": "test.hook"}))
}

async fn portal(req: HttpRequest) -> HttpResponse {
    let what = req.match_info().get("what").unwrap_or_default();
    let id = req.match_info().get("id").unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>Billing portal · fake Octany</title><p>Octany's billing portal ({}) for subscription {}: not simulated by the fake.</p>",
            askama::filters::escape(what, askama::filters::Html).map(|e| e.to_string()).unwrap_or_default(),
            askama::filters::escape(id, askama::filters::Html).map(|e| e.to_string()).unwrap_or_default(),
        ))
}

struct SubscriptionRow {
    id: u64,
    reference: String,
    product: String,
    status: String,
    price: String,
    renews_at: String,
    ends_at: String,
    card_failing: bool,
}

/// An order on the control page: what it bills (a usage charge names its
/// meter, units and period in its line), for how much, and its state.
struct OrderRow {
    id: u64,
    reference: String,
    subscription: String,
    what: String,
    total: String,
    state: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "fake/control.html")]
struct ControlPage {
    now: String,
    subscriptions: Vec<SubscriptionRow>,
    orders: Vec<OrderRow>,
    deliveries: Vec<DeliveryRecord>,
    endpoints: Vec<String>,
}

async fn page(shared: web::Data<Shared>) -> HttpResponse {
    let (now, subscriptions, orders, endpoints) = shared.with_state(|s, now| {
        let a = &s.accounts[0];
        let date = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default()
        };
        let rows = a
            .subscriptions
            .values()
            .rev()
            .map(|sub| SubscriptionRow {
                id: sub.id,
                reference: sub.reference_id.clone().unwrap_or_default(),
                product: sub.product.name.clone(),
                status: sub.status.to_string(),
                price: money(sub.price + sub.vat, &sub.currency),
                renews_at: date(sub.renews_at),
                ends_at: date(sub.ends_at),
                card_failing: sub.card_failing,
            })
            .collect();
        let orders = a
            .orders
            .values()
            .rev()
            .take(50)
            .map(|o| OrderRow {
                id: o.id,
                reference: o.reference_id.clone().unwrap_or_default(),
                subscription: o.subscription_id.map(|s| s.to_string()).unwrap_or_default(),
                what: o
                    .items
                    .iter()
                    .map(|(product, line, quantity, _, _)| {
                        let what = if line.is_empty() { &product.name } else { line };
                        if *quantity == 1 {
                            what.clone()
                        } else {
                            format!("{quantity} × {what}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                total: money(
                    o.items
                        .iter()
                        .map(|(_, _, q, price, vat)| q * (price + vat))
                        .sum(),
                    &o.currency,
                ),
                state: o.state.to_string(),
                created_at: date(Some(o.created_at)),
            })
            .collect();
        let endpoints = a
            .endpoints
            .iter()
            .map(|e| format!("#{} {}", e.id, e.url))
            .collect();
        (
            now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            rows,
            orders,
            endpoints,
        )
    });
    let mut deliveries = shared.dispatcher.records();
    deliveries.reverse();
    deliveries.truncate(20);
    match (ControlPage {
        now,
        subscriptions,
        orders,
        deliveries,
        endpoints,
    })
    .render()
    {
        Ok(body) => HttpResponse::build(StatusCode::OK)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => HttpResponse::InternalServerError().body(format!("template error: {e}")),
    }
}

impl From<Refusal> for HttpResponse {
    fn from(refusal: Refusal) -> Self {
        refusal_response(&refusal, false)
    }
}

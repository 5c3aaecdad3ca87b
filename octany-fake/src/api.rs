//! Octany's REST API (API.md sections 2 to 4), served from the fake's state.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Shared;
use super::state::{Refusal, State, product_id_in};

/// What a handler answers with, before the envelope.
pub(crate) enum Reply {
    One(Value),
    /// One page of a list: the page's items and the size of the whole list.
    List {
        items: Vec<Value>,
        total: usize,
        page: usize,
        per_page: usize,
        path: String,
    },
    Empty,
}

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/{account}")
            .route("/subscriptions", web::get().to(list_subscriptions))
            .route("/subscriptions", web::post().to(create_subscription))
            .route("/subscription/{id}", web::get().to(get_subscription))
            .route("/subscription/{id}/cancel", web::post().to(cancel))
            .route("/subscription/{id}/product", web::post().to(swap))
            .route("/subscription/{id}/orders", web::get().to(list_orders))
            .route("/subscription/{id}/order", web::post().to(create_order))
            .route("/products", web::get().to(list_products))
            .route("/product/{id}", web::get().to(get_product))
            .route("/product/{id}", web::post().to(update_product))
            .route("/product/{id}", web::delete().to(delete_product))
            .route("/order/{id}", web::get().to(get_order))
            .route("/webhooks/endpoints", web::post().to(register_endpoint)),
    );
}

type Query = web::Query<HashMap<String, String>>;

fn message(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "message": text }))
}

fn sv(req: &HttpRequest, query: &HashMap<String, String>) -> bool {
    let header = req.headers().get("X-Locale").and_then(|v| v.to_str().ok());
    header.or(query.get("locale").map(String::as_str)) == Some("sv")
}

/// Runs one API request through the faults, the key check and the state.
async fn handle(
    shared: &Shared,
    req: &HttpRequest,
    query: &HashMap<String, String>,
    apply: impl FnOnce(&mut State, usize, DateTime<Utc>) -> Result<Reply, Refusal>,
) -> HttpResponse {
    let latency = shared.with_state(|s, _| s.faults.api_latency_ms);
    if latency > 0 {
        shared
            .transport
            .sleep(std::time::Duration::from_millis(latency))
            .await;
    }
    let account_uuid = req
        .match_info()
        .get("account")
        .unwrap_or_default()
        .to_owned();
    let key = req
        .headers()
        .get("X-API-KEY")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let write = req.method() != actix_web::http::Method::GET;
    let swedish = sv(req, query);
    let transport_now = shared.transport.now();
    let outcome = shared.with_state(|state, now| {
        let account = state
            .account_index(&account_uuid)
            .filter(|a| !key.is_empty() && state.accounts[*a].api_key == key);
        let Some(account) = account else {
            return Err(Box::new(message(
                StatusCode::UNAUTHORIZED,
                "Unauthenticated.",
            )));
        };
        if let Some(wait) = state.rate_limited(&key, transport_now) {
            state.api_requests.rate_limited += 1;
            return Err(Box::new(
                HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", wait.to_string()))
                    .json(json!({"message": "Too Many Attempts."})),
            ));
        }
        state.api_requests.count(transport_now);
        let limited = state.faults.rate_limited_rate;
        if state.roll(limited) {
            return Err(Box::new(
                HttpResponse::TooManyRequests()
                    .insert_header(("Retry-After", "1"))
                    .json(json!({"message": "Too Many Attempts."})),
            ));
        }
        let error_rate = state.faults.api_error_rate;
        if state.roll(error_rate) {
            let status = if state.roll(0.5) {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return Err(Box::new(message(status, "Server Error")));
        }
        let reply = apply(state, account, now)
            .map_err(|refusal| Box::new(refusal_response(&refusal, swedish)))?;
        let lost_rate = state.faults.lost_response_rate;
        if write && state.roll(lost_rate) {
            return Err(Box::new(
                HttpResponse::BadGateway()
                    .content_type("text/html")
                    .body("<html><body><h1>502 Bad Gateway</h1></body></html>"),
            ));
        }
        Ok((reply, state.legacy, now))
    });
    match outcome {
        Ok((reply, legacy, now)) => {
            let mut response = envelope(reply, legacy, shared);
            // Octany's clock is the fake's virtual one, so is its `Date`.
            let date = now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&date) {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::DATE, value);
            }
            response
        }
        Err(response) => *response,
    }
}

pub(crate) fn refusal_response(refusal: &Refusal, swedish: bool) -> HttpResponse {
    match refusal {
        Refusal::NotFound => message(StatusCode::NOT_FOUND, "Not found."),
        Refusal::Invalid { field, message } => HttpResponse::UnprocessableEntity().json(json!({
            "message": if swedish { "Uppgifterna är ogiltiga." } else { "The given data was invalid." },
            "errors": { *field: [message] },
        })),
        Refusal::Declined => HttpResponse::PaymentRequired().json(json!({"message": "The card was declined."})),
    }
}

fn envelope(reply: Reply, legacy: bool, shared: &Shared) -> HttpResponse {
    match reply {
        Reply::Empty => HttpResponse::NoContent().finish(),
        Reply::One(data) => {
            HttpResponse::Ok().json(json!({"data": data, "status": 200, "success": true}))
        }
        Reply::List {
            items: data,
            total,
            page,
            per_page,
            path,
        } => {
            let total_pages = total.div_ceil(per_page).max(1);
            let count = data.len();
            let pagination = if legacy {
                json!({"total": total, "count": count, "perPage": per_page, "currentPage": page,
                       "totalPages": total_pages, "links": []})
            } else {
                let next = (page < total_pages)
                    .then(|| format!("{}{path}page={}", shared.base_url(), page + 1));
                json!({"total": total, "count": count, "per_page": per_page, "current_page": page,
                       "total_pages": total_pages, "links": {"next": next}})
            };
            let mut body = json!({"data": data, "pagination": pagination});
            if legacy {
                body["status"] = json!(200);
                body["success"] = json!(true);
            }
            HttpResponse::Ok().json(body)
        }
    }
}

/// The ids of one page of `ids` (views are built for those only).
fn page_ids<T: Copy>(ids: &[T], page: usize, per_page: usize) -> Vec<T> {
    ids.iter()
        .copied()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect()
}

fn page_of(query: &HashMap<String, String>) -> usize {
    query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

fn id_of(req: &HttpRequest) -> Result<u64, Refusal> {
    req.match_info()
        .get("id")
        .and_then(|id| id.parse().ok())
        .ok_or(Refusal::NotFound)
}

fn subscription_exists(state: &State, account: usize, id: u64) -> Result<(), Refusal> {
    state.accounts[account]
        .subscriptions
        .contains_key(&id)
        .then_some(())
        .ok_or(Refusal::NotFound)
}

fn json_body(body: &web::Bytes) -> Result<Value, Refusal> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|_| Refusal::Invalid {
        field: "body",
        message: "The body must be JSON.".into(),
    })
}

async fn list_subscriptions(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
) -> HttpResponse {
    let q = query.into_inner();
    handle(&shared, &req, &q, |state, account, _| {
        let filter = |name: &str| q.get(&format!("filter[{name}]")).cloned();
        let (reference, email, customer) = (
            filter("reference_id"),
            filter("email"),
            filter("customer_id"),
        );
        let ids = state.accounts[account]
            .subscriptions
            .values()
            .filter(|s| {
                reference
                    .as_ref()
                    .is_none_or(|r| s.reference_id.as_ref() == Some(r))
            })
            .filter(|s| {
                email
                    .as_ref()
                    .is_none_or(|e| s.billing_method.email.as_ref() == Some(e))
            })
            .filter(|s| {
                customer
                    .as_ref()
                    .is_none_or(|c| s.customer_id.to_string() == *c)
            })
            .map(|s| s.id)
            .collect::<Vec<_>>();
        let (page, total) = (page_of(&q), ids.len());
        let items = page_ids(&ids, page, 20)
            .into_iter()
            .map(|id| json!(state.subscription_view(account, id)))
            .collect();
        let mut path = String::from("/api/");
        path.push_str(&state.accounts[account].uuid);
        path.push_str("/subscriptions?");
        for (name, value) in [
            ("reference_id", &reference),
            ("email", &email),
            ("customer_id", &customer),
        ] {
            if let Some(value) = value {
                path.push_str(&format!("filter%5B{name}%5D={}&", url_escape(value)));
            }
        }
        Ok(Reply::List {
            items,
            total,
            page,
            per_page: 20,
            path,
        })
    })
    .await
}

fn url_escape(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn get_subscription(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, _| {
        let id = id_of(&req)?;
        subscription_exists(state, account, id)?;
        Ok(Reply::One(json!(state.subscription_view(account, id))))
    })
    .await
}

async fn cancel(shared: web::Data<Shared>, req: HttpRequest, query: Query) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, now| {
        let sub = state.cancel(account, id_of(&req)?, now)?;
        Ok(Reply::One(json!(sub)))
    })
    .await
}

async fn swap(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
    body: web::Bytes,
) -> HttpResponse {
    let q = query.into_inner();
    handle(&shared, &req, &q, |state, account, now| {
        let id = id_of(&req)?;
        subscription_exists(state, account, id)?;
        let body = json_body(&body)?;
        let product = product_id_in(&body, q.get("product").map(String::as_str))?;
        Ok(Reply::One(json!(state.swap(account, id, product, now)?)))
    })
    .await
}

async fn list_orders(shared: web::Data<Shared>, req: HttpRequest, query: Query) -> HttpResponse {
    let q = query.into_inner();
    handle(&shared, &req, &q, |state, account, _| {
        let id = id_of(&req)?;
        subscription_exists(state, account, id)?;
        let per_page = q
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(20usize)
            .clamp(1, 100);
        let ids = state.accounts[account]
            .orders
            .values()
            .filter(|o| o.subscription_id == Some(id))
            .map(|o| o.id)
            .collect::<Vec<_>>();
        let (page, total) = (page_of(&q), ids.len());
        let items = page_ids(&ids, page, per_page)
            .into_iter()
            .map(|o| json!(state.order_view(account, o)))
            .collect();
        let path = format!(
            "/api/{}/subscription/{id}/orders?per_page={per_page}&",
            state.accounts[account].uuid
        );
        Ok(Reply::List {
            items,
            total,
            page,
            per_page,
            path,
        })
    })
    .await
}

async fn create_order(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
    body: web::Bytes,
) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, now| {
        let id = id_of(&req)?;
        subscription_exists(state, account, id)?;
        let body = json_body(&body)?;
        let product = product_id_in(&body, None)?;
        let amount = match &body["amount"] {
            Value::Null => None,
            v => Some(v.as_i64().ok_or(Refusal::Invalid {
                field: "amount",
                message: "The amount must be an integer.".into(),
            })?),
        };
        let description = body["description"].as_str().map(str::to_owned);
        Ok(Reply::One(json!(state.charge(
            account,
            id,
            product,
            amount,
            description,
            now
        )?)))
    })
    .await
}

async fn create_subscription(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
    body: web::Bytes,
) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, now| {
        let body = json_body(&body)?;
        Ok(Reply::One(json!(
            state.subscribe_from(account, &body, now)?
        )))
    })
    .await
}

async fn list_products(shared: web::Data<Shared>, req: HttpRequest, query: Query) -> HttpResponse {
    let q = query.into_inner();
    handle(&shared, &req, &q, |state, account, _| {
        let products = &state.accounts[account].products;
        let (page, total) = (page_of(&q), products.len());
        let items = products
            .values()
            .skip((page - 1).saturating_mul(100))
            .take(100)
            .map(|p| json!(p.to_product()))
            .collect();
        let path = format!("/api/{}/products?", state.accounts[account].uuid);
        Ok(Reply::List {
            items,
            total,
            page,
            per_page: 100,
            path,
        })
    })
    .await
}

async fn get_product(shared: web::Data<Shared>, req: HttpRequest, query: Query) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, _| {
        let id = id_of(&req)? as i64;
        let product = state.accounts[account]
            .products
            .get(&id)
            .ok_or(Refusal::NotFound)?;
        Ok(Reply::One(json!(product.to_product())))
    })
    .await
}

async fn update_product(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
    body: web::Bytes,
) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, now| {
        let id = id_of(&req)? as i64;
        let body = json_body(&body)?;
        Ok(Reply::One(json!(
            state.update_product(account, id, &body, now)?
        )))
    })
    .await
}

async fn delete_product(shared: web::Data<Shared>, req: HttpRequest, query: Query) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, now| {
        state.delete_product(account, id_of(&req)? as i64, now)?;
        Ok(Reply::Empty)
    })
    .await
}

async fn get_order(shared: web::Data<Shared>, req: HttpRequest, query: Query) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, _| {
        let id = id_of(&req)?;
        if !state.accounts[account].orders.contains_key(&id) {
            return Err(Refusal::NotFound);
        }
        Ok(Reply::One(json!(state.order_view(account, id))))
    })
    .await
}

async fn register_endpoint(
    shared: web::Data<Shared>,
    req: HttpRequest,
    query: Query,
    body: web::Bytes,
) -> HttpResponse {
    handle(&shared, &req, &query, |state, account, _| {
        let body = json_body(&body)?;
        let url = body["url"].as_str().ok_or(Refusal::Invalid {
            field: "url",
            message: "The url field is required.".into(),
        })?;
        let endpoint = state.add_endpoint(account, url, None)?;
        // As Octany: the secret is not returned.
        Ok(Reply::One(json!({"id": endpoint.id, "url": endpoint.url})))
    })
    .await
}

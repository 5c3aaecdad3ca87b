//! The client against a local HTTP server: headers and paths, pagination,
//! retries, list-after-write, error mapping (API.md sections 1 to 4 and 7).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use octany_actix::OctanyError;
use octany_actix::client::{
    NewOrder, NewSubscription, OctanyClient, RetryPolicy, SubscriptionFilter,
};
use octany_actix::clock::ManualClock;
use octany_actix::config::{Locale, OctanyConfig};
use octany_actix::model::{ProductId, SubscriptionId, SubscriptionStatus};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ACCOUNT: &str = "8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1";
const KEY: &str = "test-key-123";

fn base() -> String {
    format!("/api/{ACCOUNT}")
}

fn clock() -> ManualClock {
    ManualClock::at("2026-05-01T00:00:00Z".parse().unwrap())
}

fn client(server: &MockServer, clock: &ManualClock) -> OctanyClient {
    let config = OctanyConfig::new(ACCOUNT, KEY)
        .unwrap()
        .with_api_url(&server.uri())
        .unwrap()
        .with_locale(Locale::Sv)
        .with_retry(RetryPolicy::default().with_max_attempts(4));
    OctanyClient::with_clock(config, Arc::new(clock.clone())).unwrap()
}

fn subscription(id: u64, status: &str) -> Value {
    json!({"id": id, "status": status, "reference_id": "user:42", "price": 9900, "vat": 2475,
           "currency": "sek", "product": {"id": 1225, "name": "Pro"}})
}

#[tokio::test]
async fn sends_key_locale_and_account_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/subscription/76963688", base())))
        .and(header("X-API-KEY", KEY))
        .and(header("X-Locale", "sv"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": subscription(76963688, "active")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sub = client(&server, &clock())
        .get_subscription(&SubscriptionId::new("76963688"))
        .await
        .unwrap();
    assert_eq!(sub.id.as_str(), "76963688");
    assert_eq!(sub.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn walks_three_pages_with_filter() {
    let server = MockServer::start().await;
    for page in 1..=3u64 {
        let items: Vec<Value> = (0..2)
            .map(|i| subscription(page * 10 + i, "active"))
            .collect();
        let next = if page < 3 {
            json!({"next": format!("{}/subscriptions?page={}", server.uri(), page + 1)})
        } else {
            json!({"next": null})
        };
        Mock::given(method("GET"))
            .and(path(format!("{}/subscriptions", base())))
            .and(query_param("page", page.to_string()))
            .and(query_param("filter[reference_id]", "user:42"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": items,
                "pagination": {"total": 6, "count": 2, "per_page": 2, "current_page": page, "total_pages": 3, "links": next}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let all: Vec<_> = client(&server, &clock())
        .stream_subscriptions(SubscriptionFilter::reference_id("user:42"))
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["10", "11", "20", "21", "30", "31"]);
}

#[tokio::test]
async fn walks_older_spelling_pages() {
    let server = MockServer::start().await;
    for page in 1..=2u64 {
        Mock::given(method("GET"))
            .and(path(format!("{}/products", base())))
            .and(query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "status": 200, "success": true,
                "data": [{"id": page, "name": format!("P{page}"), "price": 100}],
                "pagination": {"total": 2, "count": 1, "perPage": 1, "currentPage": page, "totalPages": 2, "links": []}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let products: Vec<_> = client(&server, &clock())
        .stream_products()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        products.iter().map(|p| p.id).collect::<Vec<_>>(),
        [ProductId(1), ProductId(2)]
    );
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/order/5", base())))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_json(json!({"message": "Too Many Attempts."})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{}/order/5", base())))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"id": 5, "state": "paid"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let clock = clock();
    let order = client(&server, &clock)
        .get_order(&"5".into())
        .await
        .unwrap();
    assert_eq!(order.id.as_str(), "5");
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(7)],
        "waited exactly Retry-After"
    );
}

#[tokio::test]
async fn a_post_waits_out_429_too() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{}/subscription/9/cancel", base())))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{}/subscription/9/cancel", base())))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": subscription(9, "cancelled")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let clock = clock();
    let sub = client(&server, &clock)
        .cancel_subscription(&"9".into())
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Cancelled);
    assert_eq!(clock.sleeps(), [Duration::from_secs(2)]);
}

#[tokio::test]
async fn rate_limit_gives_up_after_the_bound_with_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "600"))
        .expect(6)
        .mount(&server)
        .await;
    let clock = clock();
    let config = OctanyConfig::new(ACCOUNT, KEY)
        .unwrap()
        .with_api_url(&server.uri())
        .unwrap()
        .with_retry(
            RetryPolicy::default()
                .with_rate_limit(5, Duration::from_secs(10))
                .with_max_elapsed(Duration::from_secs(3600)),
        );
    let client = OctanyClient::with_clock(config, Arc::new(clock.clone())).unwrap();
    let err = client.get_product(ProductId(1)).await.unwrap_err();
    assert!(
        matches!(err, OctanyError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(600))
    );
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(10); 5],
        "Retry-After capped at 10 s"
    );
    assert!(err.to_string().contains("120 a minute"), "{err}");
}

#[tokio::test]
async fn get_is_retried_on_503_up_to_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/product/1", base())))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>"),
        )
        .expect(4)
        .mount(&server)
        .await;
    let clock = clock();
    let err = client(&server, &clock)
        .get_product(ProductId(1))
        .await
        .unwrap_err();
    match &err {
        OctanyError::Server {
            status: 503,
            attempts: 4,
            excerpt,
        } => assert!(excerpt.contains("Service Unavailable")),
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(err.to_string().contains("try again later"), "{err}");
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 3, "three back-offs between four attempts");
    assert!(
        sleeps.iter().all(|d| *d <= Duration::from_secs(5)),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn get_retry_stops_at_the_total_time_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let config = OctanyConfig::new(ACCOUNT, KEY)
        .unwrap()
        .with_api_url(&server.uri())
        .unwrap()
        .with_retry(
            RetryPolicy::default()
                .with_backoff(Duration::from_secs(10), Duration::from_secs(10))
                .with_max_elapsed(Duration::from_secs(5)),
        );
    let clock = clock();
    let client = OctanyClient::with_clock(config, Arc::new(clock.clone())).unwrap();
    let err = client.get_product(ProductId(1)).await.unwrap_err();
    assert!(matches!(err, OctanyError::Server { attempts: 1, .. }));
    assert!(
        clock.sleeps().is_empty(),
        "a back-off past max_elapsed is not started"
    );
}

#[tokio::test]
async fn a_post_answered_500_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{}/subscription/9/product", base())))
        .and(body_json(json!({"product_id": 1226})))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "Server Error"})))
        .expect(1)
        .mount(&server)
        .await;
    let clock = clock();
    let err = client(&server, &clock)
        .swap_subscription_product(&"9".into(), ProductId(1226))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OctanyError::Server {
                status: 500,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn unauthorized_not_found_and_validation_carry_their_messages() {
    let server = MockServer::start().await;
    Mock::given(path(format!("{}/subscription/1", base())))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
        )
        .mount(&server)
        .await;
    Mock::given(path(format!("{}/subscription/2", base())))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not found."})))
        .mount(&server)
        .await;
    Mock::given(path(format!("{}/subscription/3/product", base())))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "The given data was invalid.",
            "errors": {"product_id": ["A recurring donation cannot be swapped."]}
        })))
        .mount(&server)
        .await;
    let client = client(&server, &clock());

    let err = client.get_subscription(&"1".into()).await.unwrap_err();
    assert!(
        matches!(&err, OctanyError::Unauthorized { status: 401, message } if message == "Unauthenticated.")
    );
    assert!(err.to_string().contains("OCTANY_API_KEY"), "{err}");

    let err = client.get_subscription(&"2".into()).await.unwrap_err();
    assert!(
        matches!(&err, OctanyError::NotFound { resource: "subscription", message } if message == "Not found.")
    );

    let err = client
        .swap_subscription_product(&"3".into(), ProductId(1))
        .await
        .unwrap_err();
    match &err {
        OctanyError::Validation { message, errors } => {
            assert_eq!(message, "The given data was invalid.");
            assert_eq!(
                errors["product_id"],
                ["A recurring donation cannot be swapped."]
            );
        }
        other => panic!("expected validation, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("product_id: A recurring donation cannot be swapped."),
        "{err}"
    );
}

#[tokio::test]
async fn undecodable_body_is_a_decode_error_with_an_excerpt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&server)
        .await;
    let err = client(&server, &clock())
        .get_order(&"1".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OctanyError::Decode { status: 200, excerpt, .. } if excerpt.contains("maintenance"))
    );
}

/// A tiny stateful stand-in for one subscription's orders: a POST stores
/// the order and then, as told, answers normally, answers 500, or answers
/// 500 without storing it.
#[derive(Clone, Default)]
struct Orders {
    stored: Arc<Mutex<Vec<Value>>>,
    posts: Arc<Mutex<u32>>,
    /// Per POST, in order: (store it?, status to answer).
    script: Arc<Mutex<Vec<(bool, u16)>>>,
}

impl Respond for Orders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.method.as_str() == "GET" {
            let data = self.stored.lock().unwrap().clone();
            let n = data.len();
            return ResponseTemplate::new(200).set_body_json(json!({
                "data": data,
                "pagination": {"total": n, "count": n, "per_page": 100, "current_page": 1, "total_pages": 1, "links": {"next": null}}
            }));
        }
        *self.posts.lock().unwrap() += 1;
        let (store, status) = self.script.lock().unwrap().remove(0);
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let mut stored = self.stored.lock().unwrap();
        let order = json!({
            "id": 1000 + stored.len(), "state": "paid", "total": body["amount"], "total_with_vat": body["amount"],
            "currency": "sek", "items": [{"description": body["description"], "quantity": "1", "price": body["amount"],
            "product": {"id": body["product_id"], "name": "Add-on"}}]
        });
        if store {
            stored.push(order.clone());
        }
        if status == 200 {
            ResponseTemplate::new(201).set_body_json(json!({"data": order}))
        } else {
            ResponseTemplate::new(status).set_body_string("Server Error")
        }
    }
}

async fn orders_server(orders: &Orders) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(format!("{}/subscription/77/orders", base())))
        .respond_with(orders.clone())
        .mount(&server)
        .await;
    Mock::given(path(format!("{}/subscription/77/order", base())))
        .respond_with(orders.clone())
        .mount(&server)
        .await;
    server
}

fn charge() -> NewOrder {
    NewOrder {
        product_id: ProductId(77),
        amount: Some(500),
        description: Some("Extra seats".into()),
    }
}

#[tokio::test]
async fn a_charge_whose_answer_is_lost_is_found_by_listing_and_made_once() {
    let orders = Orders::default();
    // One order already exists with the same product, amount and description.
    orders
        .stored
        .lock()
        .unwrap()
        .push(json!({"id": 1, "state": "paid", "total": 500, "items": [
        {"description": "Extra seats", "quantity": "1", "price": 500, "product": {"id": 77}}]}));
    *orders.script.lock().unwrap() = vec![(true, 500)];
    let server = orders_server(&orders).await;
    let order = client(&server, &clock())
        .create_order(&"77".into(), &charge())
        .await
        .unwrap();
    assert_eq!(*orders.posts.lock().unwrap(), 1, "charged once");
    assert_eq!(orders.stored.lock().unwrap().len(), 2);
    assert_eq!(
        order.id.as_str(),
        "1001",
        "the new order, not the older identical one"
    );
}

#[tokio::test]
async fn a_charge_that_did_not_happen_is_sent_again() {
    let orders = Orders::default();
    *orders.script.lock().unwrap() = vec![(false, 503), (true, 200)];
    let server = orders_server(&orders).await;
    let order = client(&server, &clock())
        .create_order(&"77".into(), &charge())
        .await
        .unwrap();
    assert_eq!(*orders.posts.lock().unwrap(), 2);
    assert_eq!(
        orders.stored.lock().unwrap().len(),
        1,
        "exactly one charge in the end"
    );
    assert_eq!(order.total, 500);
}

#[tokio::test]
async fn a_charge_timing_out_is_reconciled() {
    let server = MockServer::start().await;
    let stored = json!({"id": 555, "state": "paid", "total": 500, "items": [
        {"description": "Extra seats", "quantity": "1", "price": 500, "product": {"id": 77}}]});
    let page = |data: Vec<Value>| json!({"data": data, "pagination": {"current_page": 1, "total_pages": 1}});
    Mock::given(method("GET"))
        .and(path(format!("{}/subscription/77/orders", base())))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{}/subscription/77/orders", base())))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![stored])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{}/subscription/77/order", base())))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let config = OctanyConfig::new(ACCOUNT, KEY)
        .unwrap()
        .with_api_url(&server.uri())
        .unwrap()
        .with_request_timeout(Duration::from_millis(200));
    let client = OctanyClient::with_clock(config, Arc::new(clock())).unwrap();
    let order = client.create_order(&"77".into(), &charge()).await.unwrap();
    assert_eq!(order.id.as_str(), "555");
}

#[tokio::test]
async fn a_charge_that_cannot_be_checked_is_unconfirmed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/subscription/77/orders", base())))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{}/subscription/77/orders", base())))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthenticated."})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, &clock())
        .create_order(&"77".into(), &charge())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OctanyError::Unconfirmed {
                action: "create order",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Look at Octany before trying again")
    );
}

#[tokio::test]
async fn a_new_subscription_whose_answer_is_lost_is_found_by_reference() {
    let server = MockServer::start().await;
    let list = |data: Vec<Value>| json!({"data": data, "pagination": {"current_page": 1, "total_pages": 1}});
    let existing = subscription(1, "active");
    let mut created = subscription(2, "active");
    created["product"] = json!({"id": 1300, "name": "Team"});
    Mock::given(method("GET"))
        .and(path(format!("{}/subscriptions", base())))
        .and(query_param("filter[reference_id]", "user:42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![existing.clone()])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{}/subscriptions", base())))
        .and(query_param("filter[reference_id]", "user:42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(vec![existing, created])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{}/subscriptions", base())))
        .and(body_json(json!({"type": "from_subscription", "subscription_id": 1, "product_id": 1300, "reference_id": "user:42"})))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let sub = client(&server, &clock())
        .create_subscription(&NewSubscription {
            subscription_id: "1".into(),
            product_id: ProductId(1300),
            custom_amount: None,
            reference_id: Some("user:42".into()),
            reference_name: None,
        })
        .await
        .unwrap();
    assert_eq!(sub.id.as_str(), "2");
}

#[tokio::test]
async fn registers_a_webhook_endpoint_and_updates_and_deletes_products() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{}/webhooks/endpoints", base())))
        .and(body_json(
            json!({"url": "https://app.example/billing/webhook"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"data": {"id": 3, "url": "https://app.example/billing/webhook"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{}/product/7", base())))
        .and(body_json(json!({"price": 200})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": 7, "name": "X", "price": 200}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{}/product/7", base())))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, &clock());
    let endpoint = client
        .register_webhook_endpoint("https://app.example/billing/webhook")
        .await
        .unwrap();
    assert_eq!(endpoint.id.as_deref(), Some("3"));
    let update = octany_actix::client::ProductUpdate {
        price: Some(200),
        ..Default::default()
    };
    assert_eq!(
        client
            .update_product(ProductId(7), &update)
            .await
            .unwrap()
            .price,
        200
    );
    client.delete_product(ProductId(7)).await.unwrap();
}

#[tokio::test]
async fn subscription_orders_are_paged_with_per_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/subscription/5/orders", base())))
        .and(query_param("page", "2"))
        .and(query_param("per_page", "10"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": 9, "state": "paid"}],
            "pagination": {"current_page": 2, "total_pages": 2, "per_page": 10}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server, &clock())
        .list_subscription_orders(&"5".into(), 2, 10)
        .await
        .unwrap();
    assert_eq!(page.data[0].id.as_str(), "9");
    assert!(!page.has_next());
}

//! The client's writes against a local HTTP server: list-after-write for
//! charges and new subscriptions (API.md section 7), webhook endpoints and
//! products, and paged orders.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use octany_actix::OctanyError;
use octany_actix::client::{NewOrder, NewSubscription, OctanyClient};
use octany_actix::config::OctanyConfig;
use octany_actix::model::ProductId;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod support;

use support::*;

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

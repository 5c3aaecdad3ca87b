//! The fake Octany's REST and control APIs, held to API.md with
//! hand-written expectations, and the real client held to the fake.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_wrong_missing_or_foreign_key_is_401() {
    let fake = fake().await;
    let (other_account, other_key) = fake.add_account(vec![]);
    let unauthenticated = json!({"message": "Unauthenticated."});
    assert_eq!(
        api_as(&fake, ACCOUNT, "wrong", "GET", "products", None).await,
        (401, unauthenticated.clone())
    );
    assert_eq!(
        api_as(&fake, ACCOUNT, "", "GET", "products", None).await,
        (401, unauthenticated.clone())
    );
    assert_eq!(
        api_as(&fake, ACCOUNT, &other_key, "GET", "products", None).await,
        (401, unauthenticated.clone())
    );
    // The other account's key works for the other account only.
    assert_eq!(
        api_as(&fake, &other_account, &other_key, "GET", "products", None)
            .await
            .0,
        200
    );
    // A header name in another case is the same header.
    let response = http()
        .get(format!("{}/api/{ACCOUNT}/products", fake.api_url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn products_list_get_and_404() {
    let fake = fake().await;
    let (status, body) = api(&fake, "GET", "product/1225", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": {"id": 1225, "name": "Pro monthly", "type": "subscription", "interval": "month",
                        "price": 9900, "currency": "sek", "vat_rate": 2500},
               "status": 200, "success": true})
    );
    let (status, body) = api(&fake, "GET", "products", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 6);
    assert_eq!(
        body["pagination"],
        json!({"total": 6, "count": 6, "per_page": 100, "current_page": 1, "total_pages": 1, "links": {"next": null}})
    );
    assert_eq!(
        api(&fake, "GET", "product/9999", None).await,
        (404, json!({"message": "Not found."}))
    );
}

#[tokio::test]
async fn subscriptions_come_20_a_page_in_either_spelling() {
    let fake = fake().await;
    for i in 0..25 {
        subscribe(&fake, &format!("user:{i}"));
    }
    let (_, page1) = api(&fake, "GET", "subscriptions", None).await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 20);
    let p = &page1["pagination"];
    assert_eq!(
        (
            p["total"].clone(),
            p["count"].clone(),
            p["per_page"].clone()
        ),
        (json!(25), json!(20), json!(20))
    );
    assert_eq!(
        (p["current_page"].clone(), p["total_pages"].clone()),
        (json!(1), json!(2))
    );
    let next = p["links"]["next"].as_str().unwrap();
    assert!(
        next.starts_with(&fake.api_url()) && next.ends_with("page=2"),
        "{next}"
    );
    let (_, page2) = api(&fake, "GET", "subscriptions?page=2", None).await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 5);
    assert_eq!(page2["pagination"]["links"]["next"], Value::Null);

    fake.set_legacy_pagination(true);
    let (_, legacy) = api(&fake, "GET", "subscriptions", None).await;
    assert_eq!(
        legacy["pagination"],
        json!({"total": 25, "count": 20, "perPage": 20, "currentPage": 1, "totalPages": 2, "links": []})
    );
    assert_eq!(
        (legacy["status"].clone(), legacy["success"].clone()),
        (json!(200), json!(true))
    );
}

#[tokio::test]
async fn subscriptions_filter_by_reference_email_and_customer() {
    let fake = fake().await;
    let mine = subscribe(&fake, "user:1");
    subscribe(&fake, "user:2");
    let (_, body) = api(
        &fake,
        "GET",
        "subscriptions?filter%5Breference_id%5D=user:1",
        None,
    )
    .await;
    let ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].to_string())
        .collect();
    assert_eq!(ids, [mine]);
    let (_, body) = api(
        &fake,
        "GET",
        "subscriptions?filter[email]=user-2@example.com",
        None,
    )
    .await;
    assert_eq!(body["data"][0]["reference_id"], "user:2");
    let customer = body["data"][0]["customer_id"].to_string();
    let (_, body) = api(
        &fake,
        "GET",
        &format!("subscriptions?filter[customer_id]={customer}"),
        None,
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["reference_id"], "user:2");
}

#[tokio::test]
async fn a_subscription_has_the_documented_shape() {
    let fake = fake().await;
    let id = subscribe(&fake, "user:42");
    let (status, body) = api(&fake, "GET", &format!("subscription/{id}"), None).await;
    assert_eq!(status, 200);
    let s = &body["data"];
    assert!(s["id"].is_u64(), "ids are integers today: {}", s["id"]);
    assert!(s["customer_id"].is_u64());
    assert_eq!(s["status"], "active");
    assert_eq!(
        (s["price"].clone(), s["vat"].clone(), s["currency"].clone()),
        (json!(9900), json!(2475), json!("sek"))
    );
    assert_eq!(
        s["renews_at"], "2026-02-01T00:00:00+00:00",
        "one month after the fake's start, with offset"
    );
    assert_eq!(s["ends_at"], Value::Null);
    assert_eq!(s["reference_id"], "user:42");
    assert_eq!(s["product"]["id"], 1225);
    assert_eq!(s["billing_method"]["type"], "stripe");
    assert_eq!(s["billing_method"]["person"]["first_name"], "Åsa");
    for url in ["update_card_url", "invoices_url", "cancel_url"] {
        assert!(
            s[url].as_str().unwrap().starts_with("http://127.0.0.1:"),
            "{url}"
        );
    }
    assert_eq!(
        api(&fake, "GET", "subscription/1", None).await,
        (404, json!({"message": "Not found."}))
    );
}

#[tokio::test]
async fn cancel_and_swap_with_their_errors() {
    let fake = fake().await;
    let id = subscribe(&fake, "user:1");
    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/product"),
        Some(json!({"product_id": 1227})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["data"]["product"]["id"].clone(),
            body["data"]["price"].clone()
        ),
        (json!(1227), json!(4900))
    );
    // The older form, `?product=`.
    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/product?product=1226"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["data"]["product"]["id"].clone()),
        (200, json!(1226))
    );
    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/product"),
        Some(json!({"product_id": 1300})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"]["product_id"][0],
        "A recurring donation cannot be swapped."
    );
    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/product"),
        Some(json!({"product_id": 9999})),
    )
    .await;
    assert_eq!(
        (status, body["errors"]["product_id"][0].clone()),
        (422, json!("The selected product id is invalid."))
    );

    let (status, body) = api(&fake, "POST", &format!("subscription/{id}/cancel"), None).await;
    assert_eq!(status, 200);
    let s = &body["data"];
    assert_eq!(
        (s["status"].clone(), s["renews_at"].clone()),
        (json!("cancelled"), Value::Null)
    );
    assert_eq!(
        s["ends_at"], "2026-02-01T00:00:00+00:00",
        "ends at the end of the paid period"
    );
    assert_eq!(
        api(&fake, "POST", "subscription/123/cancel", None).await.0,
        404
    );
}

#[tokio::test]
async fn swedish_validation_message_with_x_locale() {
    let fake = fake().await;
    let id = subscribe(&fake, "user:1");
    let response = http()
        .post(format!(
            "{}/api/{ACCOUNT}/subscription/{id}/product",
            fake.api_url()
        ))
        .header("X-API-KEY", KEY)
        .header("X-Locale", "sv")
        .json(&json!({"product_id": 1300}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Uppgifterna är ogiltiga.");
}

#[tokio::test]
async fn one_off_orders_and_their_errors() {
    let fake = fake().await;
    let id = subscribe(&fake, "user:1");
    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/order"),
        Some(json!({"product_id": 1400, "amount": 700, "description": "3 extra seats"})),
    )
    .await;
    assert_eq!(status, 200);
    let order = &body["data"];
    assert_eq!(
        (
            order["state"].clone(),
            order["total"].clone(),
            order["total_with_vat"].clone()
        ),
        (json!("paid"), json!(700), json!(875))
    );
    assert_eq!(
        order["items"][0],
        json!({"description": "3 extra seats", "quantity": "1", "price": 700, "vat": 175,
        "product": {"id": 1400, "name": "Extra seats", "type": "product", "interval": null, "price": 5000, "currency": "sek", "vat_rate": 2500}})
    );
    assert_eq!(order["reference_id"], "user:1");
    let order_id = order["id"].to_string();
    assert_eq!(
        api(&fake, "GET", &format!("order/{order_id}"), None)
            .await
            .1["data"]["id"]
            .to_string(),
        order_id
    );
    let (_, list) = api(
        &fake,
        "GET",
        &format!("subscription/{id}/orders?per_page=1&page=2"),
        None,
    )
    .await;
    assert_eq!(
        list["data"][0]["id"].to_string(),
        order_id,
        "the checkout's order first, the one-off second"
    );
    assert_eq!(list["pagination"]["total_pages"], 2);

    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/order"),
        Some(json!({"product_id": 1400, "amount": 0})),
    )
    .await;
    assert_eq!(
        (status, body["errors"]["amount"][0].clone()),
        (422, json!("The amount must be at least 1."))
    );
    let (status, body) = api(
        &fake,
        "POST",
        &format!("subscription/{id}/order"),
        Some(json!({"product_id": 5})),
    )
    .await;
    assert_eq!(
        (status, body["errors"]["product_id"][0].clone()),
        (422, json!("The selected product id is invalid."))
    );
    assert_eq!(api(&fake, "GET", "order/1", None).await.0, 404);
}

#[tokio::test]
async fn a_subscription_from_another_ones_billing_method() {
    let fake = fake().await;
    let source = subscribe(&fake, "user:1");
    let (status, body) = api(
        &fake,
        "POST",
        "subscriptions",
        Some(json!({"type": "from_subscription", "subscription_id": source.parse::<u64>().unwrap(), "product_id": 1227, "reference_id": "team:9"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["data"]["status"].clone(),
            body["data"]["reference_id"].clone()
        ),
        (json!("active"), json!("team:9"))
    );
    assert_eq!(body["data"]["billing_method"]["type"], "stripe");
    let (status, body) = api(
        &fake,
        "POST",
        "subscriptions",
        Some(json!({"type": "from_subscription", "subscription_id": 1, "product_id": 1227})),
    )
    .await;
    assert_eq!(
        (status, body["errors"]["subscription_id"][0].clone()),
        (422, json!("The selected subscription id is invalid."))
    );
}

//! The fake Octany's product and endpoint endpoints and its control API,
//! held to API.md with hand-written expectations, and the real client held
//! to the fake.

mod common;

use common::*;
use futures_util::TryStreamExt;
use octany_actix::OctanyError;
use octany_actix::client::{NewOrder, NewSubscription, OctanyClient, SubscriptionFilter};
use octany_actix::model::{OrderState, ProductId, SubscriptionId, SubscriptionStatus};
use octany_fake::{FakeProduct, FakeProductGroup};
use serde_json::{Value, json};

#[tokio::test]
async fn product_update_and_delete_fire_their_events() {
    let (fake, hooks) = fake_with_hooks().await;
    let (status, body) = api(
        &fake,
        "POST",
        "product/1227",
        Some(json!({"price": 5900, "name": "Basic+"})),
    )
    .await;
    assert_eq!(
        (
            status,
            body["data"]["price"].clone(),
            body["data"]["name"].clone()
        ),
        (200, json!(5900), json!("Basic+"))
    );
    let (status, body) = api(&fake, "POST", "product/1227", Some(json!({"price": -1}))).await;
    assert_eq!((status, body["errors"]["price"].is_array()), (422, true));
    assert_eq!(api(&fake, "DELETE", "product/1227", None).await.0, 204);
    assert_eq!(api(&fake, "GET", "product/1227", None).await.0, 404);
    fake.upsert_product_group(FakeProductGroup {
        id: 3,
        name: "Pro".into(),
        products: vec![1225, 1226],
    });
    fake.delete_product_group(3).unwrap();
    fake.send_test_hook();
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        [
            "product.updated",
            "product.deleted",
            "product-group.updated",
            "product-group.deleted",
            "test.hook"
        ]
    );
    let group = &received(&hooks).await[2].envelope["data"];
    assert_eq!(group["products"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn registering_an_endpoint_does_not_return_its_secret() {
    let fake = fake().await;
    let (status, body) = api(
        &fake,
        "POST",
        "webhooks/endpoints",
        Some(json!({"url": "https://app.example/billing/webhook"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["url"], "https://app.example/billing/webhook");
    assert!(
        body["data"].get("secret").is_none(),
        "Octany does not return the secret"
    );
    let endpoints = fake.webhook_endpoints();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].secret.len(), 32);
    let control: Value = http()
        .get(format!("{}endpoints", fake.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        control[0]["secret"],
        endpoints[0].secret.as_str(),
        "readable from the control API"
    );
    let (status, _) = api(
        &fake,
        "POST",
        "webhooks/endpoints",
        Some(json!({"url": "not a url"})),
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_client_speaks_to_the_fake() {
    let fake = fake().await;
    for i in 0..45 {
        subscribe(&fake, if i % 3 == 0 { "user:7" } else { "user:other" });
    }
    let client = OctanyClient::new(fake.config()).unwrap();
    for legacy in [false, true] {
        fake.set_legacy_pagination(legacy);
        let all: Vec<_> = client
            .stream_subscriptions(SubscriptionFilter::default())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            all.len(),
            45,
            "three pages walked (legacy spelling: {legacy})"
        );
        let mine: Vec<_> = client
            .stream_subscriptions(SubscriptionFilter::reference_id("user:7"))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(mine.len(), 15);
    }
    let id = SubscriptionId::new(subscribe(&fake, "user:8"));
    let sub = client.get_subscription(&id).await.unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    let swapped = client
        .swap_subscription_product(&id, ProductId(1226))
        .await
        .unwrap();
    assert_eq!(swapped.product_id(), Some(ProductId(1226)));
    let err = client
        .swap_subscription_product(&id, ProductId(1300))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OctanyError::Validation { errors, .. } if errors.contains_key("product_id")),
        "{err:?}"
    );
    let order = client
        .create_order(
            &id,
            &NewOrder {
                product_id: ProductId(1400),
                amount: Some(1000),
                description: Some("Seats".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!((order.state, order.total), (OrderState::Paid, 1000));
    let second = client
        .create_subscription(&NewSubscription {
            subscription_id: id.clone(),
            product_id: ProductId(1227),
            custom_amount: None,
            reference_id: Some("user:8".into()),
            reference_name: None,
        })
        .await
        .unwrap();
    assert_eq!(second.reference_id.as_deref(), Some("user:8"));
    let products: Vec<_> = client.stream_products().try_collect().await.unwrap();
    assert_eq!(products.len(), 6);
    let cancelled = client.cancel_subscription(&id).await.unwrap();
    assert_eq!(cancelled.status, SubscriptionStatus::Cancelled);
    assert!(matches!(
        client.get_subscription(&"1".into()).await,
        Err(OctanyError::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_control_api_moves_the_clock_and_shows_the_state() {
    let fake = fake().await;
    let control = fake.control_url();
    let clock: Value = http()
        .get(format!("{control}clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock, json!({"now": "2026-01-01T00:00:00+00:00"}));
    let moved: Value = http()
        .post(format!("{control}clock/advance?days=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["now"], "2026-01-03T00:00:00+00:00");
    http()
        .post(format!("{control}clock/advance?seconds=3600"))
        .send()
        .await
        .unwrap();
    http()
        .post(format!("{control}clock/advance?months=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(fake.now().to_rfc3339(), "2026-02-03T01:00:00+00:00");
    let bad = http()
        .post(format!("{control}clock/advance?days=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let set = http()
        .post(format!("{control}clock/set?now=2026-03-01T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(fake.now().to_rfc3339(), "2026-03-01T00:00:00+00:00");

    let added = http()
        .post(format!("{control}products"))
        .json(&FakeProduct::recurring(2000, "Enterprise", 190000, "year"))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    assert_eq!(
        api(&fake, "GET", "product/2000", None).await.1["data"]["name"],
        "Enterprise"
    );

    let subscription = subscribe(&fake, "user:1");
    // A usage charge: the amount given, its line kept.
    let (status, made) = api(
        &fake,
        "POST",
        &format!("subscription/{subscription}/order"),
        Some(json!({"product_id": 1401, "amount": 2468, "description": "api_calls: 1234 used in the period ending 2026-04-01"})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let state: Value = http()
        .get(format!("{control}state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["accounts"][0]["subscriptions"][0]["reference_id"],
        "user:1"
    );
    assert_eq!(state["accounts"][0]["uuid"], ACCOUNT);

    // The page's buttons are forms; a browser is sent back to the page.
    let page = http().get(&control).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("+1 month") && html.contains("+1 day") && html.contains("user:1"));
    // Orders are listed with what they bill: the usage charge's line and
    // amount (with 25 % VAT).
    assert!(
        html.contains("api_calls: 1234 used in the period ending 2026-04-01"),
        "{html}"
    );
    assert!(html.contains("30,85"), "2468 öre + VAT: {html}");
    let from_form = http()
        .post(format!("{control}clock/advance?days=1"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            from_form.status().as_u16(),
            from_form.headers()["location"].to_str().unwrap()
        ),
        (303, "/_fake/")
    );
}

#[test]
fn the_sample_catalog_is_documented_with_its_ids_and_prices() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/fake.md"))
        .expect("docs/fake.md");
    let catalog = octany_fake::sample_catalog();
    assert!(!catalog.is_empty());
    for product in catalog {
        let row = format!(
            "| {} | {} | {}",
            product.id,
            product.name,
            match (&product.interval, product.kind.as_deref()) {
                (None, _) => "one-off".to_owned(),
                (Some(_), Some("recurring_donation")) => "recurring donation".to_owned(),
                (Some(_), _) => "subscription".to_owned(),
            }
        );
        let line = doc
            .lines()
            .find(|line| line.starts_with(&row))
            .unwrap_or_else(|| panic!("docs/fake.md's catalog has no row `{row}`"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[4], product.price.to_string(), "{line}");
        assert_eq!(cells[5], format!("{} %", product.vat_rate / 100), "{line}");
        if let Some(days) = product.trial_days {
            assert!(cells[3].contains(&format!("{days}-day trial")), "{line}");
        }
    }
}

#[tokio::test]
async fn a_fake_given_no_start_time_starts_at_the_real_time() {
    use octany_actix::clock::{Clock, SystemClock};
    let before = SystemClock.now();
    let fake = octany_fake::FakeOctany::builder().start().await.unwrap();
    let after = SystemClock.now();
    let now = fake.now();
    assert!(
        now > before - chrono::TimeDelta::seconds(1) && now <= after,
        "{before} <= {now} <= {after}"
    );
    assert_eq!(
        now.timestamp_subsec_nanos(),
        0,
        "to the second, as a `Date` header"
    );
    fake.stop().await;
}

//! The fake's webhook deliveries (signatures, PHP bytes, retries under one
//! id, pausing) and its fault switches; the standalone binary.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::TryStreamExt;
use octany_actix::client::OctanyClient;
use octany_actix::clock::ManualClock;
use octany_actix::config::OctanyConfig;
use octany_actix::model::{SubscriptionId, SubscriptionStatus};
use octany_fake::{DeliveryPolicy, DeliveryStatus, FakeOctany, Faults};
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn deliveries_are_signed_over_the_php_encoded_bytes() {
    let (fake, hooks) = fake_with_hooks().await;
    subscribe(&fake, "user:1");
    fake.settled().await;
    let requests = hooks.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let signature = request.headers["Octany-Signature"].to_str().unwrap();
        assert_eq!(
            signature,
            hmac_hex(SECRET, &request.body),
            "plain HMAC-SHA256 over the received bytes"
        );
        assert_eq!(request.headers["User-Agent"], "Octany/1.0");
        assert_eq!(request.headers["Content-Type"], "application/json");
        assert!(
            !request.body.windows(2).any(|w| w == b"//"),
            "no unescaped slash"
        );
        let envelope: Value = serde_json::from_slice(&request.body).unwrap();
        assert!(envelope["id"].is_u64());
        assert_eq!(envelope["account"], 1042);
        assert_eq!(envelope["created_at"], "2026-01-01T00:00:00+00:00");
    }
    let created = std::str::from_utf8(&requests[2].body).unwrap();
    assert!(
        created.contains(r"http:\/\/127.0.0.1"),
        "slashes escaped as PHP does: {created}"
    );
    assert!(
        created.contains(r#""first_name":"\u00c5sa""#),
        "non-ASCII as \\uXXXX: {created}"
    );
    let log = fake.deliveries();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|d| d.status == DeliveryStatus::Delivered && d.attempts.len() == 1)
    );
    assert_eq!(
        log[0].body.as_bytes(),
        requests[0].body.as_slice(),
        "the log keeps the exact bytes"
    );
}

#[tokio::test]
async fn a_delivery_answered_500_twice_is_retried_with_one_id() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let fake = fake().await;
    fake.set_delivery_policy(DeliveryPolicy {
        backoff: Duration::from_millis(1),
        ..DeliveryPolicy::default()
    });
    fake.add_webhook_endpoint(&format!("{}/hook", hooks.uri()), Some(SECRET));
    fake.send_test_hook();
    fake.settled().await;
    let arrived = received(&hooks).await;
    assert_eq!(arrived.len(), 3, "two failures and the success");
    let ids: HashSet<&str> = arrived.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one delivery id: {ids:?}");
    assert!(
        arrived.iter().all(|r| r.body == arrived[0].body),
        "the same bytes each time"
    );
    let log = fake.deliveries();
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    let statuses: Vec<Option<u16>> = log[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
}

#[tokio::test]
async fn a_delivery_that_never_succeeds_is_given_up_and_logged() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&hooks)
        .await;
    let transport = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
    let fake = FakeOctany::builder()
        .transport_clock(Arc::new(transport.clone()))
        .delivery_policy(DeliveryPolicy {
            max_attempts: 4,
            backoff: Duration::from_secs(10),
            ..DeliveryPolicy::default()
        })
        .webhook(format!("{}/hook", hooks.uri()), Some(SECRET))
        .start()
        .await
        .unwrap();
    fake.send_test_hook();
    fake.settled().await;
    assert_eq!(received(&hooks).await.len(), 4);
    assert_eq!(fake.deliveries()[0].status, DeliveryStatus::Failed);
    let backoffs: Vec<u64> = transport.sleeps().iter().map(|d| d.as_secs()).collect();
    assert_eq!(backoffs, [10, 20, 40], "doubling back-off between attempts");
}

#[tokio::test]
async fn a_timeout_counts_as_a_failed_attempt() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let fake = fake().await;
    fake.set_delivery_policy(DeliveryPolicy {
        timeout: Duration::from_millis(100),
        backoff: Duration::from_millis(1),
        ..DeliveryPolicy::default()
    });
    fake.add_webhook_endpoint(&format!("{}/hook", hooks.uri()), Some(SECRET));
    fake.send_test_hook();
    fake.settled().await;
    let attempts = &fake.deliveries()[0].attempts;
    assert_eq!(attempts.len(), 2);
    assert!(attempts[0].status.is_none() && attempts[0].error.is_some());
    assert_eq!(attempts[1].status, Some(200));
}

#[tokio::test]
async fn an_endpoint_can_be_paused_and_released() {
    let (fake, hooks) = fake_with_hooks().await;
    let endpoint = fake.webhook_endpoints()[0].id;
    fake.pause_deliveries(endpoint);
    subscribe(&fake, "user:1");
    fake.settled().await;
    assert!(received(&hooks).await.is_empty(), "held while paused");
    assert!(
        fake.deliveries()
            .iter()
            .all(|d| d.status == DeliveryStatus::Paused)
    );
    fake.release_deliveries(endpoint);
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        ["order.confirmed", "order.paid", "subscription.created"],
        "released in order"
    );
    assert!(
        fake.deliveries()
            .iter()
            .all(|d| d.status == DeliveryStatus::Delivered)
    );
    // The same over the control API.
    let control = fake.control_url();
    assert_eq!(
        http()
            .post(format!("{control}endpoints/{endpoint}/pause"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    fake.send_test_hook();
    fake.settled().await;
    assert_eq!(received(&hooks).await.len(), 3);
    http()
        .post(format!("{control}endpoints/{endpoint}/release"))
        .send()
        .await
        .unwrap();
    fake.settled().await;
    assert_eq!(received(&hooks).await.len(), 4);
    let log: Value = http()
        .get(format!("{control}deliveries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 4);
    assert_eq!(log[3]["event"], "test.hook");
}

#[tokio::test]
async fn api_errors_fault_answers_5xx_and_changes_nothing() {
    let fake = fake().await;
    let id = subscribe(&fake, "user:1");
    fake.set_faults(Faults {
        api_error_rate: 1.0,
        ..Faults::none()
    });
    for _ in 0..10 {
        let (status, _) = api(&fake, "POST", &format!("subscription/{id}/cancel"), None).await;
        assert!(status == 500 || status == 503, "{status}");
    }
    fake.set_faults(Faults::none());
    assert_eq!(
        fake.subscription(&SubscriptionId::new(id)).unwrap().status,
        SubscriptionStatus::Active
    );
}

#[tokio::test]
async fn lost_responses_fault_applies_the_post_but_answers_502() {
    let fake = fake().await;
    let id = subscribe(&fake, "user:1");
    fake.set_faults(Faults {
        lost_response_rate: 1.0,
        ..Faults::none()
    });
    let (status, body) = api(&fake, "POST", &format!("subscription/{id}/cancel"), None).await;
    assert_eq!(status, 502);
    assert!(body.as_str().unwrap().contains("Bad Gateway"));
    assert_eq!(
        fake.subscription(&SubscriptionId::new(id.clone()))
            .unwrap()
            .status,
        SubscriptionStatus::Cancelled
    );
    assert_eq!(
        api(&fake, "GET", &format!("subscription/{id}"), None)
            .await
            .0,
        200,
        "GETs are not affected"
    );
}

#[tokio::test]
async fn the_client_charges_once_through_lost_responses() {
    let fake = fake().await;
    let id = SubscriptionId::new(subscribe(&fake, "user:1"));
    fake.set_faults(Faults {
        lost_response_rate: 1.0,
        ..Faults::none()
    });
    let client = OctanyClient::new(fake.config()).unwrap();
    let order = client
        .create_order(
            &id,
            &octany_actix::client::NewOrder {
                product_id: octany_actix::model::ProductId(1400),
                amount: None,
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(order.total, 5000);
    assert_eq!(
        fake.orders().len(),
        2,
        "the checkout's order and exactly one charge"
    );
}

#[tokio::test]
async fn rate_limit_fault_answers_429_with_retry_after() {
    let transport = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
    let fake = FakeOctany::builder()
        .account(ACCOUNT, KEY)
        .transport_clock(Arc::new(transport.clone()))
        .faults(Faults {
            rate_limit_per_minute: Some(3),
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(api(&fake, "GET", "products", None).await.0, 200);
    }
    transport.advance(Duration::from_secs(20));
    let response = http()
        .get(format!("{}/api/{ACCOUNT}/products", fake.api_url()))
        .header("X-API-KEY", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["Retry-After"], "40");
    assert_eq!(
        response.json::<Value>().await.unwrap()["message"],
        "Too Many Attempts."
    );
    transport.advance(Duration::from_secs(40));
    assert_eq!(
        api(&fake, "GET", "products", None).await.0,
        200,
        "the window has moved on"
    );
}

#[tokio::test]
async fn api_latency_fault_waits_on_the_transport_clock() {
    let transport = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
    let fake = FakeOctany::builder()
        .account(ACCOUNT, KEY)
        .transport_clock(Arc::new(transport.clone()))
        .faults(Faults {
            api_latency_ms: 250,
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    api(&fake, "GET", "products", None).await;
    api(&fake, "GET", "products", None).await;
    assert_eq!(transport.sleeps(), [Duration::from_millis(250); 2]);
}

#[tokio::test]
async fn drop_and_duplicate_faults() {
    let (fake, hooks) = fake_with_hooks().await;
    fake.set_faults(Faults {
        webhook_drop_rate: 1.0,
        ..Faults::none()
    });
    subscribe(&fake, "user:1");
    fake.settled().await;
    assert!(received(&hooks).await.is_empty());
    assert!(
        fake.deliveries()
            .iter()
            .all(|d| d.status == DeliveryStatus::Dropped && d.copies == 0)
    );

    fake.set_faults(Faults {
        webhook_duplicate_rate: 1.0,
        ..Faults::none()
    });
    fake.send_test_hook();
    fake.settled().await;
    let arrived = received(&hooks).await;
    assert_eq!(arrived.len(), 2);
    assert_eq!(
        arrived[0].id, arrived[1].id,
        "a duplicate carries the same delivery id"
    );
    assert_eq!(arrived[0].signature, arrived[1].signature);
}

#[tokio::test]
async fn delay_fault_holds_deliveries_back() {
    let hooks = hook_server().await;
    let transport = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
    let fake = FakeOctany::builder()
        .sample_catalog()
        .transport_clock(Arc::new(transport.clone()))
        .faults(Faults {
            webhook_delay_rate: 1.0,
            webhook_delay_max_ms: 5_000,
            ..Faults::none()
        })
        .webhook(format!("{}/hook", hooks.uri()), Some(SECRET))
        .start()
        .await
        .unwrap();
    subscribe(&fake, "user:1");
    fake.settled().await;
    assert_eq!(received(&hooks).await.len(), 3, "held back, then delivered");
    let holds = transport.sleeps();
    assert_eq!(holds.len(), 3);
    assert!(
        holds.iter().all(|h| *h <= Duration::from_secs(5)),
        "{holds:?}"
    );
}

#[tokio::test]
async fn reorder_fault_shuffles_arrivals() {
    let (fake, hooks) = fake_with_hooks().await;
    fake.set_faults(Faults {
        webhook_reorder: true,
        webhook_reorder_window_ms: 400,
        ..Faults::none()
    });
    for _ in 0..8 {
        fake.send_test_hook();
    }
    fake.settled().await;
    let sent: Vec<String> = fake
        .deliveries()
        .iter()
        .map(|d| d.delivery_id.clone())
        .collect();
    let arrived: Vec<String> = received(&hooks).await.into_iter().map(|r| r.id).collect();
    let mut sorted = arrived.clone();
    sorted.sort();
    assert_eq!(sorted, sent, "every delivery arrives once");
    assert_ne!(arrived, sent, "but not in the order they were sent");
}

async fn error_sequence(seed: u64) -> Vec<u16> {
    let fake = FakeOctany::builder()
        .account(ACCOUNT, KEY)
        .seed(seed)
        .faults(Faults {
            api_error_rate: 0.5,
            ..Faults::none()
        })
        .start()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(api(&fake, "GET", "products", None).await.0);
    }
    statuses
}

#[tokio::test]
async fn one_seed_gives_one_fault_sequence() {
    let first = error_sequence(7).await;
    assert_eq!(first, error_sequence(7).await);
    assert_ne!(first, error_sequence(8).await);
    let failures = first.iter().filter(|s| **s != 200).count();
    assert!((5..=25).contains(&failures), "about half fail: {first:?}");
}

#[tokio::test]
async fn faults_are_switched_over_the_control_api() {
    let fake = fake().await;
    let control = fake.control_url();
    let set = http()
        .post(format!("{control}faults?seed=3"))
        .json(&serde_json::json!({"api_error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(fake.faults().api_error_rate, 1.0);
    assert!(api(&fake, "GET", "products", None).await.0 >= 500);
    let shown: Value = http()
        .get(format!("{control}faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["api_error_rate"], 1.0);
    http()
        .post(format!("{control}faults"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(api(&fake, "GET", "products", None).await.0, 200);
    let legacy = http()
        .post(format!("{control}config?legacy_pagination=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 200);
    assert_eq!(
        api(&fake, "GET", "products", None).await.1["pagination"]["links"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn the_binary_prints_one_json_line_an_app_can_use() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_octany-fake"))
        .args([
            "--port",
            "0",
            "--webhook-url",
            "http://127.0.0.1:9/billing/webhook",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).expect("one JSON line");
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "account",
            "api_key",
            "api_url",
            "checkout_url",
            "control_url",
            "now",
            "webhook_secret"
        ]
    );
    // The virtual clock starts at the real time, so an app on the system
    // clock agrees with it about what is due.
    let started = chrono::DateTime::parse_from_rfc3339(info["now"].as_str().unwrap()).unwrap();
    let drift = (chrono::Utc::now() - started.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    assert!(
        drift < 300,
        "the fake's clock starts {drift} s away from the real time"
    );
    assert_eq!(info["webhook_secret"].as_str().unwrap().len(), 32);
    // The OCTANY_* variables filled from that line make the client talk to it.
    let vars = |name: &str| match name {
        "OCTANY_ACCOUNT" => info["account"].as_str().map(str::to_owned),
        "OCTANY_API_KEY" => info["api_key"].as_str().map(str::to_owned),
        "OCTANY_API_URL" => info["api_url"].as_str().map(str::to_owned),
        "OCTANY_CHECKOUT_URL" => info["checkout_url"].as_str().map(str::to_owned),
        "OCTANY_WEBHOOK_SECRET" => info["webhook_secret"].as_str().map(str::to_owned),
        _ => None,
    };
    let config = OctanyConfig::from_vars(vars).unwrap();
    let client = OctanyClient::new(config.clone()).unwrap();
    let products: Vec<_> = client.stream_products().try_collect().await.unwrap();
    let checkout = http()
        .get(format!(
            "{}checkout/{}/product/1225?successUrl=http://localhost/ok",
            config.checkout_url(),
            config.account()
        ))
        .send()
        .await
        .unwrap();
    let control = http()
        .get(info["control_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    child.kill().ok();
    child.wait().ok();
    assert_eq!(products.len(), 6, "the sample catalog");
    assert_eq!(checkout.status(), 200);
    assert_eq!(control.status(), 200);
}

#[test]
fn the_binary_starts_its_clock_where_told() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_octany-fake"))
        .args(["--port", "0", "--now", "2030-05-01T12:00:00Z"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().ok();
    child.wait().ok();
    let info: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(info["now"], "2030-05-01T12:00:00+00:00");
    let refused = Command::new(env!("CARGO_BIN_EXE_octany-fake"))
        .args(["--now", "tomorrow"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("RFC 3339"));
}

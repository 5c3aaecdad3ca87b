//! The client against a local HTTP server: headers and paths, pagination,
//! retries, list-after-write, error mapping (API.md sections 1 to 4 and 7).

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use octany_actix::OctanyError;
use octany_actix::client::{OctanyClient, RetryPolicy, SubscriptionFilter};
use octany_actix::config::OctanyConfig;
use octany_actix::model::{ProductId, SubscriptionId, SubscriptionStatus};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod support;

use support::*;

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

#[test]
fn the_checkout_url_carries_amount_locale_methods_and_roles_and_refuses_a_long_reference() {
    use octany_actix::client::CheckoutRequest;
    use octany_actix::config::Locale;
    use octany_actix::model::ProductId;
    let client = octany_actix::OctanyClient::new(
        octany_actix::OctanyConfig::new("8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1", "key").unwrap(),
    )
    .unwrap();
    let success: url::Url = "https://app.example/billing/success".parse().unwrap();
    let mut request = CheckoutRequest::new("user:1", success.clone()).locale(Locale::Sv);
    request.amount = Some(12300);
    request.methods = vec!["stripe".into(), "swish".into()];
    request.roles = vec!["b2b".into()];
    let url = client.checkout_url(ProductId(1225), &request).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["amount"], "12300");
    assert_eq!(query["locale"], "sv");
    assert_eq!(query["methods"], "stripe,swish");
    assert_eq!(query["roles"], "b2b");
    let longest = CheckoutRequest::new("u".repeat(250), success.clone());
    assert!(client.checkout_url(ProductId(1225), &longest).is_ok());
    let too_long = CheckoutRequest::new("u".repeat(251), success);
    let refused = client.checkout_url(ProductId(1225), &too_long).unwrap_err();
    assert!(refused.to_string().contains("250"), "{refused}");
}

//! The fake's hosted checkout and the subscription life cycle on its
//! virtual clock, each transition with the events it emits.

#[path = "../common/mod.rs"]
mod common;

use common::*;
use octany_actix::model::{Entitlement, OrderState, SubscriptionId, SubscriptionStatus};
use octany_fake::{CheckoutOutcome, FakeProduct, Refusal};
use serde_json::json;

mod renewals;

fn checkout_path(fake: &octany_fake::FakeOctany, product: i64, success: &str) -> String {
    let success: String = url::form_urlencoded::byte_serialize(success.as_bytes()).collect();
    format!(
        "{}/checkout/{ACCOUNT}/product/{product}?referenceId=user%3A42&email=ada%40example.com&firstName=Ada&successUrl={success}",
        fake.checkout_url()
    )
}

#[tokio::test]
async fn the_checkout_page_shows_the_product_and_the_outcomes() {
    let fake = fake().await;
    let page = http()
        .get(checkout_path(
            &fake,
            1225,
            "http://localhost:8080/billing/success",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Pro monthly") && html.contains("123,75 SEK"),
        "price with VAT shown"
    );
    assert!(html.contains("ada@example.com"));
    for outcome in ["succeed", "decline", "invoice", "trial", "future_start"] {
        assert!(
            html.contains(&format!(r#"name="outcome" value="{outcome}""#)),
            "{outcome}"
        );
    }
    let no_trial = http()
        .get(checkout_path(&fake, 1227, "https://app.example/ok"))
        .send()
        .await
        .unwrap();
    assert!(!no_trial.text().await.unwrap().contains(r#"value="trial""#));
}

#[tokio::test]
async fn the_checkout_refuses_bad_urls_and_unknown_products() {
    let fake = fake().await;
    let insecure = http()
        .get(checkout_path(&fake, 1225, "http://app.example/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(insecure.status(), 400);
    assert!(
        insecure
            .text()
            .await
            .unwrap()
            .contains("must be an https URL")
    );
    let missing = http()
        .get(format!(
            "{}/checkout/{ACCOUNT}/product/1225",
            fake.checkout_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = http()
        .get(checkout_path(&fake, 4242, "https://app.example/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let long = "x".repeat(251);
    let url = format!(
        "{}/checkout/{ACCOUNT}/product/1225?referenceId={long}&successUrl=https://a.example/",
        fake.checkout_url()
    );
    assert_eq!(http().get(url).send().await.unwrap().status(), 400);
    // Nothing was created by any of them.
    assert!(fake.subscriptions().is_empty());
}

#[tokio::test]
async fn paying_by_card_redirects_with_placeholders_and_emits_three_events() {
    let (fake, hooks) = fake_with_hooks().await;
    let success = "https://app.example/billing/success?sub={subscriptionId}&total={total}&who={email}&p={product}";
    let response = http()
        .post(checkout_path(&fake, 1225, success))
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let subscriptions = fake.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    let sub = &subscriptions[0];
    assert_eq!(
        location,
        format!(
            // {product} is the product's name, {total} without VAT (API.md section 9).
            "https://app.example/billing/success?sub={}&total=9900&who=ada%40example.com&p=Pro+monthly",
            sub.id
        )
    );
    assert_eq!(
        (sub.status.clone(), sub.reference_id.as_deref()),
        (SubscriptionStatus::Active, Some("user:42"))
    );
    assert_eq!(fake.orders()[0].state, OrderState::Paid);
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        ["order.confirmed", "order.paid", "subscription.created"]
    );
    let events = received(&hooks).await;
    assert_eq!(events[0].envelope["data"]["state"], "confirmed");
    assert_eq!(events[1].envelope["data"]["state"], "paid");
    assert_eq!(events[2].envelope["data"]["reference_id"], "user:42");
}

#[tokio::test]
async fn a_declined_card_creates_nothing() {
    let (fake, hooks) = fake_with_hooks().await;
    let response = http()
        .post(checkout_path(&fake, 1225, "https://app.example/ok"))
        .form(&[("outcome", "decline")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 402);
    assert!(response.text().await.unwrap().contains("declined"));
    assert!(fake.subscriptions().is_empty() && fake.orders().is_empty());
    fake.settled().await;
    assert!(received(&hooks).await.is_empty());
    let bad = http()
        .post(checkout_path(&fake, 1225, "https://app.example/ok"))
        .form(&[("outcome", "bitcoin")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn an_invoice_is_pending_until_paid() {
    let (fake, hooks) = fake_with_hooks().await;
    let bought = fake
        .checkout(1225, &buyer("user:1"), CheckoutOutcome::Invoice)
        .unwrap();
    let id = bought.subscription.unwrap().id;
    let invoice = bought.order.unwrap();
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Pending
    );
    assert_eq!(invoice.state, OrderState::Pending);
    fake.settled().await;
    assert_eq!(event_names(&hooks).await, ["order.confirmed"]);

    fake.advance_days(10);
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Pending,
        "time alone pays nothing"
    );
    fake.pay_invoice(&invoice.id).unwrap();
    let sub = fake.subscription(&id).unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(
        sub.renews_at.unwrap().to_rfc3339(),
        "2026-02-11T00:00:00+00:00",
        "the period starts at payment"
    );
    assert_eq!(fake.orders()[0].state, OrderState::Paid);
    assert!(fake.pay_invoice(&invoice.id).is_err(), "paid once");
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        ["order.confirmed", "order.paid", "subscription.created"]
    );
}

#[tokio::test]
async fn an_invoice_unpaid_at_its_due_date_leaves_the_subscription_unpaid() {
    let (fake, hooks) = fake_with_hooks().await;
    let bought = fake
        .checkout(1225, &buyer("user:1"), CheckoutOutcome::Invoice)
        .unwrap();
    let id = bought.subscription.unwrap().id;
    let invoice = bought.order.unwrap();
    fake.advance_days(13);
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Pending
    );
    fake.advance_days(1);
    assert_eq!(
        fake.subscription(&id).unwrap().status,
        SubscriptionStatus::Unpaid,
        "overdue: unpaid (API.md section 6)"
    );
    assert_eq!(fake.orders()[0].state, OrderState::Pending, "never paid");
    assert!(fake.pay_invoice(&invoice.id).is_err(), "no longer open");
    fake.settled().await;
    assert_eq!(
        event_names(&hooks).await,
        ["order.confirmed", "subscription.updated"]
    );
}

#[tokio::test]
async fn methods_allow_only_the_named_payment_methods_and_roles_tag_the_customer() {
    let fake = fake().await;
    let success = "https://app.example/ok";
    let card_only = format!(
        "{}&methods=stripe,swish&role=b2c&roles=newsletter",
        checkout_path(&fake, 1225, success)
    );
    let invoice = http()
        .post(&card_only)
        .form(&[("outcome", "invoice")])
        .send()
        .await
        .unwrap();
    assert_eq!(invoice.status(), 422, "an invoice is not an allowed method");
    assert!(
        invoice
            .text()
            .await
            .unwrap()
            .contains("allows only stripe, swish")
    );
    assert!(fake.subscriptions().is_empty());
    let card = http()
        .post(&card_only)
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(card.status(), 303);
    assert_eq!(
        fake.customer_roles("ada@example.com"),
        ["b2c", "newsletter"]
    );
    let invoice_only = format!("{}&methods=fortnox", checkout_path(&fake, 1226, success));
    let by_card = http()
        .post(&invoice_only)
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(by_card.status(), 422);
    let by_invoice = http()
        .post(&invoice_only)
        .form(&[("outcome", "invoice")])
        .send()
        .await
        .unwrap();
    assert_eq!(by_invoice.status(), 303);
    assert_eq!(fake.subscriptions().len(), 2);
}

#[tokio::test]
async fn amount_overrides_the_price_and_locale_reaches_the_customer() {
    let fake = fake().await;
    let url = format!(
        "{}&amount=12300&locale=sv",
        checkout_path(&fake, 1400, "https://app.example/ok?total={total}")
    );
    let page = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("153,75 SEK"), "12 300 öre plus 25 % VAT");
    let paid = http()
        .post(&url)
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        paid.headers()["location"],
        "https://app.example/ok?total=12300"
    );
    let order = &fake.orders()[0];
    assert_eq!((order.total, order.total_with_vat), (12300, 15375));
    assert_eq!(
        order
            .billing_method
            .as_ref()
            .and_then(|m| m.person.as_ref())
            .and_then(|p| p.locale.as_deref()),
        Some("sv")
    );
}

/// Waits until the fake holds `count` subscriptions; fails after 20 s.
async fn subscriptions_reach(fake: &octany_fake::FakeOctany, count: usize) {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while fake.subscriptions().len() < count {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("settled within 20 s");
}

#[tokio::test]
async fn a_delayed_settlement_sends_the_buyer_back_first_and_settles_later() {
    let (fake, hooks) = fake_with_hooks().await;
    fake.set_faults(octany_fake::Faults {
        settlement_delay_ms: 5_000,
        ..octany_fake::Faults::none()
    });
    let paid = http()
        .post(checkout_path(
            &fake,
            1225,
            "http://localhost:8080/ok?s={subscriptionId}",
        ))
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    assert_eq!(
        paid.headers()["location"],
        "http://localhost:8080/ok?s=",
        "sent back before there is a subscription"
    );
    assert!(fake.subscriptions().is_empty(), "pending: nothing yet");
    subscriptions_reach(&fake, 1).await;
    fake.settled().await;
    let names: Vec<String> = received(&hooks).await.into_iter().map(|r| r.name).collect();
    assert!(
        names.contains(&"subscription.created".to_owned()),
        "{names:?}"
    );

    // Without its webhooks: the subscription appears, nothing is sent.
    fake.set_faults(octany_fake::Faults {
        settlement_delay_ms: 50,
        settlement_without_webhooks: true,
        ..octany_fake::Faults::none()
    });
    let sent = received(&hooks).await.len();
    let paid = http()
        .post(checkout_path(&fake, 1227, "http://localhost:8080/ok"))
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    subscriptions_reach(&fake, 2).await;
    fake.settled().await;
    assert_eq!(received(&hooks).await.len(), sent, "no webhook for it");
}

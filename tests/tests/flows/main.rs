//! The billing flows beside the happy path (issue 11), each through the
//! library's routes against the fake Octany, on every database: a second
//! plan, a double submit, a declined card, an abandoned checkout, an
//! invoice customer, a one-off product at checkout, a lost answer.

use std::time::Duration;

use futures_util::future::join_all;
use octany_actix::client::NewOrder;
use octany_actix::entity::checkout;
use octany_actix::model::{AccessPolicy, BillableRef, ProductId};
use octany_actix::{Billable, BillingError};
use octany_actix_tests::app::{Plans, TestUser, builder};
use octany_actix_tests::harness::{envelope, signed};
use octany_actix_tests::http::{buyer, call, hidden, pay, post_form};
use octany_actix_tests::sea_orm::{EntityTrait, PaginatorTrait};
use octany_actix_tests::{db_test, started};
use octany_fake::{CheckoutOutcome, CheckoutParams, Faults};
use serde_json::json;

mod api_calls;
mod comps;
mod console;
mod fairness;
mod features;
mod notices;
mod operations;
mod plans;
mod receipts;
mod usage;
mod waits;

fn add_on(key_amount: Option<i64>) -> NewOrder {
    NewOrder {
        product_id: ProductId(1400),
        amount: key_amount,
        description: Some("Extra seats".into()),
    }
}

db_test!(
    async fn one_idempotency_key_makes_one_order_however_often_it_is_submitted(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let user = TestUser::new(3);
        fake.checkout(1227, &buyer(3), CheckoutOutcome::Succeed)
            .unwrap();
        let billing = octany.billing(&user);
        billing.sync().await.unwrap();
        let before = fake.orders().len();

        // Two submits at once, then a third.
        let at_once = join_all((0..2).map(|_| billing.charge("form-a", add_on(None)))).await;
        let third = billing.charge("form-a", add_on(None)).await.unwrap();
        let made: Vec<_> = fake.orders().into_iter().skip(before).collect();
        assert_eq!(made.len(), 1, "one order at Octany: {made:?}");
        assert_eq!(third.id, made[0].id.as_str());
        for answer in at_once {
            match answer {
                Ok(order) => assert_eq!(order.id, third.id),
                Err(BillingError::ChargeInProgress) => {}
                Err(other) => panic!("a concurrent submit failed: {other}"),
            }
        }
        // The same key for another charge is refused; a new key is a new charge.
        assert!(matches!(
            billing.charge("form-a", add_on(Some(100))).await,
            Err(BillingError::KeyReused)
        ));
        billing.charge("form-b", add_on(None)).await.unwrap();
        assert_eq!(fake.orders().len(), before + 2);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_declined_charge_is_an_error_with_its_order(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let user = TestUser::new(4);
        let sub = fake
            .checkout(1227, &buyer(4), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        fake.set_card_failing(&sub.id, true).unwrap();
        let billing = octany.billing(&user);
        billing.sync().await.unwrap();
        let declined = billing.charge("form-1", add_on(None)).await;
        let Err(BillingError::ChargeDeclined { order }) = declined else {
            panic!("a declined card must be an error: {declined:?}");
        };
        assert_eq!(order.state.as_str(), "failed");
        // Asked again with the same key: the same answer, no new order.
        let again = billing.charge("form-1", add_on(None)).await;
        assert!(matches!(again, Err(BillingError::ChargeDeclined { .. })));
        let failed = fake
            .orders()
            .into_iter()
            .filter(|o| o.state.as_str() == "failed")
            .count();
        assert_eq!(failed, 1);
        // Its HTTP answer is a 402 that says what to do.
        let response = actix_web::ResponseError::error_response(&again.unwrap_err());
        assert_eq!(response.status(), 402);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_checkout_opened_and_left_traps_no_one(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        for _ in 0..30 {
            let opened = call(&app, "GET", "/billing/checkout/pro-monthly", Some(5), true).await;
            assert_eq!(opened.status, 303);
        }
        assert_eq!(
            checkout::Entity::find().count(&db.conn).await.unwrap(),
            1,
            "one intent per billable and plan, reused"
        );
        let guard = call(&app, "GET", "/dashboard", Some(5), true).await;
        assert_eq!(
            guard.location.as_deref(),
            Some("/pricing"),
            "sent to pricing"
        );
        let status = call(&app, "GET", "/billing/status", Some(5), false).await;
        assert_eq!(status.body["pending"], false);
        let success = call(&app, "GET", "/billing/success", Some(5), true).await;
        assert!(
            success
                .body
                .as_str()
                .unwrap()
                .contains("The checkout was not completed"),
            "{:?}",
            success.body
        );
        // After the lapse window the reconcile marks it abandoned.
        fake.advance(Duration::from_secs(31 * 60));
        assert_eq!(octany.syncer().reconcile().await.unwrap().abandoned, 1);

        // Coming back through the success URL (the payment made) is what
        // makes the guard say "processing".
        return_unpaid(&app, "basic", 5).await;
        let guard = call(&app, "GET", "/dashboard", Some(5), false).await;
        assert_eq!(guard.body["error"], "payment_processing");
        fake.stop().await;
        db
    }
);

/// Comes back from a checkout of `plan` as user `user` without paying
/// (the success URL Octany would redirect to).
async fn return_unpaid<S, B>(app: &S, plan: &str, user: i64)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let opened = call(
        app,
        "GET",
        &format!("/billing/checkout/{plan}"),
        Some(user),
        true,
    )
    .await;
    let to = url::Url::parse(opened.location.as_deref().unwrap()).unwrap();
    let success_url = to
        .query_pairs()
        .find(|(k, _)| k == "successUrl")
        .unwrap()
        .1
        .into_owned();
    let back = url::Url::parse(&success_url).unwrap();
    let path = format!("{}?{}", back.path(), back.query().unwrap());
    assert_eq!(call(app, "GET", &path, Some(user), true).await.status, 200);
}

db_test!(
    async fn a_checkout_abandoned_by_the_reconcile_is_heard_by_the_guard_at_once(db: TestDb) {
        // A cache that would trust "payment processing" for two days.
        let fake = octany_actix_tests::http::fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(2 * 24 * 3600))
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        return_unpaid(&app, "basic", 7).await;
        let guard = call(&app, "GET", "/dashboard", Some(7), false).await;
        assert_eq!(guard.body["error"], "payment_processing");
        // Nothing came of it in a day: the reconcile abandons the intent,
        // and the guard's cached "processing" goes with it.
        fake.advance(Duration::from_secs(24 * 3600 + 60));
        assert_eq!(octany.syncer().reconcile().await.unwrap().abandoned, 1);
        let guard = call(&app, "GET", "/dashboard", Some(7), false).await;
        assert_eq!(guard.status, 402, "{:?}", guard.body);
        assert_ne!(guard.body["error"], "payment_processing");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_charge_key_empty_or_too_long_is_400_and_sends_nothing(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        let first = call(&app, "GET", "/billing/checkout/pro-monthly", Some(3), true).await;
        pay(&app, first.location.as_deref().unwrap(), "succeed", 3).await;
        let user = TestUser::new(3);
        let orders = fake.orders().len();
        for key in [String::new(), "k".repeat(129)] {
            let refused = octany
                .billing(&user)
                .charge(&key, add_on(None))
                .await
                .unwrap_err();
            let response = actix_web::ResponseError::error_response(&refused);
            assert_eq!(response.status(), 400, "key of {} characters", key.len());
            let body = actix_web::body::to_bytes(response.into_body())
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], "invalid_request");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("idempotency key"),
                "{body}"
            );
        }
        assert_eq!(fake.orders().len(), orders, "no charge was sent");
        let accepted = octany
            .billing(&user)
            .charge(&"k".repeat(128), add_on(None))
            .await;
        assert!(accepted.is_ok(), "128 characters is a key: {accepted:?}");
        fake.stop().await;
        db
    }
);

/// Donations, sold at any price.
#[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)]
#[plan(group = "donations")]
enum Donations {
    #[plan(product = 1300, pay_what_you_want)]
    Monthly,
}

db_test!(
    async fn a_plan_paid_below_its_price_grants_nothing_unless_sold_at_any_price(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .plans::<Donations>()
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        // The buyer added `amount=1` to the hosted checkout's URL.
        let cheap = |user: i64| CheckoutParams {
            amount: Some(1),
            ..buyer(user)
        };
        for (user, product, params) in [
            (8, 1226, cheap(8)),
            (9, 1226, buyer(9)),
            (10, 1300, cheap(10)),
        ] {
            fake.checkout(product, &params, CheckoutOutcome::Succeed)
                .unwrap();
            octany
                .syncer()
                .sync_billable(&BillableRef::new("user", &user.to_string()))
                .await
                .unwrap();
        }
        let status = |user| call(&app, "GET", "/billing/status", Some(user), false);
        let underpaid = status(8).await;
        assert_eq!(
            (
                underpaid.body["access"].clone(),
                underpaid.body["reason"].clone(),
                underpaid.body["status"].clone()
            ),
            (json!(false), json!("underpaid"), json!("active")),
            "{}",
            underpaid.body
        );
        assert_eq!(
            call(&app, "GET", "/dashboard", Some(8), false).await.status,
            402
        );
        let paid = status(9).await;
        assert_eq!(
            (paid.body["access"].clone(), paid.body["reason"].clone()),
            (json!(true), json!(null))
        );
        // A donation is whatever the buyer gives.
        assert_eq!(status(10).await.body["access"], true);
        fake.stop().await;
        db
    }
);

/// Someone who uses user `0`'s billing but may not change it.
pub(crate) struct Viewer(pub(crate) i64);

impl Billable for Viewer {
    fn billable_id(&self) -> String {
        self.0.to_string()
    }
    fn may_manage_billing(&self) -> bool {
        false
    }
    fn billing_managers(&self) -> Option<String> {
        Some("the account's owner".into())
    }
}

db_test!(
    async fn who_may_not_act_reads_the_billing_and_changes_nothing(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        let first = call(&app, "GET", "/billing/checkout/pro-monthly", Some(4), true).await;
        pay(&app, first.location.as_deref().unwrap(), "succeed", 4).await;
        let viewer = Viewer(4);
        let billing = octany.billing(&viewer);
        assert!(billing.subscribed().await.unwrap(), "reading is allowed");
        let refused = |result: Result<(), BillingError>| match result {
            Err(BillingError::NotAllowed { managers }) => {
                assert_eq!(managers.as_deref(), Some("the account's owner"))
            }
            other => panic!("not refused: {other:?}"),
        };
        refused(billing.cancel().await.map(drop));
        refused(billing.swap(Plans::ProYearly).await.map(drop));
        refused(billing.charge("k-1", add_on(None)).await.map(drop));
        refused(
            billing
                .checkout_url(Plans::Basic, Default::default())
                .await
                .map(drop),
        );
        let error = billing.cancel().await.unwrap_err();
        assert_eq!(actix_web::ResponseError::status_code(&error), 403);
        let held = fake.subscriptions();
        assert_eq!(
            (held.len(), held[0].product_id(), held[0].status.as_str()),
            (1, Some(ProductId(1225)), "active"),
            "nothing sent to Octany"
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn an_invoice_customer_has_access_while_the_invoice_is_due_and_none_after(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .access_policy(AccessPolicy {
                invoice_grants_access: true,
                ..AccessPolicy::default()
            })
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        let opened = call(&app, "GET", "/billing/checkout/pro-yearly", Some(6), true).await;
        let landed = pay(&app, opened.location.as_deref().unwrap(), "invoice", 6).await;
        assert_eq!(
            landed.location.as_deref(),
            Some("/dashboard"),
            "access at once"
        );
        let inside = call(&app, "GET", "/dashboard", Some(6), false).await;
        assert_eq!(inside.status, 200);
        let status = call(&app, "GET", "/billing/status", Some(6), false).await;
        let due = (fake.now() + chrono::Duration::days(14)).to_rfc3339();
        assert_eq!(
            (
                status.body["status"].as_str(),
                status.body["invoice_due_at"].as_str()
            ),
            (Some("pending"), Some(due.as_str()))
        );
        assert_eq!(
            octany
                .billing(&TestUser::new(6))
                .invoice_due_at()
                .await
                .unwrap()
                .map(|t| t.to_rfc3339()),
            Some(due)
        );
        // Overdue: no access (the guard reads the due date; Octany's
        // `unpaid` arrives by the next sync too).
        fake.advance(Duration::from_secs(14 * 86_400 + 1));
        octany.forget(&TestUser::new(6).billable_ref());
        let outside = call(&app, "GET", "/dashboard", Some(6), false).await;
        assert_eq!(
            (outside.status, outside.body["error"].as_str()),
            (402, Some("subscription_required"))
        );
        octany.syncer().reconcile().await.unwrap();
        octany.billing(&TestUser::new(6)).sync().await.unwrap();
        let status = call(&app, "GET", "/billing/status", Some(6), false).await;
        assert_eq!(status.body["status"], "unpaid");

        // The same purchase without the policy: no access until paid.
        let strict = octany_actix_tests::app::octany(&db, &fake, Duration::ZERO);
        let user = TestUser::new(7);
        fake.checkout(1225, &buyer(7), CheckoutOutcome::Invoice)
            .unwrap();
        strict.billing(&user).sync().await.unwrap();
        assert!(!strict.billing(&user).subscribed().await.unwrap());
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_one_off_product_bought_at_checkout_is_confirmed_on_its_order(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        // `charge` needs a live subscription, and says where to go instead.
        let user = TestUser::new(8);
        let refused = octany.billing(&user).charge("k", add_on(None)).await;
        assert!(
            matches!(&refused, Err(BillingError::ChargeNeedsSubscription)),
            "{refused:?}"
        );
        assert!(refused.unwrap_err().to_string().contains("checkout"));

        let opened = call(&app, "GET", "/billing/checkout/extra-seats", Some(8), true).await;
        assert_eq!(opened.status, 303);
        let landed = pay(&app, opened.location.as_deref().unwrap(), "succeed", 8).await;
        assert_eq!(
            landed.status, 200,
            "a one-off purchase does not wait for access"
        );
        let html = landed.body.as_str().unwrap();
        assert!(html.contains("Confirming your payment"), "{html}");
        let status_url = html
            .split(r#"data-status-url=""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .replace("&amp;", "&");
        assert!(status_url.contains("checkout="), "{status_url}");
        let polled = call(&app, "GET", &status_url, Some(8), false).await;
        assert_eq!(polled.body["checkout"]["status"], "awaiting");

        // Octany's `order.paid` (its reference is the buyer's) confirms it.
        let order = fake.orders().remove(0);
        let (body, signature) = signed(&envelope(
            9001,
            "order.paid",
            fake.now(),
            serde_json::to_value(&order).unwrap(),
        ));
        octany
            .receiver()
            .receive(Some(&signature), &body)
            .await
            .unwrap();
        let polled = call(&app, "GET", &status_url, Some(8), false).await;
        assert_eq!(
            polled.body["checkout"],
            json!({"status": "completed", "subscription_id": null, "order_id": order.id.as_str()})
        );
        let confirmed = call(
            &app,
            "GET",
            &status_url.replace("/billing/status", "/billing/success"),
            Some(8),
            true,
        )
        .await;
        let html = confirmed.body.as_str().unwrap();
        assert!(html.contains("your purchase is confirmed"), "{html}");
        assert!(html.contains(order.id.as_str()));
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_subscriptions_checkout_names_its_subscription_and_then_its_first_order(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        let opened = call(&app, "GET", "/billing/checkout/pro-monthly", Some(5), true).await;
        let hosted = url::Url::parse(opened.location.as_deref().unwrap()).unwrap();
        let success = hosted
            .query_pairs()
            .find(|(k, _)| k == "successUrl")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let intent = url::Url::parse(&success)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "checkout")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        // Paid; no webhook reaches this app: the status route's poll finds it.
        let landed = pay(&app, hosted.as_str(), "succeed", 5).await;
        assert_eq!(landed.location.as_deref(), Some("/dashboard"));
        let polled = call(
            &app,
            "GET",
            &format!("/billing/status?checkout={intent}"),
            Some(5),
            false,
        )
        .await;
        // The poll reads subscriptions only: the intent names its
        // subscription at once, and its first order once the mirror has
        // the subscription's orders (order.paid by webhook, or a full sync).
        let subscription = fake.subscriptions().remove(0);
        assert_eq!(
            polled.body["checkout"],
            json!({"status": "completed", "subscription_id": subscription.id.as_str(), "order_id": null}),
            "{}",
            polled.body
        );
        octany.billing(&TestUser::new(5)).sync().await.unwrap();
        let orders = fake.orders();
        assert_eq!(orders.len(), 1, "the first payment, its only order so far");
        assert_eq!(orders[0].reference_id.as_deref(), Some("user:5"));
        let polled = call(
            &app,
            "GET",
            &format!("/billing/status?checkout={intent}"),
            Some(5),
            false,
        )
        .await;
        assert_eq!(
            polled.body["checkout"],
            json!({"status": "completed", "subscription_id": subscription.id.as_str(), "order_id": orders[0].id.as_str()}),
            "{}",
            polled.body
        );
        fake.stop().await;
        db
    }
);

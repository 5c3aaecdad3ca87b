//! What a host touches, on every backend, against the fake Octany: the
//! guard in each form on each path, the whole checkout flow, and the
//! billing handle's questions and actions.

use std::time::Duration;

use octany_actix::client::NewOrder;
use octany_actix::entity::checkout;
use octany_actix::model::BillableRef;
use octany_actix::model::ProductId;
use octany_actix_tests::app::{Plans, TestUser, octany};
use octany_actix_tests::db_test;
use octany_actix_tests::sea_orm::{ConnectionTrait, EntityTrait, Statement};
use octany_fake::{CheckoutOutcome, Faults};

use octany_actix_tests::http::{buyer, call, fake, pay, subscribed};
use octany_actix_tests::started;

db_test!(
    async fn the_whole_flow_against_the_fake(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));

        // Not subscribed: the dashboard sends a browser to pricing.
        let before = call(&app, "GET", "/dashboard", Some(1), true).await;
        assert_eq!(
            (before.status, before.location.as_deref()),
            (303, Some("/pricing"))
        );

        // Checkout redirects to Octany with the buyer's details.
        let checkout = call(&app, "GET", "/billing/checkout/pro-monthly", Some(1), true).await;
        assert_eq!(checkout.status, 303);
        let to_octany = url::Url::parse(checkout.location.as_deref().unwrap()).unwrap();
        assert!(to_octany.as_str().starts_with(&format!(
            "{}/checkout/{}/product/1225?",
            fake.checkout_url(),
            fake.account_id()
        )));
        let params: std::collections::HashMap<_, _> =
            to_octany.query_pairs().into_owned().collect();
        assert_eq!(params["referenceId"], "user:1");
        assert_eq!(params["email"], "user1@example.com");
        assert_eq!(
            (params["firstName"].as_str(), params["lastName"].as_str()),
            ("User", "1")
        );
        assert!(
            params["successUrl"].starts_with("http://localhost:8080/billing/success?checkout=")
        );
        // A checkout only opened changes nothing the guard answers.
        let opened = call(&app, "GET", "/dashboard", Some(1), false).await;
        assert_eq!(
            (opened.status, opened.body["error"].as_str()),
            (402, Some("subscription_required"))
        );

        // Pay on the fake; no webhook reaches this app, so the success page's poll does it.
        let landed = pay(&app, to_octany.as_str(), "succeed", 1).await;
        assert_eq!(
            (landed.status, landed.location.as_deref()),
            (303, Some("/dashboard"))
        );
        let inside = call(&app, "GET", "/dashboard", Some(1), true).await;
        assert_eq!(inside.status, 200);
        assert_eq!(inside.body["user"], 1);

        // Cancel: still in during the grace period.
        let user = TestUser::new(1);
        let cancelled = octany.billing(&user).cancel().await.unwrap();
        assert_eq!(cancelled.status, "cancelled");
        assert_eq!(
            call(&app, "GET", "/dashboard", Some(1), true).await.status,
            200
        );
        assert!(octany.billing(&user).on_grace_period().await.unwrap());
        // Past the end: out, to pricing (browser) or 402 (API).
        fake.advance_months(1);
        fake.advance_days(1);
        let out = call(&app, "GET", "/dashboard", Some(1), true).await;
        assert_eq!(
            (out.status, out.location.as_deref()),
            (303, Some("/pricing"))
        );
        let api = call(&app, "GET", "/dashboard", Some(1), false).await;
        assert_eq!(
            (api.status, api.body["error"].as_str()),
            (402, Some("subscription_required"))
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn each_guard_form_on_each_path(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        // user 1: Pro (active); 2: Basic (active); 3: pending invoice; 4: cancelled in grace; 5: ended; 6: nothing.
        let sub = |user: i64, product: i64, outcome| {
            fake.checkout(product, &buyer(user), outcome)
                .unwrap()
                .subscription
                .unwrap()
                .id
        };
        sub(1, 1225, CheckoutOutcome::Succeed);
        sub(2, 1227, CheckoutOutcome::Succeed);
        let grace = sub(4, 1226, CheckoutOutcome::Succeed);
        let ended = sub(5, 1225, CheckoutOutcome::Succeed);
        fake.client().cancel_subscription(&grace).await.unwrap();
        fake.set_card_failing(&ended, true).unwrap();
        fake.advance_months(1); // user 5's renewal fails: delayed, no access by default
        sub(3, 1225, CheckoutOutcome::Invoice); // unpaid for 14 days
        for user in 1..=6 {
            octany
                .syncer()
                .sync_billable_subscriptions(&BillableRef::new("user", &user.to_string()))
                .await
                .unwrap();
        }
        let paths = ["/dashboard", "/reports", "/app/area"];
        // (user, [expected status for each path])
        let expected: [(Option<i64>, [u16; 3]); 7] = [
            (None, [401, 401, 401]),
            (Some(1), [200, 200, 200]),
            (Some(2), [200, 402, 200]),
            (Some(3), [402, 402, 402]),
            (Some(4), [200, 200, 200]),
            (Some(5), [402, 402, 402]),
            (Some(6), [402, 402, 402]),
        ];
        for (user, statuses) in expected {
            for (path, status) in paths.iter().zip(statuses) {
                let answer = call(&app, "GET", path, user, false).await;
                assert_eq!(
                    answer.status, status,
                    "user {user:?} on {path}: {}",
                    answer.body
                );
                if user.is_none() {
                    assert_eq!(
                        answer.body["error"], "login required by the host",
                        "the host's 401 passes through untouched"
                    );
                }
                if user == Some(3) {
                    assert_eq!(
                        answer.body["error"], "payment_processing",
                        "pending is not 'not subscribed'"
                    );
                }
            }
        }
        let pro = call(&app, "GET", "/reports", Some(4), false).await;
        assert_eq!(
            pro.body["plan"], "Yearly",
            "the plan extractor gives the typed plan"
        );
        // A browser is sent to pricing, or to the success page while paying.
        assert_eq!(
            call(&app, "GET", "/app/area", Some(6), true)
                .await
                .location
                .as_deref(),
            Some("/pricing")
        );
        assert_eq!(
            call(&app, "GET", "/app/area", Some(3), true)
                .await
                .location
                .as_deref(),
            Some("/billing/success")
        );

        // The database goes away: every form fails closed, never open.
        let backend = db.db_backend();
        db.conn
            .execute_raw(Statement::from_string(
                backend,
                "ALTER TABLE octany_subscriptions RENAME TO octany_subscriptions_away".to_owned(),
            ))
            .await
            .unwrap();
        let uncached = octany_actix_tests::app::octany(&db, &fake, Duration::ZERO);
        let down = octany_actix_tests::serving!(uncached);
        for path in paths {
            let answer = call(&down, "GET", path, Some(1), true).await;
            assert_eq!(answer.status, 503, "{path} with the database down");
        }
        db.conn
            .execute_raw(Statement::from_string(
                backend,
                "ALTER TABLE octany_subscriptions_away RENAME TO octany_subscriptions".to_owned(),
            ))
            .await
            .unwrap();
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_billing_handle_answers_and_acts(db: TestDb) {
        let fake = fake().await;
        let octany = octany(&db, &fake, Duration::from_secs(5));
        let user = TestUser::new(7);
        let billing = octany.billing(&user);
        assert!(!billing.subscribed().await.unwrap());
        assert!(billing.subscription().await.unwrap().is_none());
        let url = billing
            .checkout_url(Plans::ProMonthly, Default::default())
            .await
            .unwrap();
        assert!(url.as_str().contains("referenceId=user%3A7"));
        assert!(
            billing.pending_checkout().await.unwrap().is_none(),
            "an intent only opened is not a payment on its way"
        );
        let intent = checkout::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (intent.product_id, intent.status),
            (ProductId(1225), checkout::CheckoutStatus::Opened)
        );

        fake.checkout(1225, &buyer(7), CheckoutOutcome::Trial)
            .unwrap();
        billing.sync().await.unwrap();
        let intent = checkout::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            intent.status,
            checkout::CheckoutStatus::Completed,
            "the intent completed"
        );
        assert!(billing.subscribed().await.unwrap());
        assert!(billing.subscribed_to(Plans::ProMonthly).await.unwrap());
        assert!(!billing.subscribed_to(Plans::Basic).await.unwrap());
        assert!(billing.on_trial().await.unwrap());
        assert!(billing.is_paying().await.unwrap());
        assert!(!billing.on_grace_period().await.unwrap());
        assert_eq!(billing.subscriptions().await.unwrap().len(), 1);

        let swapped = billing.swap(Plans::Basic).await.unwrap();
        assert_eq!(swapped.product_id, Some(ProductId(1227)));
        assert!(billing.subscribed_to(Plans::Basic).await.unwrap());

        // A one-off charge whose answer is lost is made exactly once.
        fake.set_faults(Faults {
            lost_response_rate: 1.0,
            ..Faults::none()
        });
        let charged = billing
            .charge(
                "form-1",
                NewOrder {
                    product_id: ProductId(1400),
                    amount: Some(2500),
                    description: Some("Extra seats".into()),
                },
            )
            .await
            .unwrap();
        fake.set_faults(Faults::none());
        assert_eq!((charged.state.as_str(), charged.total), ("paid", 2500));
        let at_octany = fake
            .orders()
            .into_iter()
            .filter(|o| o.total == 2500)
            .count();
        assert_eq!(at_octany, 1, "charged once at Octany");
        let orders = billing.orders().await.unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!(
            orders[0].subscription_id.as_deref(),
            Some(swapped.id.as_str())
        );

        let portal = billing.portal_urls().await.unwrap().unwrap();
        assert!(portal.update_card.unwrap().contains("/card"));
        let cancelled = billing.cancel().await.unwrap();
        assert_eq!(cancelled.status, "cancelled");
        assert!(billing.on_grace_period().await.unwrap());
        assert!(!billing.is_paying().await.unwrap());
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_second_checkout_for_a_held_plan_is_409(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        subscribed(&fake, &octany, 1225, 1).await;
        let again = call(&app, "GET", "/billing/checkout/pro-monthly", Some(1), true).await;
        assert_eq!(
            (again.status, again.body["error"].as_str()),
            (409, Some("already_subscribed"))
        );
        assert_eq!(
            call(&app, "GET", "/billing/checkout/basic", Some(1), true)
                .await
                .status,
            303,
            "another plan is fine"
        );
        assert_eq!(
            call(&app, "GET", "/billing/checkout/platinum", Some(1), true)
                .await
                .status,
            404
        );
        assert_eq!(
            call(&app, "GET", "/billing/checkout/basic", None, true)
                .await
                .status,
            401
        );
        fake.stop().await;
        db
    }
);

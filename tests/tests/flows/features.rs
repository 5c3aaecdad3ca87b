//! What plans carry (issue 30): a feature guard, limits checked against
//! the host's count, and a downgrade refused while over the smaller plan's
//! limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::ResponseError;
use octany_actix::model::ProductId;
use octany_actix::{Billable, BillingError};
use octany_actix_tests::app::{Api, Exports, Plans, Projects, Seats, TestUser};
use octany_actix_tests::http::{buyer, call, hidden, post_form};
use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};
use octany_actix_tests::{db_test, started};
use octany_fake::CheckoutOutcome;

db_test!(
    async fn a_feature_guard_lets_pro_in_and_keeps_basic_out(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        // User 1 on Pro, user 2 on Basic, user 3 on nothing.
        for (user, product) in [(1, 1225), (2, 1227)] {
            fake.checkout(product, &buyer(user), CheckoutOutcome::Succeed)
                .unwrap();
            octany.billing(&TestUser::new(user)).sync().await.unwrap();
        }
        for path in ["/exports", "/api/calls"] {
            let pro = call(&app, "GET", path, Some(1), false).await;
            assert_eq!(pro.status, 200, "{path}: {:?}", pro.body);
            let basic = call(&app, "GET", path, Some(2), false).await;
            assert_eq!(basic.status, 403, "{path}: {:?}", basic.body);
            assert_eq!(basic.body["error"], "feature_not_included");
            let feature = if path == "/exports" { "exports" } else { "api" };
            assert_eq!(basic.body["feature"], feature);
            assert_eq!(basic.body["pricing_url"], "/pricing");
            let page = call(&app, "GET", path, Some(2), true).await;
            assert_eq!(
                (page.status, page.location.as_deref()),
                (303, Some("/pricing"))
            );
            let nobody = call(&app, "GET", path, Some(3), false).await;
            assert_eq!(nobody.status, 402, "{path}: {:?}", nobody.body);
            assert_eq!(nobody.body["error"], "subscription_required");
        }
        let (pro, basic) = (TestUser::new(1), TestUser::new(2));
        assert!(octany.billing(&pro).allows::<Exports>().await.unwrap());
        assert!(octany.billing(&pro).allows::<Api>().await.unwrap());
        assert!(!octany.billing(&basic).allows::<Exports>().await.unwrap());

        // The database goes away: the feature guard fails closed.
        let backend = db.db_backend();
        let rename = |from: &str, to: &str| {
            Statement::from_string(backend, format!("ALTER TABLE {from} RENAME TO {to}"))
        };
        db.conn
            .execute_raw(rename("octany_subscriptions", "octany_subscriptions_away"))
            .await
            .unwrap();
        let uncached = octany_actix_tests::app::octany(&db, &fake, Duration::ZERO);
        let down = octany_actix_tests::serving!(uncached);
        for path in ["/exports", "/api/calls"] {
            let answer = call(&down, "GET", path, Some(1), false).await;
            assert_eq!(answer.status, 503, "{path} with the database down");
        }
        db.conn
            .execute_raw(rename("octany_subscriptions_away", "octany_subscriptions"))
            .await
            .unwrap();
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_seat_past_the_plans_limit_is_refused_naming_the_limit(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let (pro, basic, free) = (TestUser::new(1), TestUser::new(2), TestUser::new(3));
        for (user, product) in [(1, 1225), (2, 1227)] {
            fake.checkout(product, &buyer(user), CheckoutOutcome::Succeed)
                .unwrap();
            octany.billing(&TestUser::new(user)).sync().await.unwrap();
        }
        // Basic allows six seats: the seventh is refused, with the numbers.
        let seats = octany.billing(&basic).allowance::<Seats>(6).await.unwrap();
        assert_eq!((seats.allowed, seats.left()), (Some(6), Some(0)));
        let seventh = seats.check(1).unwrap_err();
        assert!(
            matches!(
                seventh,
                BillingError::OverLimit {
                    limit: "seats",
                    allowed: 6,
                    would_be: 7
                }
            ),
            "{seventh:?}"
        );
        assert!(seventh.to_string().contains("seats"), "{seventh}");
        let answer = seventh.error_response();
        assert_eq!(answer.status().as_u16(), 403);
        let body = actix_web::body::to_bytes(answer.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (
                &body["error"],
                &body["limit"],
                &body["allowed"],
                &body["would_be"]
            ),
            (
                &serde_json::json!("over_limit"),
                &serde_json::json!("seats"),
                &serde_json::json!(6),
                &serde_json::json!(7)
            )
        );
        let five = octany.billing(&basic).allowance::<Seats>(5).await.unwrap();
        five.check(1).unwrap();
        assert_eq!(
            octany.billing(&basic).limit::<Projects>().await.unwrap(),
            Some(20)
        );
        // Pro: unlimited seats; no plan: the free allowance.
        let unlimited = octany.billing(&pro).allowance::<Seats>(500).await.unwrap();
        assert_eq!(unlimited.left(), None);
        unlimited.check(1_000).unwrap();
        assert_eq!(
            octany.billing(&pro).limit::<Projects>().await.unwrap(),
            Some(100)
        );
        assert_eq!(
            octany.billing(&free).limit::<Seats>().await.unwrap(),
            Some(1)
        );
        assert_eq!(
            octany.billing(&free).limit::<Projects>().await.unwrap(),
            Some(0)
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_downgrade_is_refused_while_over_a_limit_and_allowed_once_usage_drops(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // The host's count of user 1's members, and whether counting works.
        let seats = Arc::new(AtomicU64::new(9));
        let broken = Arc::new(AtomicBool::new(false));
        let (count, fail) = (seats.clone(), broken.clone());
        let octany = octany_actix_tests::app::builder(&db, &fake, Duration::from_secs(5))
            .usage_counts(move |_billable, limit: &'static str| {
                let (count, fail) = (count.clone(), fail.clone());
                async move {
                    if fail.load(Ordering::SeqCst) {
                        return Err("the members table is locked".into());
                    }
                    Ok(if limit == "seats" {
                        count.load(Ordering::SeqCst)
                    } else {
                        3
                    })
                }
            })
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        octany.sync_products().await.unwrap();
        let user = TestUser::new(1);
        let sub = fake
            .checkout(1225, &buyer(1), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        octany.billing(&user).sync().await.unwrap();
        let product_at_octany = || {
            fake.subscriptions()
                .into_iter()
                .find(|s| s.id == sub.id)
                .and_then(|s| s.product_id())
        };

        // Pro → Basic with 9 members: Basic allows 6.
        let refused = octany.billing(&user).swap(Plans::Basic).await.unwrap_err();
        assert!(
            matches!(
                refused,
                BillingError::OverLimit {
                    limit: "seats",
                    allowed: 6,
                    would_be: 9
                }
            ),
            "{refused:?}"
        );
        assert_eq!(product_at_octany(), Some(ProductId(1225)), "nothing sent");
        // The swap page says why, and offers no form.
        let page = call(&app, "GET", "/billing/swap/basic", Some(1), true).await;
        assert_eq!(page.status, 200);
        let html = page.body.as_str().unwrap();
        assert!(html.contains(r#"id="swap-refused""#), "{html}");
        assert!(
            html.contains("the plan allows 6 and this would make 9"),
            "{html}"
        );
        assert!(!html.contains(r#"id="confirm-swap""#), "{html}");

        // Six members: the page offers the swap; a seventh joins before the
        // confirm, which is refused and sent back to the page.
        seats.store(6, Ordering::SeqCst);
        let page = call(&app, "GET", "/billing/swap/basic", Some(1), true).await;
        let intent = hidden(page.body.as_str().unwrap(), "intent").unwrap();
        seats.store(7, Ordering::SeqCst);
        let confirmed = post_form(&app, "/billing/swap/basic", 1, &[("intent", &intent)]).await;
        assert_eq!(
            (confirmed.status, confirmed.location.as_deref()),
            (303, Some("/billing/swap/basic"))
        );
        assert_eq!(product_at_octany(), Some(ProductId(1225)));

        // Counting fails: refused (503), never assumed to fit.
        seats.store(6, Ordering::SeqCst);
        broken.store(true, Ordering::SeqCst);
        let unknown = octany.billing(&user).swap(Plans::Basic).await.unwrap_err();
        assert!(
            matches!(
                unknown,
                BillingError::UsageUnknown {
                    limit: "projects" | "seats",
                    ..
                }
            ),
            "{unknown:?}"
        );
        assert_eq!(unknown.error_response().status().as_u16(), 503);
        assert_eq!(product_at_octany(), Some(ProductId(1225)));

        // Usage dropped to 6: the downgrade goes through.
        broken.store(false, Ordering::SeqCst);
        let page = call(&app, "GET", "/billing/swap/basic", Some(1), true).await;
        let intent = hidden(page.body.as_str().unwrap(), "intent").unwrap();
        let confirmed = post_form(&app, "/billing/swap/basic", 1, &[("intent", &intent)]).await;
        assert_eq!(confirmed.status, 303, "{:?}", confirmed.body);
        assert_eq!(product_at_octany(), Some(ProductId(1227)));

        // An upgrade applies at once, whatever the usage.
        seats.store(40, Ordering::SeqCst);
        octany.billing(&user).swap(Plans::ProMonthly).await.unwrap();
        assert_eq!(product_at_octany(), Some(ProductId(1225)));

        // A comp of Pro is not swapped: with it, 40 members fit Basic.
        octany
            .grant_comp(
                &user.billable_ref(),
                octany_actix::billing::NewComp::new("partner", "anna").plan(Plans::ProYearly),
            )
            .await
            .unwrap();
        octany.billing(&user).swap(Plans::Basic).await.unwrap();
        assert_eq!(product_at_octany(), Some(ProductId(1227)));
        fake.stop().await;
        db
    }
);

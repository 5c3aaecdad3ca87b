//! Changing and ending a plan through the mounted routes: a second plan is
//! a confirmed swap, a cancel is confirmed on its page, and an action whose
//! answer was lost is reported as done.

use std::time::Duration;

use octany_actix::BillingError;
use octany_actix::model::{ProductId, SubscriptionId};
use octany_actix_tests::app::{Plans, TestUser};
use octany_actix_tests::http::{buyer, call, hidden, pay, post_form};
use octany_actix_tests::{db_test, started};
use octany_fake::{CheckoutOutcome, Faults};

db_test!(
    async fn a_second_plan_is_a_confirmed_swap_never_a_second_subscription(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        octany.sync_products().await.unwrap();
        let first = call(&app, "GET", "/billing/checkout/pro-monthly", Some(1), true).await;
        let landed = pay(&app, first.location.as_deref().unwrap(), "succeed", 1).await;
        assert_eq!(landed.location.as_deref(), Some("/dashboard"));

        // The pricing page's link for another plan leads to the swap's confirmation.
        let second = call(&app, "GET", "/billing/checkout/pro-yearly", Some(1), true).await;
        assert_eq!(
            (second.status, second.location.as_deref()),
            (303, Some("/billing/swap/pro-yearly"))
        );
        // From code: the swap's page when the routes sell the plan, else
        // no page to name (Billing::swap).
        let buyer_1 = TestUser::new(1);
        let billing = octany.billing(&buyer_1);
        let mounted = billing
            .checkout_url(Plans::ProYearly, Default::default())
            .await;
        assert!(
            matches!(&mounted, Err(BillingError::SwapInstead { swap_path: Some(p) }) if p == "/billing/swap/pro-yearly"),
            "{mounted:?}"
        );
        let unsold = billing
            .checkout_url_for(ProductId(1300), Default::default())
            .await;
        assert!(
            matches!(unsold, Err(BillingError::SwapInstead { swap_path: None })),
            "{unsold:?}"
        );
        let page = call(&app, "GET", "/billing/swap/pro-yearly", Some(1), true).await;
        assert_eq!(page.status, 200);
        let html = page.body.as_str().unwrap();
        assert!(
            html.contains("Pro monthly") && html.contains("Pro yearly"),
            "{html}"
        );
        assert!(html.contains("the new price is charged from the next renewal"));
        assert!(
            html.contains("1237,50 SEK a year"),
            "the new price with VAT: {html}"
        );
        let intent = hidden(html, "intent").unwrap();
        assert_eq!(
            fake.subscriptions().len(),
            1,
            "showing the page changes nothing"
        );

        // A form without this user's token does nothing (another site cannot swap).
        let forged = post_form(&app, "/billing/swap/pro-yearly", 1, &[("intent", "guess")]).await;
        assert_eq!(forged.location.as_deref(), Some("/billing/swap/pro-yearly"));
        let someone_else =
            post_form(&app, "/billing/swap/pro-yearly", 2, &[("intent", &intent)]).await;
        assert_eq!(someone_else.status, 303);
        assert_eq!(fake.subscriptions()[0].product_id(), Some(ProductId(1225)));

        // Confirmed (twice, as a double click does): one subscription, on the new plan.
        for _ in 0..2 {
            let confirmed =
                post_form(&app, "/billing/swap/pro-yearly", 1, &[("intent", &intent)]).await;
            assert_eq!(
                (confirmed.status, confirmed.location.as_deref()),
                (303, Some("/dashboard"))
            );
        }
        let at_octany = fake.subscriptions();
        assert_eq!(at_octany.len(), 1, "never a second subscription");
        assert_eq!(at_octany[0].product_id(), Some(ProductId(1226)));
        let status = call(&app, "GET", "/billing/status", Some(1), false).await;
        assert_eq!(status.body["plan"], "pro-yearly");
        // Checking out the plan already held is refused, as before.
        let again = call(&app, "GET", "/billing/checkout/pro-yearly", Some(1), false).await;
        assert_eq!(again.status, 409);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_cancel_is_confirmed_on_its_page_and_keeps_access_to_the_period_end(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        octany.sync_products().await.unwrap();
        // Nothing to cancel: the pricing page.
        let none = call(&app, "GET", "/billing/cancel", Some(1), true).await;
        assert_eq!(
            (none.status, none.location.as_deref()),
            (303, Some("/pricing"))
        );
        let first = call(&app, "GET", "/billing/checkout/pro-monthly", Some(1), true).await;
        pay(&app, first.location.as_deref().unwrap(), "succeed", 1).await;
        let held = fake.subscriptions()[0].clone();
        let until = held.renews_at.unwrap().format("%Y-%m-%d").to_string();

        let page = call(&app, "GET", "/billing/cancel?next=/account", Some(1), true).await;
        assert_eq!(page.status, 200);
        let html = page.body.as_str().unwrap();
        assert!(html.contains("Cancel Pro monthly?"), "{html}");
        assert!(
            html.contains(&format!("until {until}")),
            "says until when: {html}"
        );
        assert!(
            html.contains("123,75 SEK a month"),
            "the price with VAT: {html}"
        );
        assert!(
            html.contains(r#"action="/billing/cancel?next=%2Faccount""#),
            "{html}"
        );
        let token = hidden(html, "token").unwrap();
        assert_eq!(
            fake.subscriptions()[0].status.as_str(),
            "active",
            "showing the page changes nothing"
        );

        // A form without this page's token cancels nothing (another site cannot).
        for forged in ["", "00", "not hex", &"0".repeat(64)] {
            let answer = post_form(
                &app,
                "/billing/cancel?next=/account",
                1,
                &[("token", forged)],
            )
            .await;
            assert_eq!(
                (answer.status, answer.location.as_deref()),
                (303, Some("/billing/cancel?next=%2Faccount")),
                "asked again for {forged:?}"
            );
        }
        // Another user's page makes a token for their own subscription only.
        let other = call(&app, "GET", "/billing/checkout/pro-monthly", Some(2), true).await;
        pay(&app, other.location.as_deref().unwrap(), "succeed", 2).await;
        let theirs = call(&app, "GET", "/billing/cancel", Some(2), true).await;
        let their_token = hidden(theirs.body.as_str().unwrap(), "token").unwrap();
        assert_ne!(their_token, token);
        let crossed = post_form(&app, "/billing/cancel", 1, &[("token", &their_token)]).await;
        assert_eq!(crossed.location.as_deref(), Some("/billing/cancel"));
        assert!(
            fake.subscriptions()
                .iter()
                .all(|s| s.status.as_str() == "active"),
            "nothing cancelled by a forged or crossed form"
        );

        // Confirmed twice, as a double click does: cancelled once, then onwards.
        for _ in 0..2 {
            let confirmed = post_form(
                &app,
                "/billing/cancel?next=/account",
                1,
                &[("token", &token)],
            )
            .await;
            assert_eq!(
                (confirmed.status, confirmed.location.as_deref()),
                (303, Some("/account"))
            );
        }
        let after = fake.subscription(&held.id).unwrap();
        assert_eq!(after.status.as_str(), "cancelled");
        let status = call(&app, "GET", "/billing/status", Some(1), false).await;
        assert_eq!(
            status.body["access"], true,
            "the paid period runs out: {}",
            status.body
        );
        let page = call(&app, "GET", "/billing/cancel", Some(1), true).await;
        let html = page.body.as_str().unwrap();
        assert!(
            html.contains("is cancelled") && html.contains(&until),
            "{html}"
        );
        assert!(hidden(html, "token").is_none(), "no second form: {html}");
        // The other user's subscription is untouched.
        assert_eq!(
            fake.subscriptions()
                .iter()
                .filter(|s| s.status.as_str() == "active")
                .count(),
            1
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_swap_or_cancel_whose_answer_was_lost_is_reported_as_done(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let user = TestUser::new(9);
        let sub = fake
            .checkout(1225, &buyer(9), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        let billing = octany.billing(&user);
        billing.sync().await.unwrap();
        fake.set_faults(Faults {
            lost_response_rate: 1.0,
            ..Faults::none()
        });
        let swapped = billing.swap(Plans::ProYearly).await.unwrap();
        assert_eq!(swapped.product_id, Some(ProductId(1226)));
        let cancelled = billing.cancel().await.unwrap();
        assert_eq!(cancelled.status, "cancelled");
        fake.set_faults(Faults::none());
        let truth = fake
            .subscription(&SubscriptionId::new(sub.id.as_str()))
            .unwrap();
        assert_eq!(
            (truth.product_id(), truth.status.as_str()),
            (Some(ProductId(1226)), "cancelled")
        );
        fake.stop().await;
        db
    }
);

//! The starter's billing pages as its users meet them, driven by the test
//! kit (`octany_fake::testing`): a failed renewal shows the banner, and a
//! cancel through the mounted route keeps access to the period's end.

use super::*;

db_test!(
    async fn a_failed_renewal_shows_the_banner_until_the_card_pays(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let kit = kit(&app);
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let ada_row = user(&db, 1).await;
        kit.subscribe(&ada_row, example_app::billing::Plans::ProMonthly)
            .await
            .unwrap();
        let paid = ada.get("/dashboard").await;
        assert_eq!(paid.status, 200);
        assert!(!paid.body.contains("payment-failed"), "{}", paid.body);

        kit.fail_payments(&ada_row, true).unwrap();
        let renewal = kit.renew(&ada_row).await.unwrap();
        assert_eq!(renewal.status.as_str(), "delayed");
        let failed = ada.get("/dashboard").await;
        assert_eq!(failed.status, 200, "still in while Octany retries");
        assert!(
            failed.body.contains(r#"id="payment-failed""#)
                && failed.body.contains("update your card"),
            "{}",
            failed.body
        );
        assert!(
            kit.event_kinds(&ada_row)
                .await
                .unwrap()
                .contains(&"payment.failed".to_owned())
        );

        // The card is fixed; Octany's retry a day later pays.
        kit.fail_payments(&ada_row, false).unwrap();
        kit.advance_days(1).await;
        let fixed = ada.get("/dashboard").await;
        assert_eq!(fixed.status, 200);
        assert!(!fixed.body.contains("payment-failed"), "{}", fixed.body);
        app.stop().await;
        db
    }
);

db_test!(
    async fn a_cancel_on_the_mounted_page_keeps_access_to_the_period_end(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let kit = kit(&app);
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let ada_row = user(&db, 1).await;
        let held = kit
            .subscribe(&ada_row, example_app::billing::Plans::ProMonthly)
            .await
            .unwrap();
        let account = ada.get("/account").await;
        assert!(
            account.body.contains("/billing/cancel?next=%2Faccount"),
            "the account page links to the mounted cancel: {}",
            account.body
        );
        let page = ada.get("/billing/cancel?next=/account").await;
        assert_eq!(page.status, 200);
        let at =
            page.body.find(r#"name="token" value=""#).unwrap() + r#"name="token" value=""#.len();
        let token = page.body[at..at + 64].to_owned();
        let done = ada
            .send(
                ada.http
                    .post(format!("{}/billing/cancel?next=/account", app.url))
                    .form(&[("token", token.as_str())]),
                "text/html",
            )
            .await;
        assert_eq!((done.status, done.location()), (303, "/account"));
        assert_eq!(
            ada.get("/dashboard").await.status,
            200,
            "paid to the period's end"
        );
        assert!(
            kit.event_kinds(&ada_row)
                .await
                .unwrap()
                .contains(&"subscription.cancelled".to_owned())
        );
        // After the period: refused, sent to pricing.
        let ends = held.renews_at.unwrap();
        kit.advance(
            ((ends - kit.now()) + chrono::TimeDelta::days(1))
                .to_std()
                .unwrap(),
        )
        .await;
        assert_eq!(ada.get("/dashboard").await.location(), "/pricing");
        assert!(
            kit.event_kinds(&ada_row)
                .await
                .unwrap()
                .contains(&"subscription.expired".to_owned())
        );
        app.stop().await;
        db
    }
);

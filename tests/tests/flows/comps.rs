//! Comps (issue 30): a plan or features granted without Octany, honoured
//! by every guard and check, ending at its expiry with no webhook, and
//! revocable, each audited.

use std::time::Duration;

use octany_actix::Billable;
use octany_actix::BillingError;
use octany_actix::billing::NewComp;
use octany_actix_tests::app::{Exports, Plans, Seats, TestUser};
use octany_actix_tests::http::{buyer, call};
use octany_actix_tests::{db_test, started};
use octany_fake::CheckoutOutcome;

db_test!(
    async fn a_comp_grants_access_without_a_subscription_until_its_expiry(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        let guest = TestUser::new(5);
        let nobody = call(&app, "GET", "/dashboard", Some(5), false).await;
        assert_eq!(nobody.status, 402);
        // Cached refusal: the grant still lands at once.
        let in_a_week = fake.now() + chrono::Duration::days(7);
        let comp = octany
            .grant_comp(
                &guest.billable_ref(),
                NewComp::new("partner agreement", "anna@support")
                    .plan(Plans::ProMonthly)
                    .until(in_a_week),
            )
            .await
            .unwrap();
        for path in [
            "/dashboard",
            "/reports",
            "/exports",
            "/api/calls",
            "/app/area",
        ] {
            let answer = call(&app, "GET", path, Some(5), false).await;
            assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        }
        let billing = octany.billing(&guest);
        assert!(billing.subscribed().await.unwrap());
        assert!(billing.allows::<Exports>().await.unwrap());
        assert_eq!(billing.limit::<Seats>().await.unwrap(), None);
        // It is no Octany subscription: buying the plan is allowed.
        billing
            .checkout_url(Plans::ProMonthly, Default::default())
            .await
            .unwrap();
        // The status route shows it.
        let status = call(&app, "GET", "/billing/status", Some(5), false).await;
        assert_eq!(status.body["access"], true, "{:?}", status.body);
        assert_eq!(status.body["comps"][0]["id"], comp.id.as_str());
        assert_eq!(status.body["comps"][0]["plan"], "pro-monthly");

        // A week later, with no webhook and a warm cache: over.
        fake.advance(Duration::from_secs(7 * 86_400 + 1));
        let ended = call(&app, "GET", "/dashboard", Some(5), false).await;
        assert_eq!(ended.status, 402, "{:?}", ended.body);
        assert!(!billing.allows::<Exports>().await.unwrap());
        let audit = octany.comps(&guest.billable_ref()).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (audit[0].reason.as_str(), audit[0].granted_by.as_str()),
            ("partner agreement", "anna@support")
        );
        assert!(!audit[0].is_active(fake.now()));
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_comped_feature_is_granted_until_revoked_and_bad_comps_are_refused(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        let basic = TestUser::new(2);
        fake.checkout(1227, &buyer(2), CheckoutOutcome::Succeed)
            .unwrap();
        octany.billing(&basic).sync().await.unwrap();
        assert_eq!(
            call(&app, "GET", "/exports", Some(2), false).await.status,
            403
        );
        let comp = octany
            .grant_comp(
                &basic.billable_ref(),
                NewComp::new("goodwill: the export bug", "anna@support").feature::<Exports>(),
            )
            .await
            .unwrap();
        assert_eq!(
            call(&app, "GET", "/exports", Some(2), false).await.status,
            200
        );
        // Features only: no plan, so no Pro-only route.
        assert_eq!(
            call(&app, "GET", "/reports", Some(2), false).await.status,
            402
        );
        assert!(octany.revoke_comp(&comp.id, "bo@support").await.unwrap());
        assert!(
            !octany.revoke_comp(&comp.id, "bo@support").await.unwrap(),
            "once"
        );
        let unknown = octany.revoke_comp("no-such-comp", "bo@support").await;
        assert!(
            matches!(&unknown, Err(octany_actix::BillingError::NoSuchComp { id }) if id == "no-such-comp"),
            "{unknown:?}"
        );
        assert_eq!(
            call(&app, "GET", "/exports", Some(2), false).await.status,
            403
        );
        let audit = octany.comps(&basic.billable_ref()).await.unwrap();
        assert_eq!(audit[0].revoked_by.as_deref(), Some("bo@support"));

        // A feature only comp for one with no plan grants that feature.
        let guest = TestUser::new(9);
        octany
            .grant_comp(
                &guest.billable_ref(),
                NewComp::new("trial of exports", "anna@support").feature::<Exports>(),
            )
            .await
            .unwrap();
        assert_eq!(
            call(&app, "GET", "/exports", Some(9), false).await.status,
            200
        );
        assert_eq!(
            call(&app, "GET", "/dashboard", Some(9), false).await.status,
            402
        );

        // Refused, writing nothing: nothing granted, no reason, an unknown
        // feature, an end already past.
        let refused = [
            NewComp::new("nothing", "anna"),
            NewComp::new("", "anna").plan(Plans::Basic),
            NewComp {
                features: vec!["exprots".into()],
                ..NewComp::new("typo", "anna")
            },
            NewComp::new("past", "anna")
                .plan(Plans::Basic)
                .until(fake.now() - chrono::Duration::days(1)),
        ];
        for comp in refused {
            let error = octany
                .grant_comp(&TestUser::new(11).billable_ref(), comp.clone())
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    BillingError::Octany(octany_actix::OctanyError::InvalidRequest { .. })
                ),
                "{comp:?}: {error:?}"
            );
        }
        assert!(
            octany
                .comps(&TestUser::new(11).billable_ref())
                .await
                .unwrap()
                .is_empty()
        );
        fake.stop().await;
        db
    }
);

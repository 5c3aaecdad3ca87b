//! An operator's actions (`Octany::operator`): each has its effect and
//! writes its audit entry, with who, why and the outcome; none without
//! who and why.

use std::sync::{Arc, Mutex};

use octany_actix::sync::{ListenerName, Listeners};
use octany_actix::webhook::{Received, WebhookError};
use octany_actix_tests::harness::at;
use octany_actix_tests::sea_orm::ConnectionTrait;

use super::*;

db_test!(
    async fn each_operator_action_has_its_effect_and_its_audit_entry(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // A mailer that is down the first time.
        let runs = Arc::new(Mutex::new(0u32));
        let counted = runs.clone();
        let listeners = Listeners::new().on(ListenerName::new("mailer"), move |_| {
            let counted = counted.clone();
            async move {
                let mut runs = counted.lock().unwrap();
                *runs += 1;
                if *runs == 1 {
                    Err("the mailer is down".into())
                } else {
                    Ok(())
                }
            }
        });
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .listeners(listeners)
            .build()
            .unwrap();
        let ada = BillableRef::parse("user:1").unwrap();
        // Without who and why, nothing runs.
        assert!(octany.operator("", "ticket 1").is_err());
        assert!(octany.operator("anna", "  ").is_err());

        // A paid order's event, its mailer failed: retried now, not in 10 s.
        let (body, signature) = signed(&envelope(
            9,
            "order.paid",
            at("2026-05-25T09:29:51Z"),
            octany_actix_tests::harness::order_json(1, "user:1", "paid"),
        ));
        let received = octany.receiver().receive(Some(&signature), &body).await;
        assert_eq!(received.unwrap(), Received::Applied);
        assert_eq!(*runs.lock().unwrap(), 1);
        let events = octany_actix::entity::event::Entity::find()
            .all(&db.conn)
            .await
            .unwrap();
        let id = events[0].id.clone();
        assert!(events[0].delivered_at.is_none());
        let anna = octany.operator("anna@support", "ticket 4711").unwrap();
        assert!(
            anna.retry_listeners(&id).await.unwrap(),
            "the mailer ran again"
        );
        assert_eq!(*runs.lock().unwrap(), 2);
        let delivered = octany_actix::entity::event::Entity::find_by_id(id.clone())
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(delivered.delivered_at.is_some());
        // Again: nothing to do, and the audit says so.
        assert!(!anna.retry_listeners(&id).await.unwrap());

        // A subscription Octany has and the mirror missed: resynced.
        fake.checkout(1225, &buyer(1), CheckoutOutcome::Succeed)
            .unwrap();
        let user = TestUser::new(1);
        assert!(!octany.billing(&user).subscribed().await.unwrap());
        let bo = octany
            .operator("bo@support", "ticket 4712: paid, locked out")
            .unwrap();
        assert!(bo.resync(&ada).await.unwrap() >= 1);
        assert!(octany.billing(&user).subscribed().await.unwrap());
        // Its requests to Octany are logged as Ada's.
        let calls = super::api_calls::logged(&octany, "user:1", 1).await;
        assert!(
            calls
                .iter()
                .all(|c| c.billable.as_deref() == Some("user:1"))
        );

        // A stored delivery replayed; an unknown one refused, and audited.
        assert!(bo.replay_delivery("9").await.is_ok());
        let unknown = bo.replay_delivery("no-such").await;
        assert!(
            matches!(unknown, Err(WebhookError::UnknownDelivery(_))),
            "{unknown:?}"
        );

        // The audit of Ada: who, why, what, and how it ended, newest first.
        let audit = octany.audit(&ada, 10).await.unwrap();
        let seen: Vec<(&str, &str, &str, Option<&str>)> = audit
            .iter()
            .map(|e| {
                (
                    e.actor.as_str(),
                    e.action.as_str(),
                    e.outcome.as_str(),
                    e.target.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("bo@support", "replay_delivery", "done", Some("9")),
                ("bo@support", "resync", "done", None),
                ("anna@support", "retry_listeners", "done", Some(id.as_str())),
                ("anna@support", "retry_listeners", "done", Some(id.as_str())),
            ],
            "{audit:?}"
        );
        assert_eq!(audit[1].reason, "ticket 4712: paid, locked out");
        assert_eq!(
            audit[2].detail.as_deref(),
            Some("no undelivered event of that id")
        );
        assert_eq!(audit[3].detail.as_deref(), Some("every listener has run"));
        // Deliveries are audited by their id (an unknown one names no billable).
        let rows = db
            .conn
            .query_all_raw(octany_actix_tests::sea_orm::Statement::from_string(
                db.db_backend(),
                "SELECT target, outcome FROM octany_audit WHERE action = 'replay_delivery' ORDER BY id".to_owned(),
            ))
            .await
            .unwrap();
        let replays: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "target").unwrap(),
                    r.try_get("", "outcome").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            replays,
            [
                ("9".to_owned(), "done".to_owned()),
                ("no-such".to_owned(), "failed".to_owned())
            ]
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_whole_mirrors_operations_are_an_operators_and_audited(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(5)).build().unwrap();
        let ada = BillableRef::parse("user:1").unwrap();
        let user = TestUser::new(1);
        // Octany has a subscription the mirror never heard of.
        fake.checkout(1225, &buyer(1), CheckoutOutcome::Succeed)
            .unwrap();
        assert!(!octany.billing(&user).subscribed().await.unwrap());
        let ops = octany
            .operator("cy@ops", "moving to a new database")
            .unwrap();
        let done = ops
            .backfill(octany_actix::ops::BackfillOptions::default(), |_| {})
            .await
            .unwrap();
        assert_eq!((done.subscriptions, done.next_page), (1, None));
        assert!(octany.billing(&user).subscribed().await.unwrap());

        // A month on, its renewal is due: the reconcile re-reads it.
        fake.advance(Duration::from_secs(32 * 86_400));
        let report = ops.reconcile().await.unwrap();
        assert_eq!((report.synced, report.failed), (1, 0), "{report:?}");

        // A prune that would forget deliveries Octany may still retry is
        // refused, and runs nothing.
        let refused = ops.prune(Duration::from_secs(86_400)).await;
        assert!(
            matches!(&refused, Err(BillingError::Octany(_))),
            "{refused:?}"
        );
        // One older than the calendar deletes nothing, and does not panic.
        let none = ops.prune(Duration::MAX).await.unwrap();
        assert_eq!((none.deliveries, none.api_calls), (0, 0));

        let audit = octany.audit_of_operations(10).await.unwrap();
        let seen: Vec<(&str, &str, &str, Option<&str>)> = audit
            .iter()
            .map(|e| {
                (
                    e.actor.as_str(),
                    e.action.as_str(),
                    e.outcome.as_str(),
                    e.detail.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "cy@ops",
                    "prune",
                    "done",
                    Some("0 delivery(ies), 0 API call(s) deleted")
                ),
                (
                    "cy@ops",
                    "reconcile",
                    "done",
                    Some("re-read 1, 0 failed; 0 checkout(s) abandoned")
                ),
                (
                    "cy@ops",
                    "backfill",
                    "done",
                    Some("1 subscription(s), 0 order(s); done")
                ),
            ],
            "{audit:?}"
        );
        assert!(audit.iter().all(|e| e.reason == "moving to a new database"));
        // They are about no one billable: Ada's own audit has none of them.
        assert!(octany.audit(&ada, 10).await.unwrap().is_empty());
        fake.stop().await;
        db
    }
);

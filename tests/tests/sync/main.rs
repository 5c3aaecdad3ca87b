//! The one sync path on every backend, against the fake Octany: polling
//! alone converges, polls and webhooks agree, nothing goes backwards.

use octany_actix::billing::CheckoutOptions;
use octany_actix::entity::{checkout, order, product, subscription};
use octany_actix::model::BillableRef;
use octany_actix::model::{AccessPolicy, Entitlement, ProductId, SubscriptionId};
use octany_actix::ops::BackfillOptions;
use octany_actix::webhook::Received;
use octany_actix_tests::db_test;
use octany_actix_tests::harness::*;
use octany_actix_tests::sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use octany_fake::{CheckoutOutcome, CheckoutParams};

mod operations;

fn buyer(reference: &str) -> CheckoutParams {
    CheckoutParams {
        reference_id: Some(reference.into()),
        email: Some("ada@example.com".into()),
        ..Default::default()
    }
}

/// Opens a checkout for user `user` and `product` through the billing
/// handle, as the checkout route does; the intent's id.
async fn pending_checkout(h: &Harness, user: i64, product: i64) -> String {
    let octany = octany_actix_tests::app::octany(&h.db, &h.fake, std::time::Duration::ZERO);
    let url = octany
        .billing(&octany_actix_tests::app::TestUser::new(user))
        .checkout_url_for(ProductId(product), CheckoutOptions::default())
        .await
        .unwrap();
    let success = url
        .query_pairs()
        .find(|(k, _)| k == "successUrl")
        .map(|(_, v)| url::Url::parse(&v).unwrap())
        .unwrap();
    success
        .query_pairs()
        .find(|(k, _)| k == "checkout")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

async fn row(h: &Harness, id: &str) -> subscription::Model {
    subscription::Entity::find_by_id(id)
        .one(&h.db.conn)
        .await
        .unwrap()
        .expect("mirrored")
}

/// User `user`'s subscription, bought and mirrored, whose renewal a month
/// later failed: Octany retries the card on its own schedule, and the
/// reconcile has seen it `delayed`.
/// [`delayed_subscription`], then read again an hour after its failed
/// renewal: due from then on only as a subscription waiting on Octany
/// (its renewal, read at the very instant, is due as well until then).
async fn waiting_subscription(h: &Harness, user: i64) -> SubscriptionId {
    let id = delayed_subscription(h, user).await;
    h.fake.advance(std::time::Duration::from_secs(3600));
    h.syncer
        .sync_billable(&BillableRef::new("user", &user.to_string()))
        .await
        .unwrap();
    let row = row(h, id.as_str()).await;
    assert!(
        row.renews_at.is_some_and(|at| at < row.synced_at),
        "{row:?}"
    );
    id
}

async fn delayed_subscription(h: &Harness, user: i64) -> SubscriptionId {
    let id = h
        .fake
        .checkout(
            1227,
            &buyer(&format!("user:{user}")),
            CheckoutOutcome::Succeed,
        )
        .unwrap()
        .subscription
        .unwrap()
        .id;
    h.syncer
        .sync_billable(&BillableRef::new("user", &user.to_string()))
        .await
        .unwrap();
    h.fake.set_card_failing(&id, true).unwrap();
    h.fake.advance_months(1);
    assert_eq!(h.syncer.reconcile().await.unwrap().synced, 1);
    assert_eq!(row(h, id.as_str()).await.status, "delayed");
    id
}

db_test!(
    async fn a_delayed_subscription_whose_last_webhook_was_lost_is_read_again(db: TestDb) {
        let h = Harness::new(db).await;
        let id = waiting_subscription(&h, 8).await;
        // The retries run out and Octany ends it; no webhook reaches the app
        // (there is no endpoint here), and neither date it knows has passed
        // since its last sync.
        h.fake.advance_days(10);
        assert_eq!(
            h.fake.subscription(&id).unwrap().status,
            octany_actix::model::SubscriptionStatus::Unpaid
        );
        let report = h.syncer.reconcile().await.unwrap();
        assert_eq!(
            report.synced, 1,
            "a subscription waiting on Octany is read again"
        );
        assert_eq!(row(&h, id.as_str()).await.status, "unpaid");
        assert_eq!(
            h.syncer.reconcile().await.unwrap().synced,
            0,
            "and then not again"
        );
        h.finish().await
    }
);

db_test!(
    async fn how_long_a_waiting_subscription_goes_unread_is_the_hosts_setting(db: TestDb) {
        let h = Harness::new(db).await;
        let id = waiting_subscription(&h, 10).await;
        // Octany ends it when the retries run out; no webhook reaches the app.
        h.fake.advance_days(10);
        let after = |days: u64| {
            octany_actix_tests::app::builder(&h.db, &h.fake, std::time::Duration::ZERO)
                .resync_waiting_after(std::time::Duration::from_secs(days * 86_400))
                .build()
                .unwrap()
        };
        let patient = after(30);
        let report = patient.operator("test", "a month's wait").unwrap();
        assert_eq!(
            report.reconcile().await.unwrap().synced,
            0,
            "last synced ten days ago: not due under a 30-day setting"
        );
        assert_eq!(row(&h, id.as_str()).await.status, "delayed");
        let eager = after(1);
        let report = eager.operator("test", "a day's wait").unwrap();
        assert_eq!(report.reconcile().await.unwrap().synced, 1);
        assert_eq!(row(&h, id.as_str()).await.status, "unpaid");
        h.finish().await
    }
);

db_test!(
    async fn a_subscription_synced_at_the_instant_it_ends_is_read_again_after(db: TestDb) {
        let h = Harness::new(db).await;
        let id = delayed_subscription(&h, 9).await;
        // The person cancels while the card is being retried, 0.7 s into a
        // second: it ends now (to the second, as Octany writes its dates),
        // and the mirror records the answer in that same second.
        h.fake.advance(std::time::Duration::from_millis(700));
        let octany = octany_actix_tests::app::octany(&h.db, &h.fake, std::time::Duration::ZERO);
        let user = octany_actix_tests::app::TestUser::new(9);
        let cancelled = octany.billing(&user).cancel().await.unwrap();
        let second = chrono::DateTime::from_timestamp(h.fake.now().timestamp(), 0).unwrap();
        assert_eq!(cancelled.ends_at, Some(second));
        assert_eq!(row(&h, id.as_str()).await.synced_at, second);
        // Octany then expires it; no webhook reaches the app.
        h.fake.advance_days(1);
        assert_eq!(
            h.fake.subscription(&id).unwrap().status,
            octany_actix::model::SubscriptionStatus::Expired
        );
        assert_eq!(
            h.syncer.reconcile().await.unwrap().synced,
            1,
            "an end not seen passing is due, even when the last sync was at that instant"
        );
        assert_eq!(row(&h, id.as_str()).await.status, "expired");
        assert_eq!(
            h.syncer.reconcile().await.unwrap().synced,
            0,
            "and then not again"
        );
        h.finish().await
    }
);

db_test!(
    async fn the_reconciles_due_query_is_answered_from_indexes(db: TestDb) {
        use octany_actix_tests::sea_orm::{
            ConnectionTrait, DbBackend, Statement, TransactionTrait,
        };
        use std::sync::{Arc, Mutex};
        let backend = db.db_backend();
        if backend == DbBackend::MySql {
            // No partial indexes there: 000007's plain ones serve.
            return db;
        }
        // The reconcile's query as it runs, with its parameters bound.
        let seen: Arc<Mutex<Option<Statement>>> = Arc::default();
        let mut conn = db.conn.clone();
        let keep = seen.clone();
        conn.set_metric_callback(move |info| {
            if info.statement.sql.contains("needs_sync") && info.statement.sql.starts_with("SELECT")
            {
                *keep.lock().unwrap() = Some(info.statement.clone());
            }
        });
        let fake = octany_fake::FakeOctany::builder().start().await.unwrap();
        let octany = octany_actix::Octany::builder(fake.config().with_webhook_secret(SECRET), conn)
            .public_base_url("http://localhost")
            .build()
            .unwrap();
        octany.syncer().reconcile().await.unwrap();
        let due = seen.lock().unwrap().clone().expect("the due query ran");
        let plan: Vec<String> = if backend == DbBackend::Postgres {
            // The plan a prepared statement gets once PostgreSQL stops
            // planning for its values; scans forbidden wherever an index can serve.
            let params = due.values.as_ref().map_or(0, |v| v.0.len());
            let txn = db.conn.begin().await.unwrap();
            for sql in [
                "SET LOCAL plan_cache_mode = force_generic_plan".to_owned(),
                "SET LOCAL enable_seqscan = off".to_owned(),
                format!("PREPARE octany_due AS {}", due.sql),
            ] {
                txn.execute_unprepared(&sql).await.unwrap();
            }
            let args = vec!["now()"; params].join(", ");
            let rows = txn
                .query_all_raw(Statement::from_string(
                    backend,
                    format!("EXPLAIN EXECUTE octany_due({args})"),
                ))
                .await
                .unwrap();
            txn.execute_unprepared("DEALLOCATE octany_due")
                .await
                .unwrap();
            txn.rollback().await.unwrap();
            rows.iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect()
        } else {
            let explain = Statement {
                sql: format!("EXPLAIN QUERY PLAN {}", due.sql),
                ..due.clone()
            };
            // On one connection that has read the table since the
            // migrations: EXPLAIN alone plans with whatever schema the
            // connection last loaded.
            let txn = db.conn.begin().await.unwrap();
            txn.execute_unprepared("SELECT count(*) FROM octany_subscriptions")
                .await
                .unwrap();
            let rows = txn.query_all_raw(explain).await.unwrap();
            txn.rollback().await.unwrap();
            rows.iter()
                .map(|r| r.try_get::<String>("", "detail").unwrap())
                .collect()
        };
        let plan = plan.join("\n");
        for index in [
            "idx_octany_subscriptions_needs_sync",
            "idx_octany_subscriptions_waiting",
            "idx_octany_subscriptions_renews_at",
            "idx_octany_subscriptions_ends_at",
        ] {
            assert!(
                plan.contains(index),
                "{index} unused by {}:\n{plan}",
                due.sql
            );
        }
        assert!(
            !plan.contains("Seq Scan") && !plan.contains("SCAN octany_subscriptions"),
            "{plan}"
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn polling_alone_converges_through_the_life_cycle(db: TestDb) {
        let h = Harness::new(db).await;
        let bought = h
            .fake
            .checkout(1225, &buyer("user:7"), CheckoutOutcome::Succeed)
            .unwrap();
        let id = bought.subscription.unwrap().id.to_string();
        // No webhook endpoint at all: only polls.
        let effects = h
            .syncer
            .sync_billable(&BillableRef::new("user", "7"))
            .await
            .unwrap();
        assert!(effects.changed.contains(&BillableRef::new("user", "7")));
        assert_eq!((effects.subscriptions, effects.orders), (1, 1));
        let clock = h.syncer.clock().clone();
        assert!(
            row(&h, &id)
                .await
                .has_access(clock.as_ref(), AccessPolicy::default())
        );

        // A renewal happens at Octany; the reconcile notices renews_at passed.
        h.fake.advance_months(1);
        let report = h.syncer.reconcile().await.unwrap();
        assert_eq!((report.synced, report.failed), (1, 0));
        assert_eq!(
            row(&h, &id).await.renews_at.unwrap().to_rfc3339(),
            // bought at the harness's start (2026-06-01), renewed once
            "2026-08-01T00:00:00+00:00"
        );
        assert_eq!(
            h.syncer.reconcile().await.unwrap().synced,
            0,
            "nothing due twice"
        );

        // Cancelled at Octany: the next poll sees it.
        h.syncer
            .client()
            .cancel_subscription(&SubscriptionId::new(id.clone()))
            .await
            .unwrap();
        h.syncer
            .sync_billable(&BillableRef::new("user", "7"))
            .await
            .unwrap();
        let cancelled = row(&h, &id).await;
        assert_eq!(cancelled.status, "cancelled");
        assert!(cancelled.on_grace_period(clock.as_ref()));
        // It expires at Octany; the reconcile notices ends_at passed.
        h.fake.advance_months(1);
        assert_eq!(h.syncer.reconcile().await.unwrap().synced, 1);
        let expired = row(&h, &id).await;
        assert_eq!(expired.status, "expired");
        assert!(!expired.has_access(clock.as_ref(), AccessPolicy::default()));
        assert_eq!(order::Entity::find().count(&h.db.conn).await.unwrap(), 2);
        h.finish().await
    }
);

db_test!(
    async fn a_poll_and_a_webhook_at_the_same_moment_make_one_row(db: TestDb) {
        let h = Harness::new(db).await;
        let bought = h
            .fake
            .checkout(1225, &buyer("user:8"), CheckoutOutcome::Succeed)
            .unwrap();
        let sub = bought.subscription.unwrap();
        let data = serde_json::to_value(&sub).unwrap();
        for round in 0..10u64 {
            let (body, signature) = signed(&envelope(
                1000 + round,
                "subscription.updated",
                h.fake.now(),
                data.clone(),
            ));
            let user = BillableRef::new("user", "8");
            let (poll, hook) = tokio::join!(
                h.syncer.sync_billable_subscriptions(&user),
                h.receiver.receive(Some(&signature), &body)
            );
            poll.unwrap();
            hook.unwrap();
        }
        assert_eq!(
            subscription::Entity::find()
                .count(&h.db.conn)
                .await
                .unwrap(),
            1
        );
        assert_eq!(row(&h, &sub.id.to_string()).await.status, "active");
        h.finish().await
    }
);

db_test!(
    async fn an_older_poll_never_overwrites_a_newer_webhook(db: TestDb) {
        let h = Harness::new(db).await;
        let sub = h
            .fake
            .checkout(1225, &buyer("user:9"), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        let mut cancelled = sub.clone();
        cancelled.status = octany_actix::model::SubscriptionStatus::Cancelled;
        cancelled.ends_at = sub.renews_at;
        cancelled.renews_at = None;
        let t1 = h.fake.now() - chrono::Duration::seconds(10);
        let t0 = h.fake.now() - chrono::Duration::seconds(20);
        let send = |id: u64, when, s: &octany_actix::model::Subscription| {
            signed(&envelope(
                id,
                "subscription.updated",
                when,
                serde_json::to_value(s).unwrap(),
            ))
        };
        let (body, signature) = send(1, t1, &cancelled);
        assert_eq!(
            h.receiver.receive(Some(&signature), &body).await.unwrap(),
            Received::Applied
        );
        assert_eq!(row(&h, &sub.id.to_string()).await.status, "cancelled");
        // A state as of t0 (before the cancellation) arrives late: refused.
        let (body, signature) = send(2, t0, &sub);
        h.receiver.receive(Some(&signature), &body).await.unwrap();
        assert_eq!(row(&h, &sub.id.to_string()).await.status, "cancelled");
        let mark = row(&h, &sub.id.to_string()).await.sync_mark;
        assert_eq!(
            mark,
            t1.timestamp_micros(),
            "the mark is Octany's time of the state"
        );
        // The same state again is a no-op; a newer one (a poll answered now) is applied.
        let (body, signature) = send(3, t1, &cancelled);
        h.receiver.receive(Some(&signature), &body).await.unwrap();
        assert_eq!(row(&h, &sub.id.to_string()).await.sync_mark, mark);
        h.syncer
            .sync_billable_subscriptions(&BillableRef::new("user", "9"))
            .await
            .unwrap();
        let polled = row(&h, &sub.id.to_string()).await;
        assert_eq!(polled.status, "active", "Octany's current state");
        assert_eq!(
            polled.sync_mark,
            h.fake.now().timestamp_micros(),
            "the answer's Date"
        );
        h.finish().await
    }
);

db_test!(
    async fn disagreeing_webhooks_of_one_instant_are_settled_by_the_api(db: TestDb) {
        let h = Harness::new(db).await;
        let sub = h
            .fake
            .checkout(1225, &buyer("user:3"), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        let cancelled = h
            .syncer
            .client()
            .cancel_subscription(&sub.id)
            .await
            .unwrap();
        // Both stamped with the same instant, delivered cancelled-first.
        let now = h.fake.now();
        for (delivery, name, data) in [
            (1, "subscription.cancelled", &cancelled),
            (2, "subscription.created", &sub),
        ] {
            let (body, signature) = signed(&envelope(
                delivery,
                name,
                now,
                serde_json::to_value(data).unwrap(),
            ));
            h.receiver.receive(Some(&signature), &body).await.unwrap();
        }
        let settled = row(&h, &sub.id.to_string()).await;
        assert_eq!(settled.status, "cancelled", "re-fetched from Octany");
        assert!(!settled.needs_sync);
        h.finish().await
    }
);

db_test!(
    async fn a_checkout_intent_completes_when_its_subscription_appears(db: TestDb) {
        let h = Harness::new(db).await;
        let intent_id = pending_checkout(&h, 5, 1225).await;
        let sub = h
            .fake
            .checkout(1225, &buyer("user:5"), CheckoutOutcome::Invoice)
            .unwrap()
            .subscription
            .unwrap();
        h.syncer
            .sync_billable_subscriptions(&BillableRef::new("user", "5"))
            .await
            .unwrap();
        let intent = checkout::Entity::find_by_id(intent_id.as_str())
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(intent.status, checkout::CheckoutStatus::Completed);
        assert_eq!(intent.subscription_id, Some(sub.id.to_string()));
        assert_eq!(
            row(&h, &sub.id.to_string()).await.status,
            "pending",
            "completed is not paid"
        );
        h.finish().await
    }
);

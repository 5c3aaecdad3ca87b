//! Billing events on every backend: each source (webhook, poll, reconcile,
//! backfill, each billing action) brings its change through the one unit
//! of work, which emits the change's event exactly once; the same change by
//! two sources is one event; a failing listener is retried without running
//! the others again; an event whose delivery was cut off by the process
//! dying is delivered after restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use octany_actix::client::NewOrder;
use octany_actix::engine::{SyncOptions, Syncer};
use octany_actix::entity::event;
use octany_actix::model::ProductId;
use octany_actix::ops::BackfillOptions;
use octany_actix::sync::{Event, Listeners, Origin};
use octany_actix::webhook::Received;
use octany_actix::{Billable, Octany};
use octany_actix_tests::app::{Plans, TestUser, octany_with};
use octany_actix_tests::harness::*;
use octany_actix_tests::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use octany_actix_tests::{TestDb, db_test};
use octany_fake::{CheckoutOutcome, CheckoutParams, FakeOctany};

/// An event as a listener saw it: kind, origin, billable.
type Sighting = (String, Origin, Option<String>);

/// Every event a listener saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Sighting>>>);

impl Seen {
    fn listeners(&self) -> Listeners {
        let seen = self.clone();
        Listeners::new().on(
            octany_actix::sync::ListenerName::new("record"),
            move |event: Arc<Event>| {
                let seen = seen.clone();
                async move {
                    seen.0.lock().unwrap().push((
                        event.event.kind().to_owned(),
                        event.origin,
                        event.billable.as_ref().map(ToString::to_string),
                    ));
                    Ok(())
                }
            },
        )
    }

    fn kinds(&self) -> Vec<(String, Origin)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, o, _)| (k.clone(), *o))
            .collect()
    }
}

fn ev(kind: &str, origin: Origin) -> (String, Origin) {
    (kind.to_owned(), origin)
}

fn buyer(user: &TestUser) -> CheckoutParams {
    CheckoutParams {
        reference_id: Some(user.billable_ref().to_string()),
        ..Default::default()
    }
}

async fn start(db: &TestDb, seen: &Seen) -> (FakeOctany, Octany) {
    let fake = FakeOctany::builder()
        .sample_catalog()
        .start()
        .await
        .unwrap();
    let octany = octany_with(db, &fake, Duration::from_secs(5), seen.listeners());
    (fake, octany)
}

/// The outbox rows, delivered or not.
async fn outbox(db: &TestDb) -> Vec<event::Model> {
    event::Entity::find().all(&db.conn).await.unwrap()
}

db_test!(
    async fn a_webhook_and_a_poll_of_the_same_change_make_one_event(db: TestDb) {
        let seen = Seen::default();
        let (fake, octany) = start(&db, &seen).await;
        let user = TestUser::new(1);
        let sub = fake
            .checkout(1227, &buyer(&user), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        let (body, signature) = signed(&envelope(
            1,
            "subscription.created",
            fake.now(),
            serde_json::to_value(&sub).unwrap(),
        ));
        let receiver = octany.receiver();
        assert_eq!(
            receiver.receive(Some(&signature), &body).await.unwrap(),
            Received::Applied
        );
        // The same change again: by a retried delivery, another delivery id, and a poll.
        receiver.receive(Some(&signature), &body).await.unwrap();
        let (body, signature) = signed(&envelope(
            2,
            "subscription.updated",
            fake.now(),
            serde_json::to_value(&sub).unwrap(),
        ));
        receiver.receive(Some(&signature), &body).await.unwrap();
        octany
            .syncer()
            .sync_billable_subscriptions(&user.billable_ref())
            .await
            .unwrap();
        assert_eq!(seen.kinds(), [ev("subscription.started", Origin::Webhook)]);
        let rows = outbox(&db).await;
        assert_eq!(rows.len(), 1, "one row in the outbox");
        assert_eq!(rows[0].billable_ref.as_deref(), Some("user:1"));
        assert!(rows[0].delivered_at.is_some());
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_poll_alone_emits_the_start(db: TestDb) {
        let seen = Seen::default();
        let (fake, octany) = start(&db, &seen).await;
        let user = TestUser::new(2);
        fake.checkout(1227, &buyer(&user), CheckoutOutcome::Succeed)
            .unwrap();
        octany.billing(&user).sync().await.unwrap();
        octany.billing(&user).sync().await.unwrap();
        assert_eq!(
            seen.kinds(),
            [
                ev("subscription.started", Origin::Poll),
                ev("order.paid", Origin::Poll),
            ],
            "the subscription and its first order, once"
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_reconcile_emits_a_renewal_it_finds(db: TestDb) {
        let seen = Seen::default();
        let (fake, octany) = start(&db, &seen).await;
        let user = TestUser::new(3);
        fake.checkout(1227, &buyer(&user), CheckoutOutcome::Succeed)
            .unwrap();
        octany.billing(&user).sync().await.unwrap();
        // Every webhook lost: only the reconcile learns of the renewal.
        fake.advance_months(1);
        let report = octany.syncer().reconcile().await.unwrap();
        assert_eq!(report.synced, 1);
        octany.syncer().reconcile().await.unwrap();
        assert_eq!(
            seen.kinds(),
            [
                ev("subscription.started", Origin::Poll),
                ev("order.paid", Origin::Poll),
                ev("subscription.renewed", Origin::Reconcile)
            ]
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_backfill_emits_each_start_once(db: TestDb) {
        let seen = Seen::default();
        let (fake, octany) = start(&db, &seen).await;
        for id in 10..13 {
            fake.checkout(1227, &buyer(&TestUser::new(id)), CheckoutOutcome::Succeed)
                .unwrap();
        }
        octany
            .syncer()
            .backfill(BackfillOptions::default(), |_| {})
            .await
            .unwrap();
        octany
            .syncer()
            .backfill(BackfillOptions::default(), |_| {})
            .await
            .unwrap();
        let mut billables: Vec<Option<String>> = seen
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| b.clone())
            .collect();
        billables.sort();
        assert_eq!(
            billables,
            [
                Some("user:10".into()),
                Some("user:11".into()),
                Some("user:12".into())
            ]
        );
        assert!(
            seen.kinds()
                .iter()
                .all(|k| *k == ev("subscription.started", Origin::Backfill))
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn each_billing_action_emits_its_event_once(db: TestDb) {
        let seen = Seen::default();
        let (fake, octany) = start(&db, &seen).await;
        let user = TestUser::new(4);
        fake.checkout(1227, &buyer(&user), CheckoutOutcome::Succeed)
            .unwrap();
        let billing = octany.billing(&user);
        billing.sync().await.unwrap();
        billing.swap(Plans::ProYearly).await.unwrap();
        let order = NewOrder {
            product_id: ProductId(1400),
            amount: None,
            description: None,
        };
        billing.charge("add-on-form", order).await.unwrap();
        billing.cancel().await.unwrap();
        // What the actions changed, seen again by a poll: nothing new.
        billing.sync().await.unwrap();
        assert_eq!(
            seen.kinds(),
            [
                ev("subscription.started", Origin::Poll),
                ev("order.paid", Origin::Poll),
                ev("subscription.swapped", Origin::Action),
                ev("order.paid", Origin::Action),
                ev("subscription.cancelled", Origin::Action),
            ]
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_failing_listener_is_retried_and_the_others_are_not_run_again(db: TestDb) {
        let runs = Arc::new(Mutex::new((0u32, 0u32)));
        let (ok, flaky) = (runs.clone(), runs.clone());
        let listeners = Listeners::new()
            .on(octany_actix::sync::ListenerName::new("audit"), move |_| {
                let ok = ok.clone();
                async move {
                    ok.lock().unwrap().0 += 1;
                    Ok(())
                }
            })
            .on(octany_actix::sync::ListenerName::new("mailer"), move |_| {
                let flaky = flaky.clone();
                async move {
                    let mut runs = flaky.lock().unwrap();
                    runs.1 += 1;
                    if runs.1 == 1 {
                        Err("the mailer is down".into())
                    } else {
                        Ok(())
                    }
                }
            });
        let h = Harness::with_listeners(db, listeners).await;
        let (body, signature) = signed(&envelope(
            9,
            "order.paid",
            at("2026-05-25T09:29:51Z"),
            order_json(1, "user:1", "paid"),
        ));
        assert_eq!(
            h.receiver.receive(Some(&signature), &body).await.unwrap(),
            Received::Applied,
            "the state stays applied and Octany is told so"
        );
        assert_eq!(*runs.lock().unwrap(), (1, 1));
        let row = &outbox(&h.db).await[0];
        assert_eq!(row.kind, "order.paid");
        assert_eq!(row.delivered_at, None);
        assert_eq!(row.attempts, 1);
        assert_eq!(row.done_listeners, r#"["audit"]"#);
        assert!(
            row.last_error
                .as_deref()
                .unwrap()
                .contains("the mailer is down")
        );
        // Not before its back-off has passed.
        assert_eq!(h.syncer.deliver_due().await.unwrap(), 0);
        h.fake.advance(Duration::from_secs(11));
        assert_eq!(h.syncer.deliver_due().await.unwrap(), 1);
        assert_eq!(
            *runs.lock().unwrap(),
            (1, 2),
            "audit ran once, the mailer twice"
        );
        let row = &outbox(&h.db).await[0];
        assert!(row.delivered_at.is_some());
        assert_eq!(row.last_error, None);
        assert_eq!(h.syncer.deliver_due().await.unwrap(), 0, "done is done");
        h.finish().await
    }
);

db_test!(
    async fn an_event_cut_off_by_a_crash_is_delivered_after_restart(db: TestDb) {
        // A listener that starts and never finishes: the process is killed in it.
        let entered = Arc::new(tokio::sync::Notify::new());
        let signal = entered.clone();
        let stuck =
            Listeners::new().on(octany_actix::sync::ListenerName::new("mailer"), move |_| {
                let signal = signal.clone();
                async move {
                    signal.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
        let h = Harness::with_listeners(db, stuck).await;
        let (body, signature) = signed(&envelope(
            5,
            "subscription.created",
            h.fake.now(),
            subscription_json(1, "user:1", "active", None),
        ));
        let receiver = h.receiver.clone();
        let request = tokio::spawn(async move { receiver.receive(Some(&signature), &body).await });
        entered.notified().await;
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        let row = &outbox(&h.db).await[0];
        assert_eq!(row.kind, "subscription.started");
        assert_eq!(row.delivered_at, None, "committed, not delivered");

        // The restarted process delivers it once the dead one's claim has lapsed.
        let seen = Seen::default();
        let options = SyncOptions::default().with_listeners(seen.listeners());
        let restarted = Syncer::with_options(h.db.conn.clone(), h.fake.client(), options);
        assert_eq!(restarted.deliver_due().await.unwrap(), 0, "still claimed");
        h.fake.advance(Duration::from_secs(61));
        assert_eq!(restarted.deliver_due().await.unwrap(), 1);
        assert_eq!(seen.kinds(), [ev("subscription.started", Origin::Webhook)]);
        let delivered = event::Entity::find()
            .filter(event::Column::DeliveredAt.is_not_null())
            .all(&h.db.conn)
            .await
            .unwrap();
        assert_eq!(delivered.len(), 1);
        h.finish().await
    }
);

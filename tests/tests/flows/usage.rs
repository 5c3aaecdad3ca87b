//! Metered usage billed in arrears (issue 30): recorded once per key from
//! two instances at once, and each period charged exactly once at renewal
//! (two instances closing it together, a lost answer, a decline).

use std::time::Duration;

use futures_util::future::join_all;
use octany_actix::entity::event;
use octany_actix::model::ProductId;
use octany_actix::sync::BillingEvent;
use octany_actix::{Meter, Octany};
use octany_actix_tests::app::{Plans, TestUser};
use octany_actix_tests::db_test;
use octany_actix_tests::harness::SECRET;
use octany_fake::testing::TestBilling;
use octany_fake::{FakeOctany, Faults};
use sea_orm::EntityTrait;

/// API calls: 2 öre each, billed as product 1400.
struct ApiCalls;

impl Meter for ApiCalls {
    const NAME: &'static str = "api_calls";
    const PRODUCT: ProductId = ProductId(1400);
    const UNIT_PRICE: i64 = 2;
}

/// A second instance of the app on the same database and fake Octany.
fn instance(db: &octany_actix_tests::TestDb, fake: &FakeOctany) -> Octany {
    Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url("http://localhost:8080")
        .plans::<Plans>()
        .meter::<ApiCalls>()
        .clock(fake.app_clock())
        .build()
        .unwrap()
}

async fn kit(db: &octany_actix_tests::TestDb) -> TestBilling {
    TestBilling::builder()
        .database(db.conn.clone())
        .plans::<Plans>()
        .configure(|b| b.meter::<ApiCalls>())
        .start()
        .await
        .unwrap()
}

/// The fake's orders that bill usage.
fn usage_orders(fake: &FakeOctany) -> Vec<octany_actix::model::Order> {
    fake.orders()
        .into_iter()
        .filter(|o| {
            o.items.iter().any(|i| {
                i.description
                    .as_deref()
                    .is_some_and(|d| d.starts_with("api_calls"))
            })
        })
        .collect()
}

/// Waits until `count` usage orders exist at the fake (delivering the
/// outbox meanwhile); fails after 20 s.
async fn usage_orders_reach(kit: &TestBilling, count: usize) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while usage_orders(kit.fake()).len() < count {
            kit.octany().syncer().deliver_due().await.unwrap();
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} usage orders: {:?}", usage_orders(kit.fake())));
}

db_test!(
    async fn ten_thousand_uses_from_two_instances_count_each_key_once(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let (a, b) = (instance(&db, &fake), instance(&db, &fake));
        let team = TestUser::new(7);
        // 9,000 distinct keys and 1,000 sent twice: by both instances, at
        // once, from four tasks each.
        let keys: Vec<String> = (0..9_000).map(|i| format!("call-{i}")).collect();
        let mut sends: Vec<(usize, String)> = keys.iter().cloned().enumerate().collect();
        sends.extend((0..1_000).map(|i| (i + 1, keys[i * 9].clone())));
        let tasks = (0..8).map(|task| {
            let octany = if task % 2 == 0 { a.clone() } else { b.clone() };
            let mine: Vec<String> = sends
                .iter()
                .filter(|(n, _)| n % 8 == task)
                .map(|(_, key)| key.clone())
                .collect();
            let team = team.clone();
            tokio::spawn(async move {
                let mut counted = 0u64;
                for key in mine {
                    if octany
                        .billing(&team)
                        .record_usage::<ApiCalls>(3, &key)
                        .await
                        .unwrap()
                    {
                        counted += 1;
                    }
                }
                counted
            })
        });
        let counted: u64 = join_all(tasks).await.into_iter().map(Result::unwrap).sum();
        assert_eq!(counted, 9_000, "each key counted once");
        let usage = a.billing(&team).usage::<ApiCalls>().await.unwrap();
        assert_eq!((usage.quantity, usage.amount), (27_000, 54_000));
        assert_eq!(b.billing(&team).usage::<ApiCalls>().await.unwrap(), usage);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_renewal_charges_the_period_once_however_often_and_wherever_it_is_seen(db: TestDb) {
        let kit = kit(&db).await;
        let team = TestUser::new(1);
        kit.subscribe(&team, Plans::Basic).await.unwrap();
        let billing = kit.octany().billing(&team);
        for i in 0..1_234 {
            billing
                .record_usage::<ApiCalls>(1, &format!("r{i}"))
                .await
                .unwrap();
        }
        // The renewal: the period is charged once, as one order of the
        // meter's product with the period's amount and description.
        kit.renew(&team).await.unwrap();
        usage_orders_reach(&kit, 1).await;
        let orders = usage_orders(kit.fake());
        let order = &orders[0];
        assert_eq!(order.total, 2_468, "{order:?}");
        let line = order.items[0].description.clone().unwrap();
        assert!(line.contains("1234 used in the period ending"), "{line}");
        // What is recorded after the renewal belongs to the next period.
        billing.record_usage::<ApiCalls>(5, "after").await.unwrap();
        assert_eq!(billing.usage::<ApiCalls>().await.unwrap().quantity, 5);

        // The same renewal handled again: by this instance and another at
        // once, and again after Octany's answers were lost.
        let renewed = kit
            .events(&team)
            .await
            .unwrap()
            .into_iter()
            .find(|e| matches!(e.event, BillingEvent::SubscriptionRenewed { .. }))
            .expect("a renewal event");
        let other = instance(&db, kit.fake());
        let (first, second) = tokio::join!(
            Box::pin(kit.octany().bill_usage(&renewed)),
            Box::pin(other.bill_usage(&renewed))
        );
        first.unwrap();
        second.unwrap();
        assert_eq!(
            usage_orders(kit.fake()).len(),
            1,
            "{:?}",
            usage_orders(kit.fake())
        );

        // The next renewal's charge loses Octany's answers (the order is
        // made; the app never hears, as if killed before its mark): the
        // retry finds the order instead of making a second.
        kit.fake().set_faults(Faults {
            lost_response_rate: 1.0,
            ..Faults::none()
        });
        kit.renew(&team).await.unwrap();
        let second_renewal = kit
            .events(&team)
            .await
            .unwrap()
            .into_iter()
            .rfind(|e| matches!(e.event, BillingEvent::SubscriptionRenewed { .. }))
            .expect("a second renewal event");
        assert_ne!(second_renewal.id, renewed.id);
        // Both instances try while every answer is lost (each may end in
        // an error the outbox retries); the order is made once.
        let (_, _) = tokio::join!(
            Box::pin(kit.octany().bill_usage(&second_renewal)),
            Box::pin(other.bill_usage(&second_renewal))
        );
        assert_eq!(usage_orders(kit.fake()).len(), 2, "made once at Octany");
        kit.fake().set_faults(Faults::none());
        other.bill_usage(&second_renewal).await.unwrap();
        kit.octany().bill_usage(&second_renewal).await.unwrap();
        let orders = usage_orders(kit.fake());
        assert_eq!(orders.len(), 2, "{orders:?}");
        assert_eq!(orders[1].total, 10, "5 calls at 2 öre: {orders:?}");
        kit.stop().await;
        db
    }
);

/// The renewal event of `user` (the first).
async fn renewal(kit: &TestBilling, user: &TestUser) -> octany_actix::sync::Event {
    kit.events(user)
        .await
        .unwrap()
        .into_iter()
        .find(|e| matches!(e.event, BillingEvent::SubscriptionRenewed { .. }))
        .expect("a renewal event")
}

/// The states of the fake's usage orders, oldest first.
fn usage_states(fake: &FakeOctany) -> Vec<String> {
    let mut orders = usage_orders(fake);
    orders.sort_by_key(|o| o.id.as_str().parse::<u64>().unwrap_or(u64::MAX));
    orders.iter().map(|o| o.state.as_str().to_owned()).collect()
}

/// `heavy` (with 100 API calls recorded) renewed and paid, its card failing
/// before the usage charge; waits for the first, declined, usage order.
async fn declined_first(kit: &TestBilling, heavy: &TestUser) {
    kit.subscribe(heavy, Plans::Basic).await.unwrap();
    kit.octany()
        .billing(heavy)
        .record_usage::<ApiCalls>(100, "batch-1")
        .await
        .unwrap();
    kit.hold_webhooks(true).await;
    kit.renew(heavy).await.unwrap();
    kit.fail_payments(heavy, true).unwrap();
    kit.hold_webhooks(false).await;
    usage_orders_reach(kit, 1).await;
    assert_eq!(usage_states(kit.fake()), ["failed"]);
}

db_test!(
    async fn a_declined_usage_charge_is_retried_by_policy_and_paid_once(db: TestDb) {
        let kit = kit(&db).await;
        let (heavy, idle) = (TestUser::new(1), TestUser::new(2));
        kit.subscribe(&idle, Plans::Basic).await.unwrap();
        declined_first(&kit, &heavy).await;
        // Reported: the order's failure is a billing event of the billable.
        tokio::time::timeout(Duration::from_secs(20), async {
            while !kit
                .event_kinds(&heavy)
                .await
                .unwrap()
                .contains(&"order.failed".to_owned())
            {
                kit.octany().syncer().deliver_due().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("order.failed reported");
        // Handled again before the policy's pause (a retry, another
        // instance, the outbox): nothing is sent, the next attempt is named.
        let renewed = renewal(&kit, &heavy).await;
        let due = kit.octany().bill_usage(&renewed).await.unwrap();
        let other = instance(&db, kit.fake());
        assert_eq!(other.bill_usage(&renewed).await.unwrap(), due);
        let due = due.expect("a second attempt is planned");
        let wait = due - kit.now();
        assert!(
            wait > chrono::Duration::days(3) - chrono::Duration::minutes(1)
                && wait <= chrono::Duration::days(3),
            "the default policy waits 3 days: {wait}"
        );
        kit.octany().syncer().deliver_due().await.unwrap();
        assert_eq!(usage_states(kit.fake()), ["failed"]);
        // The outbox keeps the renewal for the listener until then (a
        // wait, not a failure's backoff).
        let row = event::Entity::find_by_id(renewed.id.clone())
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(row.delivered_at.is_none());
        assert_eq!(row.next_attempt_at, due.timestamp_micros(), "{row:?}");

        // Three days on, the outbox makes the second attempt; still declined.
        kit.advance_days(3).await;
        usage_orders_reach(&kit, 2).await;
        assert_eq!(usage_states(kit.fake()), ["failed", "failed"]);
        // The card is fixed; five days on, the third attempt is paid.
        kit.fail_payments(&heavy, false).unwrap();
        kit.advance_days(5).await;
        usage_orders_reach(&kit, 3).await;
        assert_eq!(usage_states(kit.fake()), ["failed", "failed", "paid"]);
        // Paid: no attempt after it, however long and however often.
        assert_eq!(kit.octany().bill_usage(&renewed).await.unwrap(), None);
        kit.advance_days(8).await;
        kit.octany().syncer().deliver_due().await.unwrap();
        other.bill_usage(&renewed).await.unwrap();
        assert_eq!(usage_states(kit.fake()), ["failed", "failed", "paid"]);

        // A period with no usage charges nothing.
        kit.renew(&idle).await.unwrap();
        let idle_renewed = renewal(&kit, &idle).await;
        assert_eq!(kit.octany().bill_usage(&idle_renewed).await.unwrap(), None);
        assert_eq!(usage_orders(kit.fake()).len(), 3);
        kit.stop().await;
        db
    }
);

db_test!(
    async fn the_host_s_retry_policy_bounds_the_attempts_at_a_declined_usage_charge(db: TestDb) {
        let kit = TestBilling::builder()
            .database(db.conn.clone())
            .plans::<Plans>()
            .configure(|b| {
                b.meter::<ApiCalls>()
                    .usage_retries([Duration::from_secs(3600)])
            })
            .start()
            .await
            .unwrap();
        let heavy = TestUser::new(1);
        declined_first(&kit, &heavy).await;
        let renewed = renewal(&kit, &heavy).await;
        let due = kit.octany().bill_usage(&renewed).await.unwrap();
        assert_eq!(
            due.map(|d| (d - kit.now()).num_minutes()),
            Some(60),
            "one retry, an hour on"
        );
        kit.advance(Duration::from_secs(3600)).await;
        usage_orders_reach(&kit, 2).await;
        // The last attempt declined: given up, not tried again.
        assert_eq!(kit.octany().bill_usage(&renewed).await.unwrap(), None);
        kit.advance_days(30).await;
        kit.octany().syncer().deliver_due().await.unwrap();
        assert_eq!(usage_states(kit.fake()), ["failed", "failed"]);
        kit.stop().await;
        db
    }
);

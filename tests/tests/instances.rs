//! Two instances of an app sharing one database (every backend; PostgreSQL
//! in CI): deliveries sent to both at once apply once; the reconcile runs
//! on one at a time; the end of a subscription applied by one stops the
//! other granting access within its cache TTL (at once on PostgreSQL, which
//! tells it), and so does a comp granted or revoked by one; they share
//! one request budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use octany_actix::sync::Listeners;
use octany_actix::webhook::Received;
use octany_actix::{Billable, Octany};
use octany_actix_tests::app::TestUser;
use octany_actix_tests::harness::{SECRET, envelope, signed};
use octany_actix_tests::sea_orm::ConnectionTrait;
use octany_actix_tests::{TestDb, db_test};
use octany_fake::{CheckoutOutcome, CheckoutParams, FakeOctany};

fn instance(db: &TestDb, fake: &FakeOctany, applied: Arc<AtomicUsize>) -> Octany {
    let listeners =
        Listeners::new().on(octany_actix::sync::ListenerName::new("count"), move |_| {
            let applied = applied.clone();
            async move {
                applied.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
    Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url("http://localhost:8080")
        .clock(fake.app_clock())
        .cache_ttl(Duration::from_secs(5))
        .listeners(listeners)
        .build()
        .unwrap()
}

/// After a change that ends `user`'s access was committed: on PostgreSQL
/// `b` hears of it (LISTEN/NOTIFY) and stops granting without waiting for
/// its TTL, the clock not moved; elsewhere it trusts its cache until the
/// 5-second TTL has passed, then refuses.
async fn stops_granting(db: &TestDb, fake: &FakeOctany, b: &Octany, user: &TestUser) {
    if db.backend == octany_actix_tests::Backend::Postgres {
        tokio::time::timeout(Duration::from_secs(5), async {
            while b.billing(user).subscribed().await.unwrap() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("B heard of the change");
        return;
    }
    assert!(
        b.billing(user).subscribed().await.unwrap(),
        "no channel here: B trusts its cache for its TTL"
    );
    fake.advance(Duration::from_secs(6));
    assert!(
        !b.billing(user).subscribed().await.unwrap(),
        "B within its 5-second TTL"
    );
}

/// `user` pays for Pro monthly at Octany, and `octany` has synced it.
async fn paying(
    fake: &FakeOctany,
    octany: &Octany,
    user: &TestUser,
) -> octany_actix::model::Subscription {
    let sub = fake
        .checkout(
            1225,
            &CheckoutParams {
                reference_id: Some(user.billable_ref().to_string()),
                ..Default::default()
            },
            CheckoutOutcome::Succeed,
        )
        .unwrap()
        .subscription
        .unwrap();
    octany
        .syncer()
        .sync_billable_subscriptions(&user.billable_ref())
        .await
        .unwrap();
    sub
}

db_test!(
    async fn the_same_deliveries_sent_to_both_apply_once(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        let applied = Arc::new(AtomicUsize::new(0));
        let (a, b) = (
            instance(&db, &fake, applied.clone()),
            instance(&db, &fake, applied.clone()),
        );
        let sub = fake
            .checkout(
                1225,
                &CheckoutParams {
                    reference_id: Some("user:1".into()),
                    ..Default::default()
                },
                CheckoutOutcome::Succeed,
            )
            .unwrap()
            .subscription
            .unwrap();
        let mut outcomes = Vec::new();
        for delivery in 0..20u64 {
            // Each delivery is a renewal: a later instant, a later period.
            let mut renewed = sub.clone();
            let days = chrono::Duration::days(30 * delivery as i64);
            renewed.renews_at = sub.renews_at.map(|at| at + days);
            let (body, signature) = signed(&envelope(
                5000 + delivery,
                "subscription.updated",
                fake.now() + chrono::Duration::seconds(delivery as i64),
                serde_json::to_value(&renewed).unwrap(),
            ));
            let (x, y) = tokio::join!(
                a.receiver().receive(Some(&signature), &body),
                b.receiver().receive(Some(&signature), &body)
            );
            outcomes.push((x.unwrap(), y.unwrap()));
        }
        assert!(
            outcomes.iter().all(|o| matches!(
                o,
                (Received::Applied, Received::Duplicate) | (Received::Duplicate, Received::Applied)
            )),
            "{outcomes:?}"
        );
        assert_eq!(
            applied.load(Ordering::SeqCst),
            20,
            "one start and 19 renewals, each event delivered once, on one instance"
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_reconcile_runs_on_one_instance_at_a_time(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        let (a, b) = (
            instance(&db, &fake, Arc::default()),
            instance(&db, &fake, Arc::default()),
        );
        // Something is due, and Octany is slow: a reconcile holds the lease
        // while it runs. Of many instances starting one at the same moment,
        // exactly one runs.
        let user = TestUser::new(4);
        paying(&fake, &a, &user).await;
        exec(&db, "UPDATE octany_subscriptions SET needs_sync = TRUE").await;
        fake.set_faults(octany_fake::Faults {
            api_latency_ms: 300,
            ..octany_fake::Faults::none()
        });
        let many: Vec<Octany> = (0..12)
            .map(|_| instance(&db, &fake, Arc::default()))
            .collect();
        let runs = many
            .iter()
            .map(|i| i.syncer().reconcile_exclusive(Duration::from_secs(60)));
        let ran = futures_util::future::join_all(runs).await;
        assert_eq!(
            ran.iter().filter(|r| matches!(r, Ok(Some(_)))).count(),
            1,
            "{ran:?}"
        );
        fake.set_faults(octany_fake::Faults::none());
        // Given back, the next one runs; a holder that died keeps it only until it lapses.
        assert!(
            a.syncer()
                .reconcile_exclusive(Duration::from_secs(60))
                .await
                .unwrap()
                .is_some()
        );
        let until = (fake.now() + chrono::Duration::seconds(60)).timestamp_micros();
        exec(
            &db,
            &format!("UPDATE octany_locks SET holder = 'a-dead-instance', expires_at = {until}"),
        )
        .await;
        assert!(
            b.syncer()
                .reconcile_exclusive(Duration::from_secs(60))
                .await
                .unwrap()
                .is_none(),
            "held by another"
        );
        fake.advance(Duration::from_secs(61));
        assert!(
            b.syncer()
                .reconcile_exclusive(Duration::from_secs(60))
                .await
                .unwrap()
                .is_some(),
            "the lease lapsed"
        );
        fake.stop().await;
        db
    }
);

async fn exec(db: &TestDb, sql: &str) {
    use octany_actix_tests::sea_orm::ConnectionTrait;
    db.conn.execute_unprepared(sql).await.unwrap();
}

db_test!(
    async fn the_other_instance_stops_granting_within_its_cache_ttl(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        let (a, b) = (
            instance(&db, &fake, Arc::default()),
            instance(&db, &fake, Arc::default()),
        );
        let user = TestUser::new(1);
        let sub = paying(&fake, &a, &user).await;
        assert!(a.billing(&user).subscribed().await.unwrap());
        assert!(
            b.billing(&user).subscribed().await.unwrap(),
            "now cached on B too"
        );
        // Instance A learns that the subscription ended.
        let mut ended = serde_json::to_value(&sub).unwrap();
        ended["status"] = serde_json::json!("expired");
        let (body, signature) = signed(&envelope(
            9001,
            "subscription.updated",
            fake.now() + chrono::Duration::seconds(1),
            ended,
        ));
        a.receiver().receive(Some(&signature), &body).await.unwrap();
        assert!(!a.billing(&user).subscribed().await.unwrap(), "A at once");
        stops_granting(&db, &fake, &b, &user).await;
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_comp_granted_or_revoked_on_one_instance_is_heard_by_the_other(db: TestDb) {
        use octany_actix::billing::NewComp;
        use octany_actix_tests::app::{Plans, builder};
        let fake = octany_actix_tests::http::fake().await;
        let with_plans = || builder(&db, &fake, Duration::from_secs(5)).build().unwrap();
        let (a, b) = (with_plans(), with_plans());
        let guest = TestUser::new(1);
        assert!(
            !b.billing(&guest).subscribed().await.unwrap(),
            "refusal cached on B"
        );
        let comp = a
            .grant_comp(
                &guest.billable_ref(),
                NewComp::new("partner", "anna@support").plan(Plans::ProMonthly),
            )
            .await
            .unwrap();
        if db.backend == octany_actix_tests::Backend::Postgres {
            // The comps table's trigger tells B; the clock is not moved.
            tokio::time::timeout(Duration::from_secs(5), async {
                while !b.billing(&guest).subscribed().await.unwrap() {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("B heard of the grant");
        } else {
            assert!(
                !b.billing(&guest).subscribed().await.unwrap(),
                "B trusts its cache"
            );
            fake.advance(Duration::from_secs(6));
            assert!(
                b.billing(&guest).subscribed().await.unwrap(),
                "within the TTL"
            );
        }
        assert!(a.revoke_comp(&comp.id, "anna@support").await.unwrap());
        stops_granting(&db, &fake, &b, &guest).await;
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_change_written_by_the_hosts_own_sql_is_heard_too(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        let b = instance(&db, &fake, Arc::default());
        let user = TestUser::new(1);
        paying(&fake, &b, &user).await;
        assert!(b.billing(&user).subscribed().await.unwrap(), "cached on B");
        // Not the library's write path: an operator's UPDATE.
        db.conn
            .execute_unprepared("UPDATE octany_subscriptions SET status = 'expired'")
            .await
            .unwrap();
        stops_granting(&db, &fake, &b, &user).await;
        fake.stop().await;
        db
    }
);

db_test!(
    async fn three_instances_share_one_request_budget(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        // One virtual clock for all three (a wait moves it for everyone).
        let clock = octany_actix::ManualClock::at("2026-03-01T00:00:00Z".parse().unwrap());
        let limit = octany_actix::client::RateLimit {
            per_minute: 60,
            burst: 5,
        };
        let instances: Vec<Octany> = (0..3)
            .map(|_| {
                Octany::builder(
                    fake.config()
                        .with_webhook_secret(SECRET)
                        .with_rate_limit(limit),
                    db.conn.clone(),
                )
                .public_base_url("http://localhost:8080")
                .clock(Arc::new(clock.clone()))
                // Three instances move one virtual clock: each one's pacing
                // sleep moves it for the others, so a request descheduled
                // on a loaded machine can see ten virtual seconds pass. The
                // longest wait (a person's deadline) is not what this
                // test is about.
                .queue_bounds(octany_actix::client::QueueBounds {
                    longest_wait: Duration::from_secs(24 * 3600),
                    ..Default::default()
                })
                .build()
                .unwrap()
            })
            .collect();
        let start = octany_actix::Clock::now(&clock);
        let mut sent = Vec::new();
        for octany in &instances {
            let client = octany.client().clone();
            sent.push(tokio::spawn(async move {
                for _ in 0..10 {
                    client.list_products(1).await.unwrap();
                }
            }));
        }
        for task in sent {
            task.await.unwrap();
        }
        let elapsed = (octany_actix::Clock::now(&clock) - start).num_milliseconds() as f64 / 1000.0;
        // 30 requests: at most the burst plus one a second, together. Three
        // budgets of their own would have allowed 5 + 3 a second.
        let allowed = 5.0 + elapsed;
        assert!(
            30.0 <= allowed + 0.5,
            "30 requests in {elapsed:.1} virtual seconds: more than the shared limit allows ({allowed:.1})"
        );
        db
    }
);

db_test!(
    async fn a_burst_of_polls_never_delays_a_persons_request(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        // One token every 10 s after a burst of 10 (the system clock: the
        // queued polls really wait, and are dropped at the end).
        let limit = octany_actix::client::RateLimit {
            per_minute: 6,
            burst: 10,
        };
        let octany = Octany::builder(
            fake.config()
                .with_webhook_secret(SECRET)
                .with_rate_limit(limit),
            db.conn.clone(),
        )
        .public_base_url("http://localhost:8080")
        .queue_bounds(octany_actix::client::QueueBounds {
            interactive: 16,
            poll: 4,
            background: 2,
            ..Default::default()
        })
        .build()
        .unwrap();
        let client = octany.client().clone();
        let mut polls = Vec::new();
        let busy = Arc::new(AtomicUsize::new(0));
        for _ in 0..12 {
            let (client, busy) = (client.clone(), busy.clone());
            polls.push(tokio::spawn(octany_actix::client::Priority::Poll.scope(
                async move {
                    if let Err(octany_actix::OctanyError::Busy { .. }) =
                        client.list_products(1).await
                    {
                        busy.fetch_add(1, Ordering::SeqCst);
                    }
                },
            )));
        }
        // Seven polls go (three tokens stay for people), four wait, and the
        // twelfth is told "busy" at once.
        // (Bounded: without priorities or bounds this never happens, and the
        // test fails rather than hangs.)
        tokio::time::timeout(Duration::from_secs(30), async {
            while client.waiting()[1] < 4 || busy.load(Ordering::SeqCst) < 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("four polls wait and one is told busy");
        assert_eq!(busy.load(Ordering::SeqCst), 1);
        // A person's request goes at once, ahead of the waiting polls.
        client.list_products(1).await.unwrap();
        assert_eq!(client.waiting(), [0, 4, 0], "the polls still wait");
        for p in &polls {
            p.abort();
        }
        for p in polls {
            let _ = p.await;
        }
        assert_eq!(client.waiting(), [0, 0, 0], "gone callers leave the queue");
        db
    }
);

/// An instance on a shared virtual clock, paced to one request a second.
fn paced(db: &TestDb, fake: &FakeOctany, clock: &octany_actix::ManualClock) -> Octany {
    Octany::builder(
        fake.config().with_webhook_secret(SECRET).with_rate_limit(
            octany_actix::client::RateLimit {
                per_minute: 60,
                burst: 1,
            },
        ),
        db.conn.clone(),
    )
    .public_base_url("http://localhost:8080")
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap()
}

db_test!(
    async fn a_long_reconcile_keeps_its_lease_and_a_lost_one_hands_over(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        fake.seed_subscriptions(1225, 1, 30).unwrap();
        let clock = octany_actix::ManualClock::at("2026-03-01T00:00:00Z".parse().unwrap());
        let (a, b) = (paced(&db, &fake, &clock), paced(&db, &fake, &clock));
        a.syncer()
            .backfill(octany_actix::ops::BackfillOptions::default(), |_| {})
            .await
            .unwrap();
        exec(&db, "UPDATE octany_subscriptions SET needs_sync = TRUE").await;

        // 30 re-reads at one a second take 30 s; the lease is 9 s. A renews
        // it as it goes, so B, trying all along, never joins.
        let running = {
            let a = a.clone();
            tokio::spawn(
                async move { a.syncer().reconcile_exclusive(Duration::from_secs(9)).await },
            )
        };
        // B starts trying once A holds the lease.
        let holder = a.syncer().instance().to_owned();
        while !running.is_finished() {
            use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};
            let row = db
                .conn
                .query_one_raw(Statement::from_string(
                    db.db_backend(),
                    "SELECT holder FROM octany_locks WHERE name = 'reconcile'",
                ))
                .await
                .unwrap();
            if row.is_some_and(|r| r.try_get::<String>("", "holder").unwrap() == holder) {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut b_ran = 0;
        while !running.is_finished() {
            // (Once A is done and gives the lease back, B may take it and
            // find nothing due: that is no joining.)
            if let Some(report) = b
                .syncer()
                .reconcile_exclusive(Duration::from_secs(9))
                .await
                .unwrap()
                && report.synced > 0
            {
                b_ran += 1;
            }
            tokio::task::yield_now().await;
        }
        let report = running.await.unwrap().unwrap().expect("A held the lease");
        assert_eq!(
            (report.synced, report.failed, report.handed_over, b_ran),
            (30, 0, false, 0)
        );

        // Now A's lease goes to someone else mid-way: A stops, and the next
        // reconcile goes on with what is left, nothing twice.
        exec(&db, "UPDATE octany_subscriptions SET needs_sync = TRUE").await;
        let running = {
            let a = a.clone();
            tokio::spawn(
                async move { a.syncer().reconcile_exclusive(Duration::from_secs(9)).await },
            )
        };
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let left: i64 = {
                    use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};
                    let row = db
                        .conn
                        .query_one_raw(Statement::from_string(
                            db.db_backend(),
                            "SELECT COUNT(*) AS n FROM octany_subscriptions WHERE needs_sync = TRUE",
                        ))
                        .await
                        .unwrap()
                        .unwrap();
                    row.try_get("", "n").unwrap()
                };
                if left <= 25 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("A re-reads five subscriptions");
        exec(
            &db,
            "UPDATE octany_locks SET holder = 'someone-else', expires_at = 9000000000000000 WHERE name = 'reconcile'",
        )
        .await;
        let first = running.await.unwrap().unwrap().expect("A held the lease");
        assert!(first.handed_over, "{first:?}");
        assert!(first.synced < 30, "{first:?}");
        exec(
            &db,
            "UPDATE octany_locks SET expires_at = 0 WHERE name = 'reconcile'",
        )
        .await;
        let rest = b.syncer().reconcile().await.unwrap();
        assert_eq!(
            first.synced + rest.synced,
            30,
            "first {first:?}, rest {rest:?}: each once"
        );
        fake.stop().await;
        db
    }
);

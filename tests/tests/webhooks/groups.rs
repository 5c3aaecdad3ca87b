//! Deliveries arriving together, written in groups: a group's statements, new subscriptions in a group, a row changed under a group, an abandoned delivery, a failed group.

use super::*;

/// A receiver on `h`'s database whose syncer runs `listeners`, and the
/// count of the statements it sends that contain `statement` (`UPDATE
/// octany_subscriptions`, say; quotes aside).
fn counting_receiver(
    h: &Harness,
    listeners: Listeners,
    statement: &'static str,
) -> (octany_actix::engine::WebhookReceiver, Arc<AtomicUsize>) {
    use octany_actix::config::Secret;
    use octany_actix::engine::{SyncOptions, Syncer};
    let sent = Arc::new(AtomicUsize::new(0));
    let mut conn = h.db.conn.clone();
    let seen = sent.clone();
    conn.set_metric_callback(move |info| {
        if info
            .statement
            .sql
            .replace(['"', '`'], "")
            .contains(statement)
        {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let options = SyncOptions::default().with_listeners(listeners);
    let syncer = Syncer::with_options(conn, h.fake.client(), options);
    let receiver = octany_actix::engine::WebhookReceiver::new(syncer, &[Secret::new(SECRET)]);
    (receiver.unwrap(), sent)
}

db_test!(
    async fn deliveries_arriving_together_are_written_together(db: TestDb) {
        // 20 updates of 20 stored subscriptions at once: on SQLite and
        // PostgreSQL they are written in groups, fewer statements than
        // deliveries, each applied with its event. Beside them, deliveries
        // the groups' fast write does not write, which their units apply
        // as usual: two new subscriptions (no row to replace) and two
        // deliveries seen before.
        let (renewed, listeners) =
            counting(|e| matches!(e, BillingEvent::SubscriptionRenewed { .. }));
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        store_active(&h, 5000, 20, t).await;
        let (receiver, updates) = counting_receiver(&h, listeners, "UPDATE octany_subscriptions");
        let mut bodies: Vec<_> = (0..20u64)
            .map(|n| {
                let mut data = subscription_json(5000 + n, &format!("user:{n}"), "active", None);
                data["renews_at"] = json!("2026-07-25T09:29:51+00:00");
                signed(&envelope(
                    52_000 + n,
                    "subscription.updated",
                    t + chrono::Duration::seconds(1),
                    data,
                ))
            })
            .collect();
        // New: subscriptions 5020 and 5021; seen before: the creations of
        // 5000 and 5001 (deliveries 50000 and 50001, by store_active).
        for (n, delivery) in [(20u64, 52_020u64), (21, 52_021), (0, 50_000), (1, 50_001)] {
            let sub = subscription_json(5000 + n, &format!("user:{n}"), "active", None);
            bodies.push(signed(&envelope(delivery, "subscription.created", t, sub)));
        }
        let outcomes = receive_all(&receiver, &bodies).await;
        assert_eq!(tally(&outcomes), (22, 2), "{outcomes:?}");
        let rows = subscription::Entity::find().all(&h.db.conn).await.unwrap();
        assert_eq!(rows.len(), 22);
        let renewal = Some(at("2026-07-25T09:29:51Z"));
        let renewed_rows = rows.iter().filter(|row| row.renews_at == renewal).count();
        assert_eq!(renewed_rows, 20, "{rows:?}");
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 42);
        assert_eq!(
            renewed.load(Ordering::SeqCst),
            20,
            "each renewal's event delivered once"
        );
        let statements = updates.load(Ordering::SeqCst);
        match h.db.backend {
            octany_actix_tests::Backend::MySql => assert!(statements >= 20),
            _ => assert!(
                statements < 20,
                "{statements} statements wrote 20 deliveries"
            ),
        }
        h.finish().await
    }
);

db_test!(
    async fn new_subscriptions_arriving_together_are_written_together(db: TestDb) {
        // 20 subscriptions Octany has just created, their deliveries at
        // once: no row to replace, so the groups' fast write claims them
        // (PostgreSQL) or leaves them (SQLite), and each group's units
        // insert them in its one transaction, their events in one
        // statement a group. On MySQL each is a unit of its own.
        let (started, listeners) =
            counting(|e| matches!(e, BillingEvent::SubscriptionStarted { .. }));
        let h = Harness::new(db).await;
        let (receiver, outboxed) = counting_receiver(&h, listeners, "INSERT INTO octany_events");
        let t = at("2026-05-25T09:29:51Z");
        let bodies: Vec<_> = (0..20u64)
            .map(|n| {
                let sub = subscription_json(7000 + n, &format!("user:{n}"), "active", None);
                signed(&envelope(70_000 + n, "subscription.created", t, sub))
            })
            .collect();
        let outcomes = receive_all(&receiver, &bodies).await;
        assert_eq!(tally(&outcomes), (20, 0), "{outcomes:?}");
        let rows = subscription::Entity::find().all(&h.db.conn).await.unwrap();
        assert_eq!(rows.len(), 20);
        assert!(rows.iter().all(|row| row.status == "active"), "{rows:?}");
        all_processed(&h, 20).await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            20,
            "each start's event delivered once"
        );
        let statements = outboxed.load(Ordering::SeqCst);
        match h.db.backend {
            octany_actix_tests::Backend::MySql => assert_eq!(statements, 20),
            _ => assert!(
                statements < 20,
                "{statements} statements wrote the events of 20 deliveries"
            ),
        }
        h.finish().await
    }
);

/// PostgreSQL: a group's fast write claims its deliveries, then locks the
/// rows, and compares each row as it is once locked. Rows changed by a
/// transaction that held them locked (as another instance's write would)
/// are compared as that transaction left them: one row now holds a state
/// newer than its delivery, and keeps it (its unit finds it stale); the
/// other a state older than its delivery, which replaces it. The group
/// writes the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(octany_postgres), ignore = "OCTANY_TEST_POSTGRES_URL is not set")]
async fn a_row_changed_under_a_group_keeps_its_newer_state() {
    use octany_actix_tests::sea_orm::{DbBackend, TransactionTrait};
    let h = Harness::new(TestDb::migrated(octany_actix_tests::Backend::Postgres).await).await;
    let t = at("2026-05-25T09:29:51Z");
    store_active(&h, 6000, 4, t).await;
    let newer = (t + chrono::Duration::seconds(10)).timestamp_micros();
    let between = (t + chrono::Duration::milliseconds(500)).timestamp_micros();
    let other = h.db.conn.begin().await.unwrap();
    for (id, mark) in [("6000", newer), ("6001", between)] {
        other
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE octany_subscriptions SET status = 'cancelled', sync_mark = $1 WHERE id = $2",
                [mark.into(), id.into()],
            ))
            .await
            .unwrap();
    }
    let pid: i32 = other
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid() AS pid",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "pid")
        .unwrap();
    let bodies: Vec<_> = (0..4u64)
        .map(|n| {
            let mut data = subscription_json(6000 + n, &format!("user:{n}"), "active", None);
            data["renews_at"] = json!("2026-07-25T09:29:51+00:00");
            let at = t + chrono::Duration::seconds(1);
            signed(&envelope(62_000 + n, "subscription.updated", at, data))
        })
        .collect();
    let receiver = h.receiver.clone();
    let deliveries = tokio::spawn(async move { receive_all(&receiver, &bodies).await });
    // Until a writer waits for the row the other transaction holds.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let waiting = h
                .db
                .conn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                    [pid.into()],
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a writer waits for the locked row");
    other.commit().await.unwrap();
    let outcomes = deliveries.await.unwrap();
    assert_eq!(tally(&outcomes), (4, 0), "{outcomes:?}");
    let delivered = (t + chrono::Duration::seconds(1)).timestamp_micros();
    let rows = subscription::Entity::find().all(&h.db.conn).await.unwrap();
    for row in rows {
        if row.id == "6000" {
            assert_eq!((row.status.as_str(), row.sync_mark), ("cancelled", newer));
        } else {
            assert_eq!(
                (row.status.as_str(), row.sync_mark, row.renews_at),
                ("active", delivered, Some(at("2026-07-25T09:29:51Z"))),
                "{}",
                row.id
            );
        }
    }
    all_processed(&h, 8).await;
    h.finish().await.drop_database().await;
}

/// A delivery whose request is abandoned as soon as it is queued (its
/// first poll, then dropped) is written all the same by its group, and the
/// deliveries beside it are answered: SQLite writes a group in a task of
/// its own.
#[tokio::test]
async fn an_abandoned_delivery_is_written_by_its_group() {
    let h = Harness::new(TestDb::migrated(octany_actix_tests::Backend::Sqlite).await).await;
    let t = at("2026-05-25T09:29:51Z");
    store_active(&h, 4000, 3, t).await;
    let updated = |n: u64| {
        let mut data = subscription_json(4000 + n, &format!("user:{n}"), "active", None);
        data["price"] = json!(12_345);
        signed(&envelope(
            41_000 + n,
            "subscription.updated",
            t + chrono::Duration::seconds(1),
            data,
        ))
    };
    let (body, signature) = updated(0);
    use futures_util::FutureExt;
    let abandoned = h.receiver.receive(Some(&signature), &body).now_or_never();
    assert!(abandoned.is_none(), "the delivery was still being written");
    let others = [updated(1), updated(2)];
    let outcomes = receive_all(&h.receiver, &others).await;
    assert_eq!(tally(&outcomes), (2, 0), "{outcomes:?}");
    for n in 0..3u64 {
        let row = subscription::Entity::find_by_id((4000 + n).to_string())
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.price, 12_345, "subscription {n} updated");
    }
    let (body, signature) = updated(0);
    assert_eq!(
        h.receiver.receive(Some(&signature), &body).await.unwrap(),
        Received::Duplicate,
        "Octany's retry of the abandoned delivery finds it applied"
    );
    h.finish().await.drop_database().await;
}

db_test!(
    async fn a_failed_group_has_each_delivery_run_alone(db: TestDb) {
        // Ten updates of stored subscriptions and, last, a new subscription
        // whose write answers its billable's checkouts, all at once, with
        // the checkouts' table away: writing the new one fails. The group
        // that holds it fails with it (on SQLite the first delivery is
        // written alone and the other ten together) and each of its
        // deliveries runs alone: the updates are applied, the new one is
        // answered 500 and kept; with the table back, a replay applies it.
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        store_active(&h, 8000, 10, t).await;
        let renewal = "2026-07-25T09:29:51+00:00";
        let mut bodies: Vec<_> = (0..10u64)
            .map(|n| {
                let mut data = subscription_json(8000 + n, &format!("user:{n}"), "active", None);
                data["renews_at"] = json!(renewal);
                let at = t + chrono::Duration::seconds(1);
                signed(&envelope(80_100 + n, "subscription.updated", at, data))
            })
            .collect();
        let created = subscription_json(8010, "user:10", "active", None);
        bodies.push(signed(&envelope(
            80_110,
            "subscription.created",
            t,
            created,
        )));
        rename(&h, "octany_checkouts", "octany_checkouts_away").await;
        let outcomes = receive_all(&h.receiver, &bodies).await;
        assert_eq!(tally(&outcomes[..10]), (10, 0), "{outcomes:?}");
        assert!(
            matches!(outcomes[10], Err(WebhookError::Apply(_))),
            "{:?}",
            outcomes[10]
        );
        let rows = subscription::Entity::find().all(&h.db.conn).await.unwrap();
        let renewed = rows
            .iter()
            .filter(|row| row.renews_at == Some(at(renewal)))
            .count();
        assert_eq!((rows.len(), renewed), (10, 10), "{rows:?}");
        let failed = webhook_delivery::Entity::find_by_id("80110")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(failed.processed_at.is_none() && failed.last_error.is_some());

        rename(&h, "octany_checkouts_away", "octany_checkouts").await;
        let report = h.receiver.replay_failed().await.unwrap();
        assert_eq!((report.replayed, report.failed), (1, 0));
        let rows = subscription::Entity::find().all(&h.db.conn).await.unwrap();
        assert_eq!(rows.len(), 11);
        all_processed(&h, 21).await;
        h.finish().await
    }
);

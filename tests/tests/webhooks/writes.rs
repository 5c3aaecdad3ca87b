//! How deliveries are written: dates settled by Octany, another account's delivery, the two-statement write, many at once.

use super::*;

db_test!(
    async fn dates_that_cannot_be_believed_are_settled_by_octany(db: TestDb) {
        let h = Harness::new(db).await;
        let made = h
            .fake
            .checkout(
                1225,
                &octany_fake::CheckoutParams {
                    reference_id: Some("user:5".into()),
                    ..Default::default()
                },
                octany_fake::CheckoutOutcome::Succeed,
            )
            .unwrap();
        let id: u64 = made.subscription.unwrap().id.as_str().parse().unwrap();
        let status = |h: &Harness| {
            let conn = h.db.conn.clone();
            async move {
                subscription::Entity::find_by_id(id.to_string())
                    .one(&conn)
                    .await
                    .unwrap()
                    .map(|s| s.status.to_string())
            }
        };
        // No created_at: the delivery says cancelled, Octany says active.
        let mut undated = envelope(
            51,
            "subscription.updated",
            h.fake.now(),
            subscription_json(id, "user:5", "cancelled", Some("2026-02-01T00:00:00+00:00")),
        );
        undated.as_object_mut().unwrap().remove("created_at");
        deliver(&h, &undated).await.unwrap();
        assert_eq!(status(&h).await.as_deref(), Some("active"));
        // Dated in 2099: not believed either, and it freezes nothing.
        let future = envelope(
            52,
            "subscription.cancelled",
            at("2099-01-01T00:00:00Z"),
            subscription_json(id, "user:5", "cancelled", Some("2026-02-01T00:00:00+00:00")),
        );
        deliver(&h, &future).await.unwrap();
        assert_eq!(status(&h).await.as_deref(), Some("active"));
        let row = subscription::Entity::find_by_id(id.to_string())
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(
            row.sync_mark < at("2030-01-01T00:00:00Z").timestamp_micros(),
            "the row keeps a believable mark"
        );
        // A real cancellation, dated now, still applies.
        let now = envelope(
            53,
            "subscription.cancelled",
            h.fake.now() + chrono::Duration::seconds(1),
            subscription_json(id, "user:5", "cancelled", Some("2026-02-01T00:00:00+00:00")),
        );
        deliver(&h, &now).await.unwrap();
        assert_eq!(status(&h).await.as_deref(), Some("cancelled"));
        h.finish().await
    }
);

db_test!(
    async fn a_delivery_for_another_account_is_refused(db: TestDb) {
        let h = Harness::new(db).await;
        let config = h.fake.config().with_account_number(1042);
        let client = octany_actix::OctanyClient::with_clock(config, h.fake.app_clock()).unwrap();
        let syncer = octany_actix::engine::Syncer::new(h.db.conn.clone(), client);
        let receiver = octany_actix::engine::WebhookReceiver::new(
            syncer,
            &[octany_actix::config::Secret::new(SECRET)],
        )
        .unwrap();
        let ours = envelope(61, "test.hook", at("2026-05-25T09:29:51Z"), json!({}));
        let mut theirs = envelope(62, "test.hook", at("2026-05-25T09:29:51Z"), json!({}));
        theirs["account"] = json!(9999);
        let (body, signature) = signed(&ours);
        assert_eq!(
            receiver.receive(Some(&signature), &body).await.unwrap(),
            Received::Applied
        );
        let (body, signature) = signed(&theirs);
        let error = receiver.receive(Some(&signature), &body).await.unwrap_err();
        assert!(error.to_string().contains("9999"), "{error}");
        assert_eq!(actix_web::ResponseError::status_code(&error), 400);
        assert!(
            webhook_delivery::Entity::find_by_id("62")
                .one(&h.db.conn)
                .await
                .unwrap()
                .is_none()
        );
        h.finish().await
    }
);

db_test!(
    async fn a_new_state_of_a_stored_subscription_is_applied_in_two_statements(db: TestDb) {
        use octany_actix::config::Secret;
        use octany_actix::engine::{SyncOptions, Syncer, WebhookReceiver};
        use octany_actix::entity::event;
        let h = Harness::new(db).await;
        // The statements sent to the database, transaction control aside.
        let sent = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut conn = h.db.conn.clone();
        let log = sent.clone();
        conn.set_metric_callback(move |info| {
            log.lock().unwrap().push(info.statement.sql.clone());
        });
        let syncer = Syncer::with_options(conn, h.fake.client(), SyncOptions::default());
        let receiver = WebhookReceiver::new(syncer, &[Secret::new(SECRET)]).unwrap();
        let receive = |envelope: serde_json::Value| {
            let receiver = receiver.clone();
            async move {
                let (body, signature) = signed(&envelope);
                receiver.receive(Some(&signature), &body).await.unwrap()
            }
        };
        let t = at("2026-05-25T09:29:51Z");
        let sub = subscription_json(76963688, "user:42", "active", None);
        receive(envelope(1, "subscription.created", t, sub.clone())).await;
        let events_before = count::<event::Entity>(&h.db).await;

        let mut renewed = sub.clone();
        renewed["renews_at"] = json!("2026-07-25T09:29:51+00:00");
        let update = envelope(
            2,
            "subscription.renewed",
            t + chrono::Duration::days(1),
            renewed,
        );
        sent.lock().unwrap().clear();
        assert_eq!(receive(update.clone()).await, Received::Applied);
        let mut statements = std::mem::take(&mut *sent.lock().unwrap());
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.renews_at, Some(at("2026-07-25T09:29:51Z")));
        let delivery = webhook_delivery::Entity::find_by_id("2")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(delivery.processed_at.is_some());
        assert_eq!(count::<event::Entity>(&h.db).await, events_before + 1);
        // Both: the fast write, then the event. SQLite: the row read, the
        // write and the claim in one batch (one hop). PostgreSQL: the claim
        // folded into the write, one statement, after the advisory lock of
        // what the unit touches (one statement, before any write).
        let writes = |sql: &str| {
            let sql = sql.replace('"', "");
            [
                "UPDATE octany_subscriptions",
                "INSERT INTO octany_webhook_deliveries",
                "INSERT INTO octany_events",
            ]
            .map(|write| sql.contains(write))
        };
        if h.db.backend == octany_actix_tests::Backend::Postgres {
            let lock = statements.remove(0);
            assert!(lock.contains("pg_advisory_xact_lock"), "{lock}");
        }
        match h.db.backend {
            octany_actix_tests::Backend::Sqlite | octany_actix_tests::Backend::Postgres => {
                assert_eq!(statements.len(), 2, "{statements:#?}");
                assert_eq!(
                    writes(&statements[0]),
                    [true, true, false],
                    "{statements:#?}"
                );
                assert_eq!(
                    writes(&statements[1]),
                    [false, false, true],
                    "{statements:#?}"
                );
            }
            octany_actix_tests::Backend::MySql => assert!(statements.len() >= 2),
        }

        // The same delivery again changes nothing (the one write writes
        // nothing when the delivery is stored).
        assert_eq!(receive(update).await, Received::Duplicate);
        assert_eq!(count::<event::Entity>(&h.db).await, events_before + 1);
        let again = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.updated_at, row.updated_at);
        assert_eq!(
            webhook_delivery::Entity::find_by_id("2")
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap()
                .attempts,
            1
        );

        // A delivery that failed before (stored, not processed) of a newer
        // state: not written by the one round trip (its claim is stored), so
        // the unit runs as usual and counts the attempt.
        let t3 = t + chrono::Duration::days(2);
        let mut later = sub.clone();
        later["renews_at"] = json!("2026-08-25T09:29:51+00:00");
        let failed = envelope(3, "subscription.renewed", t3, later);
        webhook_delivery::Entity::insert(webhook_delivery::table::ActiveModel::from(
            webhook_delivery::Model {
                delivery_id: "3".into(),
                event: "subscription.renewed".into(),
                body: failed.to_string(),
                received_at: at("2026-05-27T09:29:51Z"),
                processed_at: None,
                attempts: 1,
                last_error: Some("the database was away".into()),
                billable_ref: None,
                resource: None,
                outcome: None,
                duplicates: 0,
                last_duplicate_at: None,
            },
        ))
        .exec(&h.db.conn)
        .await
        .unwrap();
        assert_eq!(receive(failed).await, Received::Applied);
        let delivery = webhook_delivery::Entity::find_by_id("3")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                delivery.attempts,
                delivery.processed_at.is_some(),
                delivery.last_error
            ),
            (2, true, None)
        );
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.renews_at, Some(at("2026-08-25T09:29:51Z")));
        assert_eq!(count::<event::Entity>(&h.db).await, events_before + 2);
        h.finish().await
    }
);

db_test!(
    async fn many_updates_at_once_each_applied_once_with_their_events(db: TestDb) {
        // 20 stored subscriptions, then at once for each: two updates and a
        // cancellation, every delivery sent twice. On SQLite and
        // PostgreSQL they are written in groups, a second delivery for a
        // subscription in a group applied by its unit after the first (with
        // the test pool's 5 connections, which the group must not wait on).
        let (cancelled, listeners) =
            counting(|e| matches!(e, BillingEvent::SubscriptionCancelled { .. }));
        let h = Harness::with_listeners(db, listeners).await;
        let t = at("2026-05-25T09:29:51Z");
        store_active(&h, 3000, 20, t).await;
        let mut bodies = Vec::new();
        for n in 0..20u64 {
            for k in 1..=3u64 {
                let (name, data) = if k == 3 {
                    let ends = Some("2026-06-25T09:29:51+00:00");
                    let data = subscription_json(3000 + n, &format!("user:{n}"), "cancelled", ends);
                    ("subscription.cancelled", data)
                } else {
                    let mut data =
                        subscription_json(3000 + n, &format!("user:{n}"), "active", None);
                    data["price"] = json!(9900 + k);
                    ("subscription.updated", data)
                };
                let at = t + chrono::Duration::seconds(k as i64);
                let delivery = 31_000 + n * 10 + k;
                let signed = signed(&envelope(delivery, name, at, data));
                bodies.push(signed.clone());
                bodies.push(signed);
            }
        }
        let outcomes = receive_all(&h.receiver, &bodies).await;
        assert_eq!(tally(&outcomes), (60, 60), "{outcomes:?}");
        let rows = subscription::Entity::find().all(&h.db.conn).await.unwrap();
        assert_eq!(rows.len(), 20);
        for row in rows {
            assert_eq!(
                (row.status.as_str(), row.sync_mark),
                (
                    "cancelled",
                    (t + chrono::Duration::seconds(3)).timestamp_micros()
                ),
                "{}: the newest state won",
                row.id
            );
        }
        all_processed(&h, 80).await;
        assert_eq!(
            cancelled.load(Ordering::SeqCst),
            20,
            "each cancellation delivered once, before its delivery was answered"
        );
        h.finish().await
    }
);

db_test!(
    async fn a_delivery_seen_before_is_found_without_a_savepoint(db: TestDb) {
        use octany_actix::config::Secret;
        use octany_actix::engine::{SyncOptions, Syncer, WebhookReceiver};
        use octany_actix_tests::sea_orm::{QueryResult, SqlxMySqlConnector};
        let h = Harness::new(db).await;
        // On MySQL, one connection, so that the session's counters are the
        // receiver's own: a duplicate key undoes only the failed statement
        // there, so claiming a delivery needs no savepoint (two more round
        // trips a delivery, on the backend that writes each alone).
        let conn = match h.db.backend {
            octany_actix_tests::Backend::MySql => {
                let pool = h.db.conn.get_mysql_connection_pool();
                let one = octany_actix_tests::sea_orm::sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(1)
                    .connect_with((*pool.connect_options()).clone())
                    .await
                    .unwrap();
                SqlxMySqlConnector::from_sqlx_mysql_pool(one)
            }
            _ => h.db.conn.clone(),
        };
        let syncer = Syncer::with_options(conn.clone(), h.fake.client(), SyncOptions::default());
        let receiver = WebhookReceiver::new(syncer, &[Secret::new(SECRET)]).unwrap();
        let t = at("2026-05-25T09:29:51Z");
        let sub = subscription_json(76963689, "user:43", "active", None);
        let (body, signature) = signed(&envelope(1, "subscription.created", t, sub));
        let first = receiver.receive(Some(&signature), &body).await.unwrap();
        let again = receiver.receive(Some(&signature), &body).await.unwrap();
        assert_eq!((first, again), (Received::Applied, Received::Duplicate));
        let delivery = webhook_delivery::Entity::find_by_id("1")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((delivery.attempts, delivery.duplicates), (1, 1));
        assert!(
            subscription::Entity::find_by_id("76963689")
                .one(&h.db.conn)
                .await
                .unwrap()
                .is_some()
        );
        if h.db.backend == octany_actix_tests::Backend::MySql {
            let row: QueryResult = conn
                .query_one_raw(Statement::from_string(
                    conn.get_database_backend(),
                    "SHOW SESSION STATUS LIKE 'Com_savepoint'",
                ))
                .await
                .unwrap()
                .unwrap();
            let savepoints: String = row.try_get_by_index(1).unwrap();
            assert_eq!(savepoints, "0", "savepoints sent by the receiver");
            conn.close_by_ref().await.ok();
        }
        h.finish().await
    }
);

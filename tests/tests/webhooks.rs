//! The webhook receiver on every backend: each event applied, dedupe under
//! concurrency, ordering, signatures, limits and replay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, test as actix_test};
use octany_actix::Octany;
use octany_actix::entity::{order, product, subscription, webhook_delivery};
use octany_actix::model::ProductId;
use octany_actix::sync::{BillingEvent, Listeners};
use octany_actix::webhook::{Received, WebhookError};
use octany_actix_tests::app::TestUser;
use octany_actix_tests::harness::*;
use octany_actix_tests::sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};
use octany_actix_tests::{TestDb, db_test};
use serde_json::json;

async fn count<E>(db: &TestDb) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(&db.conn).await.unwrap()
}

/// Renames a table (to make applying fail, and to mend it).
async fn rename(h: &Harness, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    h.db.conn
        .execute_raw(Statement::from_string(h.db.db_backend(), sql))
        .await
        .unwrap();
}

async fn deliver(h: &Harness, envelope: &serde_json::Value) -> Result<Received, WebhookError> {
    let (body, signature) = signed(envelope);
    h.receiver.receive(Some(&signature), &body).await
}

/// Listeners counting the billing events that `kind` picks.
fn counting(kind: fn(&BillingEvent) -> bool) -> (Arc<AtomicUsize>, Listeners) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let listeners = Listeners::new().on("count", move |event| {
        let seen = seen.clone();
        async move {
            if kind(&event.event) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }
    });
    (count, listeners)
}

/// Stores `count` active subscriptions, ids from `first`, for `user:0`,
/// `user:1`, …, each by a `subscription.created` delivery (ids from
/// `first * 10`) dated `at`.
async fn store_active(h: &Harness, first: u64, count: u64, at: chrono::DateTime<chrono::Utc>) {
    for n in 0..count {
        let sub = subscription_json(first + n, &format!("user:{n}"), "active", None);
        deliver(
            h,
            &envelope(first * 10 + n, "subscription.created", at, sub),
        )
        .await
        .unwrap();
    }
}

/// How many outcomes were applied and how many duplicates.
fn tally(outcomes: &[Result<Received, WebhookError>]) -> (usize, usize) {
    let n = |r: Received| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(x) if *x == r))
            .count()
    };
    (n(Received::Applied), n(Received::Duplicate))
}

/// Asserts that `deliveries` are stored, each recorded processed.
async fn all_processed(h: &Harness, deliveries: u64) {
    assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, deliveries);
    let unprocessed = webhook_delivery::Entity::find()
        .all(&h.db.conn)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.processed_at.is_none())
        .count();
    assert_eq!(unprocessed, 0, "every delivery recorded processed");
}

db_test!(
    async fn every_event_type_is_applied(db: TestDb) {
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        let sub = subscription_json(76963688, "user:42", "active", None);
        assert_eq!(
            deliver(&h, &envelope(1, "subscription.created", t, sub.clone()))
                .await
                .unwrap(),
            Received::Applied
        );
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status.as_str(), row.billable_ref.as_deref()),
            ("active", Some("user:42"))
        );
        assert_eq!(
            (row.price, row.vat, row.product_id),
            (9900, 2475, Some(ProductId(1225)))
        );
        assert_eq!(row.billing_method_type.as_deref(), Some("stripe"));
        assert_eq!(
            row.cancel_url.as_deref(),
            Some("https://app.octany.com/portal/cancel/abc")
        );
        assert_eq!(row.renews_at, Some(at("2026-06-25T09:29:51Z")));

        let mut swapped = sub.clone();
        swapped["product"]["id"] = json!(1226);
        swapped["price"] = json!(99000);
        deliver(
            &h,
            &envelope(
                2,
                "subscription.updated",
                t + chrono::Duration::seconds(1),
                swapped,
            ),
        )
        .await
        .unwrap();
        let mut renewed = sub.clone();
        renewed["renews_at"] = json!("2026-07-25T09:29:51+00:00");
        deliver(
            &h,
            &envelope(
                3,
                "subscription.renewed",
                t + chrono::Duration::seconds(2),
                renewed,
            ),
        )
        .await
        .unwrap();
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.product_id, row.renews_at),
            (Some(ProductId(1225)), Some(at("2026-07-25T09:29:51Z")))
        );
        let cancelled = subscription_json(
            76963688,
            "user:42",
            "cancelled",
            Some("2026-07-25T09:29:51+00:00"),
        );
        deliver(
            &h,
            &envelope(
                4,
                "subscription.cancelled",
                t + chrono::Duration::seconds(3),
                cancelled,
            ),
        )
        .await
        .unwrap();
        let row = subscription::Entity::find_by_id("76963688")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status.as_str(), row.renews_at, row.ends_at),
            ("cancelled", None, Some(at("2026-07-25T09:29:51Z")))
        );

        deliver(
            &h,
            &envelope(
                5,
                "order.confirmed",
                t,
                order_json(88120001, "user:42", "confirmed"),
            ),
        )
        .await
        .unwrap();
        deliver(
            &h,
            &envelope(
                6,
                "order.paid",
                t + chrono::Duration::seconds(1),
                order_json(88120001, "user:42", "paid"),
            ),
        )
        .await
        .unwrap();
        let o = order::Entity::find_by_id("88120001")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                o.state.as_str(),
                o.total_with_vat,
                o.billable_ref.as_deref()
            ),
            ("paid", 12375, Some("user:42"))
        );

        let p = json!({"id": 1225, "name": "Pro", "type": "subscription", "interval": "month", "price": 10900, "currency": "sek", "vat_rate": 2500});
        deliver(&h, &envelope(7, "product.updated", t, p.clone()))
            .await
            .unwrap();
        assert_eq!(
            product::Entity::find_by_id(ProductId(1225))
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap()
                .price,
            10900
        );
        deliver(
            &h,
            &envelope(8, "product.deleted", t + chrono::Duration::seconds(1), p),
        )
        .await
        .unwrap();
        assert!(
            product::Entity::find_by_id(ProductId(1225))
                .one(&h.db.conn)
                .await
                .unwrap()
                .is_none()
        );

        let group = json!({"id": 3, "name": "Pro", "products": []});
        assert_eq!(
            deliver(&h, &envelope(9, "product-group.updated", t, group.clone()))
                .await
                .unwrap(),
            Received::Applied
        );
        assert_eq!(
            deliver(&h, &envelope(10, "product-group.deleted", t, group))
                .await
                .unwrap(),
            Received::Applied
        );
        assert_eq!(
            deliver(&h, &envelope(11, "test.hook", t, json!({"hello": "world"})))
                .await
                .unwrap(),
            Received::Applied
        );
        // An unknown event: stored and acknowledged.
        assert_eq!(
            deliver(&h, &envelope(12, "customer.merged", t, json!({"from": 1})))
                .await
                .unwrap(),
            Received::Stored
        );
        let stored = webhook_delivery::Entity::find_by_id("12")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.event, "customer.merged");
        assert!(stored.processed_at.is_some());
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 12);
        h.finish().await
    }
);

db_test!(
    async fn the_same_delivery_fifty_times_at_once_is_applied_once(db: TestDb) {
        let (applied, listeners) =
            counting(|e| matches!(e, BillingEvent::SubscriptionStarted { .. }));
        let h = Harness::with_listeners(db, listeners).await;
        let (body, signature) = signed(&envelope(
            77,
            "subscription.created",
            at("2026-05-25T09:29:51Z"),
            subscription_json(1, "user:1", "active", None),
        ));
        let attempts = (0..50).map(|_| h.receiver.receive(Some(&signature), &body));
        let outcomes = futures_util::future::join_all(attempts).await;
        assert_eq!(tally(&outcomes), (1, 49), "{outcomes:?}");
        assert_eq!(
            applied.load(Ordering::SeqCst),
            1,
            "the start was delivered once"
        );
        assert_eq!(count::<subscription::Entity>(&h.db).await, 1);
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 1);
        h.finish().await
    }
);

db_test!(
    async fn created_updated_cancelled_in_every_order_end_cancelled(db: TestDb) {
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        let mut updated = subscription_json(0, "", "active", None);
        updated["product"]["id"] = json!(1226);
        let events = [
            (
                "subscription.created",
                subscription_json(0, "", "active", None),
                0,
            ),
            ("subscription.updated", updated, 60),
            (
                "subscription.cancelled",
                subscription_json(0, "", "cancelled", Some("2026-06-25T09:29:51+00:00")),
                120,
            ),
        ];
        let orders: [[usize; 3]; 6] = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for (n, order) in orders.iter().enumerate() {
            let id = 500 + n as u64;
            for (k, &i) in order.iter().enumerate() {
                let (name, data, offset) = &events[i];
                let mut data = data.clone();
                data["id"] = json!(id);
                data["reference_id"] = json!(format!("user:{n}"));
                let delivery = id * 10 + k as u64;
                deliver(
                    &h,
                    &envelope(delivery, name, t + chrono::Duration::seconds(*offset), data),
                )
                .await
                .unwrap();
            }
            let row = subscription::Entity::find_by_id(id.to_string())
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.status, "cancelled", "order {order:?}");
            assert_eq!(
                row.product_id,
                Some(ProductId(1225)),
                "the cancelled payload's product, order {order:?}"
            );
            assert_eq!(
                row.sync_mark,
                (t + chrono::Duration::seconds(120)).timestamp_micros()
            );
        }
        h.finish().await
    }
);

db_test!(
    async fn signature_failures_are_401_and_write_nothing(db: TestDb) {
        let h = Harness::new(db).await;
        let octany = octany_actix_tests::app::octany(&h.db, &h.fake, std::time::Duration::ZERO);
        let app = actix_test::init_service(App::new().service(octany.scope::<TestUser>())).await;
        let (body, signature) = signed(&envelope(
            1,
            "subscription.created",
            at("2026-05-25T09:29:51Z"),
            subscription_json(1, "user:1", "active", None),
        ));
        let mut tampered = body.clone();
        let at_price = tampered.windows(4).position(|w| w == b"9900").unwrap();
        tampered[at_price] = b'1';
        let wrong_secret = octany_fake::sign("another-secret", &body);
        let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
            ("bad signature", body.clone(), Some("deadbeef".into())),
            ("tampered body", tampered, Some(signature.clone())),
            ("missing header", body.clone(), None),
            ("empty header", body.clone(), Some(String::new())),
            ("wrong secret", body.clone(), Some(wrong_secret)),
        ];
        for (case, body, signature) in cases {
            let mut request = actix_test::TestRequest::post()
                .uri("/billing/webhook")
                .set_payload(body);
            if let Some(signature) = signature {
                request = request.insert_header(("Octany-Signature", signature));
            }
            let response = actix_test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status(), 401, "{case}");
        }
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 0);
        assert_eq!(count::<subscription::Entity>(&h.db).await, 0);

        // The right signature over the same bytes is accepted.
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::post()
                .uri("/billing/webhook")
                .insert_header(("Octany-Signature", signature))
                .set_payload(body)
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), 200);
        let reply: serde_json::Value = actix_test::read_body_json(response).await;
        assert_eq!(reply, json!({"status": "applied"}));
        assert_eq!(count::<subscription::Entity>(&h.db).await, 1);
        h.finish().await
    }
);

db_test!(
    async fn over_the_limit_is_413_and_malformed_is_400(db: TestDb) {
        let h = Harness::new(db).await;
        let octany = Octany::builder(
            h.fake.config().with_webhook_secret(SECRET),
            h.db.conn.clone(),
        )
        .public_base_url("http://localhost:8080")
        .webhook_body_limit(512)
        .build()
        .unwrap();
        let app = actix_test::init_service(App::new().service(octany.scope::<TestUser>())).await;
        let (big, signature) = signed(&envelope(
            1,
            "subscription.created",
            at("2026-05-25T09:29:51Z"),
            subscription_json(1, "user:1", "active", None),
        ));
        assert!(big.len() > 512);
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::post()
                .uri("/billing/webhook")
                .insert_header(("Octany-Signature", signature))
                .set_payload(big)
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), 413);
        let garbage = b"{not json".to_vec();
        let signature = octany_fake::sign(SECRET, &garbage);
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::post()
                .uri("/billing/webhook")
                .insert_header(("Octany-Signature", signature))
                .set_payload(garbage)
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), 400);
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, 0);
        h.finish().await
    }
);

db_test!(
    async fn the_documented_payloads_signed_the_php_way_are_accepted(db: TestDb) {
        let h = Harness::new(db).await;
        for (i, fixture) in [
            include_str!("../../octany-actix/tests/fixtures/webhook_subscription_created.json"),
            include_str!("../../octany-actix/tests/fixtures/webhook_order_paid_uuid.json"),
            include_str!("../../octany-actix/tests/fixtures/webhook_unknown.json"),
        ]
        .iter()
        .enumerate()
        {
            let value: serde_json::Value = serde_json::from_str(fixture).unwrap();
            let (body, signature) = signed(&value);
            assert!(
                h.receiver.receive(Some(&signature), &body).await.is_ok(),
                "fixture {i}"
            );
        }
        // With non-ASCII and slashes, PHP's bytes differ from serde_json's: the
        // signature is over exactly those bytes.
        let asa = envelope(
            4,
            "subscription.updated",
            at("2026-05-25T09:29:53Z"),
            subscription_json(76963688, "user:42", "active", None),
        );
        let (body, signature) = signed(&asa);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains(r"\u00c5sa") && text.contains(r"https:\/\/app.octany.com"),
            "{text}"
        );
        assert_ne!(body, serde_json::to_vec(&asa).unwrap());
        assert!(h.receiver.receive(Some(&signature), &body).await.is_ok());
        assert_eq!(count::<subscription::Entity>(&h.db).await, 1);
        assert_eq!(count::<order::Entity>(&h.db).await, 1);
        let delivery = webhook_delivery::Entity::find_by_id("3f2c9a1e-5b7d-4c8e-9f10-2a3b4c5d6e7f")
            .one(&h.db.conn)
            .await
            .unwrap();
        assert!(delivery.is_some(), "a UUID delivery id is kept as text");
        h.finish().await
    }
);

db_test!(
    async fn a_failed_apply_is_500_recorded_and_replayed(db: TestDb) {
        let h = Harness::new(db).await;
        rename(&h, "octany_orders", "octany_orders_away").await;
        let paid = envelope(
            31,
            "order.paid",
            at("2026-05-25T09:29:51Z"),
            order_json(1, "user:1", "paid"),
        );
        let error = deliver(&h, &paid).await.unwrap_err();
        assert!(matches!(error, WebhookError::Apply(_)), "{error:?}");
        assert_eq!(actix_web::ResponseError::status_code(&error), 500);
        let row = webhook_delivery::Entity::find_by_id("31")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(row.processed_at.is_none());
        assert!(
            row.last_error.is_some(),
            "the error is recorded on the delivery"
        );
        rename(&h, "octany_orders_away", "octany_orders").await;

        let report = h.receiver.replay_failed().await.unwrap();
        assert_eq!((report.replayed, report.failed), (1, 0));
        assert_eq!(
            order::Entity::find_by_id("1")
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap()
                .state,
            "paid"
        );
        let row = webhook_delivery::Entity::find_by_id("31")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(row.processed_at.is_some() && row.last_error.is_none());
        assert_eq!(row.attempts, 2);
        // Octany's own retry of the same delivery is now a duplicate.
        assert_eq!(deliver(&h, &paid).await.unwrap(), Received::Duplicate);
        // And one stored delivery can be replayed by id.
        assert_eq!(h.receiver.replay("31").await.unwrap(), Received::Applied);
        h.finish().await
    }
);

#[test]
fn no_secret_refuses_to_start() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = TestDb::migrated(octany_actix_tests::Backend::Sqlite).await;
        let fake = octany_fake::FakeOctany::builder().start().await.unwrap();
        let syncer = octany_actix::sync::Syncer::new(db.conn.clone(), fake.client());
        let refused = octany_actix::webhook::WebhookReceiver::new(syncer.clone(), &[]).unwrap_err();
        assert!(
            refused.to_string().contains("OCTANY_WEBHOOK_SECRET"),
            "{refused}"
        );
        // Explicitly insecure development mode accepts unsigned deliveries.
        let open = octany_actix::webhook::WebhookReceiver::insecure_development_mode(syncer);
        let body = serde_json::to_vec(&envelope(
            1,
            "test.hook",
            at("2026-01-01T00:00:00Z"),
            json!({}),
        ))
        .unwrap();
        assert_eq!(open.receive(None, &body).await.unwrap(), Received::Applied);
    });
}

db_test!(
    async fn failing_deliveries_count_every_attempt_and_odd_ids_are_400_never_500(db: TestDb) {
        let h = Harness::new(db).await;
        rename(&h, "octany_orders", "octany_orders_away").await;
        let paid = envelope(
            41,
            "order.paid",
            at("2026-05-25T09:29:51Z"),
            order_json(7, "user:1", "paid"),
        );
        for _ in 0..3 {
            assert!(matches!(
                deliver(&h, &paid).await,
                Err(WebhookError::Apply(_))
            ));
        }
        let row = webhook_delivery::Entity::find_by_id("41")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.attempts, 3, "each failed attempt is counted");
        rename(&h, "octany_orders_away", "octany_orders").await;
        deliver(&h, &paid).await.unwrap();
        let row = webhook_delivery::Entity::find_by_id("41")
            .one(&h.db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.attempts, row.processed_at.is_some()), (4, true));

        // Ids and names the table cannot hold: 400 (logged), never a 500 that
        // Octany would retry for ever; nothing half-written.
        let before = count::<webhook_delivery::Entity>(&h.db).await;
        let long = "x".repeat(150);
        for bad in [
            json!({"id": long, "name": "test.hook", "account": 1042, "created_at": "2026-05-25T09:29:51+00:00", "data": {}}),
            json!({"id": "a\u{0}b", "name": "test.hook", "account": 1042, "created_at": "2026-05-25T09:29:51+00:00", "data": {}}),
            json!({"id": 77, "name": "n".repeat(150), "account": 1042, "created_at": "2026-05-25T09:29:51+00:00", "data": {}}),
        ] {
            let error = deliver(&h, &bad).await.unwrap_err();
            assert!(matches!(error, WebhookError::Malformed(_)), "{error:?}");
            assert_eq!(actix_web::ResponseError::status_code(&error), 400);
        }
        assert_eq!(count::<webhook_delivery::Entity>(&h.db).await, before);

        // `424242.0` is the delivery `424242`: the retry is a duplicate.
        let mut as_float = envelope(424242, "test.hook", at("2026-05-25T09:29:51Z"), json!({}));
        let (body, _) = signed(&as_float);
        let float_body = String::from_utf8(body)
            .unwrap()
            .replace("\"id\":424242", "\"id\":424242.0");
        assert!(float_body.contains("424242.0"));
        let signature = octany_fake::sign(SECRET, float_body.as_bytes());
        assert_eq!(
            h.receiver
                .receive(Some(&signature), float_body.as_bytes())
                .await
                .unwrap(),
            Received::Applied
        );
        as_float["id"] = json!(424242);
        assert_eq!(deliver(&h, &as_float).await.unwrap(), Received::Duplicate);
        assert!(
            webhook_delivery::Entity::find_by_id("424242")
                .one(&h.db.conn)
                .await
                .unwrap()
                .is_some()
        );
        h.finish().await
    }
);

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
        let syncer = octany_actix::sync::Syncer::new(h.db.conn.clone(), client);
        let receiver = octany_actix::webhook::WebhookReceiver::new(
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
        use octany_actix::entity::event;
        use octany_actix::sync::{SyncOptions, Syncer};
        use octany_actix::webhook::WebhookReceiver;
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
        let statements = std::mem::take(&mut *sent.lock().unwrap());
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
        // SQLite: the row read, then the write, the claim and the event in one
        // self-committing batch (one hop). PostgreSQL: the claim folded into
        // the write, then the event.
        let writes = |sql: &str| {
            let sql = sql.replace('"', "");
            [
                "UPDATE octany_subscriptions",
                "INSERT INTO octany_webhook_deliveries",
                "INSERT INTO octany_events",
            ]
            .map(|write| sql.contains(write))
        };
        match h.db.backend {
            octany_actix_tests::Backend::Sqlite => {
                assert_eq!(statements.len(), 2, "{statements:#?}");
                assert!(statements[0].starts_with("SELECT"), "{statements:#?}");
                assert_eq!(writes(&statements[1]), [true; 3], "{statements:#?}");
                assert!(statements[1].ends_with("COMMIT;\nBEGIN"), "{statements:#?}");
            }
            octany_actix_tests::Backend::Postgres => {
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
        // subscription in a group running as its own unit (with the test
        // pool's 5 connections, which the group must not wait on).
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
        let attempts = bodies
            .iter()
            .map(|(body, signature)| h.receiver.receive(Some(signature), body));
        let outcomes = futures_util::future::join_all(attempts).await;
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
    async fn deliveries_arriving_together_are_written_together(db: TestDb) {
        // 20 updates of 20 stored subscriptions at once: on SQLite and
        // PostgreSQL they are written in groups, fewer statements than
        // deliveries, each applied with its event. Beside them, deliveries
        // a group must leave to their own units: two new subscriptions
        // (no row to replace) and two deliveries seen before.
        use octany_actix::config::Secret;
        use octany_actix::sync::{SyncOptions, Syncer};
        use octany_actix::webhook::WebhookReceiver;
        let (renewed, listeners) =
            counting(|e| matches!(e, BillingEvent::SubscriptionRenewed { .. }));
        let h = Harness::new(db).await;
        let t = at("2026-05-25T09:29:51Z");
        store_active(&h, 5000, 20, t).await;
        let updates = Arc::new(AtomicUsize::new(0));
        let mut conn = h.db.conn.clone();
        let seen = updates.clone();
        conn.set_metric_callback(move |info| {
            if info
                .statement
                .sql
                .replace(['"', '`'], "")
                .contains("UPDATE octany_subscriptions")
            {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let options = SyncOptions::default().with_listeners(listeners);
        let syncer = Syncer::with_options(conn, h.fake.client(), options);
        let receiver = WebhookReceiver::new(syncer, &[Secret::new(SECRET)]).unwrap();
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
        let outcomes = futures_util::future::join_all(
            bodies
                .iter()
                .map(|(body, signature)| receiver.receive(Some(signature), body)),
        )
        .await;
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

/// PostgreSQL: a group reads its rows, claims its deliveries, then locks
/// the rows. Rows changed in between (here by a transaction that held them
/// locked, as another instance's write would) are not written by the
/// group: it takes those deliveries' claims back and each runs as its own
/// unit, which decides from the row as it now is. One row now holds a
/// state newer than its delivery, and keeps it; the other a state older
/// than its delivery, which then replaces it. The group writes the others.
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
    let deliveries = tokio::spawn(async move {
        let attempts = bodies
            .iter()
            .map(|(body, signature)| receiver.receive(Some(signature), body));
        futures_util::future::join_all(attempts).await
    });
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
    let outcomes = futures_util::future::join_all(
        others
            .iter()
            .map(|(body, signature)| h.receiver.receive(Some(signature), body)),
    )
    .await;
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

//! Signatures, body limits, Octany's own payloads, failed applies and the delivery ids a receiver must refuse.

use super::*;

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
            include_str!("../../../octany-actix/tests/fixtures/webhook_subscription_created.json"),
            include_str!("../../../octany-actix/tests/fixtures/webhook_order_paid_uuid.json"),
            include_str!("../../../octany-actix/tests/fixtures/webhook_unknown.json"),
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
        let syncer = octany_actix::engine::Syncer::new(db.conn.clone(), fake.client());
        let refused = octany_actix::engine::WebhookReceiver::new(syncer.clone(), &[]).unwrap_err();
        assert!(
            refused.to_string().contains("OCTANY_WEBHOOK_SECRET"),
            "{refused}"
        );
        // Explicitly insecure development mode accepts unsigned deliveries.
        let open = octany_actix::engine::WebhookReceiver::insecure_development_mode(syncer);
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
    async fn a_known_event_whose_data_cannot_be_read_is_kept_and_400_never_500(db: TestDb) {
        let h = Harness::new(db).await;
        let unreadable = envelope(
            90,
            "subscription.updated",
            at("2026-05-25T09:29:51Z"),
            json!("not a subscription"),
        );
        let stored = || async {
            webhook_delivery::Entity::find_by_id("90")
                .one(&h.db.conn)
                .await
                .unwrap()
                .unwrap()
        };
        for attempt in 1..=2 {
            let error = deliver(&h, &unreadable).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    WebhookError::Apply(octany_actix::sync::SyncError::Payload { .. })
                ),
                "{error:?}"
            );
            // A retry could not read it either: 400, not a 500 retried for ever.
            assert_eq!(actix_web::ResponseError::status_code(&error), 400);
            let row = stored().await;
            assert_eq!(row.attempts, attempt, "each attempt is counted");
            assert!(row.processed_at.is_none() && row.last_error.is_some());
        }
        // Applied meanwhile by another request (a replay of a mended
        // delivery, say): a failing attempt does not take that back.
        h.db.conn
            .execute_unprepared(
                "UPDATE octany_webhook_deliveries SET processed_at = received_at WHERE delivery_id = '90'",
            )
            .await
            .unwrap();
        deliver(&h, &unreadable).await.unwrap_err();
        assert!(
            stored().await.processed_at.is_some(),
            "a delivery applied by another request stays applied"
        );
        h.finish().await
    }
);

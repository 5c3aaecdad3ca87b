//! The operator's console (`Octany::console`), over HTTP on every
//! database: refused without the host's staff guard; each action audited
//! and done; the timeline in the order things happened; the API key in no
//! page and no log line; a console scoped to one tenant finds no other.

#[macro_use]
mod kit;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use octany_actix::entity::webhook_delivery;
use octany_actix::sync::{ListenerName, Listeners};
use octany_actix::webhook::Received;
use octany_actix_tests::harness::{SECRET, subscription_json};
use octany_actix_tests::sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use octany_fake::CheckoutParams;

use super::*;

use kit::*;

db_test!(
    async fn the_console_refuses_anyone_the_hosts_guard_does_not_admit(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let console = console_app!(octany);
        let page = ask(&console, anna(), "/b/user:1", None).await;
        assert_eq!(page.0, 200, "{}", page.1);
        // Never framed, never cached, no script.
        let headers = actix_web::test::call_service(
            &console,
            actix_web::test::TestRequest::get()
                .uri("/admin/billing/b/user:1")
                .insert_header(("X-Staff", "anna@support"))
                .to_request(),
        )
        .await
        .headers()
        .clone();
        assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(headers.get("cache-control").unwrap(), "no-store");
        assert!(
            headers
                .get("content-security-policy")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(!page.1.contains("<script"));
        let resync = token(&page.1, "/b/user%3A1/resync");
        for path in ["", "/", "/health", "/b/user:1", "/?q=user:1"] {
            let (status, body, _) = ask(&console, None, path, None).await;
            assert_eq!(status, 403, "{path}");
            assert!(!body.contains("user:1"), "{path}: {body}");
        }
        // A post without the guard does nothing, even with a good token.
        let form = [("token", resync.as_str()), ("reason", "ticket 1")];
        let refused = ask(&console, None, "/b/user:1/resync", Some(&form)).await;
        assert_eq!(refused.0, 403);
        // Another member of staff's token, a forged one, none: refused.
        for (who, token) in [
            (Some(("bo@support", None)), resync.as_str()),
            (anna(), "00"),
            (anna(), ""),
        ] {
            let form = [("token", token), ("reason", "ticket 1")];
            let (status, ..) = ask(&console, who, "/b/user:1/resync", Some(&form)).await;
            assert_eq!(status, 403);
        }
        // A token for another billable or action: refused.
        let form = [("token", resync.as_str()), ("reason", "ticket 1")];
        assert_eq!(
            ask(&console, anna(), "/b/user:2/resync", Some(&form))
                .await
                .0,
            403
        );
        assert_eq!(
            ask(&console, anna(), "/b/user:1/cancel", Some(&form))
                .await
                .0,
            403
        );
        // No reason: 400.
        let form = [("token", resync.as_str()), ("reason", " ")];
        assert_eq!(
            ask(&console, anna(), "/b/user:1/resync", Some(&form))
                .await
                .0,
            400
        );
        assert!(audit_rows(&db).await.is_empty(), "nothing was done");
        // A day later the page's token still holds; two days later, not.
        fake.advance(Duration::from_secs(86_400));
        let form = [("token", resync.as_str()), ("reason", "ticket 1")];
        assert_eq!(
            ask(&console, anna(), "/b/user:1/resync", Some(&form))
                .await
                .0,
            303
        );
        fake.advance(Duration::from_secs(2 * 86_400));
        assert_eq!(
            ask(&console, anna(), "/b/user:1/resync", Some(&form))
                .await
                .0,
            403
        );
        assert_eq!(audit_rows(&db).await.len(), 1);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_timeline_shows_each_delivery_and_listener_in_the_order_they_happened(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // The mailer of failed payments is down until the operator retries.
        let down = Arc::new(AtomicBool::new(true));
        let mailer_down = down.clone();
        let listeners = Listeners::new().on(ListenerName::new("mailer"), move |event| {
            let down = mailer_down.load(Ordering::SeqCst);
            async move {
                if down && event.event.kind() == "payment.failed" {
                    Err("the mail server refused".into())
                } else {
                    Ok(())
                }
            }
        });
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .listeners(listeners)
            .build()
            .unwrap();
        let console = console_app!(octany);
        let receive = |n: u64, name: &str, at, data| {
            let (body, signature) = signed(&envelope(n, name, at, data));
            let receiver = octany.receiver().clone();
            async move { receiver.receive(Some(&signature), &body).await.unwrap() }
        };
        let minute = Duration::from_secs(60);
        let t1 = octany.clock().now();
        // Renewing in a month.
        let json = |status| {
            let mut s = subscription_json(77, "user:1", status, None);
            s["renews_at"] = json!((t1 + chrono::Duration::days(30)).to_rfc3339());
            s
        };
        let active = json("active");
        assert_eq!(
            receive(1, "subscription.created", t1, active.clone()).await,
            Received::Applied
        );
        fake.advance(minute);
        assert_eq!(
            receive(1, "subscription.created", t1, active.clone()).await,
            Received::Duplicate
        );
        fake.advance(minute);
        // An older state, arriving late.
        let older = t1 - chrono::Duration::hours(1);
        let trialing = json("trialing");
        assert_eq!(
            receive(2, "subscription.updated", older, trialing).await,
            Received::Applied
        );
        fake.advance(minute);
        // The renewal failed: Octany retries the charge.
        let delayed = json("delayed");
        let t4 = octany.clock().now();
        assert_eq!(
            receive(3, "subscription.updated", t4, delayed).await,
            Received::Applied
        );

        // The rows say what became of each delivery.
        let outcomes: Vec<(String, Option<String>, Option<String>, i32)> =
            webhook_delivery::Entity::find()
                .order_by_asc(webhook_delivery::Column::DeliveryId)
                .all(&db.conn)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.delivery_id, d.outcome, d.billable_ref, d.duplicates))
                .collect();
        let user = Some("user:1".to_owned());
        assert_eq!(
            outcomes,
            [
                ("1".into(), Some("applied".into()), user.clone(), 1),
                ("2".into(), Some("stale".into()), user.clone(), 0),
                ("3".into(), Some("applied".into()), user.clone(), 0),
            ]
        );

        // Found by the subscription's id; its page, newest first.
        let found = ask(&console, anna(), "?q=77", None).await;
        assert_eq!(found.0, 303);
        assert_eq!(found.2.as_deref(), Some("/admin/billing/b/user%3A1"));
        let (status, page, _) = ask(&console, anna(), "/b/user%3A1", None).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("denied: the renewal failed and Octany retries the charge"),
            "{page}"
        );
        let lines: Vec<(String, String)> = timeline(&page)
            .into_iter()
            .filter(|(source, ..)| source == "webhook" || source == "event")
            .map(|(source, outcome, _)| (source, outcome))
            .collect();
        let line = |s: &str, o: &str| (s.to_owned(), o.to_owned());
        assert_eq!(
            lines,
            [
                line("webhook", "applied"),
                line("event", "listener-failed"),
                line("webhook", "stale"),
                line("webhook", "duplicate"),
                line("webhook", "applied"),
                line("event", "delivered"),
            ],
            "{page}"
        );
        // Each delivery's body is on the page, escaped.
        assert!(
            page.contains("&#34;reference_id&#34;:&#34;user:1&#34;"),
            "{page}"
        );

        // A minute on, the mail server is back: the operator runs the
        // listener again.
        fake.advance(minute);
        down.store(false, Ordering::SeqCst);
        let event = octany_actix::entity::event::Entity::find()
            .filter(octany_actix::entity::event::Column::Kind.eq("payment.failed"))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let retry = format!("/events/{}/retry", event.id);
        let form = [
            ("token", token(&page, &retry)),
            ("reason", "ticket 12: no mail".into()),
        ];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, location) = ask(&console, anna(), &retry, Some(&form)).await;
        assert_eq!(status, 303);
        assert!(
            location
                .unwrap()
                .starts_with("/admin/billing/b/user%3A1?done=")
        );
        let (_, page, _) = ask(&console, anna(), "/b/user%3A1", None).await;
        let lines = timeline(&page);
        assert_eq!(
            (lines[0].0.as_str(), lines[0].1.as_str()),
            ("audit", "done"),
            "{lines:?}"
        );
        assert!(lines[0].2.contains("retry_listeners by anna@support"));
        assert!(
            lines
                .iter()
                .all(|(_, outcome, _)| outcome != "listener-failed")
        );
        let audit = audit_rows(&db).await;
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (
                audit[0].action.as_str(),
                audit[0].reason.as_str(),
                audit[0].billable.as_deref()
            ),
            ("retry_listeners", "ticket 12: no mail", Some("user:1"))
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn each_console_action_has_its_effect_and_writes_its_audit_row(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let console = console_app!(octany);
        let user = TestUser::new(1);
        // Paid at Octany, the webhook lost: the customer is locked out.
        let params = CheckoutParams {
            email: Some("Ada@Example.com".into()),
            ..buyer(1)
        };
        let sub = fake
            .checkout(1227, &params, CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        assert!(!octany.billing(&user).subscribed().await.unwrap());

        // Resync.
        let (status, ..) = act(&console, "user:1", "/b/user%3A1/resync", &[]).await;
        assert_eq!(status, 303);
        assert!(octany.billing(&user).subscribed().await.unwrap());
        // Now found by the billing e-mail, in any case.
        let found = ask(&console, anna(), "?q=ada%40example.com", None).await;
        assert_eq!(found.2.as_deref(), Some("/admin/billing/b/user%3A1"));

        // Swap to Pro, then cancel: done at Octany.
        let (status, ..) = act(
            &console,
            "user:1",
            "/b/user%3A1/swap",
            &[("plan", "pro-monthly")],
        )
        .await;
        assert_eq!(status, 303);
        assert_eq!(
            fake.subscription(&sub.id).unwrap().product_id(),
            Some(ProductId(1225))
        );
        let (status, ..) = act(
            &console,
            "user:1",
            "/b/user%3A1/cancel",
            &[("plan", "pro-monthly")],
        )
        .await;
        assert_eq!(status, 303);
        assert_eq!(
            fake.subscription(&sub.id).unwrap().status.as_str(),
            "cancelled"
        );

        // A comp's length that is no number of days: 400, nothing granted.
        for days in ["forever", "999999999999999"] {
            let (status, ..) = act(
                &console,
                "user:2",
                "/b/user%3A2/comps",
                &[("feature", "exports"), ("days", days)],
            )
            .await;
            assert_eq!(status, 400, "{days}");
        }
        // A comp of a feature to user 2, then revoked.
        let (status, ..) = act(
            &console,
            "user:2",
            "/b/user%3A2/comps",
            &[("feature", "exports"), ("days", "30")],
        )
        .await;
        assert_eq!(status, 303);
        let two = BillableRef::parse("user:2").unwrap();
        let comps = octany.comps(&two).await.unwrap();
        assert_eq!(comps.len(), 1);
        assert_eq!(
            (comps[0].granted_by.as_str(), comps[0].reason.as_str()),
            ("anna@support", "ticket 99")
        );
        let revoke = format!("/comps/{}/revoke", comps[0].id);
        let (status, ..) = act(&console, "user:2", &revoke, &[]).await;
        assert_eq!(status, 303);
        let revoked = octany.comps(&two).await.unwrap();
        assert_eq!(revoked[0].revoked_by.as_deref(), Some("anna@support"));

        // A delivery that failed (the database was away), replayed.
        let (body, _) = signed(&envelope(
            41,
            "subscription.created",
            octany.clock().now(),
            subscription_json(88, "user:3", "active", None),
        ));
        webhook_delivery::Entity::insert(webhook_delivery::table::ActiveModel::from(
            webhook_delivery::Model {
                delivery_id: "41".into(),
                event: "subscription.created".into(),
                body: String::from_utf8(body).unwrap(),
                received_at: octany.clock().now(),
                processed_at: None,
                attempts: 1,
                last_error: Some("the database was away".into()),
                billable_ref: Some("user:3".into()),
                resource: Some("88".into()),
                outcome: None,
                duplicates: 0,
                last_duplicate_at: None,
            },
        ))
        .exec(&db.conn)
        .await
        .unwrap();
        let (status, ..) = act(&console, "user:3", "/deliveries/41/replay", &[]).await;
        assert_eq!(status, 303);
        let replayed = webhook_delivery::Entity::find_by_id("41")
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert!(replayed.processed_at.is_some());
        let three = octany
            .billing(&TestUser::new(3))
            .subscription()
            .await
            .unwrap();
        assert_eq!(three.map(|s| s.id), Some("88".to_owned()));

        // Each action's row: who, what, on whom, why, how it ended.
        let rows = audit_rows(&db).await;
        let row = |action: &str, billable: &str| AuditRow {
            actor: "anna@support".to_owned(),
            action: action.to_owned(),
            billable: Some(billable.to_owned()),
            reason: "ticket 99".to_owned(),
            outcome: "done".to_owned(),
        };
        assert_eq!(
            rows,
            [
                row("resync", "user:1"),
                row("swap", "user:1"),
                row("cancel", "user:1"),
                row("grant_comp", "user:2"),
                row("revoke_comp", "user:2"),
                row("replay_delivery", "user:3"),
            ]
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn no_page_and_no_log_line_shows_the_api_key(db: TestDb) {
        let logs = super::api_calls::binary_logs();
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let console = console_app!(octany);
        let key = fake.api_key();
        assert!(key.len() >= 16);
        fake.checkout(1227, &buyer(5), CheckoutOutcome::Succeed)
            .unwrap();
        let (status, ..) = act(&console, "user:5", "/b/user%3A5/resync", &[]).await;
        assert_eq!(status, 303);
        // A failing request to Octany, logged and shown.
        let mut pages = Vec::new();
        for path in ["", "?q=user:5", "/health", "/b/user%3A5"] {
            let (status, body, _) = ask(&console, anna(), path, None).await;
            assert!(status == 200 || status == 303, "{path}: {status}");
            pages.push(body);
        }
        assert!(
            pages[3].contains("GET subscriptions"),
            "the API call is on the timeline: {}",
            pages[3]
        );
        for page in &pages {
            assert!(!page.contains(&key));
            assert!(!page.contains(SECRET));
        }
        let text = logs.text();
        assert!(text.contains("operator action"), "the action was logged");
        assert!(!text.contains(&key));
        assert!(!text.contains(SECRET));
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_console_scoped_to_one_tenant_finds_and_touches_no_other(db: TestDb) {
        let (fake, octany, _app) = started!(db, Duration::from_secs(5));
        let console = console_app!(octany);
        for n in [1, 2] {
            let params = CheckoutParams {
                email: Some(format!("user{n}@example.com")),
                ..buyer(n)
            };
            fake.checkout(1227, &params, CheckoutOutcome::Succeed)
                .unwrap();
            octany.billing(&TestUser::new(n)).sync().await.unwrap();
        }
        let theirs = octany
            .billing(&TestUser::new(2))
            .subscription()
            .await
            .unwrap()
            .unwrap();
        let scoped = Some(("tess@tenant-one", Some("user:1")));
        // Their own is found.
        let own = ask(&console, scoped, "?q=user1%40example.com", None).await;
        assert_eq!(own.2.as_deref(), Some("/admin/billing/b/user%3A1"));
        // The other's, by each thing support might be given: nothing.
        for q in ["user:2", "user2%40example.com", theirs.id.as_str()] {
            let (status, body, location) = ask(&console, scoped, &format!("?q={q}"), None).await;
            assert_eq!((status, location), (200, None), "{q}");
            assert!(body.contains(r#"id="nothing-found""#), "{q}: {body}");
            assert!(!body.contains("/b/user%3A2"), "{q}");
            // An unscoped console finds it.
            let found = ask(&console, anna(), &format!("?q={q}"), None).await;
            assert_eq!(found.2.as_deref(), Some("/admin/billing/b/user%3A2"), "{q}");
        }
        // Its page and its actions: 404, nothing done.
        assert_eq!(ask(&console, scoped, "/b/user%3A2", None).await.0, 404);
        let (_, page, _) = ask(&console, anna(), "/b/user%3A2", None).await;
        let resync = token(&page, "/b/user%3A2/resync");
        let form = [("token", resync.as_str()), ("reason", "ticket 5")];
        assert_eq!(
            ask(&console, scoped, "/b/user:2/resync", Some(&form))
                .await
                .0,
            404
        );
        assert!(audit_rows(&db).await.is_empty());
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_health_page_checks_the_endpoint_as_doctor_does_and_audits_it(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // The app over real HTTP, its public URL its own.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .public_base_url(&url)
            .build()
            .unwrap();
        let served = octany.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(served.clone()))
                .configure(octany_actix_tests::app::configure(&served))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let console = console_app!(octany);
        let (status, page, _) = ask(&console, anna(), "/health", None).await;
        assert_eq!(status, 200);
        assert!(page.contains(&format!("{url}/billing/webhook")), "{page}");
        let first = token(&page, "/health/endpoint");
        let form = [("token", first.as_str()), ("reason", "ticket 3")];
        let (status, _, location) = ask(&console, anna(), "/health/endpoint", Some(&form)).await;
        assert_eq!(status, 303);
        let location = location.unwrap();
        assert!(location.contains("verified"), "{location}");
        // The check's delivery reached the receiver and was verified there.
        let checks = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Event.eq("test.hook"))
            .all(&db.conn)
            .await
            .unwrap();
        assert_eq!(checks.len(), 1);
        assert!(checks[0].delivery_id.starts_with("doctor-"));

        // With a secret the endpoint does not share, the check fails, and
        // says what to fix.
        let stranger = octany_actix::Octany::builder(
            fake.config()
                .with_webhook_secret("another-secret-of-32-characters!!"),
            db.conn.clone(),
        )
        .public_base_url(&url)
        .clock(fake.app_clock())
        .build()
        .unwrap();
        let console = console_app!(stranger);
        let (_, page, _) = ask(&console, anna(), "/health", None).await;
        let token = token(&page, "/health/endpoint");
        let form = [("token", token.as_str()), ("reason", "ticket 4")];
        let (status, _, location) = ask(&console, anna(), "/health/endpoint", Some(&form)).await;
        assert_eq!(status, 303);
        assert!(location.unwrap().contains("401"));
        let rows = audit_rows(&db).await;
        let outcomes: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.action.as_str(), r.reason.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("check_endpoint", "ticket 3", "done"),
                ("check_endpoint", "ticket 4", "failed")
            ]
        );
        // The health page lists them, newest first, as operations.
        let (_, page, _) = ask(&console, anna(), "/health", None).await;
        let ops = section(&page, "operations");
        let lines: Vec<&str> = ops.split("class=\"line\"").skip(1).collect();
        assert!(lines.len() == 2 && lines[0].contains("failed"), "{ops}");
        assert!(lines[0].contains("why: ticket 4") && lines[1].contains("done"));
        handle.stop(true).await;
        fake.stop().await;
        db
    }
);

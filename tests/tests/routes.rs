//! The mounted routes and the guard's cache, on every backend, against the
//! fake Octany: the status route, the success page, invalidation by
//! webhook, and what building and registering get wrong.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, test as actix_test};
use octany_actix::Octany;
use octany_actix::clock::{Clock, SharedClock};
use octany_actix::model::BillableRef;
use octany_actix_tests::app::{builder, configure, octany};
use octany_actix_tests::harness::{SECRET, envelope, signed};
use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};
use octany_actix_tests::{TestDb, db_test};
use octany_fake::CheckoutOutcome;
use serde_json::json;

use octany_actix_tests::http::{buyer, call, fake, pay, subscribed};
use octany_actix_tests::started;

db_test!(
    async fn the_status_route_shows_only_the_current_user(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(5));
        fake.checkout(1226, &buyer(1), CheckoutOutcome::Succeed)
            .unwrap();
        let mine = call(&app, "GET", "/billing/status", Some(1), false).await;
        assert_eq!(mine.status, 200);
        assert_eq!(
            (
                mine.body["access"].clone(),
                mine.body["plan"].clone(),
                mine.body["status"].clone()
            ),
            (json!(true), json!("pro-yearly"), json!("active"))
        );
        let theirs = call(
            &app,
            "GET",
            "/billing/status?user=1&reference=user:1",
            Some(2),
            false,
        )
        .await;
        assert_eq!(
            theirs.body,
            json!({"access": false, "pending": false, "status": null, "plan": null, "product_id": null,
        "on_trial": false, "on_grace_period": false, "renews_at": null, "ends_at": null,
        "invoice_due_at": null, "checkout": null, "reason": "no_subscription", "comps": []})
        );
        assert_eq!(
            call(&app, "GET", "/billing/status", None, false)
                .await
                .status,
            401
        );
        // The status route syncs a user at most every few seconds.
        assert!(
            !octany.sync_throttled(&BillableRef::new("user", "1")).await,
            "just synced by the status call"
        );
        fake.advance(Duration::from_secs(4));
        assert!(octany.sync_throttled(&BillableRef::new("user", "1")).await);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn polls_for_one_user_at_once_make_one_request_and_all_see_what_it_brought(db: TestDb) {
        let (fake, _octany, app) = started!(db, Duration::from_secs(5));
        // Octany has the subscription; the mirror does not (no webhook).
        fake.seed_subscriptions(1226, 1, 1).unwrap();
        let before = fake.api_requests().total();
        let polls = (0..12).map(|_| call(&app, "GET", "/billing/status", Some(1), false));
        let answers = futures_util::future::join_all(polls).await;
        assert_eq!(
            fake.api_requests().total() - before,
            1,
            "twelve polls at once, one request to Octany"
        );
        for answer in &answers {
            assert_eq!(
                (answer.status, answer.body["access"].clone()),
                (200, json!(true)),
                "every poll answers from what the one sync brought"
            );
        }
        fake.stop().await;
        db
    }
);

/// A clock that counts how often it is read.
#[derive(Debug)]
struct CountingClock {
    inner: SharedClock,
    reads: AtomicUsize,
}

impl Clock for CountingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> futures_util::future::BoxFuture<'static, ()> {
        self.inner.sleep(duration)
    }
}

db_test!(
    async fn a_cached_grant_is_decided_at_one_reading_of_the_clock(db: TestDb) {
        let fake = fake().await;
        let clock = Arc::new(CountingClock {
            inner: fake.app_clock(),
            reads: AtomicUsize::new(0),
        });
        let octany = builder(&db, &fake, Duration::from_secs(3600))
            .clock(clock.clone())
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        subscribed(&fake, &octany, 1225, 1).await;
        assert_eq!(
            call(&app, "GET", "/dashboard", Some(1), false).await.status,
            200,
            "granted, and now cached"
        );
        // The cache's freshness, the renewal's grace and Octany's rule are
        // all asked at one instant. (On PostgreSQL the subscription's own
        // notice may reach the cache after the first read, which then is
        // rightly not kept: a miss reads the clock more than once, so the
        // grant is asked again until it comes from the cache.)
        let mut reads = Vec::new();
        for _ in 0..50 {
            let before = clock.reads.load(Ordering::SeqCst);
            assert_eq!(
                call(&app, "GET", "/dashboard", Some(1), false).await.status,
                200
            );
            reads.push(clock.reads.load(Ordering::SeqCst) - before);
            if reads.last() == Some(&1) {
                break;
            }
        }
        assert_eq!(reads.last(), Some(&1), "clock reads a request: {reads:?}");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_change_announced_while_the_guard_reads_is_not_overwritten(db: TestDb) {
        // Counts the guard's reads, and announces a change of user 1 (as a
        // commit here or another instance's notice does) right after the
        // first read ran and before what it read is cached.
        let mut db = db;
        let slot: Arc<std::sync::OnceLock<Octany>> = Arc::default();
        let reads = Arc::new(AtomicUsize::new(0));
        {
            let (slot, reads) = (slot.clone(), reads.clone());
            db.conn.set_metric_callback(move |info| {
                let sql = &info.statement.sql;
                if sql.contains("FROM octany_subscriptions WHERE billable_ref")
                    && reads.fetch_add(1, Ordering::SeqCst) == 0
                    && let Some(octany) = slot.get()
                {
                    octany.forget(&BillableRef::new("user", "1"));
                }
            });
        }
        let fake = fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(3600))
            .build()
            .unwrap();
        slot.set(octany.clone()).unwrap();
        let app = octany_actix_tests::serving!(octany);
        for _ in 0..2 {
            assert_eq!(
                call(&app, "GET", "/dashboard", Some(1), false).await.status,
                402
            );
        }
        // The first read was overtaken by the announcement: not cached, so
        // the second reads again. (Only fewer reads would mean a state read
        // before an announcement was served; on PostgreSQL the listener's
        // first connection clears the cache too, which adds reads later.)
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_guards_cache_is_dropped_by_a_webhook(db: TestDb) {
        let (fake, octany, app) = started!(db, Duration::from_secs(3600));
        let sub = subscribed(&fake, &octany, 1225, 1).await;
        assert_eq!(
            call(&app, "GET", "/dashboard", Some(1), false).await.status,
            200,
            "now cached for an hour"
        );
        let mut expired = serde_json::to_value(&sub).unwrap();
        expired["status"] = json!("expired");
        let (body, signature) = signed(&envelope(
            4242,
            "subscription.updated",
            fake.now() + chrono::Duration::seconds(1),
            expired,
        ));
        let delivered = actix_test::call_service(
            &app,
            actix_test::TestRequest::post()
                .uri("/billing/webhook")
                .insert_header(("Octany-Signature", signature))
                .set_payload(body)
                .to_request(),
        )
        .await;
        assert_eq!(
            delivered.status(),
            200,
            "the mounted webhook route, secret {SECRET}"
        );
        assert_eq!(
            call(&app, "GET", "/dashboard", Some(1), false).await.status,
            402,
            "the cache was dropped"
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_success_page_waits_then_says_it_is_still_processing(db: TestDb) {
        let (fake, _octany, app) = started!(db, Duration::from_secs(5));
        let checkout = call(
            &app,
            "GET",
            "/billing/checkout/pro-monthly?next=/reports",
            Some(1),
            true,
        )
        .await;
        let landed = pay(&app, checkout.location.as_deref().unwrap(), "invoice", 1).await;
        assert_eq!(landed.status, 200, "an unpaid invoice: the page waits");
        let html = landed.body.as_str().unwrap().to_owned();
        assert!(
            html.contains("Confirming your payment")
                && html.contains(r#"data-status-url="/billing/status""#)
        );
        assert!(
            html.contains(r#"data-next="/reports""#),
            "the local next path is kept"
        );
        assert!(html.contains(r#"<noscript><meta http-equiv="refresh" content="3"></noscript>"#));
        fake.advance(Duration::from_secs(150));
        let later = call(&app, "GET", "/billing/success", Some(1), true).await;
        assert!(
            later
                .body
                .as_str()
                .unwrap()
                .contains("still being processed")
        );
        // Once the invoice is paid, the same page forwards to the next path.
        let invoice = fake.orders().remove(0);
        fake.pay_invoice(&invoice.id).unwrap();
        fake.advance(Duration::from_secs(5)); // past the status route's sync interval
        let done = call(&app, "GET", "/billing/success?next=/reports", Some(1), true).await;
        assert_eq!(
            (done.status, done.location.as_deref()),
            (303, Some("/reports"))
        );
        // A next that is not a local path is ignored.
        let evil = call(
            &app,
            "GET",
            "/billing/success?next=//evil.example/x",
            Some(1),
            true,
        )
        .await;
        assert_eq!(evil.location.as_deref(), Some("/dashboard"));
        fake.stop().await;
        db
    }
);

#[tokio::test]
async fn a_missing_registration_says_how_to_fix_it() {
    let db = TestDb::migrated(octany_actix_tests::Backend::Sqlite).await;
    let fake = fake().await;
    let octany = octany(&db, &fake, Duration::from_secs(5));
    // The billing scope carries its Octany; a guard outside it needs the App's.
    let app = actix_test::init_service(App::new().configure(configure(&octany))).await;
    let status = call(&app, "GET", "/billing/status", Some(1), false).await;
    assert_eq!(status.status, 200, "{}", status.body);
    let answer = call(&app, "GET", "/dashboard", Some(1), false).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("App::app_data(web::Data::new(octany.clone()))"),
        "{}",
        answer.body
    );
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("inside a scope")
    );
    fake.stop().await;
}

#[tokio::test]
async fn no_webhook_secret_refuses_to_build() {
    let db = TestDb::new(octany_actix_tests::Backend::Sqlite).await;
    let fake = fake().await;
    let refused = Octany::builder(fake.config(), db.conn.clone())
        .public_base_url("https://app.example.com")
        .build()
        .unwrap_err();
    assert!(refused.to_string().contains("OCTANY_WEBHOOK_SECRET"));
    let nowhere = Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .build()
        .unwrap_err();
    assert!(
        nowhere.to_string().contains("public_base_url"),
        "the public URL is required, not defaulted: {nowhere}"
    );
    let insecure_url = Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url("http://app.example.com")
        .build()
        .unwrap_err();
    assert!(insecure_url.to_string().contains("must be https"));
    // Two listeners of one name: refused at build, naming it (the outbox
    // tells listeners apart by name, so one of them would never run).
    let mail = octany_actix::sync::ListenerName::new("mail");
    let twice = octany_actix::sync::Listeners::new()
        .on(mail, |_| async { Ok(()) })
        .on(octany_actix::sync::ListenerName::new("audit"), |_| async {
            Ok(())
        })
        .on(mail, |_| async { Ok(()) });
    let refused = Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url("https://app.example.com")
        .listeners(twice)
        .build()
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("two billing listeners are named `mail`"),
        "{refused}"
    );
}

#[test]
#[should_panic(expected = "the library's own")]
fn a_listener_may_not_take_the_librarys_names() {
    let name = String::from("octany.usage").leak();
    let _ = octany_actix::sync::ListenerName::new(name);
}

db_test!(
    async fn a_5xx_body_names_no_table_and_no_database_error(db: TestDb) {
        let (fake, _octany, app) = started!(db, Duration::ZERO);
        db.conn
            .execute_raw(Statement::from_string(
                db.db_backend(),
                "ALTER TABLE octany_subscriptions RENAME TO octany_subscriptions_away".to_owned(),
            ))
            .await
            .unwrap();
        for path in ["/billing/status", "/dashboard"] {
            let answer = call(&app, "GET", path, Some(1), false).await;
            assert_eq!(answer.status, 503, "{path}: {}", answer.body);
            let object = answer.body.as_object().expect("a JSON object");
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["error", "message"], "{path}: one body shape");
            assert_eq!(answer.body["error"], "billing_unavailable");
            let text = answer.body.to_string().to_lowercase();
            for leak in [
                "octany_subscriptions",
                "relation",
                "table",
                "sql",
                "error returned",
            ] {
                assert!(!text.contains(leak), "{path} leaks `{leak}`: {text}");
            }
        }
        fake.stop().await;
        db
    }
);

//! The success page's wait (issue 31): the status held open as a stream of
//! server-sent events, answered the moment the payment settles: woken by a
//! webhook's commit in this instance, by another instance's on PostgreSQL,
//! or found by the stream's own sync when no webhook comes; bounded per
//! billable and per instance, and a closed tab frees its slot.

use std::pin::Pin;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test as actix_test;
use octany_actix::Octany;
use octany_actix_tests::app::{builder, configure};
use octany_actix_tests::harness::{envelope, signed};
use octany_actix_tests::http::{buyer, call, fake};
use octany_actix_tests::{TestDb, db_test, serving};
use octany_fake::{CheckoutOutcome, FakeOctany};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An open stream of server-sent events, as a browser's `EventSource`
/// reads it.
struct Events {
    body: BoxBody,
    buffer: String,
}

impl Events {
    /// Opens `path` as `user`; the stream, or the status and body of a refusal.
    async fn open<S, B>(app: &S, path: &str, user: i64) -> Result<Events, (u16, Value)>
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody + 'static,
    {
        let request = actix_test::TestRequest::get()
            .uri(path)
            .insert_header(("X-User", user.to_string()))
            .insert_header(("Accept", "text/event-stream"))
            .to_request();
        let response = actix_test::call_service(app, request).await;
        let status = response.status().as_u16();
        if status != 200 {
            let bytes = actix_test::read_body(response).await;
            return Err((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ));
        }
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap(),
            "text/event-stream"
        );
        Ok(Events {
            body: response.into_body().boxed(),
            buffer: String::new(),
        })
    }

    /// The next event's data (keep-alive comments skipped); fails after 20 s.
    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                        return serde_json::from_str(data).unwrap();
                    }
                }
                let chunk = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_next(cx))
                    .await
                    .expect("the stream is still open")
                    .unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event within 20 s")
    }
}

/// User `user` has paid at the fake (no webhook sent yet); the subscription.
fn paid_at_octany(fake: &FakeOctany, user: i64) -> octany_actix::model::Subscription {
    fake.checkout(1225, &buyer(user), CheckoutOutcome::Succeed)
        .unwrap()
        .subscription
        .unwrap()
}

/// Octany's webhook for the new `subscription`, received by `octany`.
async fn webhook(
    octany: &Octany,
    fake: &FakeOctany,
    subscription: &octany_actix::model::Subscription,
) {
    let delivery = 7000 + subscription.id.as_str().parse::<u64>().unwrap_or(0) % 1000;
    let (body, signature) = signed(&envelope(
        delivery,
        "subscription.created",
        fake.now(),
        serde_json::to_value(subscription).unwrap(),
    ));
    octany
        .receiver()
        .receive(Some(&signature), &body)
        .await
        .unwrap();
}

/// An app whose own sync is an hour apart: only a wake-up can tell a held
/// stream in time.
fn no_polling(db: &TestDb, fake: &FakeOctany) -> Octany {
    builder(db, fake, Duration::from_secs(3600))
        .status_sync_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

db_test!(
    async fn a_held_status_stream_is_answered_when_a_webhook_settles_the_payment(db: TestDb) {
        let fake = fake().await;
        let octany = no_polling(&db, &fake);
        let app = serving!(octany);
        let mut events = Events::open(&app, "/billing/status/stream", 1)
            .await
            .unwrap();
        let first = events.next().await;
        assert_eq!(
            (first["access"].clone(), first["reason"].clone()),
            (Value::Bool(false), Value::from("no_subscription")),
            "{first}"
        );
        assert_eq!(octany.status_waits(), 1);
        // Another user's payment does not wake this stream with news.
        let theirs = paid_at_octany(&fake, 2);
        webhook(&octany, &fake, &theirs).await;
        // This user's payment: the webhook's commit wakes the stream (the
        // cache was warm and the stream does not sync for an hour).
        let mine = paid_at_octany(&fake, 1);
        webhook(&octany, &fake, &mine).await;
        let settled = events.next().await;
        assert_eq!(settled["access"], true, "{settled}");
        assert_eq!(settled["plan"], "pro-monthly");
        drop(events);
        assert_eq!(octany.status_waits(), 0, "an ended stream frees its slot");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_held_status_stream_finds_a_payment_with_no_webhook_by_its_own_sync(db: TestDb) {
        let fake = fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(3600))
            .status_sync_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        let app = serving!(octany);
        let mut events = Events::open(&app, "/billing/status/stream", 1)
            .await
            .unwrap();
        assert_eq!(events.next().await["access"], false);
        paid_at_octany(&fake, 1);
        let settled = events.next().await;
        assert_eq!(settled["access"], true, "{settled}");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_held_stream_on_one_instance_hears_a_payment_applied_by_another(db: TestDb) {
        let fake = fake().await;
        // On PostgreSQL the database tells A (its own sync is an hour off);
        // elsewhere A finds it by its sync, once its cache has expired.
        let postgres = db.backend == octany_actix_tests::Backend::Postgres;
        let a = builder(
            &db,
            &fake,
            Duration::from_millis(if postgres { 3_600_000 } else { 200 }),
        )
        .status_sync_interval(Duration::from_millis(if postgres {
            3_600_000
        } else {
            100
        }))
        .build()
        .unwrap();
        let b = no_polling(&db, &fake);
        let app = serving!(a);
        let mut events = Events::open(&app, "/billing/status/stream", 1)
            .await
            .unwrap();
        assert_eq!(events.next().await["access"], false);
        let mine = paid_at_octany(&fake, 1);
        webhook(&b, &fake, &mine).await;
        if !postgres {
            // Past A's cache and its sync's pace (the app's clock is the
            // fake's, which stands still unless moved).
            fake.advance(Duration::from_secs(10));
        }
        let settled = events.next().await;
        assert_eq!(settled["access"], true, "{settled}");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn status_streams_are_bounded_and_a_closed_tab_frees_its_slot(db: TestDb) {
        let fake = fake().await;
        // Waiting pages sync often: the keep-alives keep their own pace.
        let octany = builder(&db, &fake, Duration::from_secs(3600))
            .status_sync_interval(Duration::from_millis(20))
            .status_waits(1, 2)
            .status_heartbeat(Duration::from_millis(50))
            .build()
            .unwrap();
        let served = octany.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(served.clone()))
                .configure(configure(&served))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);

        // A tab: a real connection, read until its first event.
        let open = |user: i64| async move {
            let mut tab = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "GET /billing/status/stream HTTP/1.1\r\nHost: localhost\r\nX-User: {user}\r\nAccept: text/event-stream\r\n\r\n"
            );
            tab.write_all(request.as_bytes()).await.unwrap();
            let mut seen = String::new();
            let mut buffer = [0u8; 4096];
            while !seen.contains("data: ") && !seen.contains("\r\n\r\n{") {
                let n = tokio::time::timeout(Duration::from_secs(20), tab.read(&mut buffer))
                    .await
                    .expect("an answer within 20 s")
                    .unwrap();
                assert!(n > 0, "answered: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
            (tab, seen)
        };
        let (first, head) = open(1).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        // One per billable: the same user's second tab polls instead.
        let (_, refused) = open(1).await;
        assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
        assert!(refused.contains("too_many_waits"), "{refused}");
        // Two per instance: a second user fits, a third does not.
        let (second, head) = open(2).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let (_, refused) = open(3).await;
        assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
        assert_eq!(octany.status_waits(), 2);

        // The first tab is closed: its keep-alives find out, and the slot
        // is free again.
        drop(first);
        tokio::time::timeout(Duration::from_secs(20), async {
            while octany.status_waits() > 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the closed tab's slot is freed");
        let (_again, head) = open(1).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(second);
        handle.stop(false).await;
        fake.stop().await;
        db
    }
);

db_test!(
    async fn with_streams_off_the_success_page_polls_and_the_stream_is_not_served(db: TestDb) {
        let fake = fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .status_stream(false)
            .build()
            .unwrap();
        let app = serving!(octany);
        let off = Events::open(&app, "/billing/status/stream", 1).await;
        let Err((404, body)) = off else {
            panic!("streams are off")
        };
        assert_eq!(body["error"], "status_stream_off");
        let page = call(&app, "GET", "/billing/success", Some(1), true).await;
        let html = page.body.as_str().unwrap().to_owned();
        assert!(html.contains("data-stream-url=\"\""), "{html}");
        // On (the default), the page names its stream.
        let on = builder(&db, &fake, Duration::from_secs(5)).build().unwrap();
        let app = serving!(on);
        let page = call(&app, "GET", "/billing/success", Some(1), true).await;
        let html = page.body.as_str().unwrap().to_owned();
        assert!(
            html.contains("data-stream-url=\"/billing/status/stream\""),
            "{html}"
        );
        fake.stop().await;
        db
    }
);

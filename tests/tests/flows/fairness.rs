//! One account against everyone's budget: a flood of one billable's
//! checkouts asks Octany once, and leaves other billables their turn.

use super::*;

db_test!(
    async fn forty_checkouts_of_one_account_at_once_ask_octany_once(db: TestDb) {
        let (fake, _octany, app) = started!(db, Duration::from_secs(5));
        // Octany answers slowly, so the checkouts overlap the first one's
        // question to it.
        fake.set_faults(Faults {
            api_latency_ms: 300,
            ..Faults::none()
        });
        let before = fake.api_requests().total();
        let answers = join_all(
            (0..40).map(|_| call(&app, "GET", "/billing/checkout/pro-monthly", Some(3), true)),
        )
        .await;
        assert!(
            answers.iter().all(|a| a.status == 303),
            "every one is sent to the checkout: {:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        let asked = fake.api_requests().total() - before;
        assert!(
            (1..=3).contains(&asked),
            "{asked} requests to Octany for 40 identical checkouts (at most 3: later ones may start after the first has answered)"
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn one_accounts_requests_beyond_its_lane_are_busy_and_send_nothing(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // The live configuration: a rate-limited budget, each billable one
        // request at a time and none waiting behind it.
        let octany = octany_actix::Octany::builder(
            fake.config()
                .with_webhook_secret(octany_actix_tests::harness::SECRET)
                .with_rate_limit(octany_actix::client::RateLimit {
                    per_minute: 110,
                    burst: 10,
                }),
            db.conn.clone(),
        )
        .public_base_url("http://localhost:8080")
        .pricing_path("/pricing")
        .plans::<Plans>()
        .one_off_products::<octany_actix_tests::app::AddOns>()
        .clock(fake.app_clock())
        .queue_bounds(octany_actix::client::QueueBounds {
            per_billable: 1,
            per_billable_waiting: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
        let app = octany_actix_tests::serving!(octany);
        let user = TestUser::new(4);
        fake.checkout(1225, &buyer(4), CheckoutOutcome::Succeed)
            .unwrap();
        octany.billing(&user).sync().await.unwrap();
        // Octany answers slowly: two charges of one account overlap.
        fake.set_faults(Faults {
            api_latency_ms: 300,
            ..Faults::none()
        });
        let billing = octany.billing(&user);
        let (first, second) = tokio::join!(
            billing.charge("seat-1", add_on(None)),
            billing.charge("seat-2", add_on(None))
        );
        let (made, busy) = match (first, second) {
            (Ok(made), Err(busy)) | (Err(busy), Ok(made)) => (made, busy),
            other => panic!("one made, one busy: {other:?}"),
        };
        assert!(
            matches!(
                &busy,
                BillingError::Octany(octany_actix::OctanyError::Busy { .. })
            ),
            "{busy:?}"
        );
        let answer = actix_web::ResponseError::error_response(&busy);
        assert_eq!(answer.status(), 503);
        assert_eq!(answer.headers().get("retry-after").unwrap(), "5");
        let orders = fake.orders();
        assert_eq!(orders.len(), 2, "the first payment and one charge, not two");
        assert!(orders.iter().any(|o| o.id.as_str() == made.id));
        // Another account is not in this one's lane.
        let other = TestUser::new(5);
        fake.checkout(1225, &buyer(5), CheckoutOutcome::Succeed)
            .unwrap();
        let theirs_billing = octany.billing(&other);
        let (mine, theirs) = tokio::join!(billing.sync(), theirs_billing.sync());
        assert!(mine.is_ok() && theirs.is_ok(), "{mine:?} {theirs:?}");

        // A browser whose cancel is busy gets a page that says so.
        let page = call(&app, "GET", "/billing/cancel", Some(4), true).await;
        let token = hidden(page.body.as_str().unwrap(), "token").unwrap();
        let form = [("token", token.as_str())];
        let (sync, cancelled) =
            tokio::join!(billing.sync(), post_form(&app, "/billing/cancel", 4, &form));
        assert!(sync.is_ok());
        assert_eq!(cancelled.status, 503, "{:?}", cancelled.body);
        assert!(cancelled.body.as_str().unwrap().contains("Busy, try again"));
        assert_eq!(
            fake.subscriptions()
                .iter()
                .filter(|s| s.status.as_str() == "cancelled")
                .count(),
            0
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_browser_that_gives_up_leaves_the_queue_over_http(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // One request's worth of budget, and a clock that stands still: a
        // request that waits for the next token waits until it is dropped.
        let octany = octany_actix::Octany::builder(
            fake.config()
                .with_webhook_secret(octany_actix_tests::harness::SECRET)
                .with_rate_limit(octany_actix::client::RateLimit {
                    per_minute: 1,
                    burst: 1,
                }),
            db.conn.clone(),
        )
        .public_base_url("http://localhost:8080")
        .pricing_path("/pricing")
        .plans::<Plans>()
        .clock(fake.app_clock())
        .build()
        .unwrap();
        octany.client().list_products(1).await.unwrap();
        // The app over real HTTP (actix on loopback), as a browser meets it,
        // served as the guide says: a connection the client closes ends
        // its request (actix's default keeps the handler running).
        let served = octany.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(served.clone()))
                .configure(octany_actix_tests::app::configure(&served))
        })
        .workers(1)
        .h1_allow_half_closed(false)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let browser = tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{url}/billing/checkout/pro-monthly"))
                .header("X-User", "6")
                .header("Accept", "text/html")
                .send()
                .await
        });
        let client = octany.client().clone();
        tokio::time::timeout(Duration::from_secs(30), async {
            while client.waiting()[0] != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the checkout waits for the budget");
        // The browser gives up: its connection closes, and its place in
        // the queue is freed (actix drops the handler, and with it the wait;
        // with half-closed connections allowed it waits on, as found).
        browser.abort();
        let _ = browser.await;
        tokio::time::timeout(Duration::from_secs(30), async {
            while client.waiting()[0] != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the gone browser's request leaves the queue");
        assert_eq!(fake.api_requests().total(), 1, "it sent nothing to Octany");
        handle.stop(false).await;
        fake.stop().await;
        db
    }
);

//! The operator's commands (`octany_actix::cli`), mounted in a host's clap
//! parser as a host would, run on every backend: `sync` resumes from a page
//! and brings orders, `replay` by time range, `prune` keeps failures, and
//! `doctor` checks the key, the clock, the secret and the webhook URL.

use std::time::Duration;

use clap::Parser;
use octany_actix::Octany;
use octany_actix::cli::Command;
use octany_actix::entity::{order, subscription, webhook_delivery};
use octany_actix_tests::harness::{SECRET, at, envelope, signed};
use octany_actix_tests::sea_orm::{EntityTrait, PaginatorTrait};
use octany_actix_tests::{TestDb, db_test};
use octany_fake::FakeOctany;

/// A host's binary: its own commands, and the library's in one line.
#[derive(Parser)]
enum Host {
    /// The host's own.
    Serve,
    #[command(flatten)]
    Billing(Command),
}

fn parse(args: &[&str]) -> Command {
    match Host::try_parse_from(std::iter::once("host").chain(args.iter().copied())).unwrap() {
        Host::Billing(command) => command,
        Host::Serve => panic!("not a billing command"),
    }
}

async fn run(octany: &Octany, args: &[&str]) -> (bool, String) {
    let mut out = Vec::new();
    let ok = parse(args).run_to(octany, &mut out).await.unwrap();
    (ok, String::from_utf8(out).unwrap())
}

fn octany(db: &TestDb, fake: &FakeOctany, public: &str) -> Octany {
    Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url(public)
        .clock(fake.app_clock())
        .build()
        .unwrap()
}

db_test!(
    async fn sync_resumes_from_a_page_and_brings_the_orders(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        fake.seed_subscriptions(1225, 1, 45).unwrap();
        let octany = octany(&db, &fake, "http://localhost:8080");
        let (ok, said) = run(&octany, &["sync", "--from-page", "2", "--no-orders"]).await;
        assert!(ok, "{said}");
        assert!(
            said.contains("mirrored 25 subscription(s) and 0 order(s), pages 2..3"),
            "{said}"
        );
        assert_eq!(
            subscription::Entity::find().count(&db.conn).await.unwrap(),
            25
        );
        let (ok, said) = run(&octany, &["sync"]).await;
        assert!(ok, "{said}");
        assert_eq!(
            subscription::Entity::find().count(&db.conn).await.unwrap(),
            45
        );
        let orders = order::Entity::find().count(&db.conn).await.unwrap();
        assert!(said.contains(&format!("and {orders} order(s)")), "{said}");
        // Both runs are audited, with where each began and how it ended.
        let audit = octany.audit_of_operations(10).await.unwrap();
        let seen: Vec<(&str, Option<&str>, &str)> = audit
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_deref(), e.outcome.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("backfill", Some("from page 1"), "done"),
                ("backfill", Some("from page 2"), "done"),
            ]
        );
        assert_eq!(
            audit[1].detail.as_deref(),
            Some("25 subscription(s), 0 order(s); done")
        );
        // Refused arguments are clap's: a host's --help lists them.
        assert!(Host::try_parse_from(["host", "sync", "--from-page", "x"]).is_err());
        assert!(Host::try_parse_from(["host", "prune", "--older-than-days", "3"]).is_err());
        fake.stop().await;
        db
    }
);

db_test!(
    async fn replay_by_time_and_prune_keep_what_failed(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        let octany = octany(&db, &fake, "http://localhost:8080");
        let deliver = |id: u64| {
            let (body, signature) = signed(&envelope(
                id,
                "test.hook",
                at("2026-01-01T00:00:00Z"),
                serde_json::json!({}),
            ));
            let receiver = octany.receiver().clone();
            async move { receiver.receive(Some(&signature), &body).await.unwrap() }
        };
        deliver(1).await;
        deliver(2).await;
        let start = fake.now();
        fake.advance(Duration::from_secs(3600));
        deliver(3).await;
        let since = (start + chrono::Duration::seconds(1)).to_rfc3339();
        let (ok, said) = run(&octany, &["replay", "--since", &since]).await;
        assert!(ok, "{said}");
        assert!(
            said.contains("replayed 1 delivery(ies); 0 failed again"),
            "{said}"
        );
        let (ok, said) = run(&octany, &["replay", "--failed"]).await;
        assert!(ok && said.contains("replayed 0"), "{said}");

        // Thirty days on, a prune of 7 days deletes the applied ones only.
        let mut failing = webhook_delivery::Entity::find_by_id("3")
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        failing.delivery_id = "4".into();
        failing.processed_at = None;
        failing.last_error = Some("it failed".into());
        webhook_delivery::Entity::insert(webhook_delivery::table::ActiveModel::from(failing))
            .exec(&db.conn)
            .await
            .unwrap();
        fake.advance(Duration::from_secs(30 * 86_400));
        let (ok, said) = run(&octany, &["prune", "--older-than-days", "7"]).await;
        assert!(ok, "{said}");
        assert!(said.contains("deleted 3 applied delivery(ies)"), "{said}");
        let left: Vec<String> = webhook_delivery::Entity::find()
            .all(&db.conn)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.delivery_id)
            .collect();
        assert_eq!(left, ["4"], "the failed delivery is kept for replay");

        // Each command is an operator's action, audited as the command line's.
        let audit = octany.audit_of_operations(10).await.unwrap();
        let seen: Vec<(&str, &str, Option<&str>)> = audit
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str(), e.detail.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "prune",
                    "done",
                    Some("3 delivery(ies), 0 API call(s) deleted")
                ),
                ("replay_failed", "done", Some("replayed 0; 0 failed again")),
                (
                    "replay_received",
                    "done",
                    Some("replayed 1; 0 failed again")
                ),
            ],
            "{audit:?}"
        );
        assert!(
            audit.iter().all(|e| e.actor.starts_with("cli:")),
            "{audit:?}"
        );
        assert_eq!(audit[0].reason, "`prune` from the command line");
        assert_eq!(audit[0].target.as_deref(), Some("older than 7 day(s)"));
        fake.stop().await;
        db
    }
);

db_test!(
    async fn doctor_checks_the_key_clock_secret_and_webhook_url(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        // The app, served for real, so the doctor can reach its webhook URL.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // A doctor with another secret than the app's (built before the fake
        // has an endpoint, whose secret its config would carry).
        let wrong = Octany::builder(
            fake.config()
                .with_webhook_secret("another-secret-0123456789abcdefgh"),
            db.conn.clone(),
        )
        .public_base_url(&url)
        .clock(fake.app_clock())
        .build()
        .unwrap();
        let app = octany(&db, &fake, &url);
        let served = app.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(served.clone()))
                .service(served.scope::<octany_actix_tests::app::TestUser>())
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);

        let (ok, said) = run(&app, &["doctor"]).await;
        assert!(!ok, "no delivery from Octany yet: {said}");

        for expected in [
            "ok   API key: valid; 6 product(s)",
            "ok   clock:",
            "ok   webhook secret: 1 configured",
            "ok   webhook URL:",
            "FIX  deliveries: none received from Octany yet",
        ] {
            assert!(said.contains(expected), "missing `{expected}` in:\n{said}");
        }
        // A delivery from Octany (the fake, at this app's URL): all is well.
        fake.add_webhook_endpoint(&format!("{url}/billing/webhook"), Some(SECRET));
        fake.checkout(
            1225,
            &octany_fake::CheckoutParams {
                reference_id: Some("user:1".into()),
                ..Default::default()
            },
            octany_fake::CheckoutOutcome::Succeed,
        )
        .unwrap();
        fake.settled().await;
        let (ok, said) = run(&app, &["doctor"]).await;
        assert!(ok, "{said}");
        assert!(
            said.contains("ok   deliveries: the last from Octany arrived"),
            "{said}"
        );

        // The URL refuses the other secret's test.hook.
        let (ok, said) = run(&wrong, &["doctor"]).await;
        assert!(!ok);
        assert!(
            said.contains("FIX  webhook URL:") && said.contains("401"),
            "{said}"
        );
        handle.stop(true).await;
        task.await.unwrap().unwrap();
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_comp_is_granted_listed_and_revoked_from_the_command_line(db: TestDb) {
        let fake = FakeOctany::builder()
            .sample_catalog()
            .start()
            .await
            .unwrap();
        let octany = Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
            .public_base_url("http://localhost:8080")
            .plans::<octany_actix_tests::app::Plans>()
            .clock(fake.app_clock())
            .build()
            .unwrap();
        let team = octany_actix_tests::app::TestUser::new(3);
        let billing = octany.billing(&team);
        assert!(!billing.subscribed().await.unwrap());
        let args = [
            "grant-comp",
            "user:3",
            "--plan",
            "pro-monthly",
            "--days",
            "30",
            "--reason",
            "partner",
            "--by",
            "anna",
        ];
        let (ok, said) = run(&octany, &args).await;
        assert!(ok, "{said}");
        let id = said
            .strip_prefix("granted comp ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .to_owned();
        assert!(billing.subscribed().await.unwrap());
        let (_, listed) = run(&octany, &["comps", "user:3"]).await;
        assert!(
            listed.contains(&id) && listed.contains("active") && listed.contains("by=anna"),
            "{listed}"
        );
        let (ok, said) = run(&octany, &["revoke-comp", &id, "--by", "bo"]).await;
        assert!(ok && said.contains("revoked comp"), "{said}");
        assert!(!billing.subscribed().await.unwrap());
        let (_, listed) = run(&octany, &["comps", "user:3"]).await;
        assert!(
            listed.contains("over") && listed.contains("revoked by bo"),
            "{listed}"
        );
        // The requests made to Octany for the billable, from the log (its
        // writer runs on its own: wait until the line is there).
        billing.sync().await.unwrap();
        let listed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let (ok, listed) = run(&octany, &["api-calls", "user:3"]).await;
                assert!(ok, "{listed}");
                if !listed.is_empty() {
                    return listed;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sync's request is logged");
        assert!(
            listed.contains(" GET subscriptions 200 attempt=1 "),
            "{listed}"
        );
        // A plan the app does not sell is refused.
        let mut out = Vec::new();
        let refused = parse(&[
            "grant-comp",
            "user:3",
            "--plan",
            "gold",
            "--reason",
            "x",
            "--by",
            "anna",
        ])
        .run_to(&octany, &mut out)
        .await;
        assert!(refused.unwrap_err().to_string().contains("no plan `gold`"));
        fake.stop().await;
        db
    }
);

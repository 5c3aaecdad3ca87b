//! What the starter's plans carry (issue 30): seats refused past Basic's
//! five, a reports page only Pro opens, metered API calls shown on the
//! account page and billed at the renewal, and a comp granted from the
//! starter's command line.

use super::*;
use clap::Parser;
use example_app::billing::Plans;

/// The starter's command line, as `main.rs` mounts the library's commands.
#[derive(Parser)]
enum StarterCli {
    #[command(flatten)]
    Billing(octany_actix::cli::Command),
}

db_test!(
    async fn the_starters_plans_carry_seats_reports_and_metered_calls(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let kit = kit(&app);

        // A team on Basic: the owner and four invitations fill its five
        // seats; a fifth invitation is refused, saying to upgrade.
        let owner = Browser::new(&app.url);
        assert_eq!(owner.signup("owner@example.com").await.status, 303);
        owner
            .post("/teams", "/teams", &[("name", "Five Seats AB")])
            .await;
        let team = example_app::team::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        kit.subscribe(&team, Plans::Basic).await.unwrap();
        for i in 1..=4 {
            let email = format!("member{i}@example.com");
            let invited = owner
                .post("/team/account", "/team/invites", &[("email", &email)])
                .await;
            assert_eq!(invited.location(), "/team/account?done=invited");
        }
        let refused = owner
            .post(
                "/team/account",
                "/team/invites",
                &[("email", "sixth@example.com")],
            )
            .await;
        assert_eq!(refused.location(), "/team/account?done=over_seats");
        let invites = example_app::team::invite::Entity::find()
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(invites, 4, "nothing written for the refused one");
        let account = owner.get("/team/account?done=over_seats").await.body;
        assert!(account.contains("Seats: 5 of 5"), "{account}");
        assert!(account.contains("upgrade the team"), "{account}");

        // A person on Basic: no reports; metered calls counted.
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let ada_user = example_app::user::Entity::find()
            .filter(example_app::user::Column::Email.eq("ada@example.com"))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        kit.subscribe(&ada_user, Plans::Basic).await.unwrap();
        assert_eq!(ada.get("/reports").await.location(), "/pricing");
        for n in 1..=3 {
            let pong = ada.get_json("/api/ping").await.json();
            assert_eq!(pong["calls_this_period"], n, "{pong}");
        }
        let account = ada.get("/account").await.body;
        assert!(
            account.contains("API calls this period: <strong>3</strong>"),
            "{account}"
        );

        // Support comps her Pro for a month from the command line.
        let StarterCli::Billing(command) = StarterCli::try_parse_from([
            "example-app",
            "grant-comp",
            &format!("user:{}", ada_user.id),
            "--plan",
            "pro-monthly",
            "--days",
            "30",
            "--reason",
            "conference speaker",
            "--by",
            "support@example.com",
        ])
        .unwrap();
        let mut said = Vec::new();
        assert!(command.run_to(&app.octany, &mut said).await.unwrap());
        let reports = ada.get("/reports").await;
        assert_eq!(reports.status, 200, "{}", reports.location());
        assert!(reports.body.contains(r#"id="reports""#));
        // Her own subscription still shows: the guard grants on it before
        // the comp.
        let dashboard = ada.get("/dashboard").await.body;
        assert!(dashboard.contains("Basic monthly"), "{dashboard}");

        // Someone with a comp and no subscription: the paid pages open.
        let guest = Browser::new(&app.url);
        assert_eq!(guest.signup("guest@example.com").await.status, 303);
        let guest_user = example_app::user::Entity::find()
            .filter(example_app::user::Column::Email.eq("guest@example.com"))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(guest.get("/dashboard").await.location(), "/pricing");
        app.octany
            .grant_comp(
                &octany_actix::Billable::billable_ref(&guest_user),
                octany_actix::billing::NewComp::new("speaker", "support@example.com")
                    .plan(Plans::ProMonthly),
            )
            .await
            .unwrap();
        let dashboard = guest.get("/dashboard").await;
        assert_eq!(dashboard.status, 200, "{}", dashboard.body);
        assert!(
            dashboard.body.contains("a plan granted by support"),
            "{}",
            dashboard.body
        );
        assert_eq!(guest.get("/reports").await.status, 200);

        // The renewal bills the period's three calls once: 6 öre.
        kit.renew(&ada_user).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                let billed = kit.fake().orders().into_iter().any(|o| {
                    o.items.iter().any(|i| {
                        i.description
                            .as_deref()
                            .is_some_and(|d| d.starts_with("api_calls: 3 used"))
                    })
                });
                if billed {
                    break;
                }
                app.octany.syncer().deliver_due().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the period's calls are billed");
        let account = ada.get("/account").await.body;
        assert!(
            account.contains("API calls this period: <strong>0</strong>"),
            "{account}"
        );
        app.stop().await;
        db
    }
);

db_test!(
    async fn the_last_seat_goes_to_one_of_six_invitations_sent_at_once(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let kit = kit(&app);
        let owner = Browser::new(&app.url);
        assert_eq!(owner.signup("owner@example.com").await.status, 303);
        owner.post("/teams", "/teams", &[("name", "Race AB")]).await;
        let team = example_app::team::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        kit.subscribe(&team, Plans::Basic).await.unwrap();
        for i in 1..=3 {
            let email = format!("member{i}@example.com");
            owner
                .post("/team/account", "/team/invites", &[("email", &email)])
                .await;
        }
        // Four of five seats taken: six invitations race for the last.
        let token = owner.csrf("/team/account").await;
        let emails: Vec<String> = (0..6).map(|i| format!("racer{i}@example.com")).collect();
        let answers = futures_util::future::join_all(emails.iter().map(|email| {
            let (owner, token) = (&owner, &token);
            async move {
                owner
                    .post_with(token, "/team/invites", &[("email", email.as_str())])
                    .await
            }
        }))
        .await;
        let invited = answers
            .iter()
            .filter(|a| a.location() == "/team/account?done=invited")
            .count();
        let refused = answers
            .iter()
            .filter(|a| a.location() == "/team/account?done=over_seats")
            .count();
        assert_eq!((invited, refused), (1, 5));
        let invites = example_app::team::invite::Entity::find()
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(invites, 4, "one seat, one invitation");
        app.stop().await;
        db
    }
);

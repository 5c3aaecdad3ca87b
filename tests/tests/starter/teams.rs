//! A team pays for its members (and its guard refuses everyone else); the metrics route and its token.

use super::*;

db_test!(
    async fn a_team_pays_for_its_members_and_its_guard_refuses_everyone_else(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let owner = Browser::new(&app.url);
        assert_eq!(owner.signup("owner@example.com").await.status, 303);
        let made = owner
            .post("/teams", "/teams", &[("name", "Analytical Engines AB")])
            .await;
        assert_eq!(made.location(), "/team/account");
        let team_id = example_app::team::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
            .id;
        // Not paid yet: the team's guard sends the team to the team's plans.
        assert_eq!(owner.get("/team").await.location(), "/team/pricing");
        let plans = owner.get("/team/pricing").await;
        assert!(
            plans.body.contains("/team/billing/checkout/pro-monthly"),
            "{}",
            plans.body
        );
        let checkout = owner.get("/team/billing/checkout/pro-monthly").await;
        assert_eq!(checkout.status, 303);
        assert!(
            checkout
                .location()
                .contains(&format!("referenceId=team%3A{team_id}")),
            "the team is the billable: {}",
            checkout.location()
        );
        let team = example_app::team::Entity::find_by_id(team_id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        pays(&app, &team).await;
        let owned = owner.get("/team").await;
        assert_eq!(owned.status, 200, "{}", owned.location());
        assert!(owned.body.contains("Analytical Engines AB"));
        // The owner's own (personal) billing is untouched.
        assert_eq!(owner.get("/dashboard").await.location(), "/pricing");

        // An invitation, accepted by the invited member.
        let invited = owner
            .post(
                "/team/account",
                "/team/invites",
                &[("email", "member@example.com")],
            )
            .await;
        assert_eq!(invited.location(), "/team/account?done=invited");
        // Between its making and its showing the link waits in the
        // session row, sealed: the row never holds the credential.
        let rows: Vec<String> = example_app::sessions::Entity::find()
            .all(&db.conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.state)
            .collect();
        let account = owner.get("/team/account").await;
        let at = account.body.find("/invites/").expect("the link is shown");
        let link = account.body[at..at + "/invites/".len() + 64].to_owned();
        let token = &link["/invites/".len()..];
        assert!(
            rows.iter().any(|state| state.contains("invite_link")),
            "the link waited in the session"
        );
        assert!(
            rows.iter().all(|state| !state.contains(token)),
            "never in the clear: {rows:?}"
        );
        assert!(
            !owner.get("/team/account").await.body.contains(&link),
            "shown once"
        );
        let member = Browser::new(&app.url);
        assert!(member.get(&link).await.body.contains("member@example.com"));
        assert_eq!(member.signup("member@example.com").await.status, 303);
        let joined = member.post(&link, &link, &[]).await;
        assert_eq!(joined.location(), "/team");
        let in_team = member.get("/team").await;
        assert_eq!(in_team.status, 200);
        assert_eq!(
            member.get_json("/team/billing/status").await.json()["access"],
            true
        );
        // The link is used up; a member cannot buy or cancel for the team.
        assert_eq!(Browser::new(&app.url).get(&link).await.status, 404);
        assert!(
            member
                .get("/team/pricing")
                .await
                .body
                .contains("Only an owner")
        );
        assert_eq!(
            member
                .post("/team/account", "/team/cancel", &[])
                .await
                .status,
            403
        );
        // Nor change its plan through the mounted routes: the checkout of
        // another plan (which would lead to the swap) and the swap's own
        // page and form answer 403, naming who can; the plan is unchanged.
        for path in [
            "/team/billing/checkout/pro-yearly",
            "/team/billing/swap/pro-yearly",
            "/team/billing/cancel",
        ] {
            let refused = member.get(path).await;
            assert_eq!(refused.status, 403, "{path}");
            assert!(
                refused.body.contains("Only the team")
                    && refused.body.contains("owners can buy, change or cancel"),
                "{path}: {}",
                refused.body
            );
        }
        let swap = member
            .post(
                "/team/account",
                "/team/billing/swap/pro-yearly",
                &[("intent", "any")],
            )
            .await;
        assert_eq!(swap.status, 403);
        let cancel = member
            .post("/team/account", "/team/billing/cancel", &[("token", "any")])
            .await;
        assert_eq!(cancel.status, 403);
        assert_eq!(
            app.fake.as_ref().unwrap().subscriptions()[0].product_id(),
            Some(octany_actix::model::ProductId(1225)),
            "still on the plan the owner bought"
        );
        // The owner still can: the same checkout leads to the swap's page.
        assert_eq!(
            owner
                .get("/team/billing/checkout/pro-yearly")
                .await
                .location(),
            "/team/billing/swap/pro-yearly"
        );

        // Someone else: not a member, whatever they try.
        let stranger = Browser::new(&app.url);
        assert_eq!(stranger.signup("stranger@example.com").await.status, 303);
        let id = team_id.to_string();
        assert_eq!(
            stranger
                .post("/teams", "/teams/switch", &[("team", &id)])
                .await
                .status,
            404
        );
        assert_eq!(stranger.get("/team").await.location(), "/teams");
        assert_eq!(stranger.get_json("/team/billing/status").await.status, 404);
        // Accepting someone else's link (made for another e-mail) does nothing.
        owner
            .post(
                "/team/account",
                "/team/invites",
                &[("email", "third@example.com")],
            )
            .await;
        let account = owner.get("/team/account").await;
        let at = account.body.find("/invites/").unwrap();
        let other = account.body[at..at + "/invites/".len() + 64].to_owned();
        assert_eq!(stranger.post(&other, &other, &[]).await.status, 404);
        assert_eq!(stranger.get("/team").await.location(), "/teams");
        assert_eq!(
            example_app::team::member::Entity::find()
                .count(&db.conn)
                .await
                .unwrap(),
            2,
            "the owner and the member"
        );

        // Switching: the member goes personal, then back.
        assert_eq!(
            member
                .post("/teams", "/teams/switch", &[("team", "")])
                .await
                .location(),
            "/dashboard"
        );
        assert_eq!(member.get("/team").await.location(), "/teams");
        assert_eq!(
            member
                .post("/teams", "/teams/switch", &[("team", &id)])
                .await
                .location(),
            "/team"
        );
        assert_eq!(member.get("/team").await.status, 200);

        // The owner cancels: members keep access to the end of the period.
        let cancelled = owner.post("/team/account", "/team/cancel", &[]).await;
        assert_eq!(cancelled.location(), "/team/account?done=cancelled");
        assert_eq!(
            app.fake.as_ref().unwrap().subscriptions()[0]
                .status
                .as_str(),
            "cancelled"
        );
        assert_eq!(member.get("/team").await.status, 200);
        app.stop().await;
        db
    }
);

db_test!(
    async fn metrics_count_deliveries_requests_and_the_cache(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        pays(&app, &user(&db, 1).await).await;
        assert_eq!(ada.get("/dashboard").await.status, 200);
        assert_eq!(ada.get("/dashboard").await.status, 200);
        let page = Browser::new(&app.url).get("/metrics").await;
        assert_eq!(page.status, 200);
        for series in [
            "octany_webhook_deliveries_total{outcome=\"applied\"}",
            "octany_webhook_apply_seconds",
            "octany_api_requests_total{status=\"2xx\"}",
            "octany_guard_cache_total{result=\"hit\"}",
            "octany_guard_cache_total{result=\"miss\"}",
        ] {
            assert!(page.body.contains(series), "no {series} in:\n{}", page.body);
        }
        app.stop().await;
        db
    }
);

db_test!(
    async fn metrics_with_a_token_answer_only_who_presents_it(db: TestDb) {
        // (A database of its own: the first app's worker runtimes end with
        // it, and pooled connections opened on them would go with them.)
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |s| {
            s.metrics_token = Some("scrape-me-0123456789".into())
        })
        .await;
        let visitor = Browser::new(&app.url);
        assert_eq!(visitor.get("/metrics").await.status, 404);
        let scraped = visitor
            .send(
                visitor
                    .http
                    .get(format!("{}/metrics", app.url))
                    .bearer_auth("scrape-me-0123456789"),
                "text/plain",
            )
            .await;
        assert_eq!(scraped.status, 200);
        app.stop().await;
        db
    }
);

db_test!(
    async fn metrics_without_a_token_refuse_what_came_through_a_proxy(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let scraper = Browser::new(&app.url);
        assert_eq!(
            scraper.get("/metrics").await.status,
            200,
            "a scraper beside the app"
        );
        // A reverse proxy on the same host: the peer is loopback, the visitor is not.
        for (name, value) in [
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=203.0.113.9"),
            ("X-Real-IP", "203.0.113.9"),
        ] {
            let proxied = scraper
                .send(
                    scraper
                        .http
                        .get(format!("{}/metrics", app.url))
                        .header(name, value),
                    "text/plain",
                )
                .await;
            assert_eq!(proxied.status, 404, "through a proxy ({name})");
        }
        app.stop().await;
        db
    }
);

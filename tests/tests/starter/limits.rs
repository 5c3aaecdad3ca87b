//! Limits that hold at their edges: the client address behind a proxy
//! (`TRUST_PROXY_HEADERS`), and an invitation's week.

use std::sync::Arc;

use octany_actix::clock::ManualClock;

use super::*;

/// Posts a sign-up for `email` as sent through a proxy that says
/// `X-Forwarded-For: forwarded`: its status.
async fn signup_via(app: &example_app::Running, email: &str, forwarded: &str) -> u16 {
    let b = Browser::new(&app.url);
    let token = b.csrf("/signup").await;
    let request = b
        .http
        .post(format!("{}/signup", app.url))
        .header("X-Forwarded-For", forwarded)
        .form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ]);
    b.send(request, "text/html").await.status
}

db_test!(
    async fn forwarded_addresses_count_only_behind_a_trusted_proxy(db: TestDb) {
        // Not trusted (the default): the header is the client's own words,
        // so a new one for each try gets no fresh attempts.
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |s| s.limits.signup_per_address = 2).await;
        let answers = [
            signup_via(&app, "a@example.com", "203.0.113.1").await,
            signup_via(&app, "b@example.com", "203.0.113.2").await,
            signup_via(&app, "c@example.com", "203.0.113.3").await,
        ];
        assert_eq!(
            answers,
            [303, 303, 429],
            "spoofed addresses share the peer's count"
        );
        app.stop().await;

        // Trusted (behind one proxy): the last entry is the address that
        // proxy saw; what the client put before it is ignored.
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |s| {
            s.limits.signup_per_address = 2;
            s.trust_proxy_headers = true;
        })
        .await;
        let answers = [
            signup_via(&app, "d@example.com", "198.51.100.7, 203.0.113.9").await,
            signup_via(&app, "e@example.com", "198.51.100.8, 203.0.113.9").await,
            signup_via(&app, "f@example.com", "198.51.100.9, 203.0.113.9").await,
            // Another client behind the proxy has attempts of its own.
            signup_via(&app, "g@example.com", "203.0.113.10").await,
        ];
        assert_eq!(answers, [303, 303, 429, 303]);
        app.stop().await;
        db
    }
);

db_test!(
    async fn an_invitation_link_works_for_a_week_and_not_after(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let app = start(&db, dir.path(), |s| s.clock = clock.clone()).await;
        let owner = Browser::new(&app.url);
        assert_eq!(owner.signup("owner@example.com").await.status, 303);
        owner
            .post("/teams", "/teams", &[("name", "Analytical Engines AB")])
            .await;
        let team = example_app::team::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        pays(&app, &team).await;
        // Two invitations; each link is shown once, on the next page.
        let mut links = Vec::new();
        for email in ["early@example.com", "late@example.com"] {
            let invited = owner
                .post("/team/account", "/team/invites", &[("email", email)])
                .await;
            assert_eq!(invited.location(), "/team/account?done=invited");
            let page = owner.get("/team/account").await;
            let at = page.body.find("/invites/").expect("the link is shown");
            links.push(page.body[at..at + "/invites/".len() + 64].to_owned());
        }
        // Six days on, the first is accepted.
        clock.advance(std::time::Duration::from_secs(6 * 86_400));
        let early = Browser::new(&app.url);
        assert_eq!(early.signup("early@example.com").await.status, 303);
        assert_eq!(early.get(&links[0]).await.status, 200);
        let joined = early.post(&links[0], &links[0], &[]).await;
        assert_eq!(joined.location(), "/team");
        // A week and a minute after it was made, the second is not.
        clock.advance(std::time::Duration::from_secs(86_400 + 60));
        let late = Browser::new(&app.url);
        assert_eq!(late.signup("late@example.com").await.status, 303);
        assert_eq!(late.get(&links[1]).await.status, 404);
        let token = late.csrf("/account").await;
        let refused = late.post_with(&token, &links[1], &[]).await;
        assert_eq!(refused.status, 404);
        let members = example_app::team::member::Entity::find()
            .all(&db.conn)
            .await
            .unwrap();
        assert_eq!(
            members.len(),
            2,
            "the owner and the early member: {members:?}"
        );
        app.stop().await;
        db
    }
);

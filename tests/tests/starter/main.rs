//! The example app (the starter users copy), tried from outside over HTTP on
//! every database: sessions end at logout and at a password change, logins
//! and sign-ups are throttled, an unknown e-mail costs a verification like a
//! known one, every response carries the hardening headers, bad input is 422
//! with the input kept and no database text, and a team pays for its
//! members, whom its guard admits while it refuses everyone else.

use example_app::Settings;
use octany_actix_tests::db_test;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

mod billing;
mod browser;
mod carries;
mod console;
mod csrf;
mod limits;
mod signup;
mod teams;

use browser::*;

db_test!(
    async fn a_cookie_copied_before_logout_or_a_password_change_is_refused_after_it(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let ada = Browser::new(&app.url);
        // A key planted before login is not the one that is signed in.
        let token_before = ada.csrf("/login").await;
        let before_login = ada.cookie().expect("a session for the CSRF token");
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let signed_in = ada.cookie().unwrap();
        assert_ne!(before_login, signed_in, "the key is renewed at login");
        // So is the CSRF token: one read before login forges nothing after.
        assert_ne!(ada.csrf("/account").await, token_before);
        let forged = ada
            .send(
                ada.http
                    .post(format!("{}/logout", app.url))
                    .form(&[("csrf", token_before.as_str())]),
                "text/html",
            )
            .await;
        assert_eq!(forged.status, 403, "the token of before login is refused");
        let planted = Browser::new(&app.url);
        planted.set_cookie(Some(before_login));
        assert_eq!(planted.get_json("/billing/status").await.status, 401);

        pays(&app, &user(&db, 1).await).await;
        let status = ada.get_json("/billing/status").await;
        assert_eq!(
            (status.status, status.json()["access"].as_bool()),
            (200, Some(true))
        );

        // Logout: the copied cookie is worthless, and its row is gone.
        let copied = Browser::new(&app.url);
        copied.set_cookie(Some(signed_in));
        assert_eq!(copied.get_json("/billing/status").await.status, 200);
        let out = ada.post("/account", "/logout", &[]).await;
        assert_eq!((out.status, out.location()), (303, "/"));
        let replayed = copied.get_json("/billing/status").await;
        assert_eq!(replayed.status, 401, "{}", replayed.body);
        assert_eq!(
            copied.get("/dashboard").await.location(),
            "/login?next=%2Fdashboard"
        );

        // A password change ends every other session; this one goes on.
        let laptop = Browser::new(&app.url);
        let phone = Browser::new(&app.url);
        assert_eq!(laptop.login("ada@example.com", PASSWORD).await.status, 303);
        assert_eq!(phone.login("ada@example.com", PASSWORD).await.status, 303);
        let sessions_before = count(&db, "sessions").await;
        let changed = laptop
            .post(
                "/account",
                "/account/password",
                &[("current", PASSWORD), ("new", "violet kestrel harbour")],
            )
            .await;
        assert_eq!(changed.location(), "/account?done=password");
        assert_eq!(phone.get_json("/billing/status").await.status, 401);
        assert_eq!(laptop.get_json("/billing/status").await.status, 200);
        assert!(count(&db, "sessions").await < sessions_before);
        assert_eq!(
            Browser::new(&app.url)
                .login("ada@example.com", PASSWORD)
                .await
                .status,
            401
        );
        assert_eq!(
            Browser::new(&app.url)
                .login("ada@example.com", "violet kestrel harbour")
                .await
                .status,
            303
        );
        app.stop().await;
        db
    }
);

db_test!(
    async fn the_eleventh_wrong_password_in_a_minute_is_429(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |s| s.limits.signup_per_address = 3).await;
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let eve = Browser::new(&app.url);
        for attempt in 1..=10 {
            let wrong = eve.login("ada@example.com", "not the password").await;
            assert_eq!(wrong.status, 401, "attempt {attempt}");
        }
        let refused = eve.login("ada@example.com", "not the password").await;
        assert_eq!(refused.status, 429);
        let wait: u64 = refused.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert!(
            refused.body.contains("Too many attempts"),
            "{}",
            refused.body
        );
        // The right password waits too: the account is locked for the window.
        assert_eq!(eve.login("ada@example.com", PASSWORD).await.status, 429);
        // Other accounts from the same address are not locked by Ada's.
        let bob = Browser::new(&app.url);
        assert_eq!(bob.signup("bob@example.com").await.status, 303);
        assert_eq!(
            Browser::new(&app.url)
                .login("bob@example.com", PASSWORD)
                .await
                .status,
            303
        );
        // Twenty guesses at once: no more than ten are even tried.
        let guessers: Vec<Browser> = (0..20).map(|_| Browser::new(&app.url)).collect();
        let mut tokens = Vec::new();
        for g in &guessers {
            tokens.push(g.csrf("/login").await);
        }
        let answers =
            futures_util::future::join_all(guessers.iter().zip(&tokens).map(|(g, token)| {
                g.send(
                    g.http.post(format!("{}/login", app.url)).form(&[
                        ("csrf", token.as_str()),
                        ("email", "bob@example.com"),
                        ("password", "a wrong guess"),
                    ]),
                    "text/html",
                )
            }))
            .await;
        let tried = answers.iter().filter(|a| a.status == 401).count();
        let refused = answers.iter().filter(|a| a.status == 429).count();
        assert_eq!(tried + refused, 20);
        assert!(tried <= 10, "{tried} concurrent guesses were tried");
        // Sign-ups are limited per address (3 in this test): Ada, Bob, Cy, then no.
        assert_eq!(
            Browser::new(&app.url).signup("cy@example.com").await.status,
            303
        );
        let fourth = Browser::new(&app.url).signup("dee@example.com").await;
        assert_eq!(fourth.status, 429);
        assert!(fourth.headers.contains_key("retry-after"));
        assert_eq!(
            count(&db, "users").await,
            3,
            "the throttled sign-up made no account"
        );
        app.stop().await;
        db
    }
);

db_test!(
    async fn variants_of_an_accounts_email_share_its_attempts(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        assert_eq!(
            Browser::new(&app.url)
                .signup("carl@example.com")
                .await
                .status,
            303
        );
        // What the database matches to the account: case everywhere, and
        // accents too under MySQL's and MariaDB's default collation.
        let variants: &[&str] = if db.backend == octany_actix_tests::Backend::MySql {
            &[
                "cárl@example.com",
                "càrl@example.com",
                "cärl@example.com",
                "CÂRL@example.com",
            ]
        } else {
            &["CARL@example.com", "Carl@Example.com"]
        };
        let eve = Browser::new(&app.url);
        for attempt in 0..10 {
            let email = variants[attempt % variants.len()];
            let wrong = eve.login(email, "not the password").await;
            assert_eq!(wrong.status, 401, "attempt {attempt} as {email}");
        }
        // Ten attempts on the account, whatever it was typed as.
        assert_eq!(
            eve.login("carl@example.com", "not the password")
                .await
                .status,
            429
        );
        app.stop().await;
        db
    }
);

db_test!(
    async fn an_unknown_email_costs_a_verification_like_a_known_one(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::development(dir.path());
        let passwords = settings.passwords.clone();
        settings.limits.login_per_account = 100;
        let app = example_app::start_on(settings, db.app_connection().await)
            .await
            .unwrap();
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let before = passwords.verifications();
        let known = Browser::new(&app.url)
            .login("ada@example.com", "not the password")
            .await;
        let unknown = Browser::new(&app.url)
            .login("nobody@example.com", "not the password")
            .await;
        assert_eq!((known.status, unknown.status), (401, 401));
        assert_eq!(
            passwords.verifications() - before,
            2,
            "both verified a hash"
        );
        let words = |p: &Page| p.body.contains("Wrong e-mail or password.");
        assert!(words(&known) && words(&unknown));
        app.stop().await;
        db
    }
);

db_test!(
    async fn every_response_carries_the_hardening_headers(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let visitor = Browser::new(&app.url);
        let pages = [
            visitor.get("/pricing").await,
            visitor.get("/login").await,
            visitor.get("/no-such-page").await,
            visitor.get_json("/billing/status").await,
            visitor.get("/billing/success.js").await,
        ];
        assert_eq!(
            pages.iter().map(|p| p.status).collect::<Vec<_>>(),
            [200, 200, 404, 401, 200]
        );
        for page in &pages {
            let header = |name: &str| {
                page.headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
            assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
            assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"));
            let csp = header("content-security-policy").unwrap();
            assert!(
                csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
                "{csp}"
            );
        }
        // The 404 is the one error page, not actix's plain text.
        assert!(
            pages[2].body.contains(r#"id="error" data-status="404""#),
            "{}",
            pages[2].body
        );
        // The success page loads its script as a file, which the CSP allows.
        assert!(pages[4].body.contains("fetch(url"));
        app.stop().await;
        db
    }
);

db_test!(
    async fn bad_input_is_422_with_the_input_kept_and_no_database_text(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |s| s.limits.signup_per_address = 100).await;
        let visitor = Browser::new(&app.url);
        let long_name = "n".repeat(300);
        for (email, name, password, says) in [
            ("a@", "Ada", PASSWORD, "valid e-mail address"),
            ("ada@example.com", long_name.as_str(), PASSWORD, "too long"),
            (
                "ada@example.com",
                "Ada\0Lovelace",
                PASSWORD,
                "control characters",
            ),
            ("ada\0@example.com", "Ada", PASSWORD, "valid e-mail address"),
            ("ada@example.com", "Ada", "password123", "too easy to guess"),
            ("ada@example.com", "Ada", "short", "at least 10 characters"),
        ] {
            let page = visitor
                .post(
                    "/signup",
                    "/signup",
                    &[("email", email), ("name", name), ("password", password)],
                )
                .await;
            assert_eq!(page.status, 422, "{email:?} {name:?}: {}", page.body);
            assert!(page.body.contains(says), "{says}: {}", page.body);
            for leak in [
                "varying",
                "relation",
                "sqlx",
                "SQLSTATE",
                "syntax",
                "Data too long",
            ] {
                assert!(
                    !page.body.contains(leak),
                    "database text `{leak}` in the page"
                );
            }
            if email == "a@" {
                assert!(page.body.contains(r#"value="a@""#), "the input is kept");
            }
            assert!(
                !page.body.contains(password) || password == "short",
                "the password is not echoed"
            );
        }
        assert_eq!(count(&db, "users").await, 0);
        // The same sign-up posted twice makes one account: signup.rs.
        // The flash texts are fixed: a query cannot put words on the page.
        assert_eq!(visitor.signup("ada@example.com").await.status, 303);
        let account = visitor.get("/account?done=%3Cb%3Ehacked%3C%2Fb%3E").await;
        assert!(account.body.contains("Done.") && !account.body.contains("hacked"));
        // A team's name is checked the same way.
        let team = visitor
            .post("/teams", "/teams", &[("name", &long_name)])
            .await;
        assert_eq!(team.status, 422);
        assert!(
            team.body.contains(&"n".repeat(100)),
            "the input is kept (to the column's length)"
        );
        assert_eq!(count(&db, "teams").await, 0);
        // A database failure is the error page (or JSON), never the database's words.
        assert_eq!(
            visitor
                .post("/teams", "/teams", &[("name", "Ada's")])
                .await
                .status,
            303
        );
        db.conn
            .execute_unprepared("DROP TABLE team_invites")
            .await
            .unwrap();
        let broken = visitor.get("/team/account").await;
        assert_eq!(broken.status, 503);
        assert!(
            broken.body.contains("Something went wrong on our side"),
            "{}",
            broken.body
        );
        let json = visitor.get_json("/team/account").await;
        assert_eq!(
            (json.status, json.json()["error"].as_str()),
            (503, Some("unavailable"))
        );
        for page in [&broken, &json] {
            for leak in [
                "team_invites",
                "relation",
                "exist",
                "sqlx",
                "SQLSTATE",
                "no such table",
            ] {
                assert!(
                    !page.body.contains(leak),
                    "database text `{leak}` in {}",
                    page.body
                );
            }
        }
        app.stop().await;
        db
    }
);

db_test!(
    async fn a_request_in_flight_when_its_session_is_revoked_does_not_sign_it_back_in(db: TestDb) {
        use actix_session::storage::SessionStore;
        use example_app::sessions::{DbSessionStore, USER_KEY, revoke_user};
        let dir = tempfile::tempdir().unwrap();
        // The app, for its migrated tables and its clock.
        let app = start(&db, dir.path(), |_| {}).await;
        let store = DbSessionStore::new(db.conn.clone(), app.octany.clock().clone());
        let ttl = actix_web::cookie::time::Duration::days(1);
        let signed_in = std::collections::HashMap::from([
            (USER_KEY.to_owned(), "7".to_owned()),
            ("csrf".to_owned(), "\"token\"".to_owned()),
        ]);
        // Two devices signed in as user 7; a request of the first is in
        // flight (its state loaded) when the password is changed.
        let stolen = store.save(signed_in.clone(), &ttl).await.unwrap();
        let other = store.save(signed_in.clone(), &ttl).await.unwrap();
        let loaded = store.load(&stolen).await.unwrap().unwrap();
        assert_eq!(revoke_user(&db.conn, 7).await.unwrap(), 2);
        assert!(store.load(&other).await.unwrap().is_none());
        // The request ends and actix-session writes its state back.
        let written = store.update(stolen, loaded, &ttl).await.unwrap();
        let after = store
            .load(&written)
            .await
            .unwrap()
            .expect("a fresh session");
        assert!(!after.contains_key(USER_KEY), "signed out: {after:?}");
        let still_signed_in = example_app::sessions::Entity::find()
            .filter(example_app::sessions::Column::UserId.eq(7))
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(
            still_signed_in, 0,
            "no session of user 7 survives the change"
        );
        app.stop().await;
        db
    }
);

//! Sign-up is confirmed by a mailed link, so the form answers the same
//! for an address with an account as for a new one.

use std::sync::Arc;

use octany_actix::clock::ManualClock;
use octany_actix_tests::db_test;

use crate::browser::*;

/// A page with its per-session tokens (CSRF, 64 hex digits) blanked.
fn without_tokens(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find(r#"name="csrf" value=""#) {
        let end = at + r#"name="csrf" value=""#.len();
        out.push_str(&rest[..end]);
        rest = &rest[end + 64..];
    }
    out.push_str(rest);
    out
}

const CONFIRM: &str = "Confirm your e-mail address";
const KNOWN: &str = "You already have an account";

db_test!(
    async fn a_known_email_signs_up_like_a_new_one_and_changes_nothing(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = example_app::Settings::development(dir.path());
        let passwords = settings.passwords.clone();
        settings.limits.signup_per_address = 100;
        let app = example_app::start_on(settings, db.app_connection().await)
            .await
            .unwrap();
        assert_eq!(
            Browser::new(&app.url)
                .signup("ada@example.com")
                .await
                .status,
            303
        );
        let ada = user(&db, 1).await;
        let hashes = passwords.hashes();
        // Eve tries Ada's address, and a new one, as a stranger would.
        let (known, new) = (Browser::new(&app.url), Browser::new(&app.url));
        let form = |email| {
            [
                ("email", email),
                ("password", "a different horse battery"),
                ("name", "Eve"),
            ]
        };
        let known_answer = known
            .post("/signup", "/signup", &form("ada@example.com"))
            .await;
        let new_answer = new
            .post("/signup", "/signup", &form("new@example.com"))
            .await;
        for answer in [&known_answer, &new_answer] {
            assert_eq!(
                (answer.status, answer.location()),
                (303, "/signup/sent"),
                "{}",
                answer.body
            );
        }
        let (known_page, new_page) = (
            known.get("/signup/sent").await,
            new.get("/signup/sent").await,
        );
        assert_eq!(known_page.status, 200);
        assert_eq!(
            without_tokens(&known_page.body),
            without_tokens(&new_page.body)
        );
        assert!(known_page.body.contains("Check your e-mail"));
        assert_eq!(passwords.hashes() - hashes, 2, "both hashed the password");
        // Nothing changed for Ada: her account, her password; she is told.
        assert_eq!(count(&db, "users").await, 1);
        assert_eq!(user(&db, 1).await, ada);
        assert_eq!(count(&db, "signups").await, 1, "only the new address waits");
        let told = known.mailed_link("ada@example.com", KNOWN).await;
        assert_eq!(told, "/login");
        assert!(known.get("/dev/mail").await.body.matches(CONFIRM).count() == 2);
        // Ada's password still signs her in; Eve's does not.
        assert_eq!(
            Browser::new(&app.url)
                .login("ada@example.com", PASSWORD)
                .await
                .status,
            303
        );
        assert_eq!(
            Browser::new(&app.url)
                .login("ada@example.com", "a different horse battery")
                .await
                .status,
            401
        );
        app.stop().await;
        db
    }
);

db_test!(
    async fn a_signup_link_makes_one_account_once_and_not_after_a_day(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let app = start(&db, dir.path(), |s| s.clock = clock.clone()).await;
        // The same sign-up posted twice: two mails, and no account yet.
        let (first, second) = (Browser::new(&app.url), Browser::new(&app.url));
        let form = [("email", "zed@example.com"), ("password", PASSWORD)];
        for b in [&first, &second] {
            assert_eq!(
                b.post("/signup", "/signup", &form).await.location(),
                "/signup/sent"
            );
        }
        assert_eq!(count(&db, "users").await, 0);
        assert_eq!(
            first.login("zed@example.com", PASSWORD).await.status,
            401,
            "not before the link"
        );
        let links = first
            .mailed_links("zed@example.com", "Confirm your e-mail address")
            .await;
        assert_eq!(links.len(), 2);
        // Following the link shows a button; it makes nothing by itself.
        let shown = first.get(&links[0]).await;
        assert_eq!(shown.status, 200);
        assert!(shown.body.contains(r#"id="confirm""#));
        assert_eq!(
            count(&db, "users").await,
            0,
            "a mail scanner's visit makes nothing"
        );
        // Both links confirmed at once, from two browsers: one account.
        let (t1, t2) = (first.csrf(&links[0]).await, second.csrf(&links[1]).await);
        let (a, b) = tokio::join!(
            first.post_with(&t1, &links[0], &[]),
            second.post_with(&t2, &links[1], &[])
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [303, 410], "{} / {}", a.body, b.body);
        assert_eq!(count(&db, "users").await, 1);
        assert_eq!(
            count(&db, "signups").await,
            0,
            "the address's other links end with it"
        );
        let signed_in = if a.status == 303 { &first } else { &second };
        assert_eq!(signed_in.get("/account").await.status, 200);
        // A link works once.
        let again = Browser::new(&app.url);
        assert_eq!(again.get(&links[0]).await.status, 410);
        let token = again.csrf("/signup").await;
        assert_eq!(again.post_with(&token, &links[0], &[]).await.status, 410);
        // A link is good for a day.
        let late = Browser::new(&app.url);
        late.post(
            "/signup",
            "/signup",
            &[("email", "late@example.com"), ("password", PASSWORD)],
        )
        .await;
        let link = late
            .mailed_link("late@example.com", "Confirm your e-mail address")
            .await;
        clock.advance(std::time::Duration::from_secs(24 * 3600 + 1));
        let token = late.csrf("/signup").await;
        let expired = late.post_with(&token, &link, &[]).await;
        assert_eq!(expired.status, 410);
        assert!(expired.body.contains("used or has expired"));
        assert_eq!(count(&db, "users").await, 1);
        app.stop().await;
        db
    }
);

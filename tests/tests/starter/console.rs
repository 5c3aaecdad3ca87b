//! The starter's billing console: the first account (or `ADMIN_EMAIL`'s)
//! opens it; every other account gets 404, a visitor is sent to log in;
//! its actions are audited under the admin's e-mail.

use super::*;

db_test!(
    async fn only_the_admin_opens_the_console_and_acts_in_it(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let bo = Browser::new(&app.url);
        assert_eq!(bo.signup("bo@example.com").await.status, 303);
        pays(&app, &user(&db, 2).await).await;

        // A visitor is sent to log in; Bo, not the admin, finds nothing.
        let visitor = Browser::new(&app.url).get("/admin/billing").await;
        assert_eq!(visitor.status, 303);
        assert!(
            visitor.location().starts_with("/login"),
            "{}",
            visitor.location()
        );
        for path in [
            "/admin/billing",
            "/admin/billing/b/user%3A2",
            "/admin/billing/health",
        ] {
            let refused = bo.get(path).await;
            assert_eq!(refused.status, 404, "{path}");
            assert!(!refused.body.contains("Billing console"), "{path}");
        }
        // An account that never reached Octany is found by its e-mail too.
        let cy = Browser::new(&app.url);
        assert_eq!(cy.signup("cy@example.com").await.status, 303);
        let found = ada.get("/admin/billing?q=Cy%40Example.com").await;
        assert_eq!(
            (found.status, found.location()),
            (303, "/admin/billing/b/user%3A3")
        );
        let page = ada.get("/admin/billing/b/user%3A3").await;
        assert!(
            page.body.contains("denied: no subscription and no comp"),
            "{}",
            page.body
        );
        // Ada, the first account, finds Bo by e-mail and resyncs him.
        let found = ada.get("/admin/billing?q=bo%40example.com").await;
        assert_eq!(
            (found.status, found.location()),
            (303, "/admin/billing/b/user%3A2")
        );
        let page = ada.get("/admin/billing/b/user%3A2").await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("granted: active by subscription"),
            "{}",
            page.body
        );
        let at = page
            .body
            .find(r#"action="/admin/billing/b/user%3A2/resync""#)
            .unwrap();
        let token = octany_actix_tests::http::hidden(&page.body[at..], "token").unwrap();
        let form = [("token", token.as_str()), ("reason", "ticket 7")];
        // Bo cannot post Ada's form.
        let forged = bo
            .send(
                bo.http
                    .post(format!("{}/admin/billing/b/user%3A2/resync", app.url))
                    .form(&form),
                "text/html",
            )
            .await;
        assert_eq!(forged.status, 404);
        let done = ada
            .send(
                ada.http
                    .post(format!("{}/admin/billing/b/user%3A2/resync", app.url))
                    .form(&form),
                "text/html",
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        let audit = app
            .octany
            .audit(
                &octany_actix::model::BillableRef::parse("user:2").unwrap(),
                5,
            )
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (
                audit[0].actor.as_str(),
                audit[0].reason.as_str(),
                audit[0].outcome.as_str()
            ),
            ("ada@example.com", "ticket 7", "done")
        );
        app.stop().await;
        db
    }
);

db_test!(
    async fn admin_email_names_who_opens_the_console(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |s| {
            s.admin_email = Some("Bo@Example.com".into())
        })
        .await;
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        let bo = Browser::new(&app.url);
        assert_eq!(bo.signup("bo@example.com").await.status, 303);
        assert_eq!(
            ada.get("/admin/billing").await.status,
            404,
            "the first account is not the admin"
        );
        let page = bo.get("/admin/billing").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Billing console"));
        assert!(
            page.body.contains("bo@example.com"),
            "the console names who is signed in"
        );
        app.stop().await;
        db
    }
);

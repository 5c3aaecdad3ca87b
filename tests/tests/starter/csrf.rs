//! Every state-changing route of the starter and of the library's mounted
//! routes, tried with a forged and with a missing token (the starter's CSRF
//! field; the swap's intent and the cancel's token on the library's pages):
//! each is refused, and nothing changed.

use super::*;
use example_app::billing::Plans;

/// A form the starter posts: its path, the page it is posted from, and
/// its fields other than `csrf`.
struct Form {
    path: &'static str,
    fields: &'static [(&'static str, &'static str)],
}

const SIGNED_IN: &[Form] = &[
    Form {
        path: "/logout",
        fields: &[],
    },
    Form {
        path: "/account/swap",
        fields: &[("plan", "pro-yearly")],
    },
    Form {
        path: "/account/add-on",
        fields: &[("key", "forged-key-1")],
    },
    Form {
        path: "/account/password",
        fields: &[("current", PASSWORD), ("new", "violet kestrel harbour")],
    },
    Form {
        path: "/teams",
        fields: &[("name", "Forged AB")],
    },
    Form {
        path: "/teams/switch",
        fields: &[("team", "1")],
    },
    Form {
        path: "/team/invites",
        fields: &[("email", "forged@example.com")],
    },
    Form {
        path: "/team/cancel",
        fields: &[],
    },
    Form {
        path: "/invites/0000000000000000000000000000000000000000000000000000000000000000",
        fields: &[],
    },
];

const SIGNED_OUT: &[Form] = &[
    Form {
        path: "/signup",
        fields: &[
            ("email", "eve@example.com"),
            ("password", PASSWORD),
            ("name", "Eve"),
        ],
    },
    Form {
        path: "/login",
        fields: &[("email", "ada@example.com"), ("password", PASSWORD)],
    },
];

/// The library's confirmation forms: their token field.
const MOUNTED: &[(&str, &str)] = &[
    ("/billing/swap/pro-yearly", "intent"),
    ("/billing/cancel", "token"),
    ("/team/billing/cancel", "token"),
];

async fn post_raw(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Page {
    browser
        .send(
            browser
                .http
                .post(format!("{}{path}", browser.base))
                .form(fields),
            "text/html",
        )
        .await
}

db_test!(
    async fn every_state_changing_route_refuses_a_forged_or_missing_token(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let app = start(&db, dir.path(), |_| {}).await;
        let kit = kit(&app);
        let ada = Browser::new(&app.url);
        assert_eq!(ada.signup("ada@example.com").await.status, 303);
        assert_eq!(
            ada.post("/teams", "/teams", &[("name", "Engines AB")])
                .await
                .location(),
            "/team/account"
        );
        let team = example_app::team::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        kit.subscribe(&user(&db, 1).await, Plans::ProMonthly)
            .await
            .unwrap();
        kit.subscribe(&team, Plans::ProMonthly).await.unwrap();
        let before = (
            fake_state(&app),
            count(&db, "teams").await,
            count(&db, "team_invites").await,
        );

        for form in SIGNED_IN {
            for token in [None, Some("0".repeat(64))] {
                let mut fields: Vec<(&str, &str)> = form.fields.to_vec();
                if let Some(token) = &token {
                    fields.push(("csrf", token));
                }
                let answer = post_raw(&ada, form.path, &fields).await;
                assert_refused(&answer, form.path, &token);
            }
        }
        let stranger = Browser::new(&app.url);
        stranger.csrf("/login").await; // a session, with a token of its own
        for form in SIGNED_OUT {
            for token in [None, Some("0".repeat(64))] {
                let mut fields: Vec<(&str, &str)> = form.fields.to_vec();
                if let Some(token) = &token {
                    fields.push(("csrf", token));
                }
                let answer = post_raw(&stranger, form.path, &fields).await;
                assert_refused(&answer, form.path, &token);
            }
        }
        // The sign-up's confirmation, with a real link waiting.
        let posted = stranger
            .post(
                "/signup",
                "/signup",
                &[("email", "zed@example.com"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(posted.location(), "/signup/sent");
        let link = stranger
            .mailed_link("zed@example.com", "Confirm your e-mail address")
            .await;
        for token in [None, Some("0".repeat(64))] {
            let fields: Vec<(&str, &str)> = token.iter().map(|t| ("csrf", t.as_str())).collect();
            let answer = post_raw(&stranger, &link, &fields).await;
            assert_refused(&answer, &link, &token);
        }
        for (path, field) in MOUNTED {
            for token in [None, Some("0".repeat(64))] {
                let fields: Vec<(&str, &str)> =
                    token.iter().map(|t| (*field, t.as_str())).collect();
                let answer = post_raw(&ada, path, &fields).await;
                assert_eq!(
                    (answer.status, answer.location()),
                    (303, *path),
                    "{path} with {token:?}: asked to confirm on the page"
                );
            }
        }

        // Nothing changed: Octany's state, the teams, the invitations, the
        // sign-ups, the password, and Ada is still signed in.
        let after = (
            fake_state(&app),
            count(&db, "teams").await,
            count(&db, "team_invites").await,
        );
        assert_eq!(before, after);
        assert_eq!(count(&db, "users").await, 1, "no forged sign-up");
        assert_eq!(count(&db, "signups").await, 1, "the link still waits");
        assert_eq!(ada.get("/account").await.status, 200, "still signed in");
        let again = Browser::new(&app.url);
        assert_eq!(
            again.login("ada@example.com", PASSWORD).await.status,
            303,
            "the password is unchanged"
        );
        app.stop().await;
        db
    }
);

/// A forged token is 403; a form without the field is 400 (it cannot be
/// read) or 403.
fn assert_refused(answer: &Page, path: &str, token: &Option<String>) {
    let refused = match token {
        Some(_) => answer.status == 403,
        None => matches!(answer.status, 400 | 403),
    };
    assert!(
        refused,
        "{path} with {token:?}: {} {}",
        answer.status, answer.body
    );
}

/// What Octany holds: each subscription's product and status, and the orders.
fn fake_state(app: &example_app::Running) -> (Vec<(Option<i64>, String)>, usize) {
    let fake = app.fake.as_ref().unwrap();
    let subscriptions = fake
        .subscriptions()
        .iter()
        .map(|s| (s.product_id().map(|p| p.0), s.status.as_str().to_owned()))
        .collect();
    (subscriptions, fake.orders().len())
}

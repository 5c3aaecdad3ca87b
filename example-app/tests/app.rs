//! The example app over HTTP: forms refuse a missing CSRF token and change
//! nothing; bad logins and sign-ups are answered clearly; the CLI's
//! `migrate` and `doctor` work with nothing configured.

use std::process::Command;

use example_app::Settings;

fn settings(dir: &std::path::Path) -> Settings {
    Settings::development(dir)
}

fn browser() -> reqwest::Client {
    octany_actix::install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn csrf_of(client: &reqwest::Client, url: &str) -> String {
    let page = client
        .get(url)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at =
        page.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    page[at..at + 64].to_owned()
}

/// The link in the one mail caught in `dir`.
fn mailed_link(dir: &std::path::Path) -> String {
    let mut mails = std::fs::read_dir(dir).unwrap().flatten();
    let mail = mails.next().expect("a mail was caught");
    assert!(mails.next().is_none(), "one mail");
    let raw = std::fs::read_to_string(mail.path()).unwrap();
    example_app::mail::links(&raw)
        .into_iter()
        .next()
        .expect("a link in the mail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_sessions_token_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = example_app::start(settings(dir.path())).await.unwrap();
    let client = browser();
    let token = csrf_of(&client, &format!("{}/signup", app.url)).await;

    let forged = client
        .post(format!("{}/signup", app.url))
        .form(&[
            ("csrf", "0".repeat(64).as_str()),
            ("email", "eve@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("nothing was changed"));

    let short = client
        .post(format!("{}/signup", app.url))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "ada@example.com"),
            ("password", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 422);
    assert!(
        short
            .text()
            .await
            .unwrap()
            .contains("at least 10 characters")
    );

    let made = client
        .post(format!("{}/signup", app.url))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "ada@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            made.status().as_u16(),
            made.headers()["location"].to_str().unwrap()
        ),
        (303, "/signup/sent")
    );
    // The link mailed (caught in the data directory), then its button.
    let link = mailed_link(&dir.path().join("mail"));
    let token = csrf_of(&client, &link).await;
    let confirmed = client
        .post(&link)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            confirmed.status().as_u16(),
            confirmed.headers()["location"].to_str().unwrap()
        ),
        (303, "/pricing")
    );

    // Subscribe through the fake, then try to cancel without the token.
    let fake = app.fake.as_ref().unwrap();
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
    // The account page sends the cancel to the mounted confirmation page,
    // whose form carries its own token: a forged one changes nothing.
    let account = client
        .get(format!("{}/account", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("/billing/cancel?next="), "{account}");
    let forged = client
        .post(format!("{}/billing/cancel", app.url))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 303, "asked to confirm on the page");
    let subscription = &fake.subscriptions()[0];
    assert_eq!(
        subscription.status.as_str(),
        "active",
        "the forged cancel changed nothing at Octany"
    );

    let page = client
        .get(format!("{}/billing/cancel", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at =
        page.find(r#"name="token" value=""#).expect("the form") + r#"name="token" value=""#.len();
    let token = &page[at..at + 64];
    let cancelled = client
        .post(format!("{}/billing/cancel", app.url))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 303);
    assert_eq!(fake.subscriptions()[0].status.as_str(), "cancelled");

    // A wrong password is refused, without saying which part was wrong.
    let other = browser();
    let token = csrf_of(&other, &format!("{}/login", app.url)).await;
    let wrong = other
        .post(format!("{}/login", app.url))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "ada@example.com"),
            ("password", "correct horse battery!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong e-mail or password")
    );
    app.stop().await;
}

#[test]
fn migrate_and_doctor_work_with_nothing_configured() {
    let dir = tempfile::tempdir().unwrap();
    let run = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_example-app"))
            .arg(command)
            .env("EXAMPLE_DATA_DIR", dir.path())
            .env_remove("OCTANY_ACCOUNT")
            .env_remove("DATABASE_URL")
            .output()
            .expect("the binary runs")
    };
    let migrate = run("migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("applied 20 migration(s)"));
    let doctor = run("doctor");
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{report}");
    for line in [
        "ok   configuration",
        "ok   migrations: all applied",
        "ok   Octany: reachable",
        "ok   webhook secret",
    ] {
        assert!(report.contains(line), "missing `{line}` in:\n{report}");
    }
}

#[test]
fn weak_secrets_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_example-app"));
        command
            .arg("migrate")
            .env("EXAMPLE_DATA_DIR", dir.path())
            .env_remove("OCTANY_ACCOUNT")
            .env_remove("OCTANY_API_KEY")
            .env_remove("OCTANY_WEBHOOK_SECRET")
            .env_remove("SESSION_KEY")
            .env_remove("DATABASE_URL");
        for (name, value) in vars {
            command.env(name, value);
        }
        let output = command.output().expect("the binary runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let good_key = "7f3a9c".repeat(22);
    let strong_key = {
        // 64 bytes with 64 distinct values: passes the entropy check.
        (0u8..64)
            .map(|b| format!("{:02x}", b.wrapping_mul(37).wrapping_add(11)))
            .collect::<String>()
    };
    let account = [
        ("OCTANY_ACCOUNT", "8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1"),
        ("OCTANY_API_KEY", "key-for-the-test"),
        ("SESSION_KEY", strong_key.as_str()),
    ];
    let with = |secret: &str| {
        let mut vars = account.to_vec();
        vars.push(("OCTANY_WEBHOOK_SECRET", secret));
        run(&vars)
    };
    let (ok, said) = with("abc");
    assert!(!ok, "a 3-character webhook secret started the app");
    assert!(said.contains("shorter than 32 characters"), "{said}");
    let (ok, said) = run(&[("SESSION_KEY", &"00".repeat(64))]);
    assert!(!ok, "an all-zero session key started the app");
    assert!(
        said.contains("too little entropy") && said.contains("openssl rand -hex 64"),
        "{said}"
    );
    let (ok, said) = run(&[("SESSION_KEY", &good_key)]);
    assert!(!ok, "a repeated pattern is not a key: {said}");
    let (ok, said) = run(&[("SESSION_KEY", &strong_key)]);
    assert!(ok, "a strong key starts: {said}");
    let (ok, said) = with(&"s".repeat(32));
    // A 32-character secret passes the check (the migrate itself needs no Octany).
    assert!(ok, "{said}");
}

//! The example app in a real browser (headless Chromium): sign up → the
//! mailed link, caught → pricing → subscribe → the fake's checkout page → pay → the success page waits,
//! then the dashboard → the billing page and a receipt as PDF → the mails
//! caught → account → cancel → still in (grace) → the fake's
//! clock past the end → sent to pricing → log out, and back shows no page
//! → a team made, its plan bought, a member invited, who signs up, joins
//! and gets in → she buys a plan of her own, and its renewal fails while
//! the mail server is down → support (the first account) finds her by
//! e-mail in the billing console, reads her timeline, runs the failed
//! mail again and sees the audit entry. Screenshots of each step go to
//! `target/e2e-screenshots/`; a failure names its step.

use std::path::Path;
use std::time::{Duration, Instant};

use chromiumoxide::{Browser, BrowserConfig};
use example_app::Settings;
use futures_util::StreamExt;

const CHROMIUM: &str = "/usr/bin/chromium";

#[path = "browser/run.rs"]
mod run;

use run::{Run, screenshots_dir, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_subscribes_cancels_and_expires_in_a_real_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "this test drives Debian's Chromium: install it with `apt-get install chromium` (.ci/run does)"
    );
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::development(data.path());
    let app = example_app::start(settings).await.expect("the app starts");
    let fake = app
        .fake
        .as_ref()
        .expect("no account configured: the fake runs");
    let (control, base) = (fake.control_url(), app.url.clone());

    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .no_sandbox()
        .new_headless_mode()
        .user_data_dir(profile.path())
        .args([
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ])
        .build()
        .expect("a browser configuration");
    let (mut browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.expect("a tab");
    let mut run = Run {
        page,
        shots: screenshots_dir(),
        taken: 0,
    };

    step("sign up", async {
        run.page.goto(format!("{base}/signup")).await?;
        run.fill("input[name=name]", "Ada Lovelace").await?;
        run.fill("input[name=email]", "ada@example.com").await?;
        run.fill("input[name=password]", "correct horse battery")
            .await?;
        run.click_to("#submit", Duration::from_secs(10), |u| {
            u.ends_with("/signup/sent")
        })
        .await?;
        run.shot("signup-sent").await?;
        run.confirm_signup("ada@example.com", |u| u.ends_with("/pricing"))
            .await?;
        let page = run.text().await?;
        assert!(
            page.contains("fake Octany"),
            "the banner says it runs against the fake"
        );
        assert!(page.contains("123,75 kr"), "prices include VAT");
        run.shot("pricing").await
    })
    .await;

    step("subscribe: to the fake's checkout page", async {
        run.click_to("#plan-pro-monthly a.button", Duration::from_secs(10), |u| {
            u.contains("/checkout/") && u.contains("/product/1225")
        })
        .await?;
        assert!(run.text().await?.contains("Pro monthly"));
        run.shot("fake-checkout").await
    })
    .await;

    step(
        "pay, wait on the success page, land on the dashboard",
        async {
            run.click_to("button[value=succeed]", Duration::from_secs(10), |u| {
                u.contains("/billing/success") || u.ends_with("/dashboard")
            })
            .await?;
            run.shot("success-page").await?;
            run.until_url(Duration::from_secs(30), |u| u.ends_with("/dashboard"))
                .await?;
            assert!(run.text().await?.contains("Pro monthly"));
            run.shot("dashboard").await
        },
    )
    .await;

    step("the billing page, and a receipt opened as PDF", async {
        // The first order arrives by its own webhook: wait until it shows.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            run.page.goto(format!("{base}/billing")).await?;
            run.until_url(Duration::from_secs(10), |u| u.ends_with("/billing"))
                .await?;
            let page = run.text().await?;
            if page.contains("/pdf\"") {
                assert!(page.contains("Active; renews on"), "the plan's state");
                assert!(page.contains("Update card"), "Octany's portal link");
                break;
            }
            if Instant::now() > deadline {
                return Err("no receipt link on the billing page".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        run.shot("billing-page").await?;
        let opened: String = run
            .page
            .evaluate(
                "(async () => { const a = document.querySelector('#orders a[href$=\"/pdf\"]'); \
                 const r = await fetch(a.href); const b = new Uint8Array(await r.arrayBuffer()); \
                 return r.status + ' ' + r.headers.get('content-type') + ' ' + String.fromCharCode(...b.slice(0, 5)); })()",
            )
            .await?
            .into_value()?;
        assert_eq!(opened, "200 application/pdf %PDF-");
        let receipt = run
            .page
            .evaluate("document.querySelector('#orders a[href$=\"/pdf\"]').href.replace(/\\/pdf$/, '')")
            .await?
            .into_value::<String>()?;
        run.page.goto(format!("{receipt}?lang=sv")).await?;
        run.until_url(Duration::from_secs(10), |u| u.contains("/billing/receipts/"))
            .await?;
        let page = run.text().await?;
        assert!(page.contains("Kvitto") && page.contains("Moms 25 %"), "{page}");
        run.shot("receipt").await
    })
    .await;

    step("the mails the customer got, caught in development", async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            run.page.goto(format!("{base}/dev/mail")).await?;
            run.until_url(Duration::from_secs(10), |u| u.ends_with("/dev/mail"))
                .await?;
            let page = run.text().await?;
            if page.contains("Receipt ") {
                assert!(page.contains("ada@example.com"), "{page}");
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("no receipt mail caught: {page}").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        run.shot("caught-mail").await?;
        run.click_to("#caught-mail a", Duration::from_secs(10), |u| {
            u.contains("/dev/mail/")
        })
        .await?;
        let mail = run.text().await?;
        assert!(
            mail.contains("application/pdf"),
            "the receipt's PDF is attached"
        );
        Ok(())
    })
    .await;

    step("account page", async {
        run.page.goto(format!("{base}/account")).await?;
        let page = run.text().await?;
        assert!(
            page.contains("active") && page.contains("stripe"),
            "the subscription and its billing method"
        );
        run.shot("account").await
    })
    .await;

    step("cancel, confirmed on the mounted page", async {
        run.click_to("#cancel", Duration::from_secs(10), |u| {
            u.contains("/billing/cancel")
        })
        .await?;
        assert!(run.text().await?.contains("Nothing more is charged"));
        run.shot("cancel-confirm").await?;
        run.click_to("#confirm-cancel", Duration::from_secs(10), |u| {
            u.contains("/account?done=cancelled")
        })
        .await?;
        assert!(run.text().await?.contains("cancelled"));
        run.shot("cancelled").await
    })
    .await;

    step("the dashboard still opens during the grace period", async {
        run.page.goto(format!("{base}/dashboard")).await?;
        let url = run
            .until_url(Duration::from_secs(10), |u| {
                !u.is_empty() && u != "about:blank"
            })
            .await?;
        assert!(url.ends_with("/dashboard"), "at {url}");
        run.shot("grace-period").await
    })
    .await;

    step("move the fake's clock past the end", async {
        let client = reqwest::Client::new();
        for query in ["months=1", "days=1"] {
            let moved = client
                .post(format!("{control}clock/advance?{query}"))
                .send()
                .await?;
            assert!(moved.status().is_success());
        }
        run.page.goto(control.clone()).await?;
        run.shot("fake-control-page").await
    })
    .await;

    step("the dashboard sends the user to pricing", async {
        run.page.goto(format!("{base}/dashboard")).await?;
        let url = run
            .until_url(Duration::from_secs(10), |u| u.ends_with("/pricing"))
            .await?;
        assert!(url.ends_with("/pricing"));
        run.shot("after-expiry").await
    })
    .await;

    step("log out, then back: the page is not shown again", async {
        run.page.goto(format!("{base}/account")).await?;
        run.until_url(Duration::from_secs(10), |u| u.ends_with("/account"))
            .await?;
        run.click_to("header form button", Duration::from_secs(10), |u| {
            u.ends_with("/pricing")
        })
        .await?;
        run.page.evaluate("history.back()").await?;
        let url = run
            .until_url(Duration::from_secs(10), |u| u.contains("/login"))
            .await?;
        assert!(url.contains("next=%2Faccount"), "at {url}");
        run.shot("back-after-logout").await
    })
    .await;

    step("log in again, make a team, buy its plan", async {
        run.fill("input[name=email]", "ada@example.com").await?;
        run.fill("input[name=password]", "correct horse battery")
            .await?;
        run.click_to("#submit", Duration::from_secs(10), |u| {
            u.ends_with("/account")
        })
        .await?;
        run.page.goto(format!("{base}/teams")).await?;
        run.fill("#team-name", "Analytical Engines").await?;
        run.click_to("#create-team", Duration::from_secs(10), |u| {
            u.ends_with("/team/account")
        })
        .await?;
        run.shot("team-account").await?;
        run.click_to("#team-plans", Duration::from_secs(10), |u| {
            u.ends_with("/team/pricing")
        })
        .await?;
        assert!(run.text().await?.contains("Plans for Analytical Engines"));
        run.shot("team-pricing").await?;
        run.click_to("#plan-pro-monthly a.button", Duration::from_secs(10), |u| {
            u.contains("/product/1225")
        })
        .await?;
        run.click_to("button[value=succeed]", Duration::from_secs(10), |u| {
            u.contains("/billing/success") || u.ends_with("/team")
        })
        .await?;
        run.until_url(Duration::from_secs(30), |u| u.ends_with("/team"))
            .await?;
        assert!(run.text().await?.contains("every member gets in"));
        run.shot("team-dashboard").await
    })
    .await;

    let link = step("invite a member: the link is shown", async {
        run.page.goto(format!("{base}/team/account")).await?;
        run.fill("#invite-email", "grace@example.com").await?;
        run.click_to("#invite", Duration::from_secs(10), |u| {
            u.contains("done=invited")
        })
        .await?;
        let link = run
            .page
            .find_element("#invite-link")
            .await?
            .inner_text()
            .await?
            .ok_or("no invitation link")?;
        run.shot("team-invited").await?;
        run.click_to("header form button", Duration::from_secs(10), |u| {
            u.ends_with("/pricing")
        })
        .await?;
        Ok(link)
    })
    .await;

    step("the invited member signs up, joins, and gets in", async {
        run.page.goto(link.clone()).await?;
        assert!(run.text().await?.contains("grace@example.com"));
        run.shot("invitation").await?;
        run.click_to("#signup-to-join", Duration::from_secs(10), |u| {
            u.contains("/signup")
        })
        .await?;
        run.fill("input[name=name]", "Grace Hopper").await?;
        run.fill("input[name=email]", "grace@example.com").await?;
        run.fill("input[name=password]", "compiler moth nanosecond")
            .await?;
        run.click_to("#submit", Duration::from_secs(10), |u| {
            u.ends_with("/signup/sent")
        })
        .await?;
        run.confirm_signup("grace@example.com", |u| u.contains("/invites/"))
            .await?;
        run.click_to("#accept", Duration::from_secs(10), |u| u.ends_with("/team"))
            .await?;
        let page = run.text().await?;
        assert!(page.contains("Analytical Engines") && page.contains("Pro monthly"));
        run.shot("member-in-team").await?;
        // Her own (personal) billing has no plan: the personal dashboard is closed.
        run.page.goto(format!("{base}/dashboard")).await?;
        run.until_url(Duration::from_secs(10), |u| u.ends_with("/pricing"))
            .await?;
        Ok(())
    })
    .await;

    step("a customer buys a plan; the console is not hers", async {
        run.page.goto(format!("{base}/pricing")).await?;
        run.click_to("#plan-basic a.button", Duration::from_secs(10), |u| {
            u.contains("/product/1227")
        })
        .await?;
        run.click_to("button[value=succeed]", Duration::from_secs(10), |u| {
            u.contains("/billing/success") || u.ends_with("/dashboard")
        })
        .await?;
        run.until_url(Duration::from_secs(30), |u| u.ends_with("/dashboard"))
            .await?;
        run.page.goto(format!("{base}/admin/billing")).await?;
        run.until_url(Duration::from_secs(10), |u| u.ends_with("/admin/billing"))
            .await?;
        let page = run.text().await?;
        assert!(!page.contains("Billing console"), "{page}");
        run.shot("console-refused").await
    })
    .await;

    // The mail server goes down (the caught-mail directory becomes a
    // file), and her card is declined at the renewal.
    let mail_dir = data.path().join("mail");
    let away = data.path().join("mail-away");
    std::fs::rename(&mail_dir, &away).unwrap();
    std::fs::write(&mail_dir, b"the mail server is down").unwrap();
    let grace_sub = fake
        .subscriptions()
        .into_iter()
        .find(|s| s.reference_id.as_deref() == Some("user:2"))
        .expect("her subscription at the fake");
    fake.set_card_failing(&grace_sub.id, true).unwrap();

    step("her renewal fails; support finds her by e-mail", async {
        let client = reqwest::Client::new();
        for query in ["months=1", "days=1"] {
            let moved = client
                .post(format!("{control}clock/advance?{query}"))
                .send()
                .await?;
            assert!(moved.status().is_success());
        }
        run.page.goto(format!("{base}/account")).await?;
        run.until_url(Duration::from_secs(10), |u| u.ends_with("/account"))
            .await?;
        run.click_to("header form button", Duration::from_secs(10), |u| {
            u.ends_with("/pricing")
        })
        .await?;
        run.page.goto(format!("{base}/login")).await?;
        run.fill("input[name=email]", "ada@example.com").await?;
        run.fill("input[name=password]", "correct horse battery")
            .await?;
        run.click_to("#submit", Duration::from_secs(10), |u| {
            !u.contains("/login")
        })
        .await?;
        run.page.goto(format!("{base}/admin/billing")).await?;
        run.until_url(Duration::from_secs(10), |u| u.ends_with("/admin/billing"))
            .await?;
        run.shot("console-search").await?;
        run.fill("input[name=q]", "grace@example.com").await?;
        run.click_to("button[type=submit]", Duration::from_secs(10), |u| {
            u.contains("/admin/billing/b/user%3A2")
        })
        .await?;
        // The failed mail shows once the renewal's webhooks have arrived.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = run.text().await?;
            if page.contains("listener failed") {
                assert!(page.contains("payment.failed"), "{page}");
                assert!(
                    page.contains("the renewal failed and Octany retries"),
                    "the guard's reason: {page}"
                );
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("no failed listener on her timeline: {page}").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            run.page.reload().await?;
        }
        run.shot("console-timeline").await
    })
    .await;

    std::fs::remove_file(&mail_dir).unwrap();
    std::fs::rename(&away, &mail_dir).unwrap();

    step("the mail server is back: support runs the failed mail again", async {
        run.page
            .evaluate(
                "[...document.querySelectorAll('#timeline tr.event')].find(r => r.innerText.includes('listener failed')) \
                 .querySelector('input[name=reason]').id = 'retry-reason'",
            )
            .await?;
        run.fill("#retry-reason", "ticket 31: no payment mail").await?;
        run.page
            .evaluate("document.querySelector('#retry-reason').form.querySelector('button').id = 'retry'")
            .await?;
        run.click_to("#retry", Duration::from_secs(10), |u| u.contains("done="))
            .await?;
        let page = run.text().await?;
        assert!(page.contains("retry_listeners by ada@example.com"), "{page}");
        assert!(page.contains("ticket 31: no payment mail"), "{page}");
        run.shot("console-retried").await
    })
    .await;

    browser.close().await.ok();
    events.abort();
    app.stop().await;
}

//! The example app in a real browser (headless Chromium): sign up → the
//! mailed link, caught → pricing → subscribe → the fake's checkout page → pay → the success page waits,
//! then the dashboard → the billing page and a receipt as PDF → the mails
//! caught → account → cancel → still in (grace) → the fake's
//! clock past the end → sent to pricing → log out, and back shows no page
//! → a team made, its plan bought, a member invited, who signs up, joins
//! and gets in. Screenshots of each step go to
//! `target/e2e-screenshots/`; a failure names its step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use example_app::Settings;
use futures_util::StreamExt;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const CHROMIUM: &str = "/usr/bin/chromium";

struct Run {
    page: Page,
    shots: PathBuf,
    taken: usize,
}

impl Run {
    async fn shot(&mut self, name: &str) -> Result {
        self.taken += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.taken));
        self.page
            .save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
            .await?;
        Ok(())
    }

    async fn url(&self) -> String {
        self.page.url().await.ok().flatten().unwrap_or_default()
    }

    /// Waits (up to `within`) until the page's URL passes `test` and its
    /// document has loaded; the page
    /// moves on its own (redirects, the success page's polling).
    async fn until_url(&self, within: Duration, test: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let url = self.url().await;
            // The URL changes before the new document has loaded: wait for
            // both, or the next read may see the page being left.
            if test(&url) && self.loaded().await {
                return Ok(url);
            }
            if Instant::now() > deadline {
                return Err(format!("the page stayed at {url}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `selector`, which leads to another page, and waits (up to
    /// `within`) until a new document whose URL passes `test` has loaded.
    /// The document clicked in is marked first, so that neither its URL
    /// (a `?next=` may name the page to come) nor its nodes are taken for
    /// the next page's.
    async fn click_to(
        &self,
        selector: &str,
        within: Duration,
        test: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.page.evaluate("window.octanyLeft = true").await?;
        self.click(selector).await?;
        let deadline = Instant::now() + within;
        loop {
            let url = self.url().await;
            if test(&url) && self.fresh().await {
                return Ok(url);
            }
            if Instant::now() > deadline {
                return Err(format!("no new page passed the test; at {url}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the current document is not the one marked by
    /// [`Run::click_to`] and has finished loading.
    async fn fresh(&self) -> bool {
        let check = "window.octanyLeft !== true && document.readyState === 'complete'";
        match self.page.evaluate(check).await {
            Ok(fresh) => fresh.into_value::<bool>().unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Whether the current document has finished loading.
    async fn loaded(&self) -> bool {
        match self.page.evaluate("document.readyState").await {
            Ok(state) => state.into_value::<String>().is_ok_and(|s| s == "complete"),
            Err(_) => false,
        }
    }

    async fn fill(&self, selector: &str, text: &str) -> Result {
        self.page
            .find_element(selector)
            .await?
            .click()
            .await?
            .type_str(text)
            .await?;
        Ok(())
    }

    async fn click(&self, selector: &str) -> Result {
        self.page.find_element(selector).await?.click().await?;
        Ok(())
    }

    async fn text(&self) -> Result<String> {
        Ok(self.page.content().await?)
    }

    /// After the sign-up form, as a person would: "check your e-mail", the
    /// caught mail to `to`, its link, its button; then waits for a new
    /// page whose URL passes `test`.
    async fn confirm_signup(&self, to: &str, test: impl Fn(&str) -> bool) -> Result<String> {
        let within = Duration::from_secs(10);
        self.click_to("#open-caught-mail", within, |u| u.ends_with("/dev/mail"))
            .await?;
        self.page
            .evaluate(format!(
                "[...document.querySelectorAll('#caught-mail tr')].find(r => r.cells[0] \
                 && r.cells[0].innerText.trim() === '{to}' && r.innerText.includes('Confirm your e-mail')) \
                 .querySelector('a').id = 'confirm-mail'"
            ))
            .await?;
        self.click_to("#confirm-mail", within, |u| u.contains("/dev/mail/"))
            .await?;
        self.click_to("#links a", within, |u| u.contains("/signup/confirm/"))
            .await?;
        self.click_to("#confirm", within, test).await
    }
}

/// Runs one named step; a failure says which.
async fn step<T>(name: &str, work: impl std::future::Future<Output = Result<T>>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), work).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("step `{name}` failed: {error}"),
        Err(_) => panic!("step `{name}` took more than a minute"),
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a screenshots directory");
    dir
}

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

    browser.close().await.ok();
    events.abort();
    app.stop().await;
}

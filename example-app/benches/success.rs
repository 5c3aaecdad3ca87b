//! `cargo bench -p example-app --bench success`: the success page's wait,
//! measured in a real browser (Debian's headless Chromium) against two
//! copies of the starter in this process, side by side in one run: one
//! that polls the status route every 2.5 s (`STATUS_STREAM=off`, the page
//! as it was) and one that holds the status stream open.
//!
//! Each round signs a new person up, buys Pro monthly at the in-process
//! fake's checkout page, and the fake settles the payment 1 to 4 s later
//! (a seeded draw, the same for both apps): with its webhooks, or with none
//! (the app must find it by polling Octany). It prints, per app and case,
//! the time from the payment's settlement to the browser leaving the
//! success page (the dashboard's `performance.timeOrigin`: when its
//! navigation began), as p50 / p95 / max, and the status requests the page
//! made. Then one page per app waits 25 s on a payment that does not
//! settle, and the status requests it made meanwhile (from the pay click)
//! are counted.
//!
//! The settlement instant is the pay click plus the delay, so the figures
//! include the click's own round trip (a few ms): they bound the time from
//! the webhook's commit from above. The fake's clock is moved with real
//! time (its throttles and the cache's TTL are judged on it).
//!
//! `BENCH_ROUNDS` (default 20) sets the rounds per case.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chromiumoxide::cdp::browser_protocol::network::{
    ClearBrowserCookiesParams, EventRequestWillBeSent,
};
use chromiumoxide::{Browser, BrowserConfig, Page};
use example_app::{Running, Settings};
use futures_util::StreamExt;
use octany_fake::Faults;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Milliseconds since the epoch, as the browser's `performance.timeOrigin`.
fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// One copy of the starter.
struct App {
    name: &'static str,
    running: Running,
    _data: tempfile::TempDir,
}

async fn start(name: &'static str, stream: bool) -> App {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::development(data.path());
    settings.status_stream = stream;
    settings.limits.signup_per_address = 1_000_000;
    let running = example_app::start(settings).await.expect("the app starts");
    // The fake's clock moves with real time.
    let fake = running.fake.clone().expect("the in-process fake");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            fake.advance(Duration::from_millis(20));
        }
    });
    App {
        name,
        running,
        _data: data,
    }
}

/// Waits (up to 60 s) until the page's document passes `test` on its URL
/// and has loaded; the check runs every 5 ms.
async fn until(page: &Page, test: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let url = page.url().await.ok().flatten().unwrap_or_default();
        if test(&url) {
            let state = page.evaluate("document.readyState").await;
            if state.is_ok_and(|s| s.into_value::<String>().is_ok_and(|s| s == "complete")) {
                return Ok(url);
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("stayed at {url}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn fill(page: &Page, selector: &str, text: &str) -> Result {
    page.find_element(selector)
        .await?
        .click()
        .await?
        .type_str(text)
        .await?;
    Ok(())
}

/// A new person signs up and opens the fake's checkout page for Pro monthly.
async fn to_checkout(page: &Page, base: &str, n: usize) -> Result {
    page.execute(ClearBrowserCookiesParams::default()).await?;
    page.goto(format!("{base}/signup")).await?;
    until(page, |u| u.ends_with("/signup")).await?;
    fill(page, "input[name=name]", "Bench Person").await?;
    fill(page, "input[name=email]", &format!("bench{n}@example.com")).await?;
    fill(page, "input[name=password]", "correct horse battery").await?;
    page.find_element("#submit").await?.click().await?;
    until(page, |u| u.ends_with("/signup/sent")).await?;
    // The link mailed to them, caught at /dev/mail, and its button.
    page.goto(format!("{base}/dev/mail")).await?;
    let mail: String = page
        .evaluate(format!(
            "[...document.querySelectorAll('#caught-mail tr')].find(r => r.cells[0] \
             && r.cells[0].innerText.trim() === 'bench{n}@example.com').querySelector('a').href"
        ))
        .await?
        .into_value()?;
    page.goto(mail).await?;
    let link: String = page
        .evaluate("document.querySelector('#links a').href")
        .await?
        .into_value()?;
    page.goto(link).await?;
    page.find_element("#confirm").await?.click().await?;
    until(page, |u| u.ends_with("/pricing")).await?;
    page.find_element("#plan-pro-monthly a.button")
        .await?
        .click()
        .await?;
    until(page, |u| u.contains("/product/1225")).await?;
    Ok(())
}

/// Counts the page's requests to the status route (polls and streams)
/// until the returned task is aborted.
fn count_status_requests(page: &Page, counter: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    let page = page.clone();
    tokio::spawn(async move {
        let Ok(mut requests) = page.event_listener::<EventRequestWillBeSent>().await else {
            return;
        };
        while let Some(request) = requests.next().await {
            if request.request.url.contains("/billing/status") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
}

/// One round: pays with settlement `delay` later (`webhooks` or none);
/// the ms from settlement to leaving the success page, and the status
/// requests made.
async fn round(
    app: &App,
    page: &Page,
    n: usize,
    delay: Duration,
    webhooks: bool,
) -> Result<(f64, usize)> {
    let base = app.running.url.clone();
    let fake = app.running.fake.as_ref().expect("the fake");
    to_checkout(page, &base, n).await?;
    fake.set_faults(Faults {
        settlement_delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        settlement_without_webhooks: !webhooks,
        ..Faults::none()
    });
    let counter = Arc::new(AtomicUsize::new(0));
    let counting = count_status_requests(page, counter.clone());
    let paid_at = epoch_ms();
    page.find_element("button[value=succeed]")
        .await?
        .click()
        .await?;
    until(page, |u| u.ends_with("/dashboard")).await?;
    let left: f64 = page
        .evaluate("performance.timeOrigin")
        .await?
        .into_value()?;
    fake.set_faults(Faults::none());
    counting.abort();
    let settled = paid_at + delay.as_secs_f64() * 1000.0;
    Ok((left - settled, counter.load(Ordering::SeqCst)))
}

/// Status requests a page made in 25 s of waiting on a payment that does
/// not settle.
async fn quiet(app: &App, page: &Page, n: usize) -> Result<usize> {
    let fake = app.running.fake.as_ref().expect("the fake");
    to_checkout(page, &app.running.url, n).await?;
    fake.set_faults(Faults {
        settlement_delay_ms: 600_000,
        ..Faults::none()
    });
    let counter = Arc::new(AtomicUsize::new(0));
    let counting = count_status_requests(page, counter.clone());
    page.find_element("button[value=succeed]")
        .await?
        .click()
        .await?;
    until(page, |u| u.contains("/billing/success")).await?;
    // Measured in real time: the page's own timers run in it.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let made = counter.load(Ordering::SeqCst);
    counting.abort();
    page.goto("about:blank").await?;
    fake.set_faults(Faults::none());
    Ok(made)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A small seeded generator (xorshift), so both apps see the same delays.
struct Draw(u64);

impl Draw {
    fn delay(&mut self) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(1_000 + self.0 % 3_001)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("this bench drives Debian's Chromium: apt-get install chromium");
        std::process::exit(2);
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let apps = [start("polling", false).await, start("stream", true).await];

    let profile = tempfile::tempdir()?;
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
        ])
        .build()?;
    let (mut browser, mut handler) = Browser::launch(config).await?;
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await?;

    println!(
        "success-page wait: {rounds} rounds per case, settlement 1-4 s after the pay click; \
         SQLite, the in-process fake, Chromium {}",
        browser
            .version()
            .await
            .map(|v| v.product)
            .unwrap_or_default()
    );
    let mut n = 0;
    for webhooks in [true, false] {
        let mut latencies = [Vec::new(), Vec::new()];
        let mut requests = [0usize, 0usize];
        let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
        for _ in 0..rounds {
            let delay = draw.delay();
            // Side by side: the same delay for each app, in turn.
            for (i, app) in apps.iter().enumerate() {
                n += 1;
                let (ms, made) = round(app, &page, n, delay, webhooks).await?;
                latencies[i].push(ms);
                requests[i] += made;
            }
        }
        let case = if webhooks {
            "with webhooks"
        } else {
            "no webhook (poll only)"
        };
        for (i, app) in apps.iter().enumerate() {
            let mut sorted = latencies[i].clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "  {case:<24} {:<8} settled -> left: p50 {:>6.0} ms  p95 {:>6.0} ms  max {:>6.0} ms  ({:.1} status requests a page)",
                app.name,
                percentile(&sorted, 50.0),
                percentile(&sorted, 95.0),
                sorted.last().copied().unwrap_or(f64::NAN),
                requests[i] as f64 / rounds as f64,
            );
        }
    }
    for app in &apps {
        n += 1;
        let made = quiet(app, &page, n).await?;
        println!(
            "  nothing settles, 25 s  {:<8} {made} status request(s) from the waiting page",
            app.name
        );
    }
    browser.close().await?;
    events.abort();
    for app in apps {
        app.running.stop().await;
    }
    Ok(())
}

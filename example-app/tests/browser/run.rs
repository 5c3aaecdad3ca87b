//! The browser test's hands: a tab that follows pages as a person would,
//! named steps, screenshots.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::page::ScreenshotParams;

pub(crate) type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) struct Run {
    pub(crate) page: Page,
    pub(crate) shots: PathBuf,
    pub(crate) taken: usize,
}

impl Run {
    pub(crate) async fn shot(&mut self, name: &str) -> Result {
        self.taken += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.taken));
        self.page
            .save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
            .await?;
        Ok(())
    }

    pub(crate) async fn url(&self) -> String {
        self.page.url().await.ok().flatten().unwrap_or_default()
    }

    /// Waits (up to `within`) until the page's URL passes `test` and its
    /// document has loaded; the page
    /// moves on its own (redirects, the success page's polling).
    pub(crate) async fn until_url(
        &self,
        within: Duration,
        test: impl Fn(&str) -> bool,
    ) -> Result<String> {
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
    pub(crate) async fn click_to(
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
    pub(crate) async fn fresh(&self) -> bool {
        let check = "window.octanyLeft !== true && document.readyState === 'complete'";
        match self.page.evaluate(check).await {
            Ok(fresh) => fresh.into_value::<bool>().unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Whether the current document has finished loading.
    pub(crate) async fn loaded(&self) -> bool {
        match self.page.evaluate("document.readyState").await {
            Ok(state) => state.into_value::<String>().is_ok_and(|s| s == "complete"),
            Err(_) => false,
        }
    }

    pub(crate) async fn fill(&self, selector: &str, text: &str) -> Result {
        self.page
            .find_element(selector)
            .await?
            .click()
            .await?
            .type_str(text)
            .await?;
        Ok(())
    }

    pub(crate) async fn click(&self, selector: &str) -> Result {
        self.page.find_element(selector).await?.click().await?;
        Ok(())
    }

    pub(crate) async fn text(&self) -> Result<String> {
        Ok(self.page.content().await?)
    }

    /// After the sign-up form, as a person would: "check your e-mail", the
    /// caught mail to `to`, its link, its button; then waits for a new
    /// page whose URL passes `test`.
    pub(crate) async fn confirm_signup(
        &self,
        to: &str,
        test: impl Fn(&str) -> bool,
    ) -> Result<String> {
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
pub(crate) async fn step<T>(name: &str, work: impl std::future::Future<Output = Result<T>>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), work).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("step `{name}` failed: {error}"),
        Err(_) => panic!("step `{name}` took more than a minute"),
    }
}

pub(crate) fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a screenshots directory");
    dir
}

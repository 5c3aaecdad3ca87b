//! Calling the starter as a browser would (one cookie, the CSRF field of
//! each form), and the set-up its tests share: the app on a test database,
//! the test kit on its fake.

use std::sync::Mutex;

use example_app::Settings;
use example_app::billing::Plans;
use octany_actix::Billable;
use octany_actix_tests::TestDb;
use octany_fake::testing::TestBilling;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use sea_orm::{ConnectionTrait, EntityTrait};

/// A browser with one cookie (the session's), which a test can copy.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    cookie: Mutex<Option<String>>,
}

/// What the app answered.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        octany_actix::install_crypto_provider();
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: Mutex::new(None),
        }
    }

    pub(crate) fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    pub(crate) fn set_cookie(&self, cookie: Option<String>) {
        *self.cookie.lock().unwrap() = cookie;
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, accept: &str) -> Page {
        let mut request = request.header("Accept", accept);
        if let Some(cookie) = self.cookie() {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap().to_owned();
            let removed = value.contains("Max-Age=0") || pair.ends_with('=');
            self.set_cookie((!removed).then_some(pair));
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)), "text/html")
            .await
    }

    pub(crate) async fn get_json(&self, path: &str) -> Page {
        self.send(
            self.http.get(format!("{}{path}", self.base)),
            "application/json",
        )
        .await
    }

    pub(crate) async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        let at = page
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no CSRF field on {path}: {}", page.body))
            + r#"name="csrf" value=""#.len();
        page.body[at..at + 64].to_owned()
    }

    /// Posts `form` to `path` with the CSRF `token` already read (so many
    /// can be sent at once).
    pub(crate) async fn post_with(&self, token: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let mut fields = vec![("csrf", token)];
        fields.extend_from_slice(form);
        self.send(
            self.http.post(format!("{}{path}", self.base)).form(&fields),
            "text/html",
        )
        .await
    }

    /// Posts `form` from the page at `from` (with that page's CSRF token).
    pub(crate) async fn post(&self, from: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let token = self.csrf(from).await;
        let mut fields = vec![("csrf", token.as_str())];
        fields.extend_from_slice(form);
        self.send(
            self.http.post(format!("{}{path}", self.base)).form(&fields),
            "text/html",
        )
        .await
    }

    /// Signs up as a person would: the form, then the link mailed to
    /// `email` (caught at `/dev/mail`), then its button. The form's answer
    /// when it is not "check your e-mail"; else the confirmation's.
    pub(crate) async fn signup(&self, email: &str) -> Page {
        let posted = self
            .post(
                "/signup",
                "/signup",
                &[
                    ("email", email),
                    ("password", PASSWORD),
                    ("name", "Ada Lovelace"),
                ],
            )
            .await;
        if posted.status != 303 || posted.location() != "/signup/sent" {
            return posted;
        }
        let link = self.mailed_link(email, "Confirm your e-mail address").await;
        self.post(&link, &link, &[]).await
    }

    /// The path of the first link in the newest mail to `to` with
    /// `subject`, as `/dev/mail` shows it.
    pub(crate) async fn mailed_link(&self, to: &str, subject: &str) -> String {
        let links = self.mailed_links(to, subject).await;
        links
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no mail `{subject}` to {to}"))
    }

    /// The first link of every mail to `to` with `subject`, newest first.
    pub(crate) async fn mailed_links(&self, to: &str, subject: &str) -> Vec<String> {
        let list = self.get("/dev/mail").await;
        let names: Vec<String> = list
            .body
            .split("<tr><td>")
            .filter(|row| row.starts_with(to) && row.contains(&format!(">{subject}</a>")))
            .filter_map(|row| row.split("href=\"/dev/mail/").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect();
        let mut links = Vec::new();
        for name in names {
            let mail = self.get(&format!("/dev/mail/{name}")).await;
            let link = mail
                .body
                .split(r#"<ul id="links"><li><a href=""#)
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no link in the mail: {}", mail.body));
            links.push(
                link.strip_prefix(&self.base)
                    .unwrap_or_else(|| panic!("the link {link} leaves the app"))
                    .to_owned(),
            );
        }
        links
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> Page {
        self.post(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) async fn start(
    db: &TestDb,
    dir: &std::path::Path,
    change: impl FnOnce(&mut Settings),
) -> example_app::Running {
    let mut settings = Settings::development(dir);
    change(&mut settings);
    example_app::start_on(settings, db.app_connection().await)
        .await
        .expect("the app starts")
}

/// The test kit on the starter's own fake and billing (its webhooks go to
/// the app, which reads the fake's clock).
pub(crate) fn kit(app: &example_app::Running) -> TestBilling {
    TestBilling::attach(
        app.fake.as_ref().expect("the starter runs on the fake"),
        &app.octany,
    )
}

/// User `id` as the app stores it.
pub(crate) async fn user(db: &TestDb, id: i64) -> example_app::user::Model {
    example_app::user::Entity::find_by_id(id)
        .one(&db.conn)
        .await
        .unwrap()
        .expect("the user signed up")
}

/// `billable` (a user or a team) pays for Pro monthly at Octany's checkout.
pub(crate) async fn pays(app: &example_app::Running, billable: &impl Billable) {
    kit(app)
        .subscribe(billable, Plans::ProMonthly)
        .await
        .expect("the checkout succeeds and the app hears of it");
}

pub(crate) async fn count(db: &TestDb, table: &str) -> i64 {
    let row = db
        .conn
        .query_one_raw(sea_orm::Statement::from_string(
            db.db_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

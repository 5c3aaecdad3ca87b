//! A new user's first hour: an app wired exactly as `docs/fake.md` shows
//! (CI checks the two blocks are the same text) gets access after paying,
//! with no clock handed over; the background task loads the catalog and
//! says loudly when the app's clock and Octany's disagree.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use octany_actix::{Octany, RequireSubscription};
use octany_actix_migrations::MigratorTrait;
use octany_actix_tests::app::{Plans, TestUser as User};
use octany_actix_tests::harness::Logs;
use octany_fake::FakeOctany;
use reqwest::header::LOCATION;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WEBHOOK_SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn dashboard(_paid: RequireSubscription<User>) -> HttpResponse {
    HttpResponse::Ok().body("subscribers only")
}

/// The app of `docs/fake.md`'s "Build your app on it", line for line.
async fn app_as_the_docs_show() -> Result<(FakeOctany, String), BoxError> {
    let fake = FakeOctany::builder().sample_catalog().start().await?;
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    octany_actix_migrations::Migrator::up(&db, None).await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    // The fake signs its webhooks to the app with this secret; `fake.config()`
    // carries the secret of every endpoint added before it is called.
    fake.add_webhook_endpoint(&format!("{url}/billing/webhook"), Some(WEBHOOK_SECRET));
    let octany = Octany::builder(fake.config(), db)
        .public_base_url(&url)
        .plans::<Plans>()
        .build()?;
    // The catalog, the clock check, due events and the reconcile, in one task.
    let _background = octany.spawn_background(Duration::from_secs(60));
    let billing = web::Data::new(octany);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(billing.clone())
            .service(billing.scope::<User>())
            .route("/dashboard", web::get().to(dashboard))
    })
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok((fake, url))
}

fn browser() -> reqwest::Client {
    octany_actix::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_app_built_as_the_docs_show_grants_access_once_the_user_has_paid() {
    let (fake, url) = app_as_the_docs_show().await.unwrap();
    let http = browser();
    let as_user = |request: reqwest::RequestBuilder| request.header("X-User", "7");
    let refused = as_user(http.get(format!("{url}/dashboard")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 402, "not paying yet");
    // The mounted checkout sends the browser to Octany's hosted checkout...
    let checkout = as_user(http.get(format!("{url}/billing/checkout/pro-monthly")))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 303);
    let hosted = checkout.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(hosted.starts_with(&fake.checkout_url()), "{hosted}");
    // ...where paying (as a script would: the outcome posted to that URL)
    // answers with the app's success page.
    let paid = http
        .post(&hosted)
        .form(&[("outcome", "succeed")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    let success = paid.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        success.starts_with(&format!("{url}/billing/success")),
        "{success}"
    );
    // The webhook is answered, so the mirror has the subscription.
    fake.settled().await;
    let deliveries = fake.deliveries();
    assert!(!deliveries.is_empty());
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == octany_fake::DeliveryStatus::Delivered),
        "every webhook accepted: {deliveries:?}"
    );
    let dashboard = as_user(http.get(format!("{url}/dashboard")))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200, "paid, so in");
    assert_eq!(dashboard.text().await.unwrap(), "subscribers only");
    let status: serde_json::Value = as_user(http.get(format!("{url}/billing/status")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["access"], true, "{status}");
    fake.stop().await;
}

async fn billing_on(fake: &FakeOctany, clock: Option<octany_actix::clock::SharedClock>) -> Octany {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    octany_actix_migrations::Migrator::up(&db, None)
        .await
        .unwrap();
    let config = fake.config().with_webhook_secret(WEBHOOK_SECRET);
    let mut builder = Octany::builder(config, db).public_base_url("http://127.0.0.1:9");
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    builder.build().unwrap()
}

/// Waits (on what it can see: the mirror's product table) until the
/// background task has loaded the catalog.
async fn catalog_loaded(octany: &Octany) -> usize {
    for _ in 0..1000 {
        let products = octany.products().await.unwrap();
        if !products.is_empty() {
            return products.len();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the background task never loaded the catalog");
}

#[tokio::test]
async fn the_background_task_loads_the_catalog_and_says_when_the_clocks_disagree() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let fake = FakeOctany::builder()
        .sample_catalog()
        .start()
        .await
        .unwrap();
    // A test moved Octany's clock three days on; this app reads the system's.
    fake.advance_days(3);
    let octany = billing_on(&fake, None).await;
    let skew = octany.client().clock_skew().await.unwrap().unwrap();
    assert!(
        (skew + chrono::TimeDelta::days(3)).abs() <= chrono::TimeDelta::seconds(5),
        "the app is three days behind Octany: {skew}"
    );
    assert!(octany.products().await.unwrap().is_empty());
    let background = octany.spawn_background(Duration::from_secs(3600));
    assert_eq!(
        catalog_loaded(&octany).await,
        octany_fake::sample_catalog().len()
    );
    background.abort();
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("from Octany's `Date`"))
        .unwrap_or_else(|| panic!("no clock error in the log:\n{text}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("-25919") || line.contains("-25920"), "{line}");
    assert!(line.contains("fake.app_clock()"), "says what to do: {line}");

    // On the fake's clock the two agree, and nothing is said.
    let agreeing = billing_on(&fake, Some(fake.app_clock())).await;
    let skew = agreeing.client().clock_skew().await.unwrap().unwrap();
    assert!(
        skew.abs() <= octany_actix::OctanyClient::CLOCK_TOLERANCE,
        "{skew}"
    );
    let before = logs.text().matches("from Octany's `Date`").count();
    let background = agreeing.spawn_background(Duration::from_secs(3600));
    catalog_loaded(&agreeing).await;
    background.abort();
    assert_eq!(logs.text().matches("from Octany's `Date`").count(), before);
    fake.stop().await;
}

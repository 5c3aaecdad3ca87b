//! One account against everyone's budget (issue 28, item 4): while one
//! account floods the app, how long does another account's checkout take?
//!
//! ```text
//! cargo bench -p octany-actix-tests --bench flood
//! ```
//!
//! The live configuration: the app over HTTP (actix, on loopback), its
//! budget paced to 110 requests a minute with bursts of 10, the fake
//! Octany enforcing 120 a minute and answering each request after 50 ms.
//! The other account's checkout (`GET /billing/checkout/pro-monthly`, which
//! asks Octany for its subscriptions) is timed 5 times in each case:
//!
//! - no flood;
//! - 40 concurrent checkouts of one account (the issue's attack), over HTTP;
//! - 40 concurrent one-off charges of one account (requests that cannot be
//!   coalesced), with the per-billable lanes, and with them opened wide
//!   (each billable as many places as it likes: how it was before).

use std::time::{Duration, Instant};

use actix_web::{App, HttpServer, web};
use octany_actix::client::{NewOrder, QueueBounds, RateLimit};
use octany_actix::model::ProductId;
use octany_actix::{Billable, Octany};
use octany_actix_tests::app::{Plans, TestUser, configure};
use octany_actix_tests::harness::SECRET;
use octany_actix_tests::{Backend, TestDb};
use octany_fake::{CheckoutOutcome, FakeOctany, Faults};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Running {
    fake: FakeOctany,
    octany: Octany,
    url: String,
    _db: TestDb,
}

async fn start(lanes: bool) -> Result<Running, Error> {
    let db = TestDb::migrated(Backend::Sqlite).await;
    let fake = FakeOctany::builder().sample_catalog().start().await?;
    let bounds = if lanes {
        QueueBounds::default()
    } else {
        QueueBounds {
            per_billable: 10_000,
            per_billable_waiting: 10_000,
            longest_wait: Duration::from_secs(3600),
            ..QueueBounds::default()
        }
    };
    let octany = Octany::builder(
        fake.config()
            .with_webhook_secret(SECRET)
            .with_rate_limit(RateLimit {
                per_minute: 110,
                burst: 10,
            }),
        db.conn.clone(),
    )
    .public_base_url("http://localhost:8080")
    .plans::<Plans>()
    .one_off_products::<octany_actix_tests::app::AddOns>()
    // The system clock, as in production (the fake starts at the real
    // time): the budget refills on it.
    .queue_bounds(bounds)
    .build()?;
    // The account that floods with charges holds a subscription (so it may
    // be charged); the one that floods with checkouts holds none (so each
    // checkout must ask Octany).
    for user in [3] {
        fake.checkout(
            1227,
            &octany_actix_tests::http::buyer(user),
            CheckoutOutcome::Succeed,
        )?;
        octany.billing(&TestUser::new(user)).sync().await?;
    }
    fake.set_faults(Faults {
        api_latency_ms: 50,
        ..Faults::octany_rate_limit()
    });
    let served = octany.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(served.clone()))
            .configure(configure(&served))
    })
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(Running {
        fake,
        octany,
        url,
        _db: db,
    })
}

fn http() -> reqwest::Client {
    octany_actix::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a client")
}

/// One checkout of `user` over HTTP: its time and status.
async fn checkout(url: &str, user: i64) -> (Duration, u16) {
    let started = Instant::now();
    let status = http()
        .get(format!("{url}/billing/checkout/pro-monthly"))
        .header("X-User", user.to_string())
        .header("Accept", "text/html")
        .send()
        .await
        .map_or_else(
            |e| {
                eprintln!("checkout of {user} failed: {e:?}");
                0
            },
            |r| r.status().as_u16(),
        );
    (started.elapsed(), status)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The other account's checkout, 5 times, while `flood` runs; its median
/// and worst, and what the flood's requests were answered.
async fn measure<F, Fut>(app: &Running, flood: F) -> (Duration, Duration, String)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<u16>> + Send + 'static,
{
    let mut times = Vec::new();
    let mut answered = std::collections::BTreeMap::<u16, usize>::new();
    let rounds: usize = std::env::var("FLOOD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for round in 0..rounds as i64 {
        let flood = tokio::spawn(flood());
        // The flood is under way: its requests wait in the budget.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (took, status) = checkout(&app.url, 2 + 10 * round).await;
        assert_eq!(status, 303, "the other account is sent to the checkout");
        times.push(took);
        for status in flood.await.expect("the flood ran") {
            *answered.entry(status).or_default() += 1;
        }
        // The bucket refills before the next round.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let worst = *times.iter().max().expect("five");
    let flood = answered
        .iter()
        .map(|(status, n)| format!("{n}× {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    (median(times), worst, flood)
}

fn checkouts_of_one(
    url: String,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u16>> + Send>> {
    move || {
        let url = url.clone();
        Box::pin(async move {
            let floods = (0..40).map(|_| {
                let url = url.clone();
                tokio::spawn(async move { checkout(&url, 1).await.1 })
            });
            futures_util::future::join_all(floods)
                .await
                .into_iter()
                .map(|r| r.unwrap_or(0))
                .collect()
        })
    }
}

fn charges_of_one(
    octany: Octany,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u16>> + Send>> {
    move || {
        let octany = octany.clone();
        Box::pin(async move {
            let floods = (0..40).map(|i| {
                let octany = octany.clone();
                tokio::spawn(async move {
                    let user = TestUser::new(3);
                    let key = format!("flood-{}-{i}", uuid::Uuid::new_v4());
                    let order = NewOrder {
                        product_id: ProductId(1400),
                        amount: None,
                        description: Some("Extra seats".into()),
                    };
                    match octany.billing(&user).charge(&key, order).await {
                        Ok(_) => 201,
                        Err(e) => actix_web::ResponseError::status_code(&e).as_u16(),
                    }
                })
            });
            futures_util::future::join_all(floods)
                .await
                .into_iter()
                .map(|r| r.unwrap_or(0))
                .collect()
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    println!(
        "One account's flood against another account's checkout ({} cores, SQLite, the fake at 50 ms a request and 120 a minute, the app paced to 110 a minute with bursts of 10; 5 checkouts of the other account each)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| flood | lanes | other's checkout, median | worst | the flood's requests answered |\n|---|---|---|---|---|"
    );
    let app = start(true).await?;
    let (median, worst, _) = measure(&app, || async { Vec::new() }).await;
    println!("| none | on | {median:.2?} | {worst:.2?} | |");
    let (median, worst, flood) = measure(&app, checkouts_of_one(app.url.clone())).await;
    println!(
        "| 40 checkouts of one account, over HTTP | on | {median:.2?} | {worst:.2?} | {flood} |"
    );
    let (median, worst, flood) = measure(&app, charges_of_one(app.octany.clone())).await;
    println!("| 40 charges of one account | on | {median:.2?} | {worst:.2?} | {flood} |");
    app.fake.stop().await;
    let wide = start(false).await?;
    let (median, worst, flood) = measure(&wide, charges_of_one(wide.octany.clone())).await;
    println!(
        "| 40 charges of one account | wide open (as before) | {median:.2?} | {worst:.2?} | {flood} |"
    );
    wide.fake.stop().await;
    let _ = TestUser::new(0).billable_ref();
    Ok(())
}

//! `cargo bench -p octany-actix-tests --bench features`: what issue 30's
//! checks cost, in process, on SQLite and (when its URL is set)
//! PostgreSQL. Prints markdown.
//!
//! 1. A feature check (`Billing::allows`) on a cached billable, beside the
//!    plain question the guard answers (`Billing::subscribed`), in one run:
//!    nanoseconds per call and their ratio.
//! 2. Usage records a second: 8 tasks recording 2,500 distinct keys each.

use std::time::Instant;

use futures_util::future::join_all;
use octany_actix::model::ProductId;
use octany_actix::{Meter, Octany};
use octany_actix_tests::app::{Exports, Plans, TestUser};
use octany_actix_tests::harness::SECRET;
use octany_actix_tests::{Backend, TestDb};
use octany_fake::{CheckoutOutcome, CheckoutParams, FakeOctany};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct ApiCalls;

impl Meter for ApiCalls {
    const NAME: &'static str = "api_calls";
    const PRODUCT: ProductId = ProductId(1400);
    const UNIT_PRICE: i64 = 2;
}

async fn setup(backend: Backend) -> Result<(TestDb, FakeOctany, Octany), Error> {
    let db = TestDb::migrated(backend).await;
    let fake = FakeOctany::builder().sample_catalog().start().await?;
    let octany = Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url("http://localhost")
        .plans::<Plans>()
        .meter::<ApiCalls>()
        .clock(fake.app_clock())
        .cache_ttl(std::time::Duration::from_secs(3600))
        .build()?;
    Ok((db, fake, octany))
}

async fn checks(backend: Backend) -> Result<String, Error> {
    let (db, fake, octany) = setup(backend).await?;
    let user = TestUser::new(1);
    fake.checkout(
        1225,
        &CheckoutParams {
            reference_id: Some("user:1".into()),
            ..Default::default()
        },
        CheckoutOutcome::Succeed,
    )?;
    octany.billing(&user).sync().await?;
    let billing = octany.billing(&user);
    assert!(billing.allows::<Exports>().await?);
    let n = 200_000u32;
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..n {
            assert!(billing.subscribed().await?);
        }
        let plain = started.elapsed().as_nanos() as f64 / f64::from(n);
        let started = Instant::now();
        for _ in 0..n {
            assert!(billing.allows::<Exports>().await?);
        }
        let feature = started.elapsed().as_nanos() as f64 / f64::from(n);
        rounds.push((plain, feature));
    }
    fake.stop().await;
    db.drop_database().await;
    let (plain, feature) = rounds
        .into_iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("three rounds");
    Ok(format!(
        "| {backend:?} | {n} | {plain:.0} | {feature:.0} | {:.2} |",
        feature / plain
    ))
}

async fn records(backend: Backend) -> Result<String, Error> {
    let (db, fake, octany) = setup(backend).await?;
    let (tasks, each) = (8usize, 2_500usize);
    let started = Instant::now();
    let runs = (0..tasks).map(|task| {
        let octany = octany.clone();
        tokio::spawn(async move {
            let team = TestUser::new(7);
            for i in 0..each {
                octany
                    .billing(&team)
                    .record_usage::<ApiCalls>(1, &format!("{task}-{i}"))
                    .await
                    .expect("recorded");
            }
        })
    });
    for run in join_all(runs).await {
        run?;
    }
    let secs = started.elapsed().as_secs_f64();
    let usage = octany
        .billing(&TestUser::new(7))
        .usage::<ApiCalls>()
        .await?;
    assert_eq!(usage.quantity, (tasks * each) as u64);
    fake.stop().await;
    db.drop_database().await;
    Ok(format!(
        "| {backend:?} | {tasks} × {each} | {secs:.2} s | {:.0} |",
        (tasks * each) as f64 / secs
    ))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("OCTANY_TEST_POSTGRES_URL").is_ok() {
        backends.push(Backend::Postgres);
    }
    println!(
        "## A feature check beside the plain question\n\nA cached billable on Pro; the best of three rounds.\n\n| backend | calls | `subscribed()` ns | `allows::<Exports>()` ns | ratio |\n|---|---|---|---|---|"
    );
    for backend in &backends {
        println!("{}", checks(*backend).await?);
    }
    println!(
        "\n## Usage records a second\n\n8 tasks, distinct keys, one instance.\n\n| backend | tasks × records | took | records / s |\n|---|---|---|---|"
    );
    for backend in &backends {
        println!("{}", records(*backend).await?);
    }
    Ok(())
}

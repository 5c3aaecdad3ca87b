//! `cargo bench -p octany-actix-tests --bench budget`: the shared request
//! budget under load, against the fake Octany enforcing its per-minute limit
//! (real time), on SQLite and (when its URL is set) PostgreSQL. Prints
//! markdown; the figures are in docs/scale.md.
//!
//! 1. Three instances on one database, each with 4 background loops of
//!    requests for 30 s, the limit 300 a minute: the requests Octany served
//!    a minute against the limit, and the 429s.
//! 2. One instance at 110 a minute: 30 tabs poll every 3 s and give up after
//!    0.3 s (a closed tab, a proxy time-out), for 20 s; meanwhile a paying
//!    user acts every 2 s. The user's latency, and what the polls got.
//! 3. PostgreSQL: how soon another instance stops granting after an expiry
//!    is applied (LISTEN/NOTIFY).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use octany_actix::client::{Priority, RateLimit, SubscriptionFilter};
use octany_actix::{Octany, OctanyError};
use octany_actix_tests::harness::SECRET;
use octany_actix_tests::{Backend, TestDb};
use octany_fake::{FakeOctany, Faults};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn instance(db: &TestDb, fake: &FakeOctany, limit: RateLimit) -> Result<Octany, Error> {
    Ok(Octany::builder(
        fake.config()
            .with_webhook_secret(SECRET)
            .with_rate_limit(limit),
        db.conn.clone(),
    )
    .public_base_url("http://localhost")
    .build()?)
}

async fn shared_limit(backend: Backend) -> Result<String, Error> {
    let db = TestDb::migrated(backend).await;
    let per_minute = 300;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(chrono::Utc::now())
        .start()
        .await?;
    fake.set_faults(Faults {
        rate_limit_per_minute: Some(per_minute),
        ..Faults::none()
    });
    let limit = RateLimit {
        per_minute,
        burst: 10,
    };
    let instances: Vec<Octany> = (0..3)
        .map(|_| instance(&db, &fake, limit))
        .collect::<Result<_, _>>()?;
    let served = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let secs = 30.0;
    let started = Instant::now();
    let mut loops = Vec::new();
    for octany in &instances {
        for _ in 0..4 {
            let (client, served, limited) =
                (octany.client().clone(), served.clone(), limited.clone());
            loops.push(tokio::spawn(Priority::Background.scope(async move {
                while started.elapsed().as_secs_f64() < secs {
                    match client.list_products(1).await {
                        Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                        Err(OctanyError::RateLimited { .. }) => {
                            limited.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("{e}"),
                    };
                }
            })));
        }
    }
    for l in loops {
        l.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let served = served.load(Ordering::Relaxed) as f64;
    // The burst is allowed on top of the rate.
    let allowed = f64::from(limit.burst) + f64::from(per_minute) * elapsed / 60.0;
    fake.stop().await;
    db.drop_database().await;
    Ok(format!(
        "| {backend:?} | 3 × 4 | {per_minute} | {elapsed:.1} s | {served:.0} | {:.0} | **{:.3}** | {} |",
        served / elapsed * 60.0,
        served / allowed,
        limited.load(Ordering::Relaxed)
    ))
}

async fn burst(backend: Backend) -> Result<String, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(chrono::Utc::now())
        .start()
        .await?;
    fake.set_faults(Faults {
        rate_limit_per_minute: Some(120),
        ..Faults::none()
    });
    let octany = instance(&db, &fake, RateLimit::default())?;
    let client = octany.client().clone();
    let secs = 20.0;
    let started = Instant::now();
    let (answered, abandoned, busy) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut tabs = Vec::new();
    for tab in 0..30u64 {
        let (client, answered, abandoned, busy) = (
            client.clone(),
            answered.clone(),
            abandoned.clone(),
            busy.clone(),
        );
        tabs.push(tokio::spawn(Priority::Poll.scope(async move {
            // Spread the tabs over the 3 s.
            tokio::time::sleep(Duration::from_millis(tab * 100)).await;
            while started.elapsed().as_secs_f64() < secs {
                let filter = SubscriptionFilter::reference_id(format!("user:{tab}"));
                match tokio::time::timeout(
                    Duration::from_millis(300),
                    client.list_subscriptions(&filter, 1),
                )
                .await
                {
                    Ok(Ok(_)) => answered.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(OctanyError::Busy { .. })) => busy.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(e)) => panic!("{e}"),
                    Err(_) => abandoned.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        })));
    }
    let mut user = Vec::new();
    while started.elapsed().as_secs_f64() < secs {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t = Instant::now();
        client.list_products(1).await?;
        user.push(t.elapsed());
    }
    for t in tabs {
        t.await?;
    }
    user.sort();
    let median = user[user.len() / 2].as_secs_f64() * 1000.0;
    let max = user.last().unwrap().as_secs_f64() * 1000.0;
    fake.stop().await;
    db.drop_database().await;
    Ok(format!(
        "| {backend:?} | {} | {median:.0} ms | **{max:.0} ms** | {} | {} | {} |",
        user.len(),
        answered.load(Ordering::Relaxed),
        abandoned.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed)
    ))
}

/// PostgreSQL: two instances, both caching that a user pays (TTL 5 s); A
/// applies the expiry; how long until B refuses. 20 times; median and max.
async fn revocation() -> Result<String, Error> {
    use octany_actix::webhook::Received;
    use octany_actix_tests::app::TestUser;
    use octany_actix_tests::harness::{envelope, signed};
    let db = TestDb::migrated(Backend::Postgres).await;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(chrono::Utc::now())
        .start()
        .await?;
    let build = || {
        Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
            .public_base_url("http://localhost")
            .clock(fake.app_clock())
            .build()
    };
    let (a, b) = (build()?, build()?);
    let mut heard = Vec::new();
    for n in 1..=20u64 {
        let user = TestUser::new(n as i64);
        let sub = fake
            .checkout(
                1227,
                &octany_fake::CheckoutParams {
                    reference_id: Some(format!("user:{n}")),
                    ..Default::default()
                },
                octany_fake::CheckoutOutcome::Succeed,
            )
            .map_err(|e| format!("{e:?}"))?
            .subscription
            .ok_or("no subscription")?;
        a.billing(&user).sync().await?;
        assert!(b.billing(&user).subscribed().await?, "B caches the grant");
        let mut ended = serde_json::to_value(&sub)?;
        ended["status"] = serde_json::json!("expired");
        let (body, signature) = signed(&envelope(
            100 + n,
            "subscription.updated",
            fake.now() + chrono::Duration::seconds(1),
            ended,
        ));
        let committed = Instant::now();
        assert_eq!(
            a.receiver().receive(Some(&signature), &body).await?,
            Received::Applied
        );
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            while b.billing(&user).subscribed().await.unwrap_or(true) {
                tokio::task::yield_now().await;
            }
            committed.elapsed()
        })
        .await
        .map_err(|_| "B did not hear of the change within 5 s")?;
        heard.push(waited);
    }
    heard.sort();
    fake.stop().await;
    db.drop_database().await;
    Ok(format!(
        "| PostgreSQL | 20 | {:.1} ms | **{:.1} ms** |",
        heard[heard.len() / 2].as_secs_f64() * 1000.0,
        heard.last().unwrap().as_secs_f64() * 1000.0
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("OCTANY_TEST_POSTGRES_URL").is_ok() {
        backends.push(Backend::Postgres);
    }
    println!(
        "## Many instances, one budget\n\nThree instances on one database, 4 background loops each, 30 s of real time against the fake enforcing its limit. Target: within 5 % of the limit (served / (burst + rate × time) ≤ 1.05), no 429.\n\n| backend | instances × loops | limit / min | ran | served | served / min | served / allowed | 429s |\n|---|---|---|---|---|---|---|---|"
    );
    for backend in &backends {
        println!("{}", shared_limit(*backend).await?);
    }
    println!(
        "\n## A burst of polls and a paying user\n\nOne instance at 110 a minute (the fake allows 120): 30 tabs poll every 3 s and give up after 0.3 s, for 20 s; a paying user acts every 2 s (interactive priority). Target: the user answered within 2 s.\n\n| backend | user actions | user median | user max | polls answered | polls abandoned | polls told busy |\n|---|---|---|---|---|---|---|"
    );
    for backend in &backends {
        println!("{}", burst(*backend).await?);
    }
    if backends.contains(&Backend::Postgres) {
        println!(
            "\n## Revocation across instances\n\nTwo instances, both caching that a user pays (TTL 5 s); A applies the subscription's expiry from a webhook; the time from the start of A's receive (its apply and commit included) until B refuses. Target: within 100 ms.\n\n| backend | expiries | median | max |\n|---|---|---|---|"
        );
        println!("{}", revocation().await?);
    }
    Ok(())
}

//! `cargo bench -p octany-actix-tests --bench scale [-- --subscriptions N --days D
//! --cancels SHARE --delivered SHARE]`:
//! the scale simulation of docs/scale.md.
//!
//! 100,000 monthly subscriptions (by default) on the fake Octany, renewing
//! through a virtual month, served by three app instances on one database
//! (PostgreSQL when `OCTANY_TEST_POSTGRES_URL` is set, else SQLite), with
//! webhooks 100 %, 70 % and 0 % delivered (through one load balancer, as a
//! deployment has). 2 % of the cards fail at renewal, 1 % of the users
//! cancel during the month (through the app, a person's request).
//!
//! Everything runs on the fake's virtual clock, the fake's rate limit
//! (120 requests a minute) included: a request that must wait for the
//! budget moves time on, so a month takes minutes of real time and the
//! requests a minute are counted on the same clock the limit is judged on.
//! Every 10 virtual minutes each instance runs its reconcile (one at a time
//! through the lease) and 20 random users are asked "may they in?" on a
//! random instance, against Octany's own answer. Printed: API requests a
//! day and the peak a minute, the 429s, the longest budget wait by
//! priority, the longest a probed subscription stayed stale in the mirror
//! and how many differ at the end, paying users wrongly denied, the heap
//! of one instance with its guard's cache full, and the process's memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use octany_actix::client::RateLimit;
use octany_actix::entity::subscription;
use octany_actix::model::{Entitlement, SubscriptionId};
use octany_actix::ops::BackfillOptions;
use octany_actix::{Clock, Octany};
use octany_actix_tests::app::TestUser;
use octany_actix_tests::harness::SECRET;
use octany_actix_tests::sea_orm::{ConnectionTrait, EntityTrait, Statement};
use octany_actix_tests::{Backend, TestDb};
use octany_fake::{DeliveryStatus, FakeOctany, Faults};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod serving;
use serving::{serve_balancer, serve_instance};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// jemalloc, for its count of the bytes allocated and not yet freed.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn live_mib() -> f64 {
    // Its statistics are refreshed when the epoch moves on.
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as f64 / (1024.0 * 1024.0)
}

/// Basic monthly, in the fake's sample catalog.
const PRODUCT: i64 = 1227;
/// How often each instance's reconcile runs, and users are probed.
const STEP: Duration = Duration::from_secs(600);
/// Users probed each step.
const PROBES: usize = 20;
const INSTANCES: usize = 3;
/// Each instance's guard cache holds at most this many billables.
const CACHE_CAPACITY: usize = 5_000;

struct Options {
    subscriptions: u64,
    days: u32,
    /// The share of users who cancel during the month.
    cancels: f64,
    /// The scenarios: the shares of webhooks delivered.
    delivered: Vec<f64>,
}

/// The fake with `subscriptions` monthly subscriptions created evenly over
/// the 30 days before `start`, 2 % of their cards failing from now on.
async fn seeded_fake(options: &Options, start: DateTime<Utc>) -> Result<FakeOctany, Error> {
    // Created over the 30 days before the start, so they renew through the
    // simulated month.
    let days = 30u32;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(start - chrono::Duration::days(i64::from(days)))
        .transport_on_virtual_clock()
        .seed(7)
        .start()
        .await?;
    // A batch every 10 minutes: renewals spread as sign-ups were.
    let batches = u64::from(days) * 144;
    let per_batch = options.subscriptions.div_ceil(batches).max(1);
    let mut first = 1;
    while first <= options.subscriptions {
        let count = per_batch.min(options.subscriptions - first + 1);
        fake.seed_subscriptions(PRODUCT, first, count)
            .map_err(|e| format!("{e:?}"))?;
        first += count;
        fake.advance(Duration::from_secs(600));
    }
    fake.set_now(start);
    let mut rng = StdRng::seed_from_u64(11);
    for record in fake.subscription_records() {
        if rng.random::<f64>() < 0.02 {
            fake.set_card_failing(&SubscriptionId::new(record.id.to_string()), true)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    fake.set_faults(Faults {
        rate_limit_per_minute: Some(120),
        ..Faults::none()
    });
    Ok(fake)
}

fn instance(db: &TestDb, fake: &FakeOctany) -> Result<Octany, Error> {
    Ok(Octany::builder(
        fake.config()
            .with_webhook_secret(SECRET)
            .with_rate_limit(RateLimit {
                per_minute: 110,
                burst: 10,
            }),
        db.conn.clone(),
    )
    .public_base_url("http://localhost")
    // Waiting moves the virtual clock (the simulation's time).
    .clock(Arc::new(fake.clock()))
    .cache_capacity(CACHE_CAPACITY as u64)
    .build()?)
}

fn rss_mib() -> f64 {
    octany_actix_tests::rss_kib() as f64 / 1024.0
}

/// The longest budget wait by priority since the last snapshot (the
/// debugging recorder's histograms are drained by each snapshot).
fn budget_waits(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    let mut waits = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if key.name() != "octany_budget_wait_seconds" {
            continue;
        }
        let priority = key
            .labels()
            .find(|l| l.key() == "priority")
            .map(|l| l.value().to_owned())
            .unwrap_or_default();
        if let DebugValue::Histogram(values) = value {
            let max = values.iter().map(|v| v.0).fold(0.0, f64::max);
            let entry = waits.entry(priority).or_insert(0.0f64);
            *entry = entry.max(max);
        }
    }
    waits
}

/// The backfilled mirror, ready to be copied into each scenario's database.
struct Base {
    db: TestDb,
    requests: u64,
    peak: u64,
    virtual_minutes: f64,
    /// The fake's clock when the backfill ended: no mark in the mirror is later.
    ended: DateTime<Utc>,
    wall: Duration,
}

async fn backfilled(
    backend: Backend,
    options: &Options,
    start: DateTime<Utc>,
) -> Result<Base, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = seeded_fake(options, start).await?;
    let octany = instance(&db, &fake)?;
    let wall = Instant::now();
    octany
        .syncer()
        .backfill(BackfillOptions::default(), |_| {})
        .await?;
    let requests = fake.api_requests();
    let base = Base {
        requests: requests.total(),
        peak: requests.peak_per_minute(),
        virtual_minutes: (fake.now() - start).num_seconds() as f64 / 60.0,
        ended: fake.now(),
        wall: wall.elapsed(),
        db,
    };
    fake.stop().await;
    Ok(base)
}

/// Copies the backfilled mirror into `db` (PostgreSQL: one statement a
/// table); on SQLite the scenario backfills itself.
async fn copy_mirror(base: &Base, db: &TestDb) -> Result<bool, Error> {
    if db.backend != Backend::Postgres {
        return Ok(false);
    }
    let schema: String = base
        .db
        .conn
        .query_one_raw(Statement::from_string(
            db.db_backend(),
            "SELECT current_schema()::text AS s",
        ))
        .await?
        .ok_or("no schema")?
        .try_get("", "s")?;
    for table in ["octany_products", "octany_subscriptions"] {
        db.conn
            .execute_unprepared(&format!(
                "INSERT INTO {table} SELECT * FROM {schema}.{table}"
            ))
            .await?;
    }
    Ok(true)
}

#[derive(Default)]
struct Figures {
    per_day: Vec<u64>,
    peak_per_minute: u64,
    rate_limited: u64,
    waits: BTreeMap<String, f64>,
    longest_stale: chrono::Duration,
    differ_at_end: usize,
    probes: u64,
    paying_probes: u64,
    wrongly_denied: u64,
    granted_after_octany_stopped: u64,
    cancelled: u64,
    deliveries: usize,
    undelivered: usize,
    rss_start: f64,
    rss_end: f64,
    heap_per_instance: f64,
    cache_fill: usize,
    wall: Duration,
}

async fn scenario(
    backend: Backend,
    options: &Options,
    start: DateTime<Utc>,
    base: &Base,
    delivered: f64,
    snapshotter: &Snapshotter,
) -> Result<Figures, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = seeded_fake(options, start).await?;
    let instances: Vec<Octany> = (0..INSTANCES)
        .map(|_| instance(&db, &fake))
        .collect::<Result<_, _>>()?;
    if copy_mirror(base, &db).await? {
        // The copy was read from another fake (the same seed) whose clock the
        // backfill moved on: this one starts where that one ended, or its
        // first changes would be older than the copy's marks and refused
        // (a stale mirror no real deployment can have).
        fake.set_now(base.ended);
    } else {
        instances[0]
            .syncer()
            .backfill(BackfillOptions::default(), |_| {})
            .await?;
    }
    // What the backfill asked is not the month's.
    let before = fake.api_requests();
    let month_start = fake.now();
    let mut targets = Vec::new();
    let mut servers = Vec::new();
    for octany in &instances {
        let (url, server) = serve_instance(octany).await?;
        targets.push(url);
        servers.push(server);
    }
    let balancer = serve_balancer(targets).await?;
    fake.add_webhook_endpoint(&format!("{balancer}/billing/webhook"), Some(SECRET));
    fake.set_faults(Faults {
        rate_limit_per_minute: Some(120),
        webhook_drop_rate: 1.0 - delivered,
        ..Faults::none()
    });
    let ids: Vec<SubscriptionId> = {
        let mut by_user: Vec<(i64, u64)> = fake
            .subscription_records()
            .iter()
            .filter_map(|r| {
                let user = r
                    .reference_id
                    .as_deref()?
                    .strip_prefix("user:")?
                    .parse()
                    .ok()?;
                Some((user, r.id))
            })
            .collect();
        by_user.sort();
        by_user
            .into_iter()
            .map(|(_, id)| SubscriptionId::new(id.to_string()))
            .collect()
    };
    let _ = budget_waits(snapshotter);
    let clock = fake.clock();
    let policy = instances[0].settings().policy;
    let mut rng = StdRng::seed_from_u64(3);
    let mut figures = Figures {
        rss_start: rss_mib(),
        ..Figures::default()
    };
    let wall = Instant::now();
    let end = month_start + chrono::Duration::days(i64::from(options.days));
    let steps = (end - month_start).num_seconds() as f64 / STEP.as_secs_f64();
    let cancel_share = options.cancels * ids.len() as f64 / steps;
    let mut day = 0;
    while fake.now() < end {
        let today = (fake.now() - month_start).num_days();
        if today > day {
            day = today;
            eprintln!(
                "{:.0} % delivered: day {day} ({:.0} s)",
                delivered * 100.0,
                wall.elapsed().as_secs_f64()
            );
        }
        fake.advance(STEP);
        fake.settled().await;
        // A person cancels now and then (interactive, through the app).
        if rng.random::<f64>() < cancel_share.fract() || cancel_share >= 1.0 {
            for _ in 0..(cancel_share.floor() as usize).max(1) {
                let user = TestUser::new(rng.random_range(1..=ids.len() as i64));
                let octany = &instances[rng.random_range(0..INSTANCES)];
                if octany.billing(&user).cancel().await.is_ok() {
                    figures.cancelled += 1;
                }
            }
        }
        for _ in 0..PROBES {
            let n = rng.random_range(0..ids.len());
            let Some(truth) = fake.subscription(&ids[n]) else {
                continue;
            };
            let paying = truth.has_access(&clock, policy);
            let octany = &instances[rng.random_range(0..INSTANCES)];
            let user = TestUser::new(n as i64 + 1);
            let granted = octany.billing(&user).subscribed().await?;
            figures.probes += 1;
            figures.paying_probes += u64::from(paying);
            figures.wrongly_denied += u64::from(paying && !granted);
            figures.granted_after_octany_stopped += u64::from(!paying && granted);
            let mirrored = subscription::Entity::find_by_id(ids[n].as_str())
                .one(&db.conn)
                .await?;
            let same = mirrored.as_ref().is_some_and(|m| {
                m.status == truth.status
                    && m.renews_at == truth.renews_at
                    && m.ends_at == truth.ends_at
            });
            if !same && let Some(record) = fake.subscription_record(&ids[n]) {
                // Octany changed it then, and the mirror has not caught up.
                let stale = clock.now() - record.updated_at;
                if stale > chrono::Duration::hours(1) && stale > figures.longest_stale {
                    eprintln!(
                        "stale: {} at {}: octany {:?} renews {:?} ends {:?} (changed {}) | mirror {:?}",
                        ids[n],
                        clock.now(),
                        truth.status,
                        truth.renews_at,
                        truth.ends_at,
                        record.updated_at,
                        mirrored.as_ref().map(|m| (
                            &m.status,
                            m.renews_at,
                            m.ends_at,
                            m.synced_at,
                            m.sync_mark
                        ))
                    );
                }
                figures.longest_stale = figures.longest_stale.max(stale);
            }
        }
        let lease = Duration::from_secs(120);
        let reconciles = instances
            .iter()
            .map(|o| o.syncer().reconcile_exclusive(lease));
        for report in futures_util::future::join_all(reconciles).await {
            report?;
        }
    }
    fake.settled().await;
    for octany in &instances {
        octany
            .syncer()
            .reconcile_exclusive(Duration::from_secs(120))
            .await?;
    }
    figures.wall = wall.elapsed();
    figures.rss_end = rss_mib();
    figures.waits = budget_waits(snapshotter);
    let deliveries = fake.deliveries();
    figures.deliveries = deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Delivered)
        .count();
    figures.undelivered = deliveries.len() - figures.deliveries;
    // The whole mirror against Octany, once the last reconcile ran.
    let mirror: BTreeMap<String, subscription::Model> = subscription::Entity::find()
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let differ: Vec<_> = fake
        .subscriptions()
        .into_iter()
        .filter(|s| {
            mirror.get(s.id.as_str()).is_none_or(|m| {
                m.status != s.status || m.renews_at != s.renews_at || m.ends_at != s.ends_at
            })
        })
        .collect();
    // What differs, on stderr, to find why.
    for s in differ.iter().take(5) {
        let m = mirror.get(s.id.as_str());
        eprintln!(
            "differs: {} octany {:?} renews {:?} ends {:?} | mirror {:?}",
            s.id,
            s.status,
            s.renews_at,
            s.ends_at,
            m.map(|m| (
                &m.status,
                m.renews_at,
                m.ends_at,
                m.synced_at,
                m.sync_mark,
                m.needs_sync
            ))
        );
    }
    figures.differ_at_end = differ.len();
    let requests = fake.api_requests();
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    for (minute, count) in &requests.per_minute {
        let before = before.per_minute.get(minute).copied().unwrap_or(0);
        if *minute >= month_start - chrono::Duration::minutes(1) {
            *per_day
                .entry((*minute - month_start).num_days())
                .or_default() += count - before;
        }
    }
    figures.per_day = per_day.into_values().collect();
    figures.peak_per_minute = requests
        .per_minute
        .iter()
        .filter(|(m, _)| **m >= month_start)
        .map(|(_, c)| *c)
        .max()
        .unwrap_or(0);
    figures.rate_limited = requests.rate_limited - before.rate_limited;
    // An instance's memory: the live heap before one more instance is
    // built and after it is asked about twice its cache's capacity of
    // users (its cache then full). What it shares with the others here (the
    // database pool, the fake) is not in it.
    let fill = (2 * CACHE_CAPACITY).min(ids.len());
    let before_instance = live_mib();
    let fresh = instance(&db, &fake)?;
    for user in 1..=fill {
        fresh
            .billing(&TestUser::new(user as i64))
            .subscribed()
            .await?;
    }
    figures.heap_per_instance = live_mib() - before_instance;
    figures.cache_fill = fill;
    drop(fresh);
    for server in servers {
        server.stop(true).await;
    }
    fake.stop().await;
    db.drop_database().await;
    Ok(figures)
}

fn parse_options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    fn value<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
    }
    Options {
        subscriptions: value(&args, "--subscriptions").unwrap_or(100_000),
        days: value(&args, "--days").unwrap_or(30),
        cancels: value(&args, "--cancels").unwrap_or(0.01),
        delivered: value(&args, "--delivered").map_or(vec![1.0, 0.7, 0.0], |d| vec![d]),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;
    let options = parse_options();
    let backend = if std::env::var("OCTANY_TEST_POSTGRES_URL").is_ok() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let start = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")?.to_utc();
    let base = backfilled(backend, &options, start).await?;
    println!(
        "## Scale simulation: {} subscriptions, {} virtual days, {INSTANCES} instances on {backend:?}\n",
        options.subscriptions, options.days
    );
    println!(
        "Backfill (once, one instance, then copied to each scenario): {} requests in {:.0} virtual minutes, peak {} a minute (limit 120), {:.0} s of real time.\n",
        base.requests,
        base.virtual_minutes,
        base.peak,
        base.wall.as_secs_f64()
    );
    println!(
        "| webhooks delivered | API requests a day (mean / max) | peak a minute | 429s | longest budget wait (interactive / background) | longest stale (probed) | differ at end | probes (paying) | wrongly denied | granted after Octany stopped | cancelled | deliveries delivered / not | heap of one instance, cache full | RSS start → end | real time |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for &delivered in &options.delivered {
        let f = scenario(backend, &options, start, &base, delivered, &snapshotter).await?;
        let days = f.per_day.len().max(1) as f64;
        let mean = f.per_day.iter().sum::<u64>() as f64 / days;
        let max = f.per_day.iter().copied().max().unwrap_or(0);
        let wait = |p: &str| f.waits.get(p).copied().unwrap_or(0.0);
        println!(
            "| {:.0} % | {mean:.0} / {max} | {} | {} | {:.2} s / {:.1} s | {} min | {} | {} ({}) | **{}** | {} | {} | {} / {} | {:.1} MiB ({} users asked) | {:.0} → {:.0} MiB | {:.0} s |",
            delivered * 100.0,
            f.peak_per_minute,
            f.rate_limited,
            wait("interactive"),
            wait("background"),
            f.longest_stale.num_minutes(),
            f.differ_at_end,
            f.probes,
            f.paying_probes,
            f.wrongly_denied,
            f.granted_after_octany_stopped,
            f.cancelled,
            f.deliveries,
            f.undelivered,
            f.heap_per_instance,
            f.cache_fill,
            f.rss_start,
            f.rss_end,
            f.wall.as_secs_f64(),
        );
    }
    base.db.drop_database().await;
    Ok(())
}

//! octany-actix's measured figures (issue 7), printed and written to
//! `docs/benchmarks.md`:
//!
//! ```text
//! cargo bench -p octany-actix-tests --bench billing             # everything, SQLite (+ PostgreSQL when OCTANY_TEST_POSTGRES_URL is set)
//! cargo bench -p octany-actix-tests --bench billing -- --quick  # shorter runs, no file written
//! cargo bench -p octany-actix-tests --bench billing -- --only guard   # one section (guard, webhooks, backfill)
//! ```
//!
//! 1. requests a second of a guarded route against the same route
//!    unguarded (both with a session cookie and a user lookup), by a load
//!    generator on loopback, cached and uncached, as ratios of routes
//!    measured side by side (by rate and by CPU time a request, with their
//!    confidence intervals);
//! 2. webhook deliveries applied a second (signature check included), all
//!    unique and with 20 % duplicates;
//! 3. backfill of 10,000 subscriptions from the fake: time and memory with
//!    no rate limit (and 2,000 for comparison), and the request rate
//!    achieved under Octany's 120-a-minute limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionExt, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer, dev::Payload, web};
use octany_actix::client::RateLimit;
use octany_actix::config::Secret;
use octany_actix::engine::{Syncer, WebhookReceiver};
use octany_actix::ops::BackfillOptions;
use octany_actix::{Billable, Octany, OctanyClient, RequireSubscription};
use octany_actix_tests::harness::{SECRET, envelope, signed, subscription_json};
use octany_actix_tests::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use octany_actix_tests::{Backend, TestDb};
use octany_fake::{FakeOctany, Faults};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    quick: bool,
    /// Only this section (`guard`, `webhooks` or `backfill`); no file written.
    only: Option<String>,
}

impl Options {
    fn runs(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == section)
    }
}

// ---------------------------------------------------------------- the guard

/// The host's user, looked up in the database from the session, as a real
/// app does on every request.
struct BenchUser {
    id: i64,
}

impl Billable for BenchUser {
    fn billable_id(&self) -> String {
        self.id.to_string()
    }
}

impl FromRequest for BenchUser {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let db = req.app_data::<web::Data<DatabaseConnection>>().cloned();
        Box::pin(async move {
            let id: i64 = session
                .get("user")
                .ok()
                .flatten()
                .ok_or_else(|| actix_web::error::ErrorUnauthorized("login"))?;
            let db = db.expect("the database is registered");
            let backend = db.get_database_backend();
            let sql = format!("SELECT id FROM bench_users WHERE id = {id}");
            let row = db
                .query_one_raw(Statement::from_string(backend, sql))
                .await
                .map_err(actix_web::error::ErrorServiceUnavailable)?
                .ok_or_else(|| actix_web::error::ErrorUnauthorized("no such user"))?;
            Ok(BenchUser {
                id: row
                    .try_get("", "id")
                    .map_err(actix_web::error::ErrorInternalServerError)?,
            })
        })
    }
}

async fn login(session: Session, id: web::Path<i64>) -> HttpResponse {
    session.insert("user", id.into_inner()).unwrap();
    HttpResponse::Ok().finish()
}

async fn plain(user: BenchUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("user {}", user.id))
}

async fn guarded(paid: RequireSubscription<BenchUser>) -> HttpResponse {
    HttpResponse::Ok().body(format!("user {}", paid.user.id))
}

/// What a host would write by hand instead of the guard: one query of the
/// two columns, and Octany's rule (`active`/`trialing`, or `cancelled`
/// with an end ahead).
async fn hand_checked(user: BenchUser, db: web::Data<DatabaseConnection>) -> HttpResponse {
    let backend = db.get_database_backend();
    let placeholder = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sql = format!(
        "SELECT status, ends_at FROM octany_subscriptions WHERE billable_ref = {placeholder}"
    );
    let rows = match db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [format!("user:{}", user.id).into()],
        ))
        .await
    {
        Ok(rows) => rows,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let now = chrono::Utc::now();
    let paying = rows.iter().any(|r| {
        let status: String = r.try_get("", "status").unwrap_or_default();
        let ends: Option<chrono::DateTime<chrono::Utc>> = r.try_get("", "ends_at").unwrap_or(None);
        matches!(status.as_str(), "active" | "trialing" | "cancelled")
            && ends.is_none_or(|e| e > now)
    });
    if paying {
        HttpResponse::Ok().body(format!("user {}", user.id))
    } else {
        HttpResponse::PaymentRequired().finish()
    }
}

/// What one wrk run on a route measured.
#[derive(Clone, Copy, Default)]
struct Load {
    /// Requests a second.
    rate: f64,
    /// Requests answered.
    requests: f64,
    /// CPU time the app spent meanwhile (and, on PostgreSQL, the local
    /// server), in seconds.
    cpu: f64,
}

impl std::ops::Add for Load {
    type Output = Load;

    fn add(self, other: Load) -> Load {
        Load {
            rate: self.rate + other.rate,
            requests: self.requests + other.requests,
            cpu: self.cpu + other.cpu,
        }
    }
}

impl Load {
    /// CPU seconds a request.
    fn cpu_per_request(&self) -> f64 {
        self.cpu / self.requests
    }
}

/// `path` under load from wrk (another process) with 16 connections for
/// `secs`, all sending `cookie`.
fn wrk(backend: Backend, base: &str, path: &str, cookie: &str, secs: u32) -> Load {
    let cpu = cpu_seconds(backend);
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            &format!("-d{secs}s"),
            "-H",
            &format!("Cookie: {cookie}"),
            &format!("{base}{path}"),
        ])
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let cpu = cpu_seconds(backend) - cpu;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "{path} answered errors under load:\n{text}"
    );
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{text}"));
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    Load {
        rate,
        requests,
        cpu,
    }
}

/// CPU time (user and system) this process has used, and on PostgreSQL
/// that of the local server's processes too, in seconds; the kernel counts
/// it in ticks of 1/100 s (`/proc/<pid>/stat`, fields 14 and 15).
fn cpu_seconds(backend: Backend) -> f64 {
    let ticks = |pid: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, fields) = stat.rsplit_once(") ")?;
                let fields: Vec<&str> = fields.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0)
    };
    let mut total = ticks("self");
    if backend == Backend::Postgres {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid.bytes().all(|b| b.is_ascii_digit())
                && std::fs::read_to_string(entry.path().join("comm"))
                    .is_ok_and(|comm| comm.trim() == "postgres")
            {
                total += ticks(&pid);
            }
        }
    }
    total as f64 / 100.0
}

// ----------------------------------------------------------------- backfill

use octany_actix_tests::rss_kib;

mod guard;
use guard::guard_bench;
mod webhooks;
use webhooks::{webhook_bench, webhook_http_bench};

async fn backfill_bench(backend: Backend, count: u64) -> Result<String, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(chrono::Utc::now())
        .start()
        .await?;
    fake.seed_subscriptions(1227, 1, count)?;
    let syncer = Syncer::new(db.conn.clone(), OctanyClient::new(fake.config())?);
    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let started = Instant::now();
    let done = syncer.backfill(BackfillOptions::default(), |_| {}).await?;
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().ok();
    assert_eq!(done.subscriptions, count);
    fake.stop().await;
    db.drop_database().await;
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    Ok(format!(
        "| {backend:?} | {count} | {:.2} s | {:.0} | {:.1} MiB |",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64(),
        growth as f64 / 1024.0
    ))
}

async fn paced_backfill_bench(options: &Options) -> Result<String, Error> {
    let db = TestDb::migrated(Backend::Sqlite).await;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .faults(Faults {
            rate_limit_per_minute: Some(120),
            ..Faults::none()
        })
        .start()
        .await?;
    fake.seed_subscriptions(1227, 1, 10_000)?;
    let config = fake.config().with_rate_limit(RateLimit {
        per_minute: 120,
        burst: 1,
    });
    let syncer = Syncer::new(db.conn.clone(), OctanyClient::new(config)?);
    let window = Duration::from_secs(if options.quick { 20 } else { 120 });
    let pages = Arc::new(AtomicU64::new(0));
    let counted = pages.clone();
    let started = Instant::now();
    let run = syncer.backfill(
        BackfillOptions {
            products: false,
            ..BackfillOptions::default()
        },
        move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        },
    );
    let outcome = tokio::time::timeout(window, run).await;
    let elapsed = started.elapsed().as_secs_f64();
    let errors = match outcome {
        Ok(Err(_)) => 1,
        _ => 0,
    };
    let requests = pages.load(Ordering::Relaxed) as f64;
    let per_minute = requests / elapsed * 60.0;
    fake.stop().await;
    db.drop_database().await;
    Ok(format!(
        "| 120 | {:.0} s | {requests:.0} | **{per_minute:.1}** | {:+.1} % | {errors} |",
        elapsed,
        (per_minute / 120.0 - 1.0) * 100.0
    ))
}

// --------------------------------------------------------------------- main

fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("OCTANY_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        backends.push(Backend::Postgres);
    }
    backends
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let options = Options {
        quick: args.iter().any(|a| a == "--quick"),
        only: args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned()),
    };
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let mut out = String::new();
    let mut section = |text: String| {
        println!("{text}");
        out.push_str(&text);
        out.push('\n');
    };
    section(format!(
        "# Benchmarks\n\nMeasured by `cargo bench -p octany-actix-tests --bench billing` (it writes this file), on a {}-core machine, {}.\nThe load generator and the app share the machine's cores.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        chrono::Utc::now().format("%Y-%m-%d")
    ));
    section("## 1. The guard against an unguarded route and a hand-written check\n\nEvery route reads a session cookie and looks the user up in the database. *Unguarded* stops there; *guarded* adds `RequireSubscription` (cached: the guard's 5 s cache; uncached: TTL 0, the guard's narrow query every request); *hand-written* runs one `SELECT status, ends_at FROM octany_subscriptions WHERE billable_ref = ?` and Octany's rule. Measured by wrk in its own process (16 connections, 2 threads), 2 s a measurement. Each ratio is of two routes side by side, A B B A, in each of 5 rounds; a run's row gives the routes' mean rates and the mean of its rounds' ratios; three runs, each on a fresh server and database; the last row is the mean of all rounds' ratios with its 95 % confidence interval. *By CPU*: the same ratio counted in CPU time a request (the app's process, and on PostgreSQL the local server's processes, from `/proc`), the baseline's over the guarded route's; it does not count what wrk and the machine's other work take from the app. Targets: cached ≥ 0.97 × unguarded, uncached ≥ 0.95 × hand-written.\n\n| backend | run | unguarded req/s | guarded, cached req/s | cached / unguarded | by CPU | hand-written req/s | guarded, uncached req/s | uncached / hand-written | by CPU |\n|---|---|---|---|---|---|---|---|---|---|".into());
    for backend in backends().into_iter().filter(|_| options.runs("guard")) {
        section(guard_bench(backend, &options).await?);
    }
    section("\n## 2. Webhook deliveries applied a second\n\nSignature check, dedupe claim, apply and commit of each delivery (`subscription.updated` for 400 subscriptions), 16 at a time. Target: at least 1,000 a second.\n\n| backend | duplicates | deliveries | per second |\n|---|---|---|---|".into());
    for backend in backends().into_iter().filter(|_| options.runs("webhooks")) {
        for duplicates in [false, true] {
            section(webhook_bench(backend, duplicates, &options).await?);
        }
    }
    section("\n### Over HTTP, against a hand-written receiver\n\nwrk in its own process (16 connections, 2 threads) posts unique pre-signed deliveries (`subscription.updated` for 400 subscriptions, each moving its renewal on), 4 s a run, three rounds in alternating order, to the library's mounted receiver and to the receiver a developer would write by hand on the same stack (HMAC over the raw body, parse, and in one transaction an event-id insert and a subscription upsert; no ordering, no stored body, no events). Target: library ≥ 0.75 × hand-written.\n\n| backend | round | hand-written / s | library / s | library / hand-written |\n|---|---|---|---|---|".into());
    for backend in backends().into_iter().filter(|_| options.runs("webhooks")) {
        section(webhook_http_bench(backend, &options).await?);
    }
    section("\n## 3. Backfill from the fake Octany\n\nNo rate limit: time, and the growth of the process's resident memory during the backfill (one page of 20 in memory at a time, so it must not grow with the count).\n\n| backend | subscriptions | time | per second | memory growth |\n|---|---|---|---|---|".into());
    for backend in backends().into_iter().filter(|_| options.runs("backfill")) {
        for count in [2_000, 10_000] {
            section(backfill_bench(backend, count).await?);
        }
    }
    section("\nUnder Octany's limit (the fake enforcing 120 requests a minute; the client pacing itself to 120 a minute, bursts of 1). Target: within 5 % of the limit, no 429 surfacing as an error.\n\n| limit / min | ran for | requests | achieved / min | vs limit | errors |\n|---|---|---|---|---|---|".into());
    if options.runs("backfill") {
        section(paced_backfill_bench(&options).await?);
    }
    if !options.quick && options.only.is_none() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md");
        std::fs::write(&path, out)?;
        println!("\nwritten to {}", path.display());
    }
    Ok(())
}

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
use octany_actix::sync::{BackfillOptions, Syncer};
use octany_actix::webhook::WebhookReceiver;
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

/// Three runs (one in `--quick`), each on a fresh server and database and
/// its own row; then every round's ratio of all runs, as a mean with its
/// 95 % confidence interval: on a 2-core machine shared with the load
/// generator one measurement varies by a few percent, so the interval says
/// whether a run settles a target.
async fn guard_bench(backend: Backend, options: &Options) -> Result<String, Error> {
    let repeats = if options.quick { 1 } else { 3 };
    let mut rows = Vec::new();
    let mut all: [Vec<f64>; 4] = Default::default();
    for run in 1..=repeats {
        let GuardRun { rates, ratios } = guard_run(backend, options).await?;
        let [p, c, u, h] = rates;
        let [cached, cached_cpu, uncached, uncached_cpu] =
            ratios.each_ref().map(|r| Interval::of(r).mean);
        rows.push(format!(
            "| {backend:?} | run {run} | {p:.0} | {c:.0} | **{cached:.3}** | {cached_cpu:.3} | {h:.0} | {u:.0} | **{uncached:.3}** | {uncached_cpu:.3} |",
        ));
        for (all, ratios) in all.iter_mut().zip(ratios) {
            all.extend(ratios);
        }
    }
    let [cached, cached_cpu, uncached, uncached_cpu] = all.each_ref().map(|r| Interval::of(r));
    rows.push(format!(
        "| {backend:?} | **all {} rounds** | | | **{cached}** | **{cached_cpu}** | | | **{uncached}** | **{uncached_cpu}** |",
        all[0].len(),
    ));
    Ok(rows.join("\n"))
}

/// A mean and the half-width of its 95 % confidence interval (Student's t).
struct Interval {
    mean: f64,
    half: f64,
}

impl Interval {
    fn of(samples: &[f64]) -> Self {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        if samples.len() < 2 {
            return Self { mean, half: 0.0 };
        }
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        // t(0.975) by degrees of freedom, rounded up between the table's rows.
        let t = match samples.len() - 1 {
            1 => 12.71,
            2 => 4.30,
            3 => 3.18,
            4 => 2.78,
            5 => 2.57,
            6..=7 => 2.45,
            8..=10 => 2.31,
            11..=15 => 2.20,
            16..=20 => 2.13,
            21..=30 => 2.09,
            _ => 2.05,
        };
        Self {
            mean,
            half: t * (variance / n).sqrt(),
        }
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} ± {:.3}", self.mean, self.half)
    }
}

/// One run of the guard section: each route's mean rate (unguarded,
/// cached, uncached, hand-written), and each round's ratios: cached to
/// unguarded by rate and by CPU time a request (the baseline's over the
/// guarded route's), then uncached to hand-written, likewise.
struct GuardRun {
    rates: [f64; 4],
    ratios: [Vec<f64>; 4],
}

async fn guard_run(backend: Backend, options: &Options) -> Result<GuardRun, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(chrono::Utc::now())
        .start()
        .await?;
    let users = 64u64;
    fake.seed_subscriptions(1225, 1, users)?;
    let sql =
        "CREATE TABLE bench_users (id BIGINT PRIMARY KEY, email VARCHAR(255) NOT NULL)".to_owned();
    db.conn
        .execute_raw(Statement::from_string(db.db_backend(), sql))
        .await?;
    let values: Vec<String> = (1..=users)
        .map(|i| format!("({i}, 'user{i}@example.com')"))
        .collect();
    let insert = format!(
        "INSERT INTO bench_users (id, email) VALUES {}",
        values.join(", ")
    );
    db.conn
        .execute_raw(Statement::from_string(db.db_backend(), insert))
        .await?;
    let build = |ttl: Duration| {
        Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
            .public_base_url("http://localhost")
            .cache_ttl(ttl)
            .build()
    };
    let (cached, uncached) = (build(Duration::from_secs(5))?, build(Duration::ZERO)?);
    cached
        .syncer()
        .backfill(BackfillOptions::default(), |_| {})
        .await?;
    let key = Key::generate();
    let conn = web::Data::new(db.conn.clone());
    let (cached, uncached) = (web::Data::new(cached), web::Data::new(uncached));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .app_data(conn.clone())
            .route("/login/{id}", web::post().to(login))
            // Every measured route sits in a scope with scope-level data, so
            // they pay the same routing and differ only by the guard.
            .service(
                web::scope("/open")
                    .app_data(cached.clone())
                    .route("/plain", web::get().to(plain)),
            )
            .service(
                web::scope("/cached")
                    .app_data(cached.clone())
                    .route("/guarded", web::get().to(guarded)),
            )
            .service(
                web::scope("/uncached")
                    .app_data(uncached.clone())
                    .route("/guarded", web::get().to(guarded)),
            )
            .service(
                web::scope("/hand")
                    .app_data(cached.clone())
                    .route("/checked", web::get().to(hand_checked)),
            )
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    octany_actix::install_crypto_provider();
    // One user's session cookie for every connection of the load generator.
    let login = reqwest::Client::new()
        .post(format!("{base}/login/1"))
        .send()
        .await?
        .error_for_status()?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let (rounds, secs) = if options.quick { (2, 1) } else { (5, 2) };
    let paths = [
        "/open/plain",
        "/cached/guarded",
        "/uncached/guarded",
        "/hand/checked",
    ];
    for path in paths {
        wrk(backend, &base, path, &cookie, 1); // warm up (and check it answers 200)
    }
    // Each ratio is of two routes measured side by side, A B B A in every
    // round, so that whatever the machine does during a round weighs on
    // both alike; the two comparisons take turns going first.
    let comparisons = [(0, 1), (3, 2)];
    let load = |route: usize| wrk(backend, &base, paths[route], &cookie, secs);
    let mut sums = [Load::default(); 4];
    let mut ratios: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        for k in [round % 2, 1 - round % 2] {
            let (base_route, guard_route) = comparisons[k];
            let a = load(base_route);
            let b = load(guard_route) + load(guard_route);
            let a = a + load(base_route);
            ratios[2 * k].push(b.rate / a.rate);
            ratios[2 * k + 1].push(a.cpu_per_request() / b.cpu_per_request());
            sums[base_route] = sums[base_route] + a;
            sums[guard_route] = sums[guard_route] + b;
        }
    }
    let rates = sums.map(|s| s.rate / (2 * rounds) as f64);
    handle.stop(true).await;
    fake.stop().await;
    db.drop_database().await;
    Ok(GuardRun { rates, ratios })
}

// ----------------------------------------------------------------- webhooks

async fn webhook_bench(
    backend: Backend,
    duplicates: bool,
    options: &Options,
) -> Result<String, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = FakeOctany::builder().start().await?;
    let syncer = Syncer::new(db.conn.clone(), OctanyClient::new(fake.config())?);
    let receiver = WebhookReceiver::new(syncer, &[Secret::new(SECRET)])?;
    let count: u64 = if options.quick { 1000 } else { 4000 };
    let t0: chrono::DateTime<chrono::Utc> = "2026-05-01T00:00:00Z".parse().unwrap();
    let mut bodies = Vec::with_capacity(count as usize);
    let mut next_id = 0u64;
    for n in 0..count {
        // Every fifth delivery repeats an earlier one when duplicates are on.
        let delivery = if duplicates && n % 5 == 4 {
            next_id.saturating_sub(3)
        } else {
            next_id += 1;
            next_id
        };
        let sub = delivery % 400;
        let data = subscription_json(10_000 + sub, &format!("user:{sub}"), "active", None);
        bodies.push(signed(&envelope(
            delivery,
            "subscription.updated",
            t0 + chrono::Duration::seconds(delivery as i64),
            data,
        )));
    }
    let queue = Arc::new(std::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (queue, receiver) = (queue.clone(), receiver.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((body, signature)) = next else { break };
                    receiver
                        .receive(Some(&signature), &body)
                        .await
                        .expect("applied");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    fake.stop().await;
    db.drop_database().await;
    Ok(format!(
        "| {backend:?} | {} | {count} | **{rate:.0}** |",
        if duplicates { "20 %" } else { "0" }
    ))
}

// ------------------------------------------------------- webhooks over HTTP

/// The webhook receiver a developer would write by hand on the same stack:
/// the HMAC over the raw body (constant-time), a parse, and in one
/// transaction the event id inserted (the dedupe) and the subscription
/// upserted. No ordering, no body kept, no events, no replay.
struct HandReceiver {
    db: DatabaseConnection,
    secret: &'static [u8],
}

/// `?` placeholders as the backend spells them.
fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::new();
    for (n, part) in sql.split('?').enumerate() {
        if n > 0 {
            out.push_str(&format!("${n}"));
        }
        out.push_str(part);
    }
    out
}

async fn hand_webhook(
    req: HttpRequest,
    body: web::Bytes,
    hand: web::Data<HandReceiver>,
) -> HttpResponse {
    use hmac::{KeyInit, Mac};
    let signature = req
        .headers()
        .get("Octany-Signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hex::decode(v.trim()).ok())
        .unwrap_or_default();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(hand.secret).expect("any key");
    mac.update(&body);
    if signature.is_empty() || mac.verify_slice(&signature).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    let data = &envelope["data"];
    let backend = hand.db.get_database_backend();
    let applied = async {
        use octany_actix_tests::sea_orm::TransactionTrait;
        let txn = hand.db.begin().await?;
        let claimed = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "INSERT INTO hand_events (id) VALUES (?) ON CONFLICT DO NOTHING",
                ),
                [text(&envelope["id"]).into()],
            ))
            .await?
            .rows_affected();
        if claimed == 1 {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "INSERT INTO hand_subscriptions (id, billable_ref, status, renews_at, ends_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
                     billable_ref = excluded.billable_ref, status = excluded.status, \
                     renews_at = excluded.renews_at, ends_at = excluded.ends_at",
                ),
                [
                    text(&data["id"]).into(),
                    text(&data["reference_id"]).into(),
                    text(&data["status"]).into(),
                    text(&data["renews_at"]).into(),
                    text(&data["ends_at"]).into(),
                ],
            ))
            .await?;
        }
        txn.commit().await
    };
    match applied.await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// wrk's script: each request is the next of the pre-signed deliveries in
/// the file (the two threads take alternate lines), so every request is a
/// new delivery.
const DELIVERIES_LUA: &str = r#"
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  sigs, bodies, n = {}, {}, 0
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    sigs[n] = line:sub(1, tab - 1)
    bodies[n] = line:sub(tab + 1)
  end
  step = tonumber(args[2])
  i = offset + 1 - step
  path = args[3]
end
function request()
  i = i + step
  if i > n then i = (i - 1) % n + 1 end
  return wrk.format("POST", path, {["Content-Type"] = "application/json", ["Octany-Signature"] = sigs[i]}, bodies[i])
end
"#;

/// Writes `count` unique signed deliveries (ids from `first`), a line each:
/// signature, tab, body. `subscription.updated` for 400 subscriptions.
fn delivery_file(
    dir: &std::path::Path,
    first: u64,
    count: u64,
) -> Result<std::path::PathBuf, Error> {
    use std::io::Write;
    let t0: chrono::DateTime<chrono::Utc> = "2026-05-01T00:00:00Z".parse()?;
    let path = dir.join(format!("deliveries-{first}.txt"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for delivery in first..first + count {
        let sub = delivery % 400;
        // A second apart (Octany's dates have no finer grain), each delivery
        // moves the renewal on: a change to apply, not a repeat of the
        // stored state.
        let at = t0 + chrono::Duration::seconds(delivery as i64);
        let mut data = subscription_json(10_000 + sub, &format!("user:{sub}"), "active", None);
        data["renews_at"] = serde_json::json!(
            (at + chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        );
        let (body, signature) = signed(&envelope(delivery, "subscription.updated", at, data));
        out.write_all(signature.as_bytes())?;
        out.write_all(b"\t")?;
        out.write_all(&body)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(path)
}

/// Deliveries a second on `path` by wrk (16 connections, 2 threads) from
/// the pre-signed `file`, and how many requests it sent.
fn wrk_deliveries(
    base: &str,
    path: &str,
    script: &std::path::Path,
    file: &std::path::Path,
    secs: u32,
) -> (f64, u64) {
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{secs}s"), "-s"])
        .arg(script)
        .arg(format!("{base}{path}"))
        .arg("--")
        .arg(file)
        .args(["2", path])
        .output()
        .expect("wrk runs (apt-get install wrk)");
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
    let sent = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in"))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    (rate, sent)
}

/// The library's receiver (mounted by `Octany::scope`, the outbox and
/// everything) against [`HandReceiver`], over HTTP, in alternating order;
/// a row a round and the mean ratio.
async fn webhook_http_bench(backend: Backend, options: &Options) -> Result<String, Error> {
    let db = TestDb::migrated(backend).await;
    let fake = FakeOctany::builder().start().await?;
    for sql in [
        "CREATE TABLE hand_events (id VARCHAR(100) PRIMARY KEY)",
        "CREATE TABLE hand_subscriptions (id VARCHAR(64) PRIMARY KEY, billable_ref VARCHAR(255), \
         status VARCHAR(32), renews_at VARCHAR(40), ends_at VARCHAR(40))",
    ] {
        db.conn
            .execute_raw(Statement::from_string(db.db_backend(), sql))
            .await?;
    }
    let octany = Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
        .public_base_url("http://localhost")
        .build()?;
    let hand = web::Data::new(HandReceiver {
        db: db.conn.clone(),
        secret: SECRET.as_bytes(),
    });
    let lib = web::Data::new(octany.clone());
    let server = HttpServer::new(move || {
        App::new()
            .service(
                web::scope("/lib")
                    .app_data(lib.clone())
                    .service(lib.scope::<BenchUser>()),
            )
            .service(
                web::scope("/hand")
                    .app_data(hand.clone())
                    .route("/webhook", web::post().to(hand_webhook)),
            )
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("deliveries.lua");
    std::fs::write(&script, DELIVERIES_LUA)?;
    let (rounds, secs, per_run): (u32, u32, u64) = if options.quick {
        (1, 2, 24_000)
    } else {
        (3, 4, 50_000)
    };
    let paths = ["/hand/webhook", "/lib/billing/webhook"];
    let mut next = 1u64;
    let mut rows = Vec::new();
    let mut ratios = 0.0;
    // Warm up both (and check they answer 200).
    for path in paths {
        let file = delivery_file(dir.path(), next, 2_000)?;
        next += 2_000;
        wrk_deliveries(&base, path, &script, &file, 1);
    }
    for round in 0..rounds {
        let mut rates = [0.0; 2];
        for k in 0..2 {
            // Alternate which goes first.
            let i = (k + round as usize) % 2;
            let file = delivery_file(dir.path(), next, per_run)?;
            next += per_run;
            let (rate, sent) = wrk_deliveries(&base, paths[i], &script, &file, secs);
            assert!(
                sent <= per_run,
                "wrk sent {sent} requests, more than the {per_run} unique deliveries: make the file longer"
            );
            rates[i] = rate;
        }
        ratios += rates[1] / rates[0];
        rows.push(format!(
            "| {backend:?} | round {} | {:.0} | {:.0} | **{:.3}** |",
            round + 1,
            rates[0],
            rates[1],
            rates[1] / rates[0]
        ));
    }
    rows.push(format!(
        "| {backend:?} | **mean** | | | **{:.3}** |",
        ratios / f64::from(rounds)
    ));
    handle.stop(true).await;
    fake.stop().await;
    db.drop_database().await;
    Ok(rows.join("\n"))
}

// ----------------------------------------------------------------- backfill

use octany_actix_tests::rss_kib;

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

//! Section 1: the guard against the unguarded route and a hand-written check, side by side over HTTP.

use super::*;

/// Three runs (one in `--quick`), each on a fresh server and database and
/// its own row; then every round's ratio of all runs, as a mean with its
/// 95 % confidence interval: on a 2-core machine shared with the load
/// generator one measurement varies by a few percent, so the interval says
/// whether a run settles a target.
pub(super) async fn guard_bench(backend: Backend, options: &Options) -> Result<String, Error> {
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
    // OCTANY_BENCH_API_CALL_LOG=off: the same, with the API-call log off
    // (the guard never calls Octany, so the log should cost it nothing).
    let api_call_log = std::env::var("OCTANY_BENCH_API_CALL_LOG").map_or(true, |v| v != "off");
    let build = |ttl: Duration| {
        Octany::builder(fake.config().with_webhook_secret(SECRET), db.conn.clone())
            .public_base_url("http://localhost")
            .cache_ttl(ttl)
            .api_call_log(api_call_log)
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

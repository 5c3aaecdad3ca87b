//! Section 2: webhook deliveries applied a second, in process and over HTTP against a minimal hand-written receiver.

use super::*;

// ----------------------------------------------------------------- webhooks

pub(super) async fn webhook_bench(
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
pub(super) async fn webhook_http_bench(
    backend: Backend,
    options: &Options,
) -> Result<String, Error> {
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

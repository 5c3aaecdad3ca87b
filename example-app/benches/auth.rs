//! `cargo bench -p example-app --bench auth`: the example app's binary
//! (release) in a process of its own, measured from this one over HTTP.
//!
//! 1. A cheap page (`GET /pricing`, signed in) idle, then while 8 clients
//!    log in over and over (each login hashes with argon2id): its median and
//!    90th percentile, and the ratio. Hashing runs on tokio's blocking pool,
//!    at most half the cores at once, so the workers keep serving.
//! 2. A failed login for a known e-mail against an unknown one, alternated:
//!    the medians and their ratio (an unknown e-mail verifies a dummy hash).
//! 3. A sign-up with a known e-mail against a new one, alternated: the
//!    medians and their ratio (both hash the password and mail a link or a
//!    note, so the time does not say which addresses have accounts).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

struct App {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> App {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_example-app"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "serve"])
        .env("EXAMPLE_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .env("LOGIN_LIMIT_PER_ACCOUNT", "1000000")
        .env("LOGIN_LIMIT_PER_ADDRESS", "1000000")
        .env("SIGNUP_LIMIT_PER_ADDRESS", "1000000")
        .env_remove("OCTANY_ACCOUNT")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .spawn()
        .expect("the example app starts");
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Waiting for a separate process to listen: polling is the only signal.
    while probe.get(format!("{base}/login")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the app did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    App { child, base, dir }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn csrf(client: &reqwest::Client, url: &str) -> String {
    let page = client.get(url).send().await.unwrap().text().await.unwrap();
    let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    page[at..at + 64].to_owned()
}

async fn post(client: &reqwest::Client, base: &str, path: &str, form: &[(&str, &str)]) -> u16 {
    let token = csrf(client, &format!("{base}{path}")).await;
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend_from_slice(form);
    client
        .post(format!("{base}{path}"))
        .form(&fields)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn millis(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.9))
}

async fn cheap_page(client: &reqwest::Client, base: &str, n: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = client
            .get(format!("{base}/pricing"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        took.push(t.elapsed());
    }
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    octany_actix::install_crypto_provider();
    let app = start().await;
    let base = app.base.clone();
    let reader = client();
    let made = post(
        &reader,
        &base,
        "/signup",
        &[("email", "ada@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(made, 303);
    // The link mailed to Ada (caught in the data directory), confirmed.
    let mail = std::fs::read_dir(app.dir.path().join("mail"))
        .unwrap()
        .flatten()
        .next()
        .expect("the sign-up's mail");
    let link = example_app::mail::links(&std::fs::read_to_string(mail.path()).unwrap())
        .into_iter()
        .next()
        .expect("its link");
    let path = link.strip_prefix(&base).unwrap().to_owned();
    assert_eq!(post(&reader, &base, &path, &[]).await, 303);
    cheap_page(&reader, &base, 50).await; // warm up

    let idle = cheap_page(&reader, &base, 300).await;
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let mut hashing = Vec::new();
    for _ in 0..8 {
        let (stop, logins, base) = (stop.clone(), logins.clone(), base.clone());
        hashing.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let c = client();
                let status = post(
                    &c,
                    &base,
                    "/login",
                    &[("email", "ada@example.com"), ("password", PASSWORD)],
                )
                .await;
                assert_eq!(status, 303);
                logins.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let all 8 get into their hashing before measuring.
    while logins.load(Ordering::Relaxed) < 8 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let before = logins.load(Ordering::Relaxed);
    let loaded = cheap_page(&reader, &base, 300).await;
    let rate = (logins.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in hashing {
        h.await.unwrap();
    }
    let (idle50, idle90) = millis(idle);
    let (load50, load90) = millis(loaded);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "machine: {cores} cores; the example app (release) on SQLite and the in-process fake Octany, in its own process"
    );
    println!("cheap page GET /pricing, 300 sequential requests each:");
    println!("  idle:                      median {idle50:7.2} ms   p90 {idle90:7.2} ms");
    println!(
        "  while 8 clients log in:    median {load50:7.2} ms   p90 {load90:7.2} ms   ({rate:.1} logins/s hashed)"
    );
    println!(
        "  ratio loaded/idle (median): {:.2}   target: median under 50 ms",
        load50 / idle50
    );

    let (known, unknown) = alternated(&base, "/login", 401, |_| "nobody@example.com".into()).await;
    let (k50, k90) = millis(known);
    let (u50, u90) = millis(unknown);
    println!("failed login, 95 each, alternated (order swapped every pair):");
    println!("  known e-mail:    median {k50:7.2} ms   p90 {k90:7.2} ms");
    println!("  unknown e-mail:  median {u50:7.2} ms   p90 {u90:7.2} ms");
    println!("  ratio unknown/known (median): {:.2}", u50 / k50);

    let (known, new) = alternated(&base, "/signup", 303, |i| format!("new{i}@example.com")).await;
    let (k50, k90) = millis(known);
    let (n50, n90) = millis(new);
    println!("sign-up, 95 each, alternated (order swapped every pair):");
    println!("  known e-mail:    median {k50:7.2} ms   p90 {k90:7.2} ms");
    println!("  new e-mail:      median {n50:7.2} ms   p90 {n90:7.2} ms");
    println!("  ratio new/known (median): {:.2}", n50 / k50);
}

/// 100 posts of `path` for Ada's e-mail and 100 for `other(i)`,
/// alternated (which goes first swaps every pair), each answered `status`;
/// the times of each after 5 to warm up.
async fn alternated(
    base: &str,
    path: &str,
    status: u16,
    other: impl Fn(usize) -> String,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let mut pair = [("ada@example.com".to_owned(), true), (other(i), false)];
        if i % 2 == 1 {
            pair.reverse();
        }
        for (email, is_known) in pair {
            let c = client();
            let token = csrf(&c, &format!("{base}{path}")).await;
            let t = Instant::now();
            let answer = c
                .post(format!("{base}{path}"))
                .form(&[
                    ("csrf", token.as_str()),
                    ("email", email.as_str()),
                    ("password", "not the password at all"),
                ])
                .send()
                .await
                .unwrap()
                .status();
            let took = t.elapsed();
            assert_eq!(answer.as_u16(), status, "{path} as {email}");
            if i >= 5 {
                if is_known { &mut known } else { &mut unknown }.push(took);
            }
        }
    }
    (known, unknown)
}

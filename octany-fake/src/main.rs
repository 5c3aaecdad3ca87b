//! The fake Octany, standalone.
//!
//! ```text
//! cargo run -p octany-actix --features fake --bin octany-fake -- --port 0 --webhook-url URL
//! ```
//!
//! Its virtual clock starts at the real time (so an app reading the system
//! clock agrees with it), or at `--now RFC3339`. Prints one JSON line once
//! it listens:
//! `{"api_url", "checkout_url", "control_url", "account", "api_key", "webhook_secret", "now"}`
//! (`api_url` and `checkout_url` are the values for `OCTANY_API_URL` and
//! `OCTANY_CHECKOUT_URL`), seeds the sample catalog, and runs until killed.

use std::io::Write;
use std::process::ExitCode;

use octany_fake::FakeOctany;

const USAGE: &str = "usage: octany-fake [--port N] [--webhook-url URL] [--webhook-secret SECRET] [--seed N] [--now RFC3339] [--legacy-pagination]";

struct Args {
    port: u16,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    seed: u64,
    now: Option<chrono::DateTime<chrono::Utc>>,
    legacy: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        port: 0,
        webhook_url: None,
        webhook_secret: None,
        seed: 1,
        now: None,
        legacy: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                parsed.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port takes a number from 0 to 65535")?
            }
            "--webhook-url" => parsed.webhook_url = Some(value("--webhook-url")?),
            "--webhook-secret" => parsed.webhook_secret = Some(value("--webhook-secret")?),
            "--seed" => {
                parsed.seed = value("--seed")?
                    .parse()
                    .map_err(|_| "--seed takes a whole number")?
            }
            "--now" => {
                let at = value("--now")?;
                parsed.now = Some(
                    chrono::DateTime::parse_from_rfc3339(&at)
                        .map_err(|_| format!("--now takes an RFC 3339 time such as 2026-01-01T00:00:00Z, not `{at}`"))?
                        .with_timezone(&chrono::Utc),
                )
            }
            "--legacy-pagination" => parsed.legacy = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime starts");
    runtime.block_on(async move {
        // The builder starts at the real time: an app on the system clock
        // then agrees with the fake about what is due (renewal grace included).
        let mut builder = FakeOctany::builder()
            .port(args.port)
            .seed(args.seed)
            .sample_catalog()
            .legacy_pagination(args.legacy);
        if let Some(now) = args.now {
            builder = builder.starting_at(now);
        }
        if let Some(url) = &args.webhook_url {
            builder = builder.webhook(url.clone(), args.webhook_secret.as_deref());
        }
        let fake = match builder.start().await {
            Ok(fake) => fake,
            Err(e) => {
                eprintln!("octany-fake could not start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let secret = fake.webhook_endpoints().first().map(|e| e.secret.clone());
        let line = serde_json::json!({
            "api_url": fake.api_url(),
            "checkout_url": fake.checkout_url(),
            "control_url": fake.control_url(),
            "account": fake.account_id(),
            "api_key": fake.api_key(),
            "webhook_secret": secret,
            "now": fake.now().to_rfc3339(),
        });
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        drop(stdout);
        std::future::pending::<ExitCode>().await
    })
}

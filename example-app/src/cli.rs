//! The subcommands: serve, migrate, webhook register, and octany-actix's
//! operator commands (sync, reconcile, replay, prune, doctor), mounted from
//! `octany_actix::cli` in one line of `main.rs`.

use std::process::ExitCode;

use crate::{Settings, billing, db};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Serves until Ctrl-C.
pub async fn serve(settings: Settings) -> Result<ExitCode> {
    let running = crate::start(settings).await?;
    println!("example-app is running at {}", running.url);
    if let Some(fake) = &running.fake {
        println!(
            "  against the fake Octany (no account needed); its control page: {}",
            fake.control_url()
        );
    }
    running.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// Applies the migrations.
pub async fn migrate(settings: Settings) -> Result<ExitCode> {
    let db = db::connect(&settings.database_url).await?;
    let pending = db::migrations_pending(&db).await?;
    db::migrate(&db).await?;
    println!("applied {pending} migration(s); the database is up to date");
    Ok(ExitCode::SUCCESS)
}

async fn octany(settings: &Settings) -> Result<(octany_actix::Octany, billing::Backend)> {
    let db = db::connect(&settings.database_url).await?;
    db::migrate(&db).await?;
    let backend = billing::backend(settings.octany.clone()).await?;
    let url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.bind));
    let octany = billing::octany(&backend, db, &url, settings)?;
    Ok((octany, backend))
}

/// Registers a webhook endpoint with Octany.
pub async fn register_webhook(settings: Settings, url: &str) -> Result<ExitCode> {
    let (octany, _backend) = octany(&settings).await?;
    let endpoint = octany.client().register_webhook_endpoint(url).await?;
    println!(
        "registered {} (id {})",
        endpoint.url,
        endpoint.id.as_deref().unwrap_or("?")
    );
    println!(
        "Octany does not return the secret: copy it from Octany's admin into OCTANY_WEBHOOK_SECRET."
    );
    Ok(ExitCode::SUCCESS)
}

/// One of octany-actix's operator commands; `doctor` first checks what is
/// the app's own (configuration, migrations).
pub async fn billing(settings: Settings, command: octany_actix::cli::Command) -> Result<ExitCode> {
    if let octany_actix::cli::Command::Doctor { .. } = command {
        if !app_checks(&settings).await {
            return Ok(ExitCode::FAILURE);
        }
        if settings.octany.is_none() {
            // The account checks are for a real account; the fake is in this process.
            println!(
                "ok   Octany: reachable (the in-process fake; set OCTANY_ACCOUNT to check a real account)"
            );
            println!("ok   webhook secret: generated for the fake");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (octany, _backend) = octany(&settings).await?;
    Ok(match command.run(&octany).await {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// The app's own checks, one line each: ok, or what to fix.
async fn app_checks(settings: &Settings) -> bool {
    let mut healthy = true;
    let mut line = |ok: bool, what: &str, detail: String| {
        healthy &= ok;
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FIX " });
    };
    match &settings.octany {
        Some(config) => line(
            true,
            "configuration",
            format!("Octany account {}", config.account()),
        ),
        None => line(
            true,
            "configuration",
            "no OCTANY_ACCOUNT: running against the in-process fake Octany".into(),
        ),
    }
    match db::connect(&settings.database_url).await {
        Ok(db) => match db::migrations_pending(&db).await {
            Ok(0) => line(true, "migrations", "all applied".into()),
            Ok(n) => line(
                false,
                "migrations",
                format!("{n} pending: run `cargo run -p example-app -- migrate`"),
            ),
            Err(e) => line(
                false,
                "migrations",
                format!("cannot read their state ({e}): run migrate"),
            ),
        },
        Err(e) => line(
            false,
            "database",
            format!("cannot connect ({e}): check DATABASE_URL"),
        ),
    }
    healthy
}

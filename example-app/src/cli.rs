//! The subcommands: serve, migrate, sync, webhook register, replay, doctor.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use octany_actix::sync::BackfillOptions;

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
    let octany = billing::octany(&backend, db, &url)?;
    Ok((octany, backend))
}

/// Backfills the whole account, with a progress bar.
pub async fn sync(settings: Settings) -> Result<ExitCode> {
    let (octany, _backend) = octany(&settings).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} page {pos}/{len} · {msg}",
    )?);
    let done = octany
        .syncer()
        .backfill(BackfillOptions::default(), |progress| {
            if let Some(total) = progress.total_pages {
                bar.set_length(u64::from(total));
            }
            bar.set_position(u64::from(progress.page));
            bar.set_message(format!("{} subscriptions", progress.subscriptions));
        })
        .await?;
    bar.finish_with_message(format!("{} subscriptions mirrored", done.subscriptions));
    Ok(ExitCode::SUCCESS)
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

/// Replays stored deliveries.
pub async fn replay(
    settings: Settings,
    failed: bool,
    delivery: Option<String>,
) -> Result<ExitCode> {
    let (octany, _backend) = octany(&settings).await?;
    match (failed, delivery) {
        (_, Some(id)) => {
            let outcome = octany.receiver().replay(&id).await?;
            println!("delivery {id}: {outcome:?}");
        }
        (true, None) => {
            let report = octany.receiver().replay_failed().await?;
            println!(
                "replayed {} delivery(ies); {} failed again",
                report.replayed, report.failed
            );
            if report.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        (false, None) => return Err("say what to replay: --failed, or a delivery id".into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks everything, one line each: ok, or what to fix.
pub async fn doctor(settings: Settings) -> Result<ExitCode> {
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
    let db = match db::connect(&settings.database_url).await {
        Ok(db) => Some(db),
        Err(e) => {
            line(
                false,
                "database",
                format!("cannot connect ({e}): check DATABASE_URL"),
            );
            None
        }
    };
    if let Some(db) = &db {
        match db::migrations_pending(db).await {
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
        }
    }
    let backend = billing::backend(settings.octany.clone()).await?;
    let client = octany_actix::OctanyClient::new(backend.config.clone())?;
    match client.list_products(1).await {
        Ok(page) => line(
            true,
            "Octany",
            format!(
                "reachable, key valid, {} product(s)",
                page.pagination.total.unwrap_or(page.data.len() as i64)
            ),
        ),
        Err(e) => line(false, "Octany", e.to_string()),
    }
    let secrets = backend.config.webhook_secrets().len();
    line(
        secrets > 0,
        "webhook secret",
        if secrets > 0 {
            format!("{secrets} configured")
        } else {
            "OCTANY_WEBHOOK_SECRET is not set".into()
        },
    );
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

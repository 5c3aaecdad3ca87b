//! The operator's commands (feature `cli`), as clap subcommands a host
//! mounts in its own binary in one line:
//!
//! ```no_run
//! # async fn demo(octany: octany_actix::Octany) {
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! enum Cli {
//!     /// Serve the app.
//!     Serve,
//!     /// Billing: sync, reconcile, replay, prune, doctor.
//!     #[command(subcommand)]
//!     Billing(octany_actix::cli::Command),
//! }
//!
//! match Cli::parse() {
//!     Cli::Serve => { /* ... */ }
//!     Cli::Billing(command) => std::process::exit(command.run(&octany).await),
//! }
//! # }
//! ```
//!
//! - `sync [--from-page N] [--no-orders]`: mirror every subscription of the
//!   account and its orders, page by page, with a progress bar; stopped, it
//!   says the page to resume from;
//! - `reconcile`: re-read what is due now (renewals, ends, flagged rows);
//! - `replay (--failed | --since T [--until T] | DELIVERY)`: re-apply stored
//!   deliveries;
//! - `prune --older-than-days N`: delete applied deliveries and API-call log
//!   lines older than N days;
//! - `grant-comp BILLABLE (--plan SLUG | --feature NAME…) [--days N] --reason
//!   TEXT --by WHO`, `revoke-comp ID --by WHO`, `comps BILLABLE`: grant a
//!   plan or features without Octany, revoke it, list the audit;
//! - `api-calls BILLABLE [--limit N]`: the newest requests made to Octany
//!   for a billable (the API-call log; never the key);
//! - `doctor`: check the account end to end: the key, Octany's clock against
//!   ours, the webhook secret, the webhook URL answering with this app's
//!   secret (a signed `test.hook` sent to it), deliveries received from
//!   Octany, and with `--wait-for-test-hook SECS` a `test.hook` sent from
//!   Octany's admin arriving.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::client::OctanyClient;
use crate::mirror::console::ENDPOINT_CHECK;
use crate::mirror::entity::webhook_delivery;
use crate::ops::BackfillOptions;
use crate::web::octany::Octany;

/// The operator's commands; [`Command::run`] runs one.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Mirror every subscription of the account (and their orders) into the database.
    Sync {
        /// The page to start from (a stopped sync says which to resume at).
        #[arg(long, default_value_t = 1)]
        from_page: u32,
        /// Skip the orders (one request fewer per subscription).
        #[arg(long)]
        no_orders: bool,
    },
    /// Re-read from Octany what is due now: renewals, ends, flagged rows.
    Reconcile,
    /// Re-apply stored webhook deliveries.
    Replay {
        /// Every delivery whose applying failed.
        #[arg(long, conflicts_with_all = ["delivery", "since"])]
        failed: bool,
        /// Every delivery first received at or after this time (RFC 3339).
        #[arg(long, conflicts_with = "delivery")]
        since: Option<DateTime<Utc>>,
        /// With `--since`: received before this time (default: no end).
        #[arg(long, requires = "since")]
        until: Option<DateTime<Utc>>,
        /// One delivery, by id.
        delivery: Option<String>,
    },
    /// Delete applied webhook deliveries (failed ones are kept) and API-call log lines older than N days.
    Prune {
        /// Age in days (at least 7: Octany retries for days, and the dedupe needs them).
        #[arg(long, value_parser = clap::value_parser!(u32).range(7..))]
        older_than_days: u32,
    },
    /// Check the account end to end: key, clock, secret, webhook URL, deliveries.
    Doctor {
        /// Also wait this many seconds for a `test.hook` sent from Octany's admin.
        #[arg(long)]
        wait_for_test_hook: Option<u64>,
    },
    /// Grant a billable a plan or features without Octany (a comp).
    GrantComp {
        /// The billable, as `type:id` (e.g. `team:7`).
        billable: String,
        /// The plan, by its slug.
        #[arg(long)]
        plan: Option<String>,
        /// A feature (repeat for more).
        #[arg(long)]
        feature: Vec<String>,
        /// Days until it ends by itself (default: until revoked).
        #[arg(long)]
        days: Option<u32>,
        /// Why (kept for the audit).
        #[arg(long)]
        reason: String,
        /// Who grants it (kept for the audit).
        #[arg(long)]
        by: String,
    },
    /// Revoke a comp.
    RevokeComp {
        /// The comp's id.
        id: String,
        /// Who revokes it (kept for the audit).
        #[arg(long)]
        by: String,
    },
    /// List a billable's comps, ended and revoked ones too.
    Comps {
        /// The billable, as `type:id`.
        billable: String,
    },
    /// List the newest requests the library made to Octany for a billable.
    ApiCalls {
        /// The billable, as `type:id`.
        billable: String,
        /// How many, at most.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

impl Command {
    /// Runs the command, printing to stdout; returns the exit code (0 when
    /// it did everything, 1 when something needs fixing).
    pub async fn run(self, octany: &Octany) -> i32 {
        let mut out = std::io::stdout();
        match self.run_to(octany, &mut out).await {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(error) => {
                let _ = writeln!(out, "error: {error}");
                1
            }
        }
    }

    /// [`Command::run`], writing to `out`; `Ok(false)` when something needs
    /// fixing.
    pub async fn run_to(
        self,
        octany: &Octany,
        out: &mut (dyn Write + Send),
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Command::Sync {
                from_page,
                no_orders,
            } => sync(octany, from_page, !no_orders, out).await,
            Command::Reconcile => {
                let report = operator(octany, "reconcile")?.reconcile().await?;
                writeln!(
                    out,
                    "re-read {} subscription(s), {} failed; {} checkout(s) abandoned",
                    report.synced, report.failed, report.abandoned
                )?;
                Ok(report.failed == 0)
            }
            Command::Replay {
                failed,
                since,
                until,
                delivery,
            } => {
                let operator = operator(octany, "replay")?;
                let report = match (failed, since, delivery) {
                    (_, _, Some(id)) => {
                        let outcome = operator.replay_delivery(&id).await?;
                        writeln!(out, "delivery {id}: {outcome:?}")?;
                        return Ok(true);
                    }
                    (_, Some(since), None) => operator.replay_received(since, until).await?,
                    (true, None, None) => operator.replay_failed().await?,
                    (false, None, None) => {
                        return Err(
                            "say what to replay: --failed, --since TIME, or a delivery id".into(),
                        );
                    }
                };
                writeln!(
                    out,
                    "replayed {} delivery(ies); {} failed again",
                    report.replayed, report.failed
                )?;
                Ok(report.failed == 0)
            }
            Command::Prune { older_than_days } => {
                let age = Duration::from_secs(u64::from(older_than_days) * 86_400);
                let pruned = operator(octany, "prune")?.prune(age).await?;
                writeln!(
                    out,
                    "deleted {} applied delivery(ies) and {} API call(s) older than {older_than_days} days",
                    pruned.deliveries, pruned.api_calls
                )?;
                Ok(true)
            }
            Command::Doctor { wait_for_test_hook } => doctor(octany, wait_for_test_hook, out).await,
            Command::GrantComp {
                billable,
                plan,
                feature,
                days,
                reason,
                by,
            } => {
                let billable = billable_arg(&billable)?;
                let plan = match plan {
                    Some(slug) => Some(
                        octany
                            .sold_at(&slug)
                            .filter(|p| p.group.is_some())
                            .map(|p| p.product)
                            .ok_or_else(|| format!("no plan `{slug}` is sold"))?,
                    ),
                    None => None,
                };
                let comp = crate::billing::NewComp {
                    plan,
                    features: feature,
                    ends_at: days.map(|d| octany.clock().now() + chrono::Duration::days(d.into())),
                    reason,
                    granted_by: by,
                };
                let comp = octany.grant_comp(&billable, comp).await?;
                writeln!(out, "granted comp {} to {billable}", comp.id)?;
                Ok(true)
            }
            Command::RevokeComp { id, by } => {
                let revoked = octany.revoke_comp(&id, &by).await?;
                writeln!(
                    out,
                    "{}",
                    if revoked {
                        format!("revoked comp {id}")
                    } else {
                        format!("comp {id} was revoked before")
                    }
                )?;
                Ok(true)
            }
            Command::Comps { billable } => {
                let now = octany.clock().now();
                for comp in octany.comps(&billable_arg(&billable)?).await? {
                    writeln!(
                        out,
                        "{} {} plan={} features={} ends={} by={} reason={:?}{}",
                        comp.id,
                        if comp.is_active(now) {
                            "active"
                        } else {
                            "over"
                        },
                        comp.plan.map_or("-".into(), |p| p.to_string()),
                        if comp.features.is_empty() {
                            "-".into()
                        } else {
                            comp.features.join(",")
                        },
                        comp.ends_at.map_or("-".into(), |t| t.to_rfc3339()),
                        comp.granted_by,
                        comp.reason,
                        comp.revoked_by
                            .map_or(String::new(), |by| format!(" revoked by {by}")),
                    )?;
                }
                Ok(true)
            }
            Command::ApiCalls { billable, limit } => {
                for call in octany.api_calls(&billable_arg(&billable)?, limit).await? {
                    writeln!(
                        out,
                        "{} {} {} {} attempt={} {}ms{}",
                        call.at.to_rfc3339(),
                        call.method,
                        call.path,
                        call.status.map_or("-".into(), |s| s.to_string()),
                        call.attempt,
                        call.duration_ms,
                        call.error
                            .map_or(String::new(), |e| format!(" error={e:?}")),
                    )?;
                }
                Ok(true)
            }
        }
    }
}

/// The operator a command acts as, for the audit log: `cli:` and
/// `OCTANY_OPERATOR` (else `USER`), for the reason that it ran `command`.
fn operator<'a>(
    octany: &'a Octany,
    command: &str,
) -> Result<crate::ops::Operator<'a>, crate::BillingError> {
    let who = std::env::var("OCTANY_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    octany.operator(
        &format!("cli:{who}"),
        &format!("`{command}` from the command line"),
    )
}

/// A billable given on the command line (`team:7`).
fn billable_arg(
    text: &str,
) -> Result<crate::model::BillableRef, Box<dyn std::error::Error + Send + Sync>> {
    crate::model::BillableRef::parse(text)
        .ok_or_else(|| format!("`{text}` is not a billable: write type:id, e.g. team:7").into())
}

async fn sync(
    octany: &Octany,
    from_page: u32,
    with_orders: bool,
    out: &mut (dyn Write + Send),
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} page {pos}/{len} · {msg}",
    )?);
    let mut last = None;
    let done = operator(octany, "sync")?
        .backfill(
            BackfillOptions {
                start_page: from_page.max(1),
                with_orders,
                products: true,
            },
            |progress| {
                if let Some(total) = progress.total_pages {
                    bar.set_length(u64::from(total));
                }
                bar.set_position(u64::from(progress.page));
                bar.set_message(format!(
                    "{} subscriptions, {} orders",
                    progress.subscriptions, progress.orders
                ));
                last = progress.next_page;
            },
        )
        .await;
    bar.finish_and_clear();
    match done {
        Ok(done) => {
            writeln!(
                out,
                "mirrored {} subscription(s) and {} order(s), pages {}..{}",
                done.subscriptions,
                done.orders,
                from_page.max(1),
                done.page
            )?;
            Ok(true)
        }
        Err(error) => {
            let resume = last.unwrap_or(from_page.max(1));
            writeln!(
                out,
                "stopped: {error}\nresume with: sync --from-page {resume}"
            )?;
            Ok(false)
        }
    }
}

async fn doctor(
    octany: &Octany,
    wait_for_test_hook: Option<u64>,
    out: &mut (dyn Write + Send),
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let mut healthy = true;
    let mut line = |out: &mut (dyn Write + Send), ok: bool, what: &str, detail: String| {
        healthy &= ok;
        writeln!(out, "{} {what}: {detail}", if ok { "ok  " } else { "FIX " })
    };
    let started = octany.clock().now();
    // The key, and Octany's clock against ours.
    match octany.client().list_products(1).await {
        Ok(page) => {
            line(
                out,
                true,
                "API key",
                format!(
                    "valid; {} product(s)",
                    page.pagination.total.unwrap_or(page.data.len() as i64)
                ),
            )?;
            match octany.client().clock_skew().await {
                Ok(Some(skew)) => {
                    let ok = skew.abs() <= OctanyClient::CLOCK_TOLERANCE;
                    let seconds = skew.num_seconds();
                    line(
                        out,
                        ok,
                        "clock",
                        if ok {
                            format!("{seconds:+} s from Octany's")
                        } else {
                            format!(
                                "{seconds:+} s from Octany's `Date`: set this machine's clock (NTP); renewals, grace periods and trials are judged by it (on an in-process fake, build the app with `.clock(fake.app_clock())`)"
                            )
                        },
                    )?;
                }
                Ok(None) => line(
                    out,
                    true,
                    "clock",
                    "Octany sent no Date header to compare".into(),
                )?,
                Err(error) => line(out, false, "clock", error.to_string())?,
            }
        }
        Err(error) => line(out, false, "API key", error.to_string())?,
    }
    // The secret, and this app's webhook URL answering with it.
    let config = octany.client().config();
    let secrets = config.webhook_secrets();
    let (secret_ok, said) = octany.webhook_secret_check();
    line(out, secret_ok, "webhook secret", said)?;
    let url = octany.settings().route_url("webhook");
    if !secrets.is_empty() {
        match octany.check_webhook_endpoint().await {
            Ok(said) => line(out, true, "webhook URL", said)?,
            Err(fix) => line(out, false, "webhook URL", fix)?,
        }
    }
    // Deliveries from Octany: the endpoint is registered and reaches us.
    let from_octany = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::DeliveryId.not_like(format!("{ENDPOINT_CHECK}%")))
        .order_by_desc(webhook_delivery::Column::ReceivedAt)
        .one(octany.syncer().db())
        .await?;
    match from_octany {
        Some(last) => line(
            out,
            true,
            "deliveries",
            format!(
                "the last from Octany arrived {} ({})",
                last.received_at.to_rfc3339(),
                last.event
            ),
        )?,
        None => line(
            out,
            false,
            "deliveries",
            format!(
                "none received from Octany yet: register {url} (`webhook register`), then send a test from Octany's admin"
            ),
        )?,
    }
    if let Some(seconds) = wait_for_test_hook {
        writeln!(
            out,
            "     send a test from Octany's admin now (waiting {seconds} s)..."
        )?;
        let deadline = started + chrono::Duration::seconds(seconds as i64);
        let mut arrived = None;
        while octany.clock().now() < deadline {
            arrived = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::Event.eq("test.hook"))
                .filter(webhook_delivery::Column::DeliveryId.not_like(format!("{ENDPOINT_CHECK}%")))
                .filter(webhook_delivery::Column::ReceivedAt.gte(started))
                .one(octany.syncer().db())
                .await?;
            if arrived.is_some() {
                break;
            }
            // Waiting for a person to press a button: polling is the signal.
            octany.clock().sleep(Duration::from_secs(1)).await;
        }
        line(
            out,
            arrived.is_some(),
            "test.hook round trip",
            match arrived {
                Some(hook) => format!("delivery {} received and verified", hook.delivery_id),
                None => format!(
                    "none arrived in {seconds} s: check the endpoint's URL and secret in Octany's admin"
                ),
            },
        )?;
    }
    Ok(healthy)
}

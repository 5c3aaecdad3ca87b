//! `cargo run -p example-app [-- COMMAND]`.

use clap::{Parser, Subcommand};
use example_app::{Settings, cli};

/// A small SaaS on octany-actix.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen (default 127.0.0.1:8080, or $BIND).
    #[arg(long, global = true)]
    bind: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app (the default).
    Serve,
    /// Apply the database migrations.
    Migrate,
    /// Manage Octany's webhook endpoints.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// octany-actix's operator commands: sync, reconcile, replay, prune, doctor.
    #[command(flatten)]
    Billing(octany_actix::cli::Command),
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Register `URL` (e.g. https://app.example.com/billing/webhook) with Octany.
    Register { url: String },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime starts");
    runtime.block_on(async move {
        let settings = match Settings::from_env(args.bind) {
            Ok(settings) => settings,
            Err(message) => {
                eprintln!("error: {message}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let result = match args.command.unwrap_or(Command::Serve) {
            Command::Serve => cli::serve(settings).await,
            Command::Migrate => cli::migrate(settings).await,
            Command::Webhook {
                command: WebhookCommand::Register { url },
            } => cli::register_webhook(settings, &url).await,
            Command::Billing(command) => cli::billing(settings, command).await,
        };
        match result {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

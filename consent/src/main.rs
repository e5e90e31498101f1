#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use locus_consent::config::Config;
use locus_consent::startup::Application;

/// The Locus consent service: patients approve, narrow, refuse and revoke
/// grants from their phones; every decision is on the ledger.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; `LOCUS_*` environment variables override it.
    #[arg(long, env = "LOCUS_CONFIG")]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref())?;
    locus_platform::telemetry::init(config.log_format);
    let app = Application::build(&config).context("consent cannot start")?;
    let ready = serde_json::json!({ "service": "consent", "url": app.member_url, "patient_url": app.patient_url });
    #[allow(clippy::print_stdout)]
    {
        println!("{ready}");
    }
    app.run_until_stopped(Duration::from_millis(500)).await?;
    Ok(())
}

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use locus_index_service::config::Config;
use locus_index_service::startup::Application;

/// The Locus index service: hosts the ledger (and, next, the hashed index).
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
    let app = Application::build(&config).context("index-service cannot start")?;
    // One machine-readable line on stdout so scripts and tests find the port.
    let ready = serde_json::json!({
        "service": "index-service",
        "url": app.url(),
        "ledger_vkey": app.vkey(),
    });
    #[allow(clippy::print_stdout)]
    {
        println!("{ready}");
    }
    app.run_until_stopped().await?;
    Ok(())
}

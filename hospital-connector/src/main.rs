#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use locus_hospital_connector::config::Config;
use locus_hospital_connector::startup::Application;

/// A Locus hospital connector: publishes sealed pointers to this hospital's
/// records and releases them under grants, logging every release first.
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
    let app = Application::build(&config).context("hospital-connector cannot start")?;
    let ready = serde_json::json!({ "service": "hospital-connector", "url": app.url() });
    #[allow(clippy::print_stdout)]
    {
        println!("{ready}");
    }
    app.run_until_stopped(&config).await?;
    Ok(())
}

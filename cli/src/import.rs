//! `locus import`: load FHIR R4 bundles into a hospital's own record store.
//! The connector publishes what is new on its next round.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use locus_hospital_connector::config::Config;
use locus_hospital_connector::import::{import_paths, ImportProgress};
use locus_hospital_connector::records::RecordStore;
use locus_platform::config::Settings as _;
use locus_platform::db::{self, DatabaseUrl};
use locus_platform::files::load_linkage_key;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The hospital whose store receives the records (its member id).
    #[arg(long)]
    hospital: String,
    /// The hospital connector's configuration file; `LOCUS_*` variables
    /// override it (database, linkage key, identifier system).
    #[arg(long, env = "LOCUS_CONFIG")]
    config: Option<PathBuf>,
    /// FHIR R4 bundle files, or folders of them (`*.json`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    if let Some(configured) = &config.member_id {
        anyhow::ensure!(
            configured == &args.hospital,
            "the configuration is for {configured}, not {}",
            args.hospital
        );
    }
    let url = DatabaseUrl::parse(&config.database_url)?;
    let store = RecordStore::open(db::connect(&url, 2)?).context("opening the hospital's store")?;
    let linkage = load_linkage_key(&config.linkage_key_file)?;

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |p: ImportProgress<'_>| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("{}/{} files", p.files_done, p.files_total));
    };
    let summary = import_paths(
        &store,
        &linkage,
        &config.identifier_system,
        &args.paths,
        &progress,
    );
    bar.finish_and_clear();
    let summary = summary?;
    println!(
        "{}: {} files, {} records new, {} new versions, {} unchanged (stored in {url})",
        args.hospital, summary.files, summary.inserted, summary.new_versions, summary.unchanged
    );
    Ok(ExitCode::SUCCESS)
}

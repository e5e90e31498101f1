#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// A command-line program: stdout is its interface.
#![allow(clippy::print_stdout)]

mod import;
mod ledger;
mod up;

use clap::{Parser, Subcommand};

/// Locus: a privacy-preserving health-record locator network.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole network on this machine: CA, ledger, index, consent, two
    /// hospitals with synthetic patients, a regulator. Ctrl-C stops it.
    Up(up::UpArgs),
    /// Tell the story on a temporary network: a patient approves, a hospital
    /// retrieves, the patient revokes, an emergency, the regulator's audit.
    Demo(locus_cli::demo::DemoArgs),
    /// The regulator's view of the ledger: verify it, list entries, export them.
    #[command(subcommand)]
    Audit(locus_cli::audit::AuditCommand),
    /// Measure ledger appends against plain INSERTs, and retrievals end to end.
    Bench(locus_cli::bench::BenchArgs),
    /// Read and verify a ledger as an outsider: only its URL and its key.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Load FHIR R4 bundles into a hospital's own record store.
    Import(import::ImportArgs),
    /// The consortium's certificate authority and node certificates.
    #[command(subcommand)]
    Pki(locus_cli::pki::PkiCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Up(_) | Command::Demo(_) | Command::Bench(_)
    ) {
        // Services log warnings only: these commands tell what happens themselves.
        locus_platform::telemetry::init_with(locus_platform::telemetry::LogFormat::Text, "warn");
    }
    // An actix system: `up`, `demo` and `bench` run the services in-process.
    let result = actix_web::rt::System::new().block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Demo(args) => locus_cli::demo::run(args).await,
            Command::Audit(command) => locus_cli::audit::run(command).await,
            Command::Bench(args) => locus_cli::bench::run(args).await,
            Command::Ledger(command) => ledger::run(command).await,
            Command::Pki(command) => locus_cli::pki::run(command),
            Command::Import(args) => import::run(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("locus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

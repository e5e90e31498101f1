#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// A command-line program: stdout is its interface.
#![allow(clippy::print_stdout)]

mod import;
mod ledger;
mod pki;

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
    /// Read and verify a ledger as an outsider: only its URL and its key.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Load FHIR R4 bundles into a hospital's own record store.
    Import(import::ImportArgs),
    /// The consortium's certificate authority and node certificates.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("locus: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ledger(command) => ledger::run(command).await,
            Command::Pki(command) => pki::run(command),
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

//! `locus ledger ...`: follow and verify a ledger from outside.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use locus_ledger::checkpoint::{open_checkpoint, Checkpoint};
use locus_ledger::client::LedgerClient;
use locus_ledger::note::NoteVerifier;
use locus_protocol::entry::SignedEntry;

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Download every entry through the tlog tiles, check that they hash to the
    /// signed checkpoint, that each is a canonical signed entry, and that the
    /// log only grew since the checkpoint saved in `--state` (if any).
    Verify {
        /// Base URL of the service hosting the ledger.
        #[arg(long, env = "LOCUS_LEDGER_URL")]
        url: String,
        /// The ledger's verifier key (C2SP vkey), from the consortium directory.
        #[arg(long, env = "LOCUS_LEDGER_VKEY")]
        vkey: String,
        /// A file holding the last checkpoint this verifier accepted; updated
        /// when the new one is proven consistent with it.
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

pub async fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    match command {
        LedgerCommand::Verify { url, vkey, state } => verify(&url, &vkey, state).await,
    }
}

async fn verify(url: &str, vkey: &str, state: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let verifier =
        NoteVerifier::from_vkey(vkey.trim()).context("--vkey is not a C2SP verifier key")?;
    let client = LedgerClient::new(url, verifier.clone(), reqwest::Client::new());
    let (checkpoint, note) = client
        .checkpoint()
        .await
        .context("fetching the checkpoint")?;
    println!(
        "checkpoint: {} entries, signed by {}",
        checkpoint.size, checkpoint.origin
    );

    let mut problems = Vec::new();
    let previous = match &state {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let (old, _) = open_checkpoint(&text, &verifier).map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a checkpoint signed by this ledger",
                    path.display()
                )
            })?;
            Some(old)
        }
        _ => None,
    };
    if let Some(old) = &previous {
        match client.prove_consistency(old, &checkpoint).await {
            Ok(()) => println!("consistent with the saved checkpoint of size {}", old.size),
            Err(e) => problems.push(format!(
                "not consistent with the saved checkpoint of size {}: {e}",
                old.size
            )),
        }
    }

    match client.download_log(&checkpoint).await {
        Ok(log) => {
            println!(
                "all {} entries hash to the checkpoint's root",
                log.entries.len()
            );
            for (index, bytes) in log.entries.iter().enumerate() {
                if let Err(e) = SignedEntry::parse(bytes) {
                    problems.push(format!(
                        "entry {index} is not a canonical signed entry: {e}"
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("the log does not match its checkpoint: {e}")),
    }

    if problems.is_empty() {
        if let Some(path) = &state {
            save_if_newer(path, previous.as_ref(), &checkpoint, &note)?;
        }
        println!("ledger verified");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            eprintln!("problem: {problem}");
        }
        Ok(ExitCode::from(2))
    }
}

fn save_if_newer(
    path: &PathBuf,
    previous: Option<&Checkpoint>,
    checkpoint: &Checkpoint,
    note: &str,
) -> anyhow::Result<()> {
    if previous.is_none_or(|old| checkpoint.size > old.size) {
        std::fs::write(path, note).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

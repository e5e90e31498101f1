#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod events;
pub mod export;
pub mod fetch;
pub mod log;
pub mod replay;
pub mod report;
pub mod rules;

use std::time::Duration;

use locus_ledger::client::{ClientError, LedgerClient};
use locus_ledger::cosignature::CosignatureVerifier;
use locus_ledger::note::{Note, NoteError};
use locus_ledger::tiles::TileError;
use locus_protocol::signing::VerifyingKey;

pub use report::Report;

/// What the regulator pins: the audit trusts these and nothing the ledger says.
#[derive(Debug, Clone)]
pub struct Pins {
    /// The checkpoint origin line of the log.
    pub origin: String,
    /// The witnesses whose cosignatures count.
    pub witnesses: Vec<CosignatureVerifier>,
    /// How many of them must cosign the newest checkpoint.
    pub quorum: usize,
    /// The consortium authority's key: it alone admits members.
    pub authority: VerifyingKey,
}

impl Pins {
    /// The witnesses whose cosignature on `note` verifies; a present but invalid
    /// cosignature is a problem.
    pub fn cosigners(&self, note: &Note, problems: &mut Vec<String>) -> Vec<String> {
        let mut names = Vec::new();
        for witness in &self.witnesses {
            let present = note
                .signatures
                .iter()
                .any(|s| s.name == witness.name() && s.key_id == witness.key_id());
            if !present {
                continue;
            }
            if note.verify(&[witness]).is_ok() {
                names.push(witness.name().to_owned());
            } else {
                let size = note.text.lines().nth(1).unwrap_or("?");
                problems.push(format!(
                    "witness {}'s cosignature on the checkpoint of size {size} does not verify",
                    witness.name()
                ));
            }
        }
        names
    }
}

/// What stops an audit from running at all (the ledger cannot be read).
/// Everything an audit finds wrong is in its [`Report`] instead.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("fetching the newest checkpoint")]
    Head(#[source] ClientError),
    #[error("the newest checkpoint is not a signed note")]
    HeadNote(#[source] NoteError),
    #[error("fetching the checkpoint history")]
    History(#[source] ClientError),
    #[error("fetching the leaf hashes from {start}")]
    LeafHashes {
        start: u64,
        #[source]
        source: ClientError,
    },
    #[error(transparent)]
    Tile(#[from] TileError),
    #[error("querying the ledger")]
    Query(#[source] ClientError),
}

/// The whole audit, as the pipeline of the crate's modules: fetch the head once a
/// quorum cosigned it, verify the checkpoint history and the leaves against it,
/// then replay the entries and check the grant and access rules.
pub async fn verify(
    ledger: &LedgerClient,
    pins: &Pins,
    witness_wait: Duration,
) -> Result<Report, AuditError> {
    let mut report = Report::default();
    let (head, note) = fetch::head(ledger, pins, witness_wait).await?;
    log::head(&head, &note, pins, &mut report);
    let notes = fetch::checkpoint_notes(ledger).await?;
    let history = log::history(ledger, pins, &notes, &head, &mut report).await;
    let leaves = fetch::leaves(ledger, head.size).await?;
    let log = log::leaves(leaves, &head, &mut report);
    if let Some(log) = &log {
        log::prefixes(&log.tree, &history, &mut report);
        // Entries that are missing or altered are already named; the rest of the
        // audit needs them all.
        if let Some(entries) = &log.entries {
            rules(entries, &pins.authority, &mut report);
        }
    }
    Ok(report)
}

/// Entry signatures, roles, grant backing and access rules, from the whole log as
/// checked against the signed tree.
fn rules(leaves: &[Vec<u8>], authority: &VerifyingKey, report: &mut Report) {
    match replay::parse_entries(leaves) {
        Ok(entries) => report.grant_audit(&rules::check_grants(&entries, authority), entries.len()),
        Err(e) => report.problems.push(e.to_string()),
    }
}

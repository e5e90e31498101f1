//! Downloads what the audit checks, as the regulator: the newest checkpoint, the
//! checkpoint history, and the leaf hashes (hash tiles) and entries (entry bundles)
//! of the tree. Nothing here is trusted until [`crate::log`] has checked it.

use std::time::Duration;

use locus_ledger::checkpoint::Checkpoint;
use locus_ledger::client::LedgerClient;
use locus_ledger::merkle::Hash;
use locus_ledger::note::Note;
use locus_ledger::tiles::{
    decode_entry_bundle, entry_bundles_for_size, TilePath, TileRef, TILE_WIDTH,
};

use crate::{AuditError, Pins};

/// The newest checkpoint, once a quorum of the pinned witnesses cosigned it or
/// `wait` has passed, whichever comes first.
pub async fn head(
    ledger: &LedgerClient,
    pins: &Pins,
    wait: Duration,
) -> Result<(Checkpoint, Note), AuditError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (head, note) = ledger.checkpoint().await.map_err(AuditError::Head)?;
        let note = Note::parse(&note).map_err(AuditError::HeadNote)?;
        let cosigned = pins.cosigners(&note, &mut Vec::new());
        if cosigned.len() >= pins.quorum || tokio::time::Instant::now() >= deadline {
            return Ok((head, note));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every checkpoint the ledger kept, as signed notes.
pub async fn checkpoint_notes(ledger: &LedgerClient) -> Result<Vec<String>, AuditError> {
    ledger.checkpoints().await.map_err(AuditError::History)
}

/// The leaves of a tree as the ledger serves them.
#[derive(Debug, Default)]
pub struct Leaves {
    /// Leaf hashes, from the hash tiles.
    pub hashes: Vec<Hash>,
    /// One per hash: the entry, or `None` if the ledger cannot serve it.
    pub entries: Vec<Option<Vec<u8>>>,
    /// The first leaf of a hash tile that came back short; nothing after it
    /// was fetched.
    pub incomplete_from: Option<u64>,
}

/// Downloads every leaf hash and every entry of a tree of `size` leaves.
pub async fn leaves(ledger: &LedgerClient, size: u64) -> Result<Leaves, AuditError> {
    let mut leaves = Leaves::default();
    for bundle in entry_bundles_for_size(size) {
        let TilePath::Entries { index, width } = bundle else {
            continue;
        };
        let start = index * TILE_WIDTH;
        let tile = TilePath::Hash(TileRef::new(0, index, width)?);
        let hashes = ledger
            .tile(&tile)
            .await
            .map_err(|source| AuditError::LeafHashes { start, source })?;
        let hashes: Vec<Hash> = hashes
            .chunks(32)
            .filter_map(|c| Hash::try_from(c).ok())
            .collect();
        if hashes.len() != usize::from(width) {
            leaves.incomplete_from = Some(start);
            return Ok(leaves);
        }
        let entries = match ledger
            .tile(&bundle)
            .await
            .map(|data| decode_entry_bundle(&data))
        {
            Ok(Ok(entries)) if entries.len() == hashes.len() => {
                entries.into_iter().map(Some).collect()
            }
            // A short or unreadable bundle: ask entry by entry to name the gap.
            _ => one_by_one(ledger, start, hashes.len()).await,
        };
        leaves.entries.extend(entries);
        leaves.hashes.extend(hashes);
    }
    Ok(leaves)
}

async fn one_by_one(ledger: &LedgerClient, start: u64, count: usize) -> Vec<Option<Vec<u8>>> {
    let mut entries = Vec::with_capacity(count);
    for at in start..start + count as u64 {
        entries.push(ledger.entry(at).await.ok());
    }
    entries
}

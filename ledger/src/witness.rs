//! What a witness decides (C2SP tlog-witness, by polling): cosign the
//! ledger's newest checkpoint only if it extends the last one this witness
//! cosigned. Hospital connectors and the regulator's `locus audit watch` keep
//! their own record of that last checkpoint and share this logic.

use crate::checkpoint::Checkpoint;
use crate::client::{ClientError, LedgerClient};
use crate::cosignature::CosignatureSigner;
use crate::merkle::Hash;
use crate::note::Note;

/// The outcome of looking at the newest checkpoint.
#[derive(Debug, Clone)]
pub enum CosignDecision {
    /// It extends the last checkpoint cosigned (or there was none): record it
    /// as the new view, then [`cosign`] it.
    Cosign {
        checkpoint: Checkpoint,
        /// The checkpoint's note text, as signed by the log.
        text: String,
    },
    /// It is the last checkpoint cosigned, and carries this witness's cosignature.
    AlreadyCosigned(u64),
    /// It does not extend the last checkpoint cosigned: smaller, the same size
    /// with another root, or without a valid consistency proof. `evidence` is
    /// the signed note as the ledger served it.
    Conflict { size: u64, evidence: String },
}

/// The last checkpoint a witness cosigned, as it keeps it: size and root are
/// all a consistency proof needs.
pub fn view(size: u64, root: Hash) -> Checkpoint {
    Checkpoint {
        origin: String::new(),
        size,
        root,
        extensions: Vec::new(),
    }
}

/// Fetches the newest checkpoint (the log's signature checked) and decides.
/// `last` is the last checkpoint this witness cosigned (size and root).
pub async fn decide(
    ledger: &LedgerClient,
    signer: &CosignatureSigner,
    last: Option<&Checkpoint>,
) -> Result<CosignDecision, ClientError> {
    let (checkpoint, served) = ledger.checkpoint().await?;
    let note = Note::parse(&served).map_err(|_| ClientError::BadCheckpoint)?;
    let conflict = |served: String| CosignDecision::Conflict {
        size: checkpoint.size,
        evidence: served,
    };
    if let Some(seen) = last {
        if checkpoint.size == seen.size && checkpoint.root == seen.root {
            let mine = note
                .signatures
                .iter()
                .any(|s| s.name == signer.name() && s.key_id == signer.key_id());
            if mine {
                return Ok(CosignDecision::AlreadyCosigned(checkpoint.size));
            }
        } else if checkpoint.size <= seen.size {
            return Ok(conflict(served));
        } else {
            match ledger.prove_consistency(seen, &checkpoint).await {
                Ok(()) => {}
                Err(ClientError::BadProof(_)) => return Ok(conflict(served)),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(CosignDecision::Cosign {
        checkpoint,
        text: note.text,
    })
}

/// Cosigns the checkpoint text `decide` returned, as of now, and sends the
/// cosignature to the ledger. Call it only after recording the checkpoint as
/// this witness's view: a lost answer is then cosigned again next round, and a
/// restart never goes back to an older view.
pub async fn cosign(
    ledger: &LedgerClient,
    signer: &CosignatureSigner,
    checkpoint: &Checkpoint,
    text: &str,
) -> Result<(), ClientError> {
    let now = u64::try_from(ledger.clock().now_secs()).unwrap_or(0);
    let cosignature = signer
        .cosign(text, now)
        .map_err(|e| ClientError::Malformed(e.to_string()))?;
    ledger
        .submit_cosignature(checkpoint.size, &cosignature)
        .await
}

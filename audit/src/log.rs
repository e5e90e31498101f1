//! Verifies the log itself: the checkpoints' signatures and their witnesses'
//! cosignatures against the quorum, consistency from the first checkpoint to the
//! newest, every entry hashing to its leaf, and the leaves making every root.

use locus_ledger::checkpoint::{open_checkpoint, Checkpoint};
use locus_ledger::client::LedgerClient;
use locus_ledger::merkle::{rfc9162_leaf_hash, tree_root, MemoryTree};
use locus_ledger::note::Note;

use crate::fetch::Leaves;
use crate::{Pins, Report};

/// The newest checkpoint carries a quorum of valid witness cosignatures.
pub fn head(head: &Checkpoint, note: &Note, pins: &Pins, report: &mut Report) {
    let quorum = pins.quorum;
    let cosigned = pins.cosigners(note, &mut report.problems);
    if cosigned.len() >= quorum {
        report.facts.push(format!(
            "the newest checkpoint ({} entries) is cosigned by {} of {} witnesses ({}), quorum {quorum}",
            head.size,
            cosigned.len(),
            pins.witnesses.len(),
            cosigned.join(", ")
        ));
    } else {
        report.problems.push(format!(
            "the newest checkpoint ({} entries) has {} valid witness cosignature(s); {quorum} are required",
            head.size,
            cosigned.len()
        ));
    }
}

/// Every stored checkpoint (`notes`): the log's signature, its witnesses'
/// cosignatures, growth, and a consistency proof between each and the next,
/// ending at `head`. Returns the checkpoints that are the log's, up to `head`.
pub async fn history(
    ledger: &LedgerClient,
    pins: &Pins,
    notes: &[String],
    head: &Checkpoint,
    report: &mut Report,
) -> Vec<Checkpoint> {
    let origin = &pins.origin;
    let mut history: Vec<Checkpoint> = Vec::new();
    let mut cosigned = 0;
    for (position, text) in notes.iter().enumerate() {
        match open_checkpoint(text, ledger.verifier()) {
            // Signed after the head was fetched: the next audit covers it.
            Ok((checkpoint, _)) if checkpoint.origin == *origin && checkpoint.size > head.size => {}
            Ok((checkpoint, note)) if checkpoint.origin == *origin => {
                if !pins.cosigners(&note, &mut report.problems).is_empty() {
                    cosigned += 1;
                }
                history.push(checkpoint);
            }
            Ok((checkpoint, _)) => report.problems.push(format!(
                "checkpoint {position} (size {}) names the log {:?}, not {origin:?}",
                checkpoint.size, checkpoint.origin
            )),
            Err(_) => {
                let size = Note::parse(text)
                    .ok()
                    .and_then(|note| Checkpoint::parse(&note.text).ok())
                    .map_or_else(|| "unreadable".to_owned(), |c| c.size.to_string());
                report.problems.push(format!(
                    "checkpoint {position} (size {size}) is not signed by the ledger's key: forged or altered"
                ));
            }
        }
    }
    // Nothing in `history` is larger than the head.
    let (Some(first), Some(last)) = (history.first(), history.last()) else {
        report
            .problems
            .push("the ledger serves no checkpoint history".into());
        return history;
    };
    let first_size = first.size;
    let mut inconsistent = 0;
    for pair in history.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        if new.size <= old.size {
            report.problems.push(format!(
                "checkpoint of size {} follows one of size {}: the log shrank",
                new.size, old.size
            ));
            inconsistent += 1;
        } else if let Err(e) = ledger.prove_consistency(old, new).await {
            report.problems.push(format!(
                "checkpoints of size {} and {} are not consistent: {e}",
                old.size, new.size
            ));
            inconsistent += 1;
        }
    }
    if last.size < head.size {
        if let Err(e) = ledger.prove_consistency(last, head).await {
            report.problems.push(format!(
                "the newest checkpoint is not consistent with the history: {e}"
            ));
            inconsistent += 1;
        }
    } else if last.root != head.root {
        report
            .problems
            .push(format!("two different checkpoints of size {}", head.size));
        inconsistent += 1;
    }
    if inconsistent == 0 {
        report.facts.push(format!(
            "{} checkpoints signed by the ledger, consistent from size {first_size} to {}; {cosigned} carry witness cosignatures",
            history.len(),
            head.size
        ));
    }
    history
}

/// A tree whose leaves make the signed root.
#[derive(Debug)]
pub struct VerifiedTree {
    pub tree: MemoryTree,
    /// Every entry, when each one is present and hashes to its leaf.
    pub entries: Option<Vec<Vec<u8>>>,
}

/// Names each entry missing or not hashing to its leaf, and checks the leaves
/// produce the root of `head`; `None` if they do not.
pub fn leaves(leaves: Leaves, head: &Checkpoint, report: &mut Report) -> Option<VerifiedTree> {
    let mut bad_entries = 0usize;
    for ((at, hash), entry) in (0u64..).zip(&leaves.hashes).zip(&leaves.entries) {
        match entry {
            None => {
                bad_entries += 1;
                report
                    .problems
                    .push(format!("entry {at} is missing from the ledger's storage"));
            }
            Some(body) if rfc9162_leaf_hash(body) != *hash => {
                bad_entries += 1;
                report.problems.push(format!(
                    "entry {at} was altered: it no longer hashes to its leaf"
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(start) = leaves.incomplete_from {
        report
            .problems
            .push(format!("the leaf hashes from entry {start} are incomplete"));
        return None;
    }
    let mut tree = MemoryTree::new();
    for hash in &leaves.hashes {
        tree.push_leaf_hash(*hash);
    }
    if tree_root(&tree, head.size).ok() != Some(head.root) {
        report.problems.push(format!(
            "the ledger's leaves do not produce the root of the checkpoint of size {}",
            head.size
        ));
        return None;
    }
    if bad_entries > 0 {
        return Some(VerifiedTree {
            tree,
            entries: None,
        });
    }
    report.facts.push(format!(
        "all {} entries are included in the signed tree",
        head.size
    ));
    Some(VerifiedTree {
        tree,
        entries: Some(leaves.entries.into_iter().flatten().collect()),
    })
}

/// Every historical checkpoint's root is the root of the first `size` leaves.
pub fn prefixes(tree: &MemoryTree, history: &[Checkpoint], report: &mut Report) {
    let mut wrong = 0;
    for cp in history {
        if tree_root(tree, cp.size).ok() != Some(cp.root) {
            wrong += 1;
            report.problems.push(format!(
                "checkpoint of size {} does not match the log's first {} leaves",
                cp.size, cp.size
            ));
        }
    }
    if wrong == 0 {
        report.facts.push(format!(
            "every one of {} checkpoints is a prefix of the log",
            history.len()
        ));
    }
}

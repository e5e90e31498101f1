//! Known-answer tests for the Merkle proofs:
//!
//! - the 518 proof-verification cases of transparency-dev/merkle
//!   (`shared/vectors/merkle`, beside this checkout): the verifiers must
//!   accept exactly the `wantErr: false` cases;
//! - the accumulated subtree vectors of the Merkle Tree Certificates draft
//!   (draft-ietf-plants-merkle-tree-certs-05, Appendix C), which pin proof
//!   generation for subtrees that do not start at 0.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use locus_ledger::merkle::{
    is_valid_subtree, subtree_consistency_proof, subtree_inclusion_proof, subtree_root,
    verify_consistency, verify_inclusion, verify_subtree_consistency, verify_subtree_inclusion,
    Hash, MemoryTree,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const EXPECTED_CASES: usize = 518;

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

// The parameters of each kind of case; `proof`, `desc` and `wantErr`, which
// every kind has, are read apart (`Case`). The vectors are Go []byte values:
// standard base64, null for nil.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Inclusion {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Consistency {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubtreeInclusion {
    leaf_idx: u64,
    start: u64,
    end: u64,
    root: String,
    leaf_hash: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubtreeConsistency {
    start: u64,
    end: u64,
    size: u64,
    root1: String,
    root2: String,
}

/// One case: its verdict and what it says of itself.
struct Outcome {
    accepted: bool,
    want_err: bool,
    desc: String,
}

fn raw(b64: &str) -> Vec<u8> {
    STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("bad base64 {b64:?}: {e}"))
}

/// The leaf hash: one that is not 32 bytes cannot be passed to the typed
/// API, so the case is rejected at that boundary (as Go checks its length).
fn leaf(b64: &str) -> Option<Hash> {
    Hash::try_from(raw(b64).as_slice()).ok()
}

/// Roots and proof hashes of other lengths ("don't care", "WrongRoot", empty
/// garbage) are opaque placeholders that only meet equality checks: map them
/// one-to-one onto 32-byte values no tree computation produces.
fn opaque(b64: &str) -> Hash {
    let bytes = raw(b64);
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| {
        Sha256::new()
            .chain_update(b"placeholder for a non-32-byte vector value\0")
            .chain_update(&bytes)
            .finalize()
            .into()
    })
}

/// Reads a case of kind `kind` (its parameters `P` and nothing unknown) and
/// runs `verify` on its parameters and proof.
fn check<P: serde::de::DeserializeOwned>(
    kind: &str,
    text: &str,
    verify: impl FnOnce(P, &[Hash]) -> bool,
) -> Outcome {
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let mut take = |name: &str| fields.remove(name).unwrap_or_default();
    let proof: Option<Vec<String>> = serde_json::from_value(take("proof")).unwrap();
    let desc: String = serde_json::from_value(take("desc")).unwrap();
    let want_err: bool = serde_json::from_value(take("wantErr")).unwrap();
    let params: P = serde_json::from_value(fields.into()).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let proof: Vec<Hash> = proof.iter().flatten().map(|h| opaque(h)).collect();
    Outcome {
        accepted: verify(params, &proof),
        want_err,
        desc,
    }
}

fn run_case(kind: &str, text: &str) -> Outcome {
    match kind {
        "inclusion" => check(kind, text, |c: Inclusion, proof| {
            leaf(&c.leaf_hash).is_some_and(|leaf| {
                verify_inclusion(&leaf, c.leaf_idx, c.tree_size, proof, &opaque(&c.root)).is_ok()
            })
        }),
        "consistency" => check(kind, text, |c: Consistency, proof| {
            let (root1, root2) = (opaque(&c.root1), opaque(&c.root2));
            verify_consistency(c.size1, c.size2, &root1, &root2, proof).is_ok()
        }),
        "subtreeinclusion" => check(kind, text, |c: SubtreeInclusion, proof| {
            let root = opaque(&c.root);
            leaf(&c.leaf_hash).is_some_and(|leaf| {
                verify_subtree_inclusion(&leaf, c.leaf_idx, c.start, c.end, proof, &root).is_ok()
            })
        }),
        "subtreeconsistency" => check(kind, text, |c: SubtreeConsistency, proof| {
            let (root1, root2) = (opaque(&c.root1), opaque(&c.root2));
            verify_subtree_consistency(c.start, c.end, c.size, &root1, &root2, proof).is_ok()
        }),
        other => panic!("unknown vector folder {other}"),
    }
}

#[test]
fn transparency_dev_vectors() {
    let dir = locus_tests::shared_path("vectors/merkle");
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert_eq!(
        files.len(),
        EXPECTED_CASES,
        "vector files under {}",
        dir.display()
    );

    // folder -> (ran, accepted)
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&dir).unwrap();
        let kind = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let case = run_case(&kind, &text);
        let entry = tally.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += usize::from(case.accepted);
        if case.accepted == case.want_err {
            failures.push(format!(
                "{} ({}; accepted: {})",
                rel.display(),
                case.desc,
                case.accepted
            ));
        }
    }
    let ran: usize = tally.values().map(|t| t.0).sum();
    eprintln!("Merkle vectors (ran, accepted): {tally:?}");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(ran, EXPECTED_CASES);
    let want: BTreeMap<String, (usize, usize)> = [
        ("consistency", (98, 6)),
        ("inclusion", (98, 6)),
        ("subtreeconsistency", (118, 12)),
        ("subtreeinclusion", (204, 12)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(tally, want);
}

// Appendix C of draft-ietf-plants-merkle-tree-certs-05: entries d[i] = [i]
// for i < 130; each vector is SHA-256 over text lines listing every valid
// subtree with its hash or proofs, hashes in lowercase hex.
const MTC_MAX: u64 = 130;

fn mtc_tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for i in 0..MTC_MAX {
        tree.push(&[i as u8]);
    }
    tree
}

fn proof_line(prefix: String, proof: &[Hash]) -> String {
    let mut line = prefix;
    for h in proof {
        line.push(' ');
        line.push_str(&hex::encode(h));
    }
    line.push('\n');
    line
}

/// Every valid subtree `[start, end)` of `tree` with `end <= max_end`, by `end`
/// then `start`, with its root.
fn subtree_roots(tree: &MemoryTree, max_end: u64) -> impl Iterator<Item = (u64, u64, Hash)> + '_ {
    (1..=max_end).flat_map(move |end| {
        (0..end)
            .filter(move |&start| is_valid_subtree(start, end))
            .map(move |start| (start, end, subtree_root(tree, start, end).unwrap()))
    })
}

/// Asserts that the vector lines `write` lists for the draft's tree hash to `want`.
fn assert_accumulated(want: &str, write: impl FnOnce(&MemoryTree, &mut Vec<String>)) {
    let tree = mtc_tree();
    let mut lines = Vec::new();
    write(&tree, &mut lines);
    let mut h = Sha256::new();
    for line in lines {
        h.update(line);
    }
    assert_eq!(hex::encode(h.finalize()), want);
}

#[test]
fn mtc_subtree_hashes() {
    let want = "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f";
    assert_accumulated(want, |tree, lines| {
        for (start, end, root) in subtree_roots(tree, MTC_MAX) {
            lines.push(format!("[{start}, {end}) {}\n", hex::encode(root)));
        }
    });
}

#[test]
fn mtc_subtree_inclusion_proofs() {
    let want = "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f";
    assert_accumulated(want, |tree, lines| {
        for (start, end, root) in subtree_roots(tree, MTC_MAX) {
            for index in start..end {
                let proof = subtree_inclusion_proof(tree, index, start, end).unwrap();
                let leaf = tree
                    .node(locus_ledger::merkle::NodeId::new(0, index))
                    .unwrap();
                verify_subtree_inclusion(&leaf, index, start, end, &proof, &root).unwrap();
                lines.push(proof_line(format!("{index} [{start}, {end})"), &proof));
            }
        }
    });
}

#[test]
fn mtc_subtree_consistency_proofs() {
    let want = "c586ebbb73a5621baf2140095d87dde934e3b6503a562a1a5215b8209edd083d";
    assert_accumulated(want, |tree, lines| {
        for size in 0..=MTC_MAX {
            let root = subtree_root(tree, 0, size).unwrap();
            for (start, end, sub) in subtree_roots(tree, size) {
                let proof = subtree_consistency_proof(tree, start, end, size).unwrap();
                verify_subtree_consistency(start, end, size, &sub, &root, &proof).unwrap();
                if start == 0 && end < size {
                    verify_consistency(end, size, &sub, &root, &proof).unwrap();
                }
                lines.push(proof_line(format!("[{start}, {end}) {size}"), &proof));
            }
        }
    });
}

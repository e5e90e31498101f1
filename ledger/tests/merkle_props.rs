//! Property tests for Merkle proofs over trees of up to 10,000 leaves,
//! against a naive recursive implementation written straight from the
//! definitions: MTH, PATH and PROOF of RFC 9162 2.1, and SUBTREE_PROOF of
//! the Merkle Tree Certificates draft.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::cell::Cell;
use std::sync::OnceLock;

use locus_ledger::merkle::{
    consistency_proof, inclusion_proof, rfc9162_empty_root, rfc9162_leaf_hash, rfc9162_node_hash,
    subtree_consistency_proof, subtree_inclusion_proof, subtree_root, tree_root,
    verify_consistency, verify_inclusion, verify_subtree_consistency, verify_subtree_inclusion,
    CompactRange, Hash, MemoryTree, MemoryTreeError, NodeId, NodeReader, ProofError,
};
use proptest::prelude::*;

const MAX: u64 = 10_000;

struct Fixture {
    leaves: Vec<Hash>,
    tree: MemoryTree,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut tree = MemoryTree::with_capacity(MAX as usize);
        let mut leaves = Vec::new();
        for i in 0..MAX {
            let h = rfc9162_leaf_hash(format!("entry {i}").as_bytes());
            leaves.push(h);
            tree.push_leaf_hash(h);
        }
        Fixture { leaves, tree }
    })
}

/// The tree at `size`, as a store holding only that tree's nodes would be:
/// reading a node that is not complete at `size` is an error. Counts calls.
struct View {
    size: u64,
    calls: Cell<usize>,
    nodes: Cell<usize>,
}

impl NodeReader for View {
    type Error = MemoryTreeError;
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, MemoryTreeError> {
        self.calls.set(self.calls.get() + 1);
        self.nodes.set(self.nodes.get() + ids.len());
        ids.iter()
            .map(|&id| {
                let missing = MemoryTreeError::MissingNode(id);
                if !id.is_complete_in(self.size) {
                    return Err(missing);
                }
                fixture().tree.node(id).ok_or(missing)
            })
            .collect()
    }
}

fn view(size: u64) -> View {
    View {
        size,
        calls: Cell::new(0),
        nodes: Cell::new(0),
    }
}

/// Runs `f` on a fresh view and checks the cost: at most one read, of at
/// most 2 * log2(size) + 2 nodes.
fn measured<T>(size: u64, f: impl FnOnce(&View) -> Result<T, ProofError<MemoryTreeError>>) -> T {
    let v = view(size);
    let out = f(&v).unwrap_or_else(|e| panic!("size {size}: {e:?}"));
    assert!(v.calls.get() <= 1, "{} read_nodes calls", v.calls.get());
    let log = 64 - u64::from(size.leading_zeros());
    assert!(
        v.nodes.get() as u64 <= 2 * log + 2,
        "{} nodes read for size {size}",
        v.nodes.get()
    );
    out
}

// ---------------------------------------------------------------------------
// The naive reference, over slices of leaf hashes.

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => rfc9162_empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            rfc9162_node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = k_of(d.len());
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// SUBTREE_SUBPROOF(start, end, D, known) with `start`, `end` relative to `d`.
/// With start == 0 it is RFC 9162 SUBPROOF(end, D, known).
fn subtree_subproof(start: usize, end: usize, d: &[Hash], known: bool) -> Vec<Hash> {
    if start == 0 && end == d.len() {
        return if known { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(d.len());
    if end <= k {
        let mut p = subtree_subproof(start, end, &d[..k], known);
        p.push(mth(&d[k..]));
        p
    } else if start >= k {
        let mut p = subtree_subproof(start - k, end - k, &d[k..], known);
        p.push(mth(&d[..k]));
        p
    } else {
        let mut p = subtree_subproof(0, end - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

/// Recomputes a root from an inclusion proof by following the PATH recursion
/// (proof consumed from its end). `None` unless every hash is used.
fn naive_inclusion_root(leaf: &Hash, m: u64, n: u64, proof: &[Hash]) -> Option<Hash> {
    fn go(leaf: &Hash, m: u64, n: u64, proof: &[Hash]) -> Option<(Hash, usize)> {
        if n == 1 {
            return Some((*leaf, 0));
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        let (sibling, rest) = proof.split_last()?;
        if m < k {
            let (h, used) = go(leaf, m, k, rest)?;
            Some((rfc9162_node_hash(&h, sibling), used + 1))
        } else {
            let (h, used) = go(leaf, m - k, n - k, rest)?;
            Some((rfc9162_node_hash(sibling, &h), used + 1))
        }
    }
    if m >= n {
        return None;
    }
    let (root, used) = go(leaf, m, n, proof)?;
    (used == proof.len()).then_some(root)
}

/// Follows the SUBTREE_SUBPROOF recursion backwards: returns the subtree
/// root and the tree root the proof implies, if it uses every hash.
fn naive_subtree_consistency(
    start: u64,
    end: u64,
    n: u64,
    sub_root: &Hash,
    proof: &[Hash],
) -> Option<(Hash, Hash)> {
    fn go(
        start: u64,
        end: u64,
        n: u64,
        known: Option<&Hash>,
        proof: &[Hash],
    ) -> Option<(Hash, Hash, usize)> {
        if start == 0 && end == n {
            return match known {
                Some(h) => Some((*h, *h, 0)),
                None => proof.last().map(|h| (*h, *h, 1)),
            };
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        let (sibling, rest) = proof.split_last()?;
        if end <= k {
            let (a, b, used) = go(start, end, k, known, rest)?;
            Some((a, rfc9162_node_hash(&b, sibling), used + 1))
        } else if start >= k {
            let (a, b, used) = go(start - k, end - k, n - k, known, rest)?;
            Some((a, rfc9162_node_hash(sibling, &b), used + 1))
        } else {
            let (a, b, used) = go(0, end - k, n - k, None, rest)?;
            Some((
                rfc9162_node_hash(sibling, &a),
                rfc9162_node_hash(sibling, &b),
                used + 1,
            ))
        }
    }
    if start >= end || end > n {
        return None;
    }
    let (a, b, used) = go(start, end, n, Some(sub_root), proof)?;
    (used == proof.len()).then_some((a, b))
}

fn naive_verify_inclusion(leaf: &Hash, m: u64, n: u64, proof: &[Hash], root: &Hash) -> bool {
    naive_inclusion_root(leaf, m, n, proof).as_ref() == Some(root)
}

fn naive_verify_consistency(m: u64, n: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) -> bool {
    if m == 0 || m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && r1 == r2;
    }
    naive_subtree_consistency(0, m, n, r1, proof) == Some((*r1, *r2))
}

// ---------------------------------------------------------------------------
// Mutations

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8 % 32] ^= 1 << (bit % 8);
    h
}

/// Proofs changed in ways that must always fail: a flipped bit in one hash,
/// a hash dropped, added or duplicated.
fn broken_proofs(proof: &[Hash], pick: usize, bit: usize) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    if !proof.is_empty() {
        let i = pick % proof.len();
        let mut p = proof.to_vec();
        p[i] = flip(&p[i], bit);
        out.push(p);
        out.push(proof[1..].to_vec());
        out.push(proof[..proof.len() - 1].to_vec());
        let mut p = proof.to_vec();
        p.insert(i, proof[i]);
        out.push(p);
    }
    let mut p = proof.to_vec();
    p.push([bit as u8; 32]);
    out.push(p);
    let mut p = proof.to_vec();
    p.insert(0, [pick as u8; 32]);
    out.push(p);
    out
}

/// Nearby positions and sizes. Some may legitimately verify (an inclusion
/// proof does not commit to the tree size), so these are compared with the
/// naive verifier rather than expected to fail.
fn nearby(x: u64) -> Vec<u64> {
    [
        x.wrapping_sub(1),
        x + 1,
        x ^ 1,
        x ^ 2,
        x * 2,
        x / 2,
        0,
        1,
        u64::MAX,
    ]
    .into_iter()
    .filter(|&y| y != x)
    .collect()
}

fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX).prop_flat_map(|n| (Just(n), 0..n))
}

fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
    (2..=MAX).prop_flat_map(|n| (1..n, Just(n)))
}

/// (start, end, size) with [start, end) a valid non-empty subtree, end <= size.
fn subtree_in_tree() -> impl Strategy<Value = (u64, u64, u64)> {
    (1..=MAX)
        .prop_flat_map(|size| (Just(size), 1..=size))
        .prop_flat_map(|(size, end)| {
            let max_level = 64 - (end - 1).leading_zeros();
            (Just(size), Just(end), 0..=max_level)
        })
        .prop_map(|(size, end, level)| {
            let start = (end - 1)
                .checked_shr(level)
                .unwrap_or(0)
                .checked_shl(level)
                .unwrap_or(0);
            (start, end, size)
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inclusion((size, index) in size_and_index(), pick in any::<usize>(), bit in 0usize..256) {
        let d = &fixture().leaves[..size as usize];
        let leaf = d[index as usize];
        let root = measured(size, |v| tree_root(v, size));
        prop_assert_eq!(root, mth(d));
        let proof = measured(size, |v| inclusion_proof(v, index, size));
        prop_assert_eq!(&proof, &path(index as usize, d));
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());

        for p in broken_proofs(&proof, pick, bit) {
            prop_assert!(verify_inclusion(&leaf, index, size, &p, &root).is_err());
        }
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, bit)).is_err());
        prop_assert!(verify_inclusion(&flip(&leaf, bit), index, size, &proof, &root).is_err());
        // The sibling leaf's position always changes the hashing order.
        if index ^ 1 < size {
            prop_assert!(verify_inclusion(&leaf, index ^ 1, size, &proof, &root).is_err());
        }
        for other in nearby(index) {
            prop_assert_eq!(
                verify_inclusion(&leaf, other, size, &proof, &root).is_ok(),
                naive_verify_inclusion(&leaf, other, size, &proof, &root),
                "index {} -> {}", index, other
            );
        }
        for other in nearby(size) {
            prop_assert_eq!(
                verify_inclusion(&leaf, index, other, &proof, &root).is_ok(),
                naive_verify_inclusion(&leaf, index, other, &proof, &root),
                "size {} -> {}", size, other
            );
        }
        prop_assert!(matches!(inclusion_proof(&view(size), size, size), Err(ProofError::OutOfRange { .. })), "expected OutOfRange");
    }

    #[test]
    fn consistency((first, second) in two_sizes(), pick in any::<usize>(), bit in 0usize..256) {
        let d = &fixture().leaves[..second as usize];
        let r1 = measured(first, |v| tree_root(v, first));
        let r2 = measured(second, |v| tree_root(v, second));
        prop_assert_eq!(r1, mth(&d[..first as usize]));
        let proof = measured(second, |v| consistency_proof(v, first, second));
        prop_assert_eq!(&proof, &subtree_subproof(0, first as usize, d, true));
        prop_assert!(verify_consistency(first, second, &r1, &r2, &proof).is_ok());
        prop_assert!(verify_consistency(first, first, &r1, &r1, &[]).is_ok());
        prop_assert!(verify_consistency(second, second, &r2, &r2, &[]).is_ok());

        for p in broken_proofs(&proof, pick, bit) {
            prop_assert!(verify_consistency(first, second, &r1, &r2, &p).is_err());
        }
        prop_assert!(verify_consistency(first, second, &flip(&r1, bit), &r2, &proof).is_err());
        prop_assert!(verify_consistency(first, second, &r1, &flip(&r2, bit), &proof).is_err());
        prop_assert!(verify_consistency(first, second, &r2, &r1, &proof).is_err());
        prop_assert!(verify_consistency(second, first, &r2, &r1, &proof).is_err());
        prop_assert!(verify_consistency(0, second, &rfc9162_empty_root(), &r2, &[]).is_err());
        for other in nearby(first) {
            prop_assert_eq!(
                verify_consistency(other, second, &r1, &r2, &proof).is_ok(),
                naive_verify_consistency(other, second, &r1, &r2, &proof),
                "first {} -> {}", first, other
            );
        }
        for other in nearby(second) {
            prop_assert_eq!(
                verify_consistency(first, other, &r1, &r2, &proof).is_ok(),
                naive_verify_consistency(first, other, &r1, &r2, &proof),
                "second {} -> {}", second, other
            );
        }
        prop_assert!(matches!(consistency_proof(&view(second), 0, second), Err(ProofError::OutOfRange { .. })), "expected OutOfRange");
        prop_assert!(matches!(consistency_proof(&view(second), second, first), Err(ProofError::OutOfRange { .. })), "expected OutOfRange");
    }

    #[test]
    fn subtrees((start, end, size) in subtree_in_tree(), pick in any::<usize>(), bit in 0usize..256, raw in any::<u64>()) {
        let d = &fixture().leaves[..size as usize];
        let sub = measured(size, |v| subtree_root(v, start, end));
        prop_assert_eq!(sub, mth(&d[start as usize..end as usize]));
        let root = mth(d);

        let proof = measured(size, |v| subtree_consistency_proof(v, start, end, size));
        prop_assert_eq!(&proof, &subtree_subproof(start as usize, end as usize, d, true));
        prop_assert!(verify_subtree_consistency(start, end, size, &sub, &root, &proof).is_ok());
        for p in broken_proofs(&proof, pick, bit) {
            prop_assert!(verify_subtree_consistency(start, end, size, &sub, &root, &p).is_err());
        }
        prop_assert!(verify_subtree_consistency(start, end, size, &flip(&sub, bit), &root, &proof).is_err());
        prop_assert!(verify_subtree_consistency(start, end, size, &sub, &flip(&root, bit), &proof).is_err());
        for (s, e, n) in [
            (start, end + 1, size), (start, end.wrapping_sub(1), size), (start ^ 1, end, size),
            (start + 1, end, size), (start, end, size + 1), (start, end, size.wrapping_sub(1)),
            (start, end, size * 2), (start / 2, end, size), (0, end, size),
        ] {
            if (s, e, n) == (start, end, size) {
                continue;
            }
            let naive = s < e && locus_ledger::merkle::is_valid_subtree(s, e)
                && naive_subtree_consistency(s, e, n, &sub, &proof) == Some((sub, root));
            prop_assert_eq!(
                verify_subtree_consistency(s, e, n, &sub, &root, &proof).is_ok(),
                naive,
                "[{}, {}) {} -> [{}, {}) {}", start, end, size, s, e, n
            );
        }

        let index = start + raw % (end - start);
        let leaf = d[index as usize];
        let proof = measured(size, |v| subtree_inclusion_proof(v, index, start, end));
        prop_assert_eq!(&proof, &path((index - start) as usize, &d[start as usize..end as usize]));
        prop_assert!(verify_subtree_inclusion(&leaf, index, start, end, &proof, &sub).is_ok());
        for p in broken_proofs(&proof, pick, bit) {
            prop_assert!(verify_subtree_inclusion(&leaf, index, start, end, &p, &sub).is_err());
        }
        prop_assert!(verify_subtree_inclusion(&leaf, index, start, end, &proof, &flip(&sub, bit)).is_err());
        if start > 0 {
            // Same relative position in another subtree of the same width.
            let width = (end - start).next_power_of_two();
            prop_assert!(verify_subtree_inclusion(&leaf, index - width, start - width, end - width, &proof, &sub).is_ok());
            prop_assert!(verify_subtree_inclusion(&leaf, index, start - 1, end, &proof, &sub).is_err());
        }
        // The empty subtree at any valid position is consistent with the tree.
        prop_assert!(verify_subtree_consistency(end, end, size, &rfc9162_empty_root(), &root, &[]).is_ok());
        prop_assert!(verify_subtree_consistency(end, end, size, &sub, &root, &[]).is_err());
    }
}

#[test]
fn compact_range_tracks_the_tree() {
    let fx = fixture();
    let mut range = CompactRange::new();
    assert_eq!(range.root(), rfc9162_empty_root());
    let mut appended = 0u64;
    for (i, leaf) in fx.leaves.iter().enumerate() {
        let nodes = range.append(*leaf);
        let size = i as u64 + 1;
        // The leaf, then one parent per trailing zero of the new size.
        assert_eq!(nodes.len() as u32, 1 + size.trailing_zeros());
        assert_eq!(nodes[0], (NodeId::new(0, i as u64), *leaf));
        for (id, hash) in &nodes {
            assert!(id.is_complete_in(size) && !id.is_complete_in(size - 1));
            assert_eq!(fx.tree.node(*id), Some(*hash), "{id:?}");
        }
        appended += nodes.len() as u64;
        assert_eq!(range.size(), size);
        assert_eq!(
            range.root(),
            tree_root(&view(size), size).unwrap(),
            "size {size}"
        );
        // Every stored node came out of append exactly once.
        assert_eq!(appended, 2 * size - u64::from(size.count_ones()));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn compact_range_from_peaks(size in 0..=MAX, more in 0u64..50) {
        let ids = CompactRange::peak_ids(size);
        prop_assert_eq!(ids.len() as u32, size.count_ones());
        let peaks = fixture().tree.read_nodes(&ids).unwrap();
        let mut range = CompactRange::from_peaks(size, peaks).unwrap();
        prop_assert_eq!(range.root(), mth(&fixture().leaves[..size as usize]));
        let end = (size + more).min(MAX);
        for i in size..end {
            for (id, hash) in range.append(fixture().leaves[i as usize]) {
                prop_assert_eq!(fixture().tree.node(id), Some(hash));
            }
        }
        prop_assert_eq!(range.root(), tree_root(&view(end), end).unwrap());
        prop_assert!(CompactRange::from_peaks(size, vec![[0; 32]; ids.len() + 1]).is_err());
    }
}

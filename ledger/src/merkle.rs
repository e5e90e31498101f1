//! RFC 9162 Merkle tree hashing, proofs and their verification.
//!
//! The tree over `n` leaves is the one of RFC 9162 section 2.1.1. Every node
//! the log stores is a *perfect* subtree ([`NodeId`]); the root of any other
//! range (a tree whose size is not a power of two, or the incomplete right
//! edge inside a proof) is folded from the perfect subtrees that make it up.
//! Proof generation first lists every perfect subtree it needs, reads them
//! all with one [`NodeReader::read_nodes`] call, then folds: a database
//! serves any proof in one query.
//!
//! Verification follows RFC 9162 2.1.3.2 and 2.1.4.2, generalised to the
//! subtree proofs of the Merkle Tree Certificates draft with the semantics of
//! transparency-dev/merkle (checked by its 518 test vectors).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Domain separation byte for leaf hashes (RFC 9162 2.1.1).
pub const RFC9162_LEAF_PREFIX: u8 = 0x00;
/// Domain separation byte for interior node hashes (RFC 9162 2.1.1).
pub const RFC9162_NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || data)`.
pub fn rfc9162_leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([RFC9162_LEAF_PREFIX])
        .chain_update(data)
        .finalize()
        .into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn rfc9162_node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([RFC9162_NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn rfc9162_empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree: the `2^level` leaves `[index << level, (index + 1) << level)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// Whether this subtree is complete in a tree of `size` leaves (and so
    /// is stored). Levels past 63 never are.
    pub fn is_complete_in(&self, size: u64) -> bool {
        // u128: (index + 1) << level reaches 2^127 at most for level <= 63.
        self.level <= 63 && ((u128::from(self.index) + 1) << self.level) <= u128::from(size)
    }
}

/// Read access to stored perfect-subtree hashes.
pub trait NodeReader {
    type Error;
    /// Returns the hashes of `ids`, in the order asked. A node that is not
    /// stored is the implementation's error.
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

/// Why a proof or root could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E> {
    /// The request names no proof of a tree that can exist: an index at or
    /// past the size, a first size past the second, a size of zero where
    /// none is allowed, an invalid subtree, or (set by callers) a size past
    /// the tree they have.
    #[error("{what} {requested} is out of range for tree size {size}")]
    OutOfRange {
        what: &'static str,
        requested: u64,
        size: u64,
    },
    /// The reader answered with a different number of hashes than asked.
    #[error("node reader returned {got} hashes for {asked} nodes")]
    ShortRead { asked: usize, got: usize },
    /// The reader failed (a missing node, a database error).
    #[error("node reader: {0}")]
    Store(#[source] E),
}

/// A proof did not verify. Deliberately says nothing about which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Merkle proof verification failed")]
pub struct VerifyError;

// ---------------------------------------------------------------------------
// Ranges and their perfect subtrees

/// A range of leaves `[begin, end)` whose root a proof carries.
type Range = (u64, u64);

/// The largest power of two strictly below `n`, for `n >= 2` (RFC 9162 `k`).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Appends the perfect subtrees that make up `[begin, end)`, largest first.
/// `begin` must be a multiple of the smallest power of two `>= end - begin`,
/// which holds for every range the RFC recursions produce.
fn push_range_nodes((begin, end): Range, out: &mut Vec<NodeId>) {
    let len = end - begin;
    let mut pos = begin;
    for level in (0..64u8).rev() {
        if (len >> level) & 1 == 1 {
            out.push(NodeId::new(level, pos >> level));
            pos += 1 << level;
        }
    }
}

/// Folds the perfect subtrees of one range (largest first) into its root:
/// RFC 9162's MTH splits off the largest power of two, so the root of a
/// range is the right fold of its perfect subtrees.
fn fold_right(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return rfc9162_empty_root();
    };
    iter.fold(*last, |acc, left| rfc9162_node_hash(left, &acc))
}

/// Reads every node of `ranges` in one call and returns each range's root.
fn range_roots<R: NodeReader>(r: &R, ranges: &[Range]) -> Result<Vec<Hash>, ProofError<R::Error>> {
    let mut ids = Vec::new();
    let mut counts = Vec::with_capacity(ranges.len());
    for &range in ranges {
        let before = ids.len();
        push_range_nodes(range, &mut ids);
        counts.push(ids.len() - before);
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = r.read_nodes(&ids).map_err(ProofError::Store)?;
    if hashes.len() != ids.len() {
        return Err(ProofError::ShortRead {
            asked: ids.len(),
            got: hashes.len(),
        });
    }
    let mut rest = hashes.as_slice();
    let mut roots = Vec::with_capacity(ranges.len());
    for count in counts {
        let (group, tail) = rest.split_at(count);
        roots.push(fold_right(group));
        rest = tail;
    }
    Ok(roots)
}

/// RFC 9162 2.1.3.1 PATH(index, D[0:size]) as ranges, leaf level first.
fn inclusion_ranges(index: u64, size: u64) -> Vec<Range> {
    let mut ranges = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
        }
    }
    ranges.reverse();
    ranges
}

/// SUBTREE_PROOF(start, end, D[0:size]) of the Merkle Tree Certificates
/// draft as ranges, in proof order. With `start == 0` it is RFC 9162 2.1.4.1
/// PROOF(end, D[0:size]). Requires a valid, non-empty subtree with
/// `end <= size`.
fn subtree_consistency_ranges(start: u64, end: u64, size: u64) -> Vec<Range> {
    let mut outer = Vec::new();
    let mut first = None;
    let (mut lo, mut hi) = (0, size);
    // The part of the subtree still to be proven, and whether the verifier
    // knows its root (it does until the subtree has to be split).
    let mut from = start;
    let mut known = true;
    loop {
        if from == lo && end == hi {
            if !known {
                first = Some((lo, hi));
            }
            break;
        }
        // Only an empty subtree (refused by every caller) gets here.
        if hi - lo < 2 {
            break;
        }
        let k = split_point(hi - lo);
        if end <= lo + k {
            outer.push((lo + k, hi));
            hi = lo + k;
        } else {
            // Either wholly on the right, or straddling the split (then the
            // subtree starts at `lo`): the left half is a sibling either way.
            outer.push((lo, lo + k));
            lo += k;
            if from < lo {
                from = lo;
                known = false;
            }
        }
    }
    first.into_iter().chain(outer.into_iter().rev()).collect()
}

/// Whether `[start, end)` is a subtree in the sense of the Merkle Tree
/// Certificates draft: `start` is a multiple of the smallest power of two
/// `>= end - start`. Empty subtrees (`start == end`) are valid.
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    if start > end {
        return false;
    }
    match (end - start).checked_next_power_of_two() {
        Some(width) => start.is_multiple_of(width),
        // Wider than 2^63: only a prefix of the tree can be that wide.
        None => start == 0,
    }
}

// ---------------------------------------------------------------------------
// Proof generation

/// The inclusion proof (RFC 9162 2.1.3.1) of leaf `index` in the tree of
/// `size` leaves. Reads O(log size) nodes in at most one `read_nodes` call.
pub fn inclusion_proof<R: NodeReader>(
    r: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if index >= size {
        return Err(ProofError::OutOfRange {
            what: "leaf index",
            requested: index,
            size,
        });
    }
    range_roots(r, &inclusion_ranges(index, size))
}

/// The consistency proof (RFC 9162 2.1.4.1) from the tree of `first` leaves
/// to the tree of `second`. Empty when the sizes are equal. `first == 0` is
/// refused: every tree extends the empty tree, so there is nothing to prove
/// (and [`verify_consistency`] rejects it, as the test vectors require).
pub fn consistency_proof<R: NodeReader>(
    r: &R,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if first == 0 || first > second {
        return Err(ProofError::OutOfRange {
            what: "first tree size",
            requested: first,
            size: second,
        });
    }
    if first == second {
        return Ok(Vec::new());
    }
    range_roots(r, &subtree_consistency_ranges(0, first, second))
}

/// The root of the tree of `size` leaves; the empty root for 0.
pub fn tree_root<R: NodeReader>(r: &R, size: u64) -> Result<Hash, ProofError<R::Error>> {
    if size == 0 {
        return Ok(rfc9162_empty_root());
    }
    let roots = range_roots(r, &[(0, size)])?;
    Ok(roots.first().copied().unwrap_or_else(rfc9162_empty_root))
}

/// The root of the subtree `[start, end)` (the empty root if `start == end`).
pub fn subtree_root<R: NodeReader>(
    r: &R,
    start: u64,
    end: u64,
) -> Result<Hash, ProofError<R::Error>> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::OutOfRange {
            what: "subtree start",
            requested: start,
            size: end,
        });
    }
    if start == end {
        return Ok(rfc9162_empty_root());
    }
    let roots = range_roots(r, &[(start, end)])?;
    Ok(roots.first().copied().unwrap_or_else(rfc9162_empty_root))
}

/// The inclusion proof of leaf `index` in the subtree `[start, end)`.
pub fn subtree_inclusion_proof<R: NodeReader>(
    r: &R,
    index: u64,
    start: u64,
    end: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if !is_valid_subtree(start, end) || index < start || index >= end {
        return Err(ProofError::OutOfRange {
            what: "leaf index",
            requested: index,
            size: end,
        });
    }
    // A subtree hashes exactly like a tree of its own leaves.
    let ranges: Vec<Range> = inclusion_ranges(index - start, end - start)
        .into_iter()
        .map(|(a, b)| (a + start, b + start))
        .collect();
    range_roots(r, &ranges)
}

/// The consistency proof of the subtree `[start, end)` with the tree of
/// `size` leaves (SUBTREE_PROOF of the Merkle Tree Certificates draft).
/// Empty for an empty subtree, or when the subtree is the whole tree.
pub fn subtree_consistency_proof<R: NodeReader>(
    r: &R,
    start: u64,
    end: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if !is_valid_subtree(start, end) || end > size {
        return Err(ProofError::OutOfRange {
            what: "subtree end",
            requested: end,
            size,
        });
    }
    if start == end || (start == 0 && end == size) {
        return Ok(Vec::new());
    }
    range_roots(r, &subtree_consistency_ranges(start, end, size))
}

// ---------------------------------------------------------------------------
// Verification

fn hashes_equal(a: &Hash, b: &Hash) -> bool {
    a.ct_eq(b).into()
}

/// How every verifier ends: the proof gave a root, and it is the one expected.
fn root_matches(computed: Option<Hash>, expected: &Hash) -> Result<(), VerifyError> {
    match computed {
        Some(computed) if hashes_equal(&computed, expected) => Ok(()),
        _ => Err(VerifyError),
    }
}

/// Where there is nothing to prove: the proof must be empty and `root` the expected one.
fn nothing_to_prove(proof: &[Hash], root: &Hash, expected: &Hash) -> Result<(), VerifyError> {
    root_matches(proof.is_empty().then_some(*root), expected)
}

/// RFC 9162 2.1.3.2: the root implied by an inclusion proof, or `None` if
/// the proof has the wrong length for `index` and `size`.
fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = rfc9162_node_hash(p, &r);
            // On the right edge a left child has no sibling: climb to where
            // the path turns. fn_ == sn > 0 here, so this terminates.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = rfc9162_node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// RFC 9162 2.1.4.2 generalised to a subtree `[start, end)` of the tree of
/// `size` leaves. Returns the tree root the proof implies after checking the
/// proof against `subtree_root`, or `None`. Requires a valid non-empty
/// subtree, `end <= size`, and not `start == 0 && end == size`.
fn root_from_subtree_consistency_proof(
    start: u64,
    end: u64,
    size: u64,
    subtree_root: &Hash,
    proof: &[Hash],
) -> Option<Hash> {
    // Height of the subtree: the level of the node `[start, start + 2^h)`.
    let height = 64 - ((end - 1) ^ start).leading_zeros();
    if end == size {
        // The subtree is the right edge of the tree: the proof is just the
        // left siblings on the way up from it.
        let mut fn_ = start.checked_shr(height).unwrap_or(0);
        let mut r = *subtree_root;
        for p in proof {
            if fn_ == 0 {
                return None;
            }
            while fn_ & 1 == 0 {
                fn_ >>= 1;
            }
            r = rfc9162_node_hash(p, &r);
            fn_ >>= 1;
        }
        return (fn_ == 0).then_some(r);
    }

    // Start from the rightmost perfect subtree inside [start, end). If that
    // is the whole subtree the verifier knows its root; otherwise it is the
    // first proof hash.
    let shift = (end - start).trailing_zeros();
    let perfect = end - start == 1 << shift;
    let (seed, rest) = if perfect {
        (*subtree_root, proof)
    } else {
        let (first, rest) = proof.split_first()?;
        (*first, rest)
    };
    let (mut fn_, mut sn) = ((end - 1) >> shift, (size - 1) >> shift);
    let mut level = shift;
    // fr rebuilds the subtree root (left siblings below its height only),
    // sr the tree root.
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            while fn_ & 1 == 0 {
                fn_ >>= 1;
                sn >>= 1;
                level += 1;
            }
            if level < height {
                fr = rfc9162_node_hash(c, &fr);
            }
            sr = rfc9162_node_hash(c, &sr);
        } else {
            sr = rfc9162_node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
        level += 1;
    }
    if sn != 0 || (!perfect && !hashes_equal(&fr, subtree_root)) {
        return None;
    }
    Some(sr)
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2) of the leaf with hash
/// `leaf_hash` at `index` in the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    root_matches(
        root_from_inclusion_proof(leaf_hash, index, size, proof),
        root,
    )
}

/// Verifies a consistency proof (RFC 9162 2.1.4.2) between the tree of
/// `first` leaves with root `first_root` and the tree of `second` leaves with
/// root `second_root`. Equal sizes need an empty proof and equal roots.
/// `first == 0` is always rejected, as in transparency-dev/merkle's vectors:
/// a proof from the empty tree proves nothing, so callers holding an empty
/// tree check `first_root == rfc9162_empty_root()` and skip the proof.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if first == 0 || first > second {
        return Err(VerifyError);
    }
    if first == second {
        return nothing_to_prove(proof, first_root, second_root);
    }
    if proof.is_empty() {
        return Err(VerifyError);
    }
    root_matches(
        root_from_subtree_consistency_proof(0, first, second, first_root, proof),
        second_root,
    )
}

/// Verifies that the leaf with hash `leaf_hash` at `leaf_index` is in the
/// subtree `[start, end)` whose root is `subtree_root` (as
/// transparency-dev/merkle `VerifySubtreeInclusion`).
pub fn verify_subtree_inclusion(
    leaf_hash: &Hash,
    leaf_index: u64,
    start: u64,
    end: u64,
    proof: &[Hash],
    subtree_root: &Hash,
) -> Result<(), VerifyError> {
    if !is_valid_subtree(start, end) || leaf_index < start || leaf_index >= end {
        return Err(VerifyError);
    }
    verify_inclusion(
        leaf_hash,
        leaf_index - start,
        end - start,
        proof,
        subtree_root,
    )
}

/// Verifies that the subtree `[start, end)` with root `subtree_root` is part
/// of the tree of `size` leaves with root `root` (as transparency-dev/merkle
/// `VerifySubtreeConsistency`). An empty subtree needs an empty proof and the
/// empty root, and is consistent with any tree at least `end` long.
pub fn verify_subtree_consistency(
    start: u64,
    end: u64,
    size: u64,
    subtree_root: &Hash,
    root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if !is_valid_subtree(start, end) || end > size {
        return Err(VerifyError);
    }
    if start == end {
        return nothing_to_prove(proof, subtree_root, &rfc9162_empty_root());
    }
    if start == 0 && end == size {
        return nothing_to_prove(proof, subtree_root, root);
    }
    if proof.is_empty() {
        return Err(VerifyError);
    }
    root_matches(
        root_from_subtree_consistency_proof(start, end, size, subtree_root, proof),
        root,
    )
}

// ---------------------------------------------------------------------------
// Compact range

/// [`CompactRange::from_peaks`] or [`CompactRange::try_append`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompactRangeError {
    #[error("a tree of size {size} has {expected} peaks, got {got}")]
    PeakCount {
        size: u64,
        expected: usize,
        got: usize,
    },
    #[error("the tree is full")]
    Full,
}

/// The right frontier of a tree: the root of each perfect subtree that makes
/// it up, largest first. Enough to append leaves and compute the root without
/// reading anything else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The perfect subtrees whose concatenation is the tree of `size`
    /// leaves, left to right (one per set bit of `size`).
    pub fn peak_ids(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::with_capacity(size.count_ones() as usize);
        push_range_nodes((0, size), &mut ids);
        ids
    }

    /// Rebuilds the range from the hashes of [`Self::peak_ids`]`(size)`.
    pub fn from_peaks(size: u64, hashes: Vec<Hash>) -> Result<Self, CompactRangeError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(CompactRangeError::PeakCount {
                size,
                expected,
                got: hashes.len(),
            });
        }
        Ok(Self {
            size,
            peaks: hashes,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peak hashes, largest subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf and returns every node that became complete: the leaf
    /// at level 0, then each parent it completes, bottom up. A full tree
    /// (`u64::MAX` leaves) is left unchanged and nothing is returned; use
    /// [`Self::try_append`] to see that as an error.
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(NodeId, Hash)> {
        self.try_append(leaf_hash).unwrap_or_default()
    }

    /// As [`Self::append`], but a full tree is an error.
    pub fn try_append(
        &mut self,
        leaf_hash: Hash,
    ) -> Result<Vec<(NodeId, Hash)>, CompactRangeError> {
        let index = self.size;
        let new_size = index.checked_add(1).ok_or(CompactRangeError::Full)?;
        // Each trailing zero of the new size is a pair of peaks to merge.
        let merges = new_size.trailing_zeros() as u8;
        let mut nodes = Vec::with_capacity(usize::from(merges) + 1);
        let mut hash = leaf_hash;
        nodes.push((NodeId::new(0, index), hash));
        for level in 1..=merges {
            let Some(left) = self.peaks.pop() else {
                // Unreachable: the peaks match the size's set bits.
                return Err(CompactRangeError::PeakCount {
                    size: self.size,
                    expected: self.size.count_ones() as usize,
                    got: self.peaks.len(),
                });
            };
            hash = rfc9162_node_hash(&left, &hash);
            nodes.push((NodeId::new(level, index >> level), hash));
        }
        self.peaks.push(hash);
        self.size = new_size;
        Ok(nodes)
    }

    /// The tree root (the empty root for the empty tree).
    pub fn root(&self) -> Hash {
        fold_right(&self.peaks)
    }
}

// ---------------------------------------------------------------------------
// In-memory tree

/// A node [`MemoryTree`] does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryTreeError {
    #[error("node {0:?} is not in the tree")]
    MissingNode(NodeId),
}

/// Every perfect subtree of a tree, in memory: `levels[l][i]` is node
/// `(l, i)`. About two hashes (64 bytes) per leaf.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tree with room for `leaves` leaves without reallocating
    /// (as far as memory allows: a failed reservation is not an error).
    pub fn with_capacity(leaves: usize) -> Self {
        let mut levels = Vec::new();
        let mut n = leaves;
        while n > 0 {
            let mut row = Vec::new();
            if row.try_reserve_exact(n).is_err() {
                break;
            }
            levels.push(row);
            n /= 2;
        }
        Self { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends the leaf for `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.push_leaf_hash(rfc9162_leaf_hash(data));
    }

    /// Appends a leaf by its hash, completing its parents.
    pub fn push_leaf_hash(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            let n = row.len();
            // An even count means the new node is a right child.
            if !n.is_multiple_of(2) {
                break;
            }
            hash = rfc9162_node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
    }

    /// The hash of a stored node.
    pub fn node(&self, id: NodeId) -> Option<Hash> {
        let row = self.levels.get(usize::from(id.level))?;
        row.get(usize::try_from(id.index).ok()?).copied()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        let ids = CompactRange::peak_ids(self.size());
        let peaks: Vec<Hash> = ids.iter().filter_map(|&id| self.node(id)).collect();
        fold_right(&peaks)
    }
}

impl NodeReader for MemoryTree {
    type Error = MemoryTreeError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        ids.iter()
            .map(|&id| self.node(id).ok_or(MemoryTreeError::MissingNode(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(rfc9162_empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rfc6962_reference_roots() {
        // The eight-leaf test tree of RFC 6962 implementations (certificate-
        // transparency, transparency-dev/merkle): leaves "", 00, 10, 2021,
        // 3031, 40414243, 5051525354555657, 606162636465666768696a6b6c6d6e6f.
        let leaves = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut tree = MemoryTree::new();
        let mut range = CompactRange::new();
        for (leaf, root) in leaves.iter().zip(roots) {
            let data = hex::decode(leaf).unwrap();
            tree.push(&data);
            range.append(rfc9162_leaf_hash(&data));
            assert_eq!(hex::encode(tree.root()), root);
            assert_eq!(hex::encode(range.root()), root);
            assert_eq!(hex::encode(tree_root(&tree, tree.size()).unwrap()), root);
        }
    }

    #[test]
    fn valid_subtrees() {
        assert!(is_valid_subtree(0, 0));
        assert!(is_valid_subtree(5, 5));
        assert!(is_valid_subtree(0, 15));
        assert!(is_valid_subtree(8, 13));
        assert!(is_valid_subtree(4, 8));
        assert!(!is_valid_subtree(1, 15));
        assert!(!is_valid_subtree(2, 5));
        assert!(!is_valid_subtree(2, 1));
        assert!(!is_valid_subtree(1, (1 << 63) + 2));
        assert!(is_valid_subtree(0, u64::MAX));
        assert!(is_valid_subtree(1 << 63, u64::MAX));
    }

    #[test]
    fn extreme_sizes_do_not_panic() {
        let leaf = [7u8; 32];
        let proofs: [&[Hash]; 3] = [&[], &[[0; 32]], &[[0; 32]; 70]];
        for proof in proofs {
            for (index, size) in [
                (0, u64::MAX),
                (u64::MAX - 1, u64::MAX),
                (u64::MAX, u64::MAX),
                (1 << 63, u64::MAX),
                (0, 0),
            ] {
                assert!(verify_inclusion(&leaf, index, size, proof, &leaf).is_err());
            }
            for (a, b) in [
                (1, u64::MAX),
                (u64::MAX - 1, u64::MAX),
                (1 << 63, u64::MAX),
                (u64::MAX, u64::MAX),
            ] {
                let _ = verify_consistency(a, b, &leaf, &leaf, proof);
            }
            for (s, e, n) in [
                (0, u64::MAX, u64::MAX),
                (1 << 63, u64::MAX, u64::MAX),
                (u64::MAX - 1, u64::MAX, u64::MAX),
                (u64::MAX, u64::MAX, u64::MAX),
                (4, 6, u64::MAX),
            ] {
                let _ = verify_subtree_consistency(s, e, n, &leaf, &leaf, proof);
                let _ = verify_subtree_inclusion(&leaf, s, s, e, proof, &leaf);
            }
        }
        // Proof generation at the top of the range only computes node ids.
        struct Counting;
        impl NodeReader for Counting {
            type Error = ();
            fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ()> {
                assert!(ids.len() <= 130);
                Ok(vec![[1; 32]; ids.len()])
            }
        }
        assert_eq!(inclusion_proof(&Counting, 0, u64::MAX).unwrap().len(), 64);
        for (index, size) in [(u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            assert!(inclusion_proof(&Counting, index, size).is_ok());
        }
        assert!(consistency_proof(&Counting, u64::MAX - 1, u64::MAX).is_ok());
        assert!(consistency_proof(&Counting, 1, u64::MAX).is_ok());
        assert!(tree_root(&Counting, u64::MAX).is_ok());
        assert_eq!(CompactRange::peak_ids(u64::MAX).len(), 64);
    }

    #[test]
    fn compact_range_full_and_peak_count() {
        let mut full = CompactRange::from_peaks(u64::MAX, vec![[0; 32]; 64]).unwrap();
        assert_eq!(full.try_append([1; 32]), Err(CompactRangeError::Full));
        assert!(full.append([1; 32]).is_empty());
        assert_eq!(full.size(), u64::MAX);
        assert!(CompactRange::from_peaks(3, vec![[0; 32]]).is_err());
        assert!(CompactRange::from_peaks(0, vec![]).is_ok());
    }

    #[test]
    fn huge_capacity_does_not_panic() {
        assert_eq!(MemoryTree::with_capacity(usize::MAX).size(), 0);
    }

    #[test]
    fn short_reads_are_errors() {
        struct Short;
        impl NodeReader for Short {
            type Error = ();
            fn read_nodes(&self, _: &[NodeId]) -> Result<Vec<Hash>, ()> {
                Ok(vec![[0; 32]])
            }
        }
        assert!(matches!(
            inclusion_proof(&Short, 3, 100),
            Err(ProofError::ShortRead { .. })
        ));
    }
}

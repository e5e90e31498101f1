//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the tree served as
//! static tiles of 256 hashes, and the entries as bundles.
//!
//! A hash tile at tile level `L` holds up to 256 consecutive perfect
//! subtrees of tree level `8 * L`: tile `N` holds nodes `N*256 ..` of that
//! level. Paths are `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`,
//! with `N` in 3-digit groups (`1234067` is `x001/x234/067`) and `.p/<W>`
//! marking a partial tile of `W` (1..=255) hashes or entries.

use crate::merkle::{rfc9162_node_hash, Hash, NodeId};

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels spanned by one tile level.
pub const TILE_HEIGHT: u8 = 8;
/// The highest tile level a path may name.
pub const MAX_TILE_LEVEL: u8 = 63;
/// Largest entry an entry bundle can hold (u16 length prefix).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

const HASH_LEN: usize = 32;

/// Bad tile paths, tile data or entry bundles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("not a canonical tile path")]
    InvalidPath,
    #[error("invalid tile: level {level}, width {width}")]
    InvalidTile { level: u8, width: u16 },
    #[error("tile data is {got} bytes, expected {expected}")]
    TileSize { expected: usize, got: usize },
    #[error("node {0:?} is not in this tile")]
    NodeNotInTile(NodeId),
    #[error("entry of {0} bytes does not fit a u16 length prefix")]
    EntryTooLarge(usize),
    #[error("an entry bundle holds at most {TILE_WIDTH} entries")]
    TooManyEntries,
    #[error("entry bundle is truncated")]
    TruncatedBundle,
}

/// A hash tile: tile `index` at tile `level`, `width` hashes (256 = full).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileRef {
    pub level: u8,
    pub index: u64,
    /// 1..=256.
    pub width: u16,
}

/// A parsed tile path.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`.
    Hash(TileRef),
    /// `tile/entries/<N>[.p/<W>]`; `width` is 256 for a full bundle.
    Entries { index: u64, width: u16 },
}

fn valid_width(width: u16) -> bool {
    (1..=TILE_WIDTH).contains(&u64::from(width))
}

/// Number of perfect subtrees at `tree_level` in a tree of `tree_size`.
fn nodes_at(tree_level: u32, tree_size: u64) -> u64 {
    tree_size.checked_shr(tree_level).unwrap_or(0)
}

impl TileRef {
    /// A tile with a checked level and width.
    pub fn new(level: u8, index: u64, width: u16) -> Result<Self, TileError> {
        if level > MAX_TILE_LEVEL || !valid_width(width) {
            return Err(TileError::InvalidTile { level, width });
        }
        Ok(Self {
            level,
            index,
            width,
        })
    }

    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        tile_path(&TilePath::Hash(*self))
    }

    /// The tree nodes whose hashes the tile holds, in order: level `8 * L`,
    /// indices `index * 256 .. index * 256 + width`. Empty for tiles that no
    /// tree of at most `u64::MAX` leaves has (level 8 and up, huge indices).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        let tree_level = u8::try_from(u32::from(self.level) * u32::from(TILE_HEIGHT))
            .ok()
            .filter(|&l| l < 64);
        let first = self.index.checked_mul(TILE_WIDTH);
        let end = first.and_then(|f| f.checked_add(u64::from(self.width)));
        let (level, indices) = match (tree_level, first, end) {
            (Some(level), Some(first), Some(end)) if valid_width(self.width) => (level, first..end),
            _ => (0, 0..0),
        };
        indices.map(move |index| NodeId::new(level, index))
    }
}

/// `n` as 3-digit path groups, all but the last prefixed by `x`:
/// `1234067` is `x001/x234/067`, `5` is `005`.
pub fn encode_tile_index(n: u64) -> String {
    let mut groups = vec![n % 1000];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i == last {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The path of a tile or entry bundle.
pub fn tile_path(path: &TilePath) -> String {
    let (kind, index, width) = match path {
        TilePath::Hash(t) => (t.level.to_string(), t.index, t.width),
        TilePath::Entries { index, width } => ("entries".to_owned(), *index, *width),
    };
    let mut out = format!("tile/{kind}/{}", encode_tile_index(index));
    if u64::from(width) != TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
    out
}

/// A decimal without leading zeros, at most `max`.
fn parse_small_decimal(s: &str, max: u16) -> Option<u16> {
    let canonical = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse().ok())
        .flatten()
        .filter(|&v| v <= max)
}

fn parse_tile_index(s: &str) -> Option<u64> {
    let groups: Vec<&str> = s.split('/').collect();
    let last = groups.len() - 1;
    let mut n: u64 = 0;
    for (i, group) in groups.iter().enumerate() {
        let digits = if i == last {
            *group
        } else {
            group.strip_prefix('x')?
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // A leading all-zero group would be a second spelling of the number.
        if i == 0 && i != last && digits == "000" {
            return None;
        }
        let g: u64 = digits.parse().ok()?;
        n = n.checked_mul(1000)?.checked_add(g)?;
    }
    Some(n)
}

/// Parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, rejecting
/// every non-canonical spelling.
pub fn parse_tile_path(path: &str) -> Result<TilePath, TileError> {
    let rest = path.strip_prefix("tile/").ok_or(TileError::InvalidPath)?;
    let (kind, rest) = rest.split_once('/').ok_or(TileError::InvalidPath)?;
    let (index, width) = match rest.split_once(".p/") {
        Some((index, w)) => {
            let w = parse_small_decimal(w, 255)
                .filter(|&w| w >= 1)
                .ok_or(TileError::InvalidPath)?;
            (index, w)
        }
        None => (rest, TILE_WIDTH as u16),
    };
    let index = parse_tile_index(index).ok_or(TileError::InvalidPath)?;
    if kind == "entries" {
        return Ok(TilePath::Entries { index, width });
    }
    let level =
        parse_small_decimal(kind, u16::from(MAX_TILE_LEVEL)).ok_or(TileError::InvalidPath)?;
    let level = u8::try_from(level).map_err(|_| TileError::InvalidPath)?;
    Ok(TilePath::Hash(TileRef {
        level,
        index,
        width,
    }))
}

/// Whether the tile (`level`, `index`, `width`) exists for a tree of
/// `tree_size`: its `width` hashes are complete subtrees of tree level
/// `8 * level`. For entry bundles use level 0.
pub fn tile_available(level: u8, index: u64, width: u16, tree_size: u64) -> bool {
    if level > MAX_TILE_LEVEL || !valid_width(width) {
        return false;
    }
    let available = nodes_at(u32::from(level) * u32::from(TILE_HEIGHT), tree_size);
    index
        .checked_mul(TILE_WIDTH)
        .and_then(|first| first.checked_add(u64::from(width)))
        .is_some_and(|end| end <= available)
}

/// The width of tile (`level`, `index`) in a tree of `tree_size`: 256 when
/// full, less when partial, `None` when the tree has none of its hashes.
pub fn tile_width(level: u8, index: u64, tree_size: u64) -> Option<u16> {
    if level > MAX_TILE_LEVEL {
        return None;
    }
    let available = nodes_at(u32::from(level) * u32::from(TILE_HEIGHT), tree_size);
    let first = index.checked_mul(TILE_WIDTH)?;
    let width = available.checked_sub(first)?.min(TILE_WIDTH);
    (width > 0).then_some(width as u16)
}

/// Every hash tile of a tree of `tree_size`, level by level: the full
/// tiles, then the partial one if any. (Size 70,000: 273 full tiles and
/// one of width 112 at level 0, one full and one of 17 at level 1, one of
/// width 1 at level 2.)
pub fn tiles_for_size(tree_size: u64) -> impl Iterator<Item = TileRef> {
    (0..=MAX_TILE_LEVEL)
        .map(move |level| {
            (
                level,
                nodes_at(u32::from(level) * u32::from(TILE_HEIGHT), tree_size),
            )
        })
        .take_while(|&(_, nodes)| nodes > 0)
        .flat_map(|(level, nodes)| {
            level_tiles(nodes).map(move |(index, width)| TileRef {
                level,
                index,
                width,
            })
        })
}

/// Every entry bundle of a tree of `tree_size`.
pub fn entry_bundles_for_size(tree_size: u64) -> impl Iterator<Item = TilePath> {
    level_tiles(tree_size).map(|(index, width)| TilePath::Entries { index, width })
}

/// (index, width) of the tiles covering `nodes` hashes of one level.
fn level_tiles(nodes: u64) -> impl Iterator<Item = (u64, u16)> {
    let full = nodes / TILE_WIDTH;
    let partial = (nodes % TILE_WIDTH) as u16;
    (0..full)
        .map(|index| (index, TILE_WIDTH as u16))
        .chain((partial > 0).then_some((full, partial)))
}

/// The tile, as it stands in a tree of `tree_size`, from which node `id`
/// can be computed (`None` if `id` is not complete in that tree). Node
/// `(h, i)` lives in tile level `h / 8`, as the root of `2^(h % 8)`
/// consecutive tile hashes.
pub fn tile_for_node(id: NodeId, tree_size: u64) -> Option<TileRef> {
    if !id.is_complete_in(tree_size) {
        return None;
    }
    let level = id.level / TILE_HEIGHT;
    let below = id.level % TILE_HEIGHT;
    // is_complete_in bounds (index + 1) << level by tree_size, so no overflow.
    let first = id.index << below;
    let index = first / TILE_WIDTH;
    let width = tile_width(level, index, tree_size)?;
    Some(TileRef {
        level,
        index,
        width,
    })
}

/// Splits tile data into its hashes, checking its length against `tile`.
pub fn decode_hash_tile(tile: &TileRef, data: &[u8]) -> Result<Vec<Hash>, TileError> {
    if tile.level > MAX_TILE_LEVEL || !valid_width(tile.width) {
        return Err(TileError::InvalidTile {
            level: tile.level,
            width: tile.width,
        });
    }
    let expected = usize::from(tile.width) * HASH_LEN;
    if data.len() != expected {
        return Err(TileError::TileSize {
            expected,
            got: data.len(),
        });
    }
    Ok(data
        .chunks_exact(HASH_LEN)
        .filter_map(|c| Hash::try_from(c).ok())
        .collect())
}

/// Computes node `id` from the data of `tile` (see [`tile_for_node`]).
pub fn node_hash_from_tile(tile: &TileRef, data: &[u8], id: NodeId) -> Result<Hash, TileError> {
    let hashes = decode_hash_tile(tile, data)?;
    let not_here = TileError::NodeNotInTile(id);
    if id.level / TILE_HEIGHT != tile.level {
        return Err(not_here);
    }
    let below = u32::from(id.level % TILE_HEIGHT);
    let count = 1usize << below;
    let offset = id
        .index
        .checked_mul(1 << below)
        .and_then(|first| first.checked_sub(tile.index.checked_mul(TILE_WIDTH)?))
        .and_then(|o| usize::try_from(o).ok())
        .ok_or(not_here.clone())?;
    let mut row = hashes
        .get(offset..offset.saturating_add(count))
        .filter(|row| row.len() == count)
        .ok_or(not_here)?
        .to_vec();
    while row.len() > 1 {
        row = row
            .chunks_exact(2)
            .map(|p| rfc9162_node_hash(&p[0], &p[1]))
            .collect();
    }
    row.first().copied().ok_or(TileError::NodeNotInTile(id))
}

/// Encodes entries as a bundle: each a big-endian u16 length, then its bytes.
pub fn encode_entry_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, TileError> {
    if entries.len() as u64 > TILE_WIDTH {
        return Err(TileError::TooManyEntries);
    }
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for entry in entries {
        let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge(entry.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Decodes an entry bundle; truncation or more than 256 entries is an error.
pub fn decode_entry_bundle(data: &[u8]) -> Result<Vec<Vec<u8>>, TileError> {
    let mut entries = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if entries.len() as u64 == TILE_WIDTH {
            return Err(TileError::TooManyEntries);
        }
        let [hi, lo, tail @ ..] = rest else {
            return Err(TileError::TruncatedBundle);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            return Err(TileError::TruncatedBundle);
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry.to_vec());
        rest = tail;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{MemoryTree, NodeReader as _};

    #[test]
    fn spec_index_examples() {
        assert_eq!(encode_tile_index(1_234_067), "x001/x234/067");
        assert_eq!(encode_tile_index(0), "000");
        assert_eq!(encode_tile_index(5), "005");
        assert_eq!(encode_tile_index(999), "999");
        assert_eq!(encode_tile_index(1000), "x001/000");
        assert_eq!(
            encode_tile_index(u64::MAX),
            "x018/x446/x744/x073/x709/x551/615"
        );
    }

    #[test]
    fn path_round_trips() {
        let paths = [
            (
                "tile/0/x001/x234/067",
                TilePath::Hash(TileRef {
                    level: 0,
                    index: 1_234_067,
                    width: 256,
                }),
            ),
            (
                "tile/0/x001/x234/067.p/8",
                TilePath::Hash(TileRef {
                    level: 0,
                    index: 1_234_067,
                    width: 8,
                }),
            ),
            (
                "tile/63/000",
                TilePath::Hash(TileRef {
                    level: 63,
                    index: 0,
                    width: 256,
                }),
            ),
            (
                "tile/1/005.p/255",
                TilePath::Hash(TileRef {
                    level: 1,
                    index: 5,
                    width: 255,
                }),
            ),
            (
                "tile/entries/000.p/1",
                TilePath::Entries { index: 0, width: 1 },
            ),
            (
                "tile/entries/x001/000",
                TilePath::Entries {
                    index: 1000,
                    width: 256,
                },
            ),
            (
                "tile/entries/x018/x446/x744/x073/x709/x551/615",
                TilePath::Entries {
                    index: u64::MAX,
                    width: 256,
                },
            ),
        ];
        for (text, parsed) in paths {
            assert_eq!(parse_tile_path(text), Ok(parsed), "{text}");
            assert_eq!(tile_path(&parsed), text);
        }
    }

    #[test]
    fn rejects_non_canonical_paths() {
        let bad = [
            "",
            "tile",
            "tile/",
            "tile/0",
            "tile/0/",
            "/tile/0/000",
            "tiles/0/000",
            "tile/0/0",
            "tile/0/00",
            "tile/0/0000",
            "tile/0/x000",
            "tile/0/x000/005",
            "tile/0/x001/x234/67",
            "tile/0/001/234",
            "tile/0/x001x234/067",
            "tile/0/x001//067",
            "tile/0/x01/067",
            "tile/0/-01",
            "tile/0/+01",
            "tile/0/ 01",
            "tile/00/000",
            "tile/01/000",
            "tile/64/000",
            "tile/256/000",
            "tile/-1/000",
            "tile/x/000",
            "tile/Entries/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/08",
            "tile/0/000.p/",
            "tile/0/000.p",
            "tile/0/000.p/8/",
            "tile/0/000.p/8.p/8",
            "tile/0/000/",
            "tile/0/000.P/8",
            "tile/entries/000.p/300",
            "tile/entries/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x001/x000/x000/x000/x000/x000/x000/000",
        ];
        for path in bad {
            assert!(parse_tile_path(path).is_err(), "accepted {path:?}");
        }
    }

    #[test]
    fn spec_sizes() {
        let tiles: Vec<TileRef> = tiles_for_size(70_000).collect();
        let level0: Vec<_> = tiles.iter().filter(|t| t.level == 0).collect();
        assert_eq!(level0.len(), 274);
        assert!(level0[..273].iter().all(|t| t.is_full()));
        assert_eq!(
            level0[273],
            &TileRef {
                level: 0,
                index: 273,
                width: 112
            }
        );
        let rest: Vec<_> = tiles.iter().filter(|t| t.level > 0).copied().collect();
        assert_eq!(
            rest,
            vec![
                TileRef {
                    level: 1,
                    index: 0,
                    width: 256
                },
                TileRef {
                    level: 1,
                    index: 1,
                    width: 17
                },
                TileRef {
                    level: 2,
                    index: 0,
                    width: 1
                },
            ]
        );
        let tiles: Vec<TileRef> = tiles_for_size(256).collect();
        assert_eq!(
            tiles,
            vec![
                TileRef {
                    level: 0,
                    index: 0,
                    width: 256
                },
                TileRef {
                    level: 1,
                    index: 0,
                    width: 1
                }
            ]
        );
        assert_eq!(tiles_for_size(0).count(), 0);
        assert_eq!(entry_bundles_for_size(70_000).count(), 274);
        assert_eq!(tile_width(7, 0, u64::MAX), Some(255));
        assert_eq!(tile_width(8, 0, u64::MAX), None);
        for tile in tiles_for_size(70_000) {
            assert!(tile_available(tile.level, tile.index, tile.width, 70_000));
            assert_eq!(tile_width(tile.level, tile.index, 70_000), Some(tile.width));
        }
    }

    #[test]
    fn availability() {
        assert!(tile_available(0, 0, 1, 1));
        assert!(!tile_available(0, 0, 2, 1));
        assert!(tile_available(0, 0, 256, 256));
        assert!(tile_available(0, 0, 100, 256)); // a partial tile stays valid
        assert!(!tile_available(0, 1, 1, 256));
        assert!(tile_available(1, 0, 1, 256));
        assert!(!tile_available(1, 0, 2, 511));
        assert!(tile_available(1, 0, 2, 512));
        assert!(!tile_available(0, 0, 0, 100));
        assert!(!tile_available(0, 0, 257, 1000));
        assert!(!tile_available(8, 0, 1, u64::MAX));
        assert!(tile_available(7, 0, 255, u64::MAX));
        assert!(!tile_available(0, u64::MAX, 1, u64::MAX));
        assert!(!tile_available(64, 0, 1, u64::MAX));
        assert_eq!(tile_width(0, 3, 1000), Some(232));
        assert_eq!(tile_width(0, 4, 1000), None);
        assert_eq!(tile_width(0, u64::MAX, u64::MAX), None);
        assert_eq!(tile_width(9, 0, u64::MAX), None);
    }

    #[test]
    fn node_ids_of_tiles() {
        let ids: Vec<NodeId> = TileRef {
            level: 1,
            index: 2,
            width: 3,
        }
        .node_ids()
        .collect();
        assert_eq!(
            ids,
            vec![
                NodeId::new(8, 512),
                NodeId::new(8, 513),
                NodeId::new(8, 514)
            ]
        );
        // (level, index, width) -> node ids; out-of-range tiles have none.
        for (level, index, width, count) in [
            (0, 0, 256, 256),
            (8, 0, 1, 0),
            (0, u64::MAX, 1, 0),
            (0, 0, 0, 0),
            (0, 0, 300, 0),
        ] {
            let tile = TileRef {
                level,
                index,
                width,
            };
            assert_eq!(tile.node_ids().count(), count, "{tile:?}");
        }
        assert!(TileRef::new(0, 0, 0).is_err());
        assert!(TileRef::new(64, 0, 1).is_err());
        assert!(TileRef::new(63, 0, 256).is_ok());
    }

    #[test]
    fn nodes_from_tiles() {
        let mut tree = MemoryTree::new();
        for i in 0..70_000u32 {
            tree.push(&i.to_be_bytes());
        }
        let size = tree.size();
        let tile_data = |tile: &TileRef| -> Vec<u8> {
            let ids: Vec<NodeId> = tile.node_ids().collect();
            tree.read_nodes(&ids).unwrap().concat()
        };
        for id in [
            NodeId::new(0, 69_999),
            NodeId::new(3, 8_000),
            NodeId::new(7, 500),
            NodeId::new(8, 272),
            NodeId::new(9, 135),
            NodeId::new(15, 1),
            NodeId::new(16, 0),
        ] {
            let tile = tile_for_node(id, size).unwrap();
            assert!(tile_available(tile.level, tile.index, tile.width, size));
            let hash = node_hash_from_tile(&tile, &tile_data(&tile), id).unwrap();
            assert_eq!(Some(hash), tree.node(id), "{id:?}");
        }
        assert_eq!(tile_for_node(NodeId::new(0, 70_000), size), None);
        assert_eq!(tile_for_node(NodeId::new(17, 0), size), None);
        assert_eq!(tile_for_node(NodeId::new(200, 0), size), None);
        let tile = TileRef {
            level: 0,
            index: 0,
            width: 256,
        };
        let data = tile_data(&tile);
        assert!(node_hash_from_tile(&tile, &data[..100], NodeId::new(0, 0)).is_err());
        assert!(node_hash_from_tile(&tile, &data, NodeId::new(0, 256)).is_err());
        assert!(node_hash_from_tile(&tile, &data, NodeId::new(8, 0)).is_err());
        assert!(node_hash_from_tile(&tile, &data, NodeId::new(3, u64::MAX)).is_err());
        let partial = TileRef {
            level: 0,
            index: 0,
            width: 5,
        };
        assert!(node_hash_from_tile(&partial, &data[..160], NodeId::new(3, 0)).is_err());
        assert!(node_hash_from_tile(&partial, &data[..160], NodeId::new(2, 0)).is_ok());
    }

    #[test]
    fn entry_bundles() {
        let big = vec![7u8; MAX_ENTRY_LEN];
        let entries: Vec<&[u8]> = vec![b"", b"a", &big, b"hello"];
        let bundle = encode_entry_bundle(&entries).unwrap();
        assert_eq!(&bundle[..5], &[0, 0, 0, 1, b'a']);
        let decoded = decode_entry_bundle(&bundle).unwrap();
        assert_eq!(
            decoded.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            entries
        );

        let too_big = vec![0u8; MAX_ENTRY_LEN + 1];
        assert_eq!(
            encode_entry_bundle(&[&too_big]),
            Err(TileError::EntryTooLarge(MAX_ENTRY_LEN + 1))
        );
        let many = vec![&b"x"[..]; 257];
        assert_eq!(encode_entry_bundle(&many), Err(TileError::TooManyEntries));
        assert_eq!(
            encode_entry_bundle(&many[..256]).map(|b| b.len()),
            Ok(256 * 3)
        );

        assert_eq!(decode_entry_bundle(&[]), Ok(vec![]));
        for bad in [&[0u8][..], &[0, 2, 1], &[0, 1, 1, 0]] {
            assert_eq!(
                decode_entry_bundle(bad),
                Err(TileError::TruncatedBundle),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_entry_bundle(&[0, 0].repeat(257)),
            Err(TileError::TooManyEntries)
        );
        assert_eq!(
            decode_entry_bundle(&[0, 0].repeat(256)).map(|e| e.len()),
            Ok(256)
        );
    }
}

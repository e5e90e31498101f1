//! The ledger's storage: entries, every complete subtree hash, signed checkpoints.

use diesel::prelude::*;

use crate::merkle::{Hash, NodeId, NodeReader};
use crate::schema::{ledger_checkpoints, ledger_cosignatures, ledger_entries, ledger_nodes};
use locus_platform::db::{first_row, DbConnection, Migrations, Pool, PooledConnection};
use locus_protocol::entry::{EventKind, SignedEntry};
use locus_protocol::ids::{GrantId, MemberId, PatientKey};

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: diesel_migrations::embed_migrations!("../migrations/ledger/sqlite"),
    postgres: diesel_migrations::embed_migrations!("../migrations/ledger/postgres"),
};

// SQLite allows 32766 bound parameters per statement; stay well under it.
const ENTRY_ROWS_PER_INSERT: usize = 1000;
const NODE_ROWS_PER_INSERT: usize = 5000;

/// A sequenced entry as stored, and as the sequencer writes it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_entries)]
pub struct EntryRow {
    pub idx: i64,
    pub leaf_hash: Vec<u8>,
    pub body: String,
    pub entry_type: EventKind,
    pub submitter: MemberId,
    pub subject: Option<PatientKey>,
    pub grant_id: Option<GrantId>,
    pub entry_time: i64,
    pub sequenced_at: i64,
}

impl EntryRow {
    /// The row of a signed entry at `idx` with its RFC 9162 leaf hash: its
    /// canonical body, and the indexed columns taken from the entry itself.
    pub fn new(idx: i64, signed: &SignedEntry, leaf_hash: &Hash, sequenced_at: i64) -> Self {
        let bytes = signed.canonical_bytes();
        let entry = signed.entry();
        Self {
            idx,
            leaf_hash: leaf_hash.to_vec(),
            // Parsing or signing made these bytes canonical UTF-8 JSON.
            body: String::from_utf8_lossy(bytes).into_owned(),
            entry_type: entry.event.event_kind(),
            submitter: entry.submitter.clone(),
            subject: entry.event.subject().copied(),
            grant_id: entry.event.grant().copied(),
            entry_time: entry.time_ms,
            sequenced_at,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ledger_nodes)]
struct NewNode<'a> {
    level: i16,
    idx: i64,
    hash: &'a [u8],
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_checkpoints)]
pub struct SignedCheckpoint {
    pub tree_size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub signed_at: i64,
}

/// A witness's cosignature of a signed checkpoint, as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ledger_cosignatures)]
pub struct Cosignature {
    pub tree_size: i64,
    /// The witness's key name: its member id.
    pub witness: MemberId,
    /// When the witness cosigned, in seconds since the UNIX epoch.
    pub timestamp: i64,
    /// The C2SP signature line, without its newline.
    pub signature_line: String,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ledger_cosignatures)]
pub struct NewCosignature<'a> {
    pub tree_size: i64,
    pub witness: &'a MemberId,
    pub timestamp: i64,
    pub signature_line: &'a str,
}

/// What a regulator may filter entries by. Every filter is on an indexed column.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// A type name: one that names no kind of entry matches nothing.
    pub entry_type: Option<String>,
    pub submitter: Option<MemberId>,
    pub subject: Option<PatientKey>,
    pub grant_id: Option<GrantId>,
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only entries with an index greater than this (paging cursor).
    pub after: Option<i64>,
}

locus_platform::store_error! {
    pub enum StoreError {
        #[error("the stored tree is missing node {0:?}")]
        MissingNode(NodeId),
        #[error("a stored hash is not 32 bytes")]
        CorruptHash,
        #[error("index {0} does not fit the database's integer type")]
        IndexOverflow(u64),
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::IndexOverflow(v))
}

fn to_hash(bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::try_from(bytes).map_err(|_| StoreError::CorruptHash)
}

#[derive(Debug, Clone)]
pub struct LedgerStore {
    pool: Pool,
}

impl LedgerStore {
    /// Wraps a pool and brings its schema up to date.
    pub fn open(pool: Pool) -> Result<Self, StoreError> {
        let mut conn = pool.get()?;
        locus_platform::db::run_migrations(&mut conn, MIGRATIONS)?;
        Ok(Self { pool })
    }

    pub fn conn(&self) -> Result<PooledConnection, StoreError> {
        Ok(self.pool.get()?)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Number of leaves durably stored (possibly ahead of the latest checkpoint).
    pub fn tree_size(&self) -> Result<u64, StoreError> {
        let max: Option<i64> = ledger_entries::table
            .select(diesel::dsl::max(ledger_entries::idx))
            .first(&mut self.conn()?)?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }

    /// Leaf hashes among `hashes` that are already in the log, with their index.
    pub fn find_leaves(&self, hashes: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        let mut conn = self.conn()?;
        let mut found = Vec::new();
        for chunk in hashes.chunks(ENTRY_ROWS_PER_INSERT) {
            let rows: Vec<(Vec<u8>, i64)> = ledger_entries::table
                .filter(ledger_entries::leaf_hash.eq_any(chunk))
                .select((ledger_entries::leaf_hash, ledger_entries::idx))
                .load(&mut conn)?;
            found.extend(rows.into_iter().map(|(h, i)| (h, i as u64)));
        }
        Ok(found)
    }

    /// Writes a batch of leaves and the subtree hashes they complete in one
    /// transaction: one durable commit per batch (group commit).
    pub fn append(
        &self,
        conn: &mut DbConnection,
        entries: &[EntryRow],
        nodes: &[(NodeId, Hash)],
    ) -> Result<(), StoreError> {
        let node_rows = nodes
            .iter()
            .map(|(id, hash)| {
                Ok(NewNode {
                    level: i16::from(id.level),
                    idx: to_i64(id.index)?,
                    hash: hash.as_slice(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        conn.transaction::<_, StoreError, _>(|conn| {
            locus_platform::on_backend!(conn, |conn| {
                for chunk in entries.chunks(ENTRY_ROWS_PER_INSERT) {
                    diesel::insert_into(ledger_entries::table)
                        .values(chunk)
                        .execute(conn)?;
                }
                for chunk in node_rows.chunks(NODE_ROWS_PER_INSERT) {
                    diesel::insert_into(ledger_nodes::table)
                        .values(chunk)
                        .execute(conn)?;
                }
            });
            Ok(())
        })
    }

    pub fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        let newest = ledger_checkpoints::table.order(ledger_checkpoints::tree_size.desc());
        first_row(&self.pool, newest)
    }

    pub fn insert_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        diesel::insert_into(ledger_checkpoints::table)
            .values(checkpoint)
            .execute(&mut self.conn()?)?;
        Ok(())
    }

    /// The checkpoint the ledger signed at `tree_size`, if it signed one.
    pub fn checkpoint(&self, tree_size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        first_row(
            &self.pool,
            ledger_checkpoints::table.find(to_i64(tree_size)?),
        )
    }

    /// Stores a witness's cosignature of a signed checkpoint, unless that
    /// witness already cosigned that checkpoint: the first cosignature is kept,
    /// so a served note only ever gains lines, and it carries the earliest time
    /// the witness vouched for the checkpoint.
    pub fn insert_cosignature(&self, cosignature: &NewCosignature<'_>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        locus_platform::on_backend!(&mut *conn, |conn| {
            diesel::insert_into(ledger_cosignatures::table)
                .values(cosignature)
                .on_conflict_do_nothing()
                .execute(conn)?
        });
        Ok(())
    }

    /// The cosignatures of the checkpoint of `tree_size`, by witness.
    pub fn cosignatures(&self, tree_size: u64) -> Result<Vec<Cosignature>, StoreError> {
        Ok(ledger_cosignatures::table
            .filter(ledger_cosignatures::tree_size.eq(to_i64(tree_size)?))
            .order(ledger_cosignatures::witness.asc())
            .select(Cosignature::as_select())
            .load(&mut self.conn()?)?)
    }

    /// Up to `limit` signed checkpoints with tree sizes from `from` to `until`
    /// (both inclusive), oldest first, each with its cosignatures by witness.
    pub fn checkpoints_with_cosignatures(
        &self,
        from: u64,
        until: u64,
        limit: i64,
    ) -> Result<Vec<(SignedCheckpoint, Vec<Cosignature>)>, StoreError> {
        let mut conn = self.conn()?;
        let checkpoints: Vec<SignedCheckpoint> = ledger_checkpoints::table
            .filter(ledger_checkpoints::tree_size.ge(to_i64(from)?))
            .filter(ledger_checkpoints::tree_size.le(to_i64(until)?))
            .order(ledger_checkpoints::tree_size.asc())
            .limit(limit)
            .select(SignedCheckpoint::as_select())
            .load(&mut conn)?;
        let (Some(first), Some(last)) = (checkpoints.first(), checkpoints.last()) else {
            return Ok(Vec::new());
        };
        let cosignatures: Vec<Cosignature> = ledger_cosignatures::table
            .filter(ledger_cosignatures::tree_size.between(first.tree_size, last.tree_size))
            .order((
                ledger_cosignatures::tree_size.asc(),
                ledger_cosignatures::witness.asc(),
            ))
            .select(Cosignature::as_select())
            .load(&mut conn)?;
        let mut by_size: std::collections::HashMap<i64, Vec<Cosignature>> =
            std::collections::HashMap::new();
        for cosignature in cosignatures {
            by_size
                .entry(cosignature.tree_size)
                .or_default()
                .push(cosignature);
        }
        Ok(checkpoints
            .into_iter()
            .map(|checkpoint| {
                let cosignatures = by_size.remove(&checkpoint.tree_size).unwrap_or_default();
                (checkpoint, cosignatures)
            })
            .collect())
    }

    /// Canonical entry bodies with index in `[start, end)`, in order.
    pub fn entry_bodies(&self, start: u64, end: u64) -> Result<Vec<String>, StoreError> {
        Ok(ledger_entries::table
            .filter(ledger_entries::idx.ge(to_i64(start)?))
            .filter(ledger_entries::idx.lt(to_i64(end)?))
            .order(ledger_entries::idx.asc())
            .select(ledger_entries::body)
            .load(&mut self.conn()?)?)
    }

    /// Every logged entry of one type, in log order.
    pub fn entry_bodies_of_type(&self, entry_type: EventKind) -> Result<Vec<String>, StoreError> {
        Ok(ledger_entries::table
            .filter(ledger_entries::entry_type.eq(entry_type))
            .order(ledger_entries::idx.asc())
            .select(ledger_entries::body)
            .load(&mut self.conn()?)?)
    }

    /// Which of `grants` have a `grant.revoked` entry in the log.
    pub fn revoked_among(
        &self,
        grants: &[GrantId],
    ) -> Result<std::collections::HashSet<GrantId>, StoreError> {
        let mut revoked = std::collections::HashSet::new();
        let mut conn = self.conn()?;
        // Bounded so a batch never exceeds a backend's bind-parameter limit.
        for chunk in grants.chunks(500) {
            let found: Vec<Option<GrantId>> = ledger_entries::table
                .filter(ledger_entries::entry_type.eq(EventKind::GrantRevoked))
                .filter(ledger_entries::grant_id.eq_any(chunk))
                .select(ledger_entries::grant_id)
                .load(&mut conn)?;
            revoked.extend(found.into_iter().flatten());
        }
        Ok(revoked)
    }

    /// Whether an entry of `kind` names `grant_id` (e.g. a revocation).
    pub fn grant_has(&self, kind: EventKind, grant_id: &GrantId) -> Result<bool, StoreError> {
        let found: Option<i64> = ledger_entries::table
            .filter(ledger_entries::grant_id.eq(grant_id))
            .filter(ledger_entries::entry_type.eq(kind))
            .select(ledger_entries::idx)
            .first(&mut self.conn()?)
            .optional()?;
        Ok(found.is_some())
    }

    /// Subtree hashes at `level` with index in `[start, end)`, in order.
    pub fn node_range(&self, level: u8, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        let rows: Vec<Vec<u8>> = ledger_nodes::table
            .filter(ledger_nodes::level.eq(i16::from(level)))
            .filter(ledger_nodes::idx.ge(to_i64(start)?))
            .filter(ledger_nodes::idx.lt(to_i64(end)?))
            .order(ledger_nodes::idx.asc())
            .select(ledger_nodes::hash)
            .load(&mut self.conn()?)?;
        rows.iter().map(|h| to_hash(h)).collect()
    }

    pub fn entry(&self, idx: u64) -> Result<Option<EntryRow>, StoreError> {
        first_row(&self.pool, ledger_entries::table.find(to_i64(idx)?))
    }

    /// Entries matching `filter` with index below `below` (the published tree
    /// size), in index order, at most `limit`.
    pub fn query(
        &self,
        filter: &EntryFilter,
        below: u64,
        limit: i64,
    ) -> Result<Vec<EntryRow>, StoreError> {
        let mut query = ledger_entries::table
            .filter(ledger_entries::idx.lt(to_i64(below)?))
            .select(EntryRow::as_select())
            .order(ledger_entries::idx.asc())
            .limit(limit)
            .into_boxed();
        if let Some(t) = &filter.entry_type {
            query = query.filter(ledger_entries::entry_type.eq(t.clone()));
        }
        if let Some(s) = &filter.submitter {
            query = query.filter(ledger_entries::submitter.eq(s.clone()));
        }
        if let Some(s) = filter.subject {
            query = query.filter(ledger_entries::subject.eq(s));
        }
        if let Some(g) = filter.grant_id {
            query = query.filter(ledger_entries::grant_id.eq(g));
        }
        if let Some(from) = filter.from_ms {
            query = query.filter(ledger_entries::entry_time.ge(from));
        }
        if let Some(until) = filter.until_ms {
            query = query.filter(ledger_entries::entry_time.lt(until));
        }
        if let Some(after) = filter.after {
            query = query.filter(ledger_entries::idx.gt(after));
        }
        Ok(query.load(&mut self.conn()?)?)
    }
}

/// Proofs and roots are read straight from the stored subtree hashes, one query
/// per proof.
impl NodeReader for LedgerStore {
    type Error = StoreError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = ledger_nodes::table
            .select((ledger_nodes::level, ledger_nodes::idx, ledger_nodes::hash))
            .into_boxed();
        for id in ids {
            query = query.or_filter(
                ledger_nodes::level
                    .eq(i16::from(id.level))
                    .and(ledger_nodes::idx.eq(to_i64(id.index)?)),
            );
        }
        let rows: Vec<(i16, i64, Vec<u8>)> = query.load(&mut self.conn()?)?;
        let found: std::collections::HashMap<(i16, i64), &Vec<u8>> =
            rows.iter().map(|(l, i, h)| ((*l, *i), h)).collect();
        ids.iter()
            .map(|id| {
                let key = (i16::from(id.level), to_i64(id.index)?);
                found
                    .get(&key)
                    .ok_or(StoreError::MissingNode(*id))
                    .and_then(|h| to_hash(h))
            })
            .collect()
    }
}

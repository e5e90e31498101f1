//! The connector as a witness of the ledger (the decision is
//! `locus_ledger::witness`): it cosigns a checkpoint only after checking that
//! it extends the last one it cosigned, so a ledger that rewrote or forked its
//! history cannot gather a quorum of cosignatures for it.
//!
//! The last cosigned checkpoint is kept in the connector's database: a restart
//! cannot be talked into accepting a smaller or different tree. A checkpoint
//! that does not extend it is stored as evidence and stops the witness until
//! an operator looks at it.

use diesel::prelude::*;
use locus_ledger::checkpoint::Checkpoint;
use locus_ledger::client::ClientError;
use locus_ledger::cosignature::CosignatureSigner;
use locus_ledger::merkle::Hash;
use locus_ledger::witness::{self, CosignDecision};

use crate::node::Node;
use crate::records::{RecordStore, StoreError};
use crate::schema::witnessed_checkpoint;

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("the ledger cannot be reached or refused: {0}")]
    Ledger(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ledger served a checkpoint of size {size} that does not extend the one of size {witnessed} this witness cosigned; the evidence is stored and nothing more is cosigned")]
    Conflict { witnessed: u64, size: u64 },
    #[error("this witness stopped on a conflicting checkpoint; an operator must look at the stored evidence")]
    Stopped,
    #[error("cannot cosign: {0}")]
    Cosign(String),
}

/// What one round of witnessing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witnessed {
    /// Cosigned the checkpoint of this size.
    Cosigned(u64),
    /// The newest checkpoint already carries this witness's cosignature.
    AlreadyCosigned(u64),
}

/// The last checkpoint this witness cosigned, as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = witnessed_checkpoint)]
struct WitnessedRow {
    tree_size: i64,
    root: Vec<u8>,
    conflict: Option<String>,
}

#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = witnessed_checkpoint)]
struct NewWitnessed<'a> {
    id: i32,
    tree_size: i64,
    root: &'a [u8],
    updated_at: i64,
    #[diesel(treat_none_as_null = true)]
    conflict: Option<&'a str>,
}

const ROW: i32 = 1;

fn corrupt(column: &'static str) -> StoreError {
    StoreError::Corrupt {
        table: "witnessed_checkpoint",
        column,
    }
}

impl RecordStore {
    /// The last checkpoint cosigned (size and root), and the evidence of a
    /// conflict if one stopped the witness.
    fn witnessed(&self) -> Result<Option<(Checkpoint, Option<String>)>, StoreError> {
        let row: Option<WitnessedRow> = witnessed_checkpoint::table
            .find(ROW)
            .select(WitnessedRow::as_select())
            .first(&mut self.conn()?)
            .optional()?;
        row.map(|row| {
            let root = Hash::try_from(row.root.as_slice()).map_err(|_| corrupt("root"))?;
            let size = u64::try_from(row.tree_size).map_err(|_| corrupt("tree_size"))?;
            Ok((witness::view(size, root), row.conflict))
        })
        .transpose()
    }

    fn set_witnessed(
        &self,
        checkpoint: &Checkpoint,
        conflict: Option<&str>,
    ) -> Result<(), StoreError> {
        let row = NewWitnessed {
            id: ROW,
            tree_size: i64::try_from(checkpoint.size).map_err(|_| StoreError::Overflow)?,
            root: &checkpoint.root,
            updated_at: self.clock().now_secs(),
            conflict,
        };
        let mut conn = self.conn()?;
        locus_platform::on_backend!(&mut *conn, |conn| {
            diesel::insert_into(witnessed_checkpoint::table)
                .values(&row)
                .on_conflict(witnessed_checkpoint::id)
                .do_update()
                .set(&row)
                .execute(conn)?
        });
        Ok(())
    }

    /// Keeps the last cosigned checkpoint and stores `evidence` beside it.
    fn record_conflict(&self, witnessed: &Checkpoint, evidence: &str) -> Result<(), StoreError> {
        self.set_witnessed(witnessed, Some(evidence))
    }
}

impl Node {
    /// One round: fetch the newest checkpoint (the log's signature checked),
    /// check it extends the last one cosigned, and cosign it.
    pub async fn witness_once(&self) -> Result<Witnessed, WitnessError> {
        let last = self.store.witnessed()?;
        if let Some((_, Some(_))) = last {
            return Err(WitnessError::Stopped);
        }
        let seen = last.map(|(checkpoint, _)| checkpoint);
        let signer =
            CosignatureSigner::from_signing_key(self.member.as_str(), self.key.as_dalek().clone())
                .map_err(|e| WitnessError::Cosign(e.to_string()))?;
        match witness::decide(&self.ledger, &signer, seen.as_ref()).await? {
            CosignDecision::AlreadyCosigned(size) => Ok(Witnessed::AlreadyCosigned(size)),
            CosignDecision::Conflict { size, evidence } => {
                // `decide` reports a conflict only against a view it was given.
                let witnessed = seen.as_ref().map_or(0, |seen| seen.size);
                if let Some(seen) = &seen {
                    self.store.record_conflict(seen, &evidence)?;
                }
                Err(WitnessError::Conflict { witnessed, size })
            }
            CosignDecision::Cosign { checkpoint, text } => {
                self.store.set_witnessed(&checkpoint, None)?;
                witness::cosign(&self.ledger, &signer, &checkpoint, &text).await?;
                Ok(Witnessed::Cosigned(checkpoint.size))
            }
        }
    }
}

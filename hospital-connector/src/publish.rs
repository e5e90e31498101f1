//! Publishing: each unpublished record becomes a pointer sealed to this
//! hospital's own key, under the scope tags of its categories and codes. A
//! batch is anchored on the ledger (the Merkle root of its content commitments:
//! an evidence deposit) before the index sees it. The record store keeps which
//! record version each pointer was published under: that, not the sealed body a
//! requester presents, is what a retrieval is answered from. Withdrawing a
//! pointer marks it in the store first, so it is never released again even
//! while the index still lists it.

use locus_index_service::api::PublishedPointer;
use locus_index_service::client::{encode_sealed, IndexClientError};
use locus_ledger::client::ClientError;
use locus_ledger::merkle::{tree_root, MemoryTree};
use locus_protocol::entry::{Event, MerkleRoot, PointersPublished};
use locus_protocol::ids::PointerId;
use locus_protocol::linkage::scope_tag;
use locus_protocol::pointer::PointerBody;
use locus_protocol::scope::{Coding, Token};

use crate::node::Node;
use crate::records::{Published, Record, StoreError};

/// Records published per batch (one ledger entry, one index call).
pub const PUBLISH_BATCH: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored record cannot be described: {0}")]
    Record(String),
    #[error("the ledger did not log the batch: {0}")]
    Ledger(#[from] ClientError),
    #[error("the index did not take the batch: {0}")]
    Index(#[from] IndexClientError),
    #[error("the store is unavailable")]
    Blocking,
}

impl Node {
    /// Publishes every record not yet published; returns how many.
    pub async fn publish_pending(&self) -> Result<usize, PublishError> {
        let mut total = 0;
        loop {
            let store = self.store.clone();
            let records = tokio::task::spawn_blocking(move || store.unpublished(PUBLISH_BATCH))
                .await
                .map_err(|_| PublishError::Blocking)??;
            if records.is_empty() {
                return Ok(total);
            }
            total += self.publish_batch(&records).await?;
        }
    }

    async fn publish_batch(&self, records: &[Record]) -> Result<usize, PublishError> {
        let me = self.x25519.public_key();
        let mut pointers = Vec::with_capacity(records.len());
        let mut published = Vec::with_capacity(records.len());
        let mut commitments = MemoryTree::new();
        for record in records {
            let pointer_id = PointerId::new_random();
            let body = pointer_body(record)?;
            let sealed = body
                .seal(&me, &pointer_id, &record.patient_key, &self.hospital)
                .map_err(|e| PublishError::Record(e.to_string()))?;
            let scope_tags = record
                .tag_inputs()
                .iter()
                .map(|input| scope_tag(&self.linkage, &record.patient_key, input))
                .collect();
            let supersedes = self.previous_pointer(record).await?;
            commitments.push(record.commitment.as_bytes());
            pointers.push(PublishedPointer {
                pointer_id,
                patient_key: record.patient_key,
                scope_tags,
                sealed: encode_sealed(&sealed),
                supersedes,
            });
            published.push(Published {
                resource_type: record.resource_type,
                resource_id: record.resource_id.clone(),
                version: record.version,
                pointer_id,
            });
        }
        let root = tree_root(&commitments, commitments.size())
            .map_err(|e| PublishError::Record(e.to_string()))?;
        self.log(Event::PointersPublished(PointersPublished {
            custodian: self.hospital.clone(),
            count: u32::try_from(records.len()).unwrap_or(u32::MAX),
            batch_root: MerkleRoot::from_bytes(root),
        }))
        .await?;
        self.index.publish(pointers).await?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.mark_published(&published))
            .await
            .map_err(|_| PublishError::Blocking)??;
        tracing::info!(count = records.len(), "published a batch of pointers");
        Ok(records.len())
    }

    /// Withdraws published pointers: from the moment the store has marked them
    /// this hospital releases nothing under them, then the index stops listing
    /// them. Withdrawing again is harmless here; the index answers `not_owned`
    /// for pointers it no longer lists.
    pub async fn withdraw(&self, pointers: Vec<PointerId>) -> Result<usize, PublishError> {
        let (store, marked) = (self.store.clone(), pointers.clone());
        let withdrawn = tokio::task::spawn_blocking(move || store.mark_withdrawn(&marked))
            .await
            .map_err(|_| PublishError::Blocking)??;
        self.index.withdraw(pointers).await?;
        tracing::info!(count = withdrawn, "withdrew pointers");
        Ok(withdrawn)
    }

    /// The pointer of the version this record replaces, so the index retires it.
    /// A withdrawn pointer is no longer listed, so there is nothing to retire.
    async fn previous_pointer(&self, record: &Record) -> Result<Option<PointerId>, PublishError> {
        if record.version <= 1 {
            return Ok(None);
        }
        let (store, resource_type, id, version) = (
            self.store.clone(),
            record.resource_type,
            record.resource_id.clone(),
            record.version - 1,
        );
        let previous =
            tokio::task::spawn_blocking(move || store.get_version(resource_type, &id, version))
                .await
                .map_err(|_| PublishError::Blocking)??;
        Ok(previous
            .filter(|p| p.withdrawn_at.is_none())
            .and_then(|p| p.published_pointer))
    }
}

/// A stored record's category or code tokens, parsed back.
fn parse_all<T: std::str::FromStr<Err: std::fmt::Display>>(
    tokens: &[String],
) -> Result<Vec<T>, PublishError> {
    tokens
        .iter()
        .map(|t| t.parse::<T>())
        .collect::<Result<_, _>>()
        .map_err(|e| PublishError::Record(e.to_string()))
}

/// What the sealed pointer says about a record: enough for this hospital to
/// find it again and to check a grant against it, nothing for anyone else.
pub fn pointer_body(record: &Record) -> Result<PointerBody, PublishError> {
    let categories = parse_all::<Token>(&record.categories)?;
    let codes = parse_all::<Coding>(&record.codes)?;
    Ok(PointerBody {
        resource_type: record.resource_type,
        resource_id: record.resource_id.clone(),
        version: record.version,
        categories,
        codes,
        effective: record
            .effective_date
            .map(|d| d.format("%Y-%m-%d").to_string()),
        commitment: record.commitment,
        salt: record.salt,
    })
}

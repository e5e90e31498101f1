//! JSON bodies of the ledger API, separate from storage rows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Proof that an entry is durable in the log: returned only after its batch
/// committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    /// Position of the entry in the log.
    pub index: u64,
    /// RFC 9162 leaf hash of the entry, base64.
    #[schema(value_type = locus_platform::openapi::HashBase64)]
    pub leaf_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Sibling hashes from the leaf up, base64.
    #[schema(value_type = Vec<locus_platform::openapi::HashBase64>, max_items = 64)]
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// RFC 9162 consistency proof, base64.
    #[schema(value_type = Vec<locus_platform::openapi::HashBase64>, max_items = 128)]
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoggedEntry {
    pub index: u64,
    #[schema(value_type = locus_platform::openapi::HashBase64)]
    pub leaf_hash: String,
    pub sequenced_at_ms: i64,
    /// The signed entry exactly as logged (canonical JSON).
    #[schema(value_type = Object)]
    pub entry: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryPage {
    pub entries: Vec<LoggedEntry>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<u64>,
}

pub use locus_platform::http::ErrorBody;

/// The error code of an access the ledger refused because its grant's
/// revocation is already logged.
pub const GRANT_REVOKED_CODE: &str = "grant_revoked";

/// A witness's cosignature of the checkpoint of `tree_size`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CosignatureSubmission {
    /// The size of a checkpoint the ledger signed.
    #[schema(minimum = 1, maximum = 9223372036854775807_i64)]
    pub tree_size: u64,
    /// The C2SP tlog-cosignature line (`— <witness> <base64>`), without its
    /// newline: the witness's member id, then its key hash, timestamp and
    /// signature (76 bytes) in base64.
    #[schema(
        pattern = "^— [a-z](-?[a-z0-9])* [A-Za-z0-9+/]{102}==$",
        min_length = 108,
        max_length = 171
    )]
    pub cosignature: String,
}

/// Bytes served as they are stored (tiles, entry bundles): for the document only.
#[derive(Debug, ToSchema)]
#[schema(format = Binary)]
pub struct Binary(pub String);

/// One signed checkpoint of the history, with the cosignatures it gathered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoricCheckpoint {
    pub tree_size: u64,
    /// The signed note: the log's signature line, then each witness's.
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointPage {
    /// Oldest first.
    pub checkpoints: Vec<HistoricCheckpoint>,
    /// The `from` of the next page, if there may be one.
    pub next: Option<u64>,
}

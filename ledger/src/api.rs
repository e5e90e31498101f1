//! The ledger's HTTP API, mounted by the hosting service under `/ledger`.
//!
//! Reads follow C2SP tlog-tiles (`checkpoint`, `tile/...`) so third-party tlog
//! tools can follow the log; proofs, entry queries and submission are JSON.
//! Everything served is covered by the newest signed checkpoint.

use std::borrow::Cow;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use futures::StreamExt as _;
use serde::Deserialize;

use crate::cosignature::CosignatureVerifier;
use crate::merkle::{consistency_proof, inclusion_proof, ProofError};
use crate::note::{parse_signature_line, Note};
use crate::sequencer::{Published, Sequencer, SubmitError, MAX_ENTRY_BYTES};
use crate::store::{Cosignature, EntryFilter, EntryRow, LedgerStore, NewCosignature, StoreError};
use crate::tiles::{encode_entry_bundle, parse_tile_path, tile_available, TilePath, TILE_WIDTH};
use crate::wire::{
    CheckpointPage, ConsistencyProof, CosignatureSubmission, EntryPage, ErrorBody,
    HistoricCheckpoint, InclusionProof, LoggedEntry, Receipt,
};
use locus_platform::http::{json_resource, stored_int, ErrorKind, Json};
use locus_platform::openapi::{NotJson, StorageUnavailable};
use locus_protocol::directory::MemberRole;
use locus_protocol::ids::{GrantId, MemberId, PatientKey};

const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;
/// How far ahead of the ledger's clock a witness's cosignature may be dated.
const MAX_COSIGNATURE_SKEW_SECS: i64 = 300;
/// Largest cosignature submission: a tree size and one signature line (a
/// member id of at most 64 characters and 76 bytes of signature in base64),
/// with room for JSON escapes and whitespace.
pub const COSIGNATURE_BODY_LIMIT: usize = 1024;

/// What the ledger routes need.
#[derive(Debug, Clone)]
pub struct LedgerState {
    pub store: LedgerStore,
    pub sequencer: Sequencer,
    /// The log's verifier key in C2SP vkey form.
    pub vkey: String,
}

/// Every way a ledger request can fail, mapped to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    BeyondTree(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the ledger has not signed a checkpoint yet")]
    NoCheckpoint,
    #[error("{0} is not an active witness (a hospital or a regulator)")]
    NotWitness(String),
    #[error("the cosignature does not verify under the witness's key")]
    BadCosignature,
    #[error("storage is unavailable")]
    Store(#[from] StoreError),
    #[error("the ledger is unavailable")]
    Internal(&'static str),
}

impl locus_platform::http::ApiError for ApiError {
    const SUBJECT: &'static str = "ledger request";

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Submit(e) => match e {
                SubmitError::TooLarge => ErrorKind::TooLarge,
                SubmitError::Malformed(_) | SubmitError::ClockSkew(_) => ErrorKind::BadRequest,
                SubmitError::UnknownSubmitter
                | SubmitError::InactiveSubmitter(_)
                | SubmitError::BadSignature
                | SubmitError::NotPermitted(_)
                | SubmitError::GrantRevoked => ErrorKind::Forbidden,
                SubmitError::Busy | SubmitError::Unavailable => ErrorKind::Unavailable,
            },
            Self::BadRequest(_) | Self::BeyondTree(_) => ErrorKind::BadRequest,
            Self::NotWitness(_) | Self::BadCosignature => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::NoCheckpoint | Self::Store(_) | Self::Internal(_) => ErrorKind::Unavailable,
        }
    }

    fn code(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Submit(e) => match e {
                SubmitError::TooLarge => "entry_too_large",
                SubmitError::Malformed(_) => "malformed_entry",
                SubmitError::UnknownSubmitter => "unknown_submitter",
                SubmitError::InactiveSubmitter(_) => "inactive_submitter",
                SubmitError::BadSignature => "bad_signature",
                SubmitError::NotPermitted(_) => "not_permitted",
                SubmitError::ClockSkew(_) => "clock_skew",
                SubmitError::GrantRevoked => crate::wire::GRANT_REVOKED_CODE,
                SubmitError::Busy => "busy",
                SubmitError::Unavailable => "unavailable",
            },
            Self::BadRequest(_) => "bad_request",
            Self::BeyondTree(_) => "beyond_tree",
            Self::NotFound(_) => "not_found",
            Self::NoCheckpoint => "unavailable",
            Self::NotWitness(_) => "not_a_witness",
            Self::BadCosignature => "bad_cosignature",
            Self::Store(_) => "storage_unavailable",
            Self::Internal(_) => "internal",
        })
    }
}

locus_platform::response_error!(ApiError);

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Internal("the blocking thread pool is gone")
    }
}

/// A number from the request that storage must be able to hold.
fn in_storage(field: &str, value: u64) -> Result<u64, ApiError> {
    stored_int(field, value).map_err(|e| ApiError::BadRequest(e.message))?;
    Ok(value)
}

fn proof_error(e: ProofError<StoreError>) -> ApiError {
    match e {
        ProofError::Store(e) => ApiError::Store(e),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// Registers the ledger routes under `/ledger`. The host app installs
/// `locus_platform::http::json_extractors` so malformed queries get JSON errors.
/// Each path is one resource, so a wrong method is a 405 naming the right ones.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/ledger")
            .service(web::resource("/checkpoint").route(web::get().to(checkpoint)))
            .service(web::resource("/checkpoints").route(web::get().to(checkpoints)))
            .service(
                json_resource("/cosignatures", COSIGNATURE_BODY_LIMIT)
                    .route(web::post().to(cosign)),
            )
            .service(web::resource("/vkey").route(web::get().to(vkey)))
            .service(
                web::resource("/entries")
                    .route(web::get().to(query_entries))
                    .route(web::post().to(submit)),
            )
            .service(web::resource("/entries/{index}").route(web::get().to(entry_by_index)))
            .service(web::resource("/proof/inclusion").route(web::get().to(prove_inclusion)))
            .service(web::resource("/proof/consistency").route(web::get().to(prove_consistency)))
            .service(web::resource("/tile/{path:.*}").route(web::get().to(tile))),
    );
}

locus_platform::error_responses! {
    /// The answer of every read route before the first checkpoint, or without storage.
    NoCheckpoint = 503, "No checkpoint signed yet, or storage unavailable";
    /// A query route's malformed or out-of-range parameters.
    MalformedQuery = 400, "A malformed or out-of-range query";
}

fn published(state: &LedgerState) -> Result<Published, ApiError> {
    state.sequencer.published().ok_or(ApiError::NoCheckpoint)
}

fn encode_hashes(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| BASE64.encode(h)).collect()
}

/// The newest signed checkpoint (C2SP signed note), with the cosignatures
/// witnesses have sent for it so far as further signature lines.
#[utoipa::path(get, path = "/ledger/checkpoint", tag = "ledger",
    responses((status = 200, description = "C2SP tlog-checkpoint in a signed note", body = String, content_type = "text/plain"),
        NoCheckpoint))]
pub async fn checkpoint(state: web::Data<LedgerState>) -> Result<HttpResponse, ApiError> {
    let published = published(&state)?;
    let store = state.store.clone();
    let size = published.size;
    let cosignatures = web::block(move || store.cosignatures(size)).await??;
    let note = with_cosignatures(published.note, cosignatures);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(note))
}

/// A signed checkpoint note with the witnesses' cosignature lines after the log's.
fn with_cosignatures(mut note: String, cosignatures: Vec<Cosignature>) -> String {
    for cosignature in cosignatures {
        note.push_str(&cosignature.signature_line);
        note.push('\n');
    }
    note
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsQuery {
    /// The smallest tree size to list (default 0).
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub from: Option<u64>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Every checkpoint the ledger signed, oldest first, each with its witnesses'
/// cosignatures: an auditor checks each against the next.
#[utoipa::path(get, path = "/ledger/checkpoints", tag = "ledger", params(CheckpointsQuery),
    responses((status = 200, body = CheckpointPage),
        MalformedQuery, NoCheckpoint))]
pub async fn checkpoints(
    state: web::Data<LedgerState>,
    query: web::Query<CheckpointsQuery>,
) -> Result<web::Json<CheckpointPage>, ApiError> {
    let CheckpointsQuery { from, limit } = query.into_inner();
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be from 1 to {MAX_PAGE}"
        )));
    }
    let from = in_storage("from", from.unwrap_or(0))?;
    // Only what the newest published checkpoint covers: a checkpoint being
    // signed right now is not served before it is published.
    let until = published(&state)?.size;
    let store = state.store.clone();
    let rows =
        web::block(move || store.checkpoints_with_cosignatures(from, until, i64::from(limit)))
            .await??;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|(c, _)| c.tree_size as u64 + 1))
        .flatten();
    let checkpoints = rows
        .into_iter()
        .map(|(checkpoint, cosignatures)| HistoricCheckpoint {
            tree_size: checkpoint.tree_size as u64,
            note: with_cosignatures(checkpoint.note, cosignatures),
        })
        .collect();
    Ok(web::Json(CheckpointPage { checkpoints, next }))
}

/// A witness (an active hospital or regulator, under its directory key)
/// cosigns a checkpoint it has checked to be consistent with the last one it
/// saw (C2SP tlog-cosignature). The first cosignature of each witness and
/// checkpoint is kept.
#[utoipa::path(post, path = "/ledger/cosignatures", tag = "ledger",
    request_body = CosignatureSubmission,
    responses((status = 204, description = "Stored, or already stored"),
        (status = 400, description = "Not a JSON object of this shape, a tree size beyond storage, not a signature line, or dated in the future", body = ErrorBody),
        (status = 403, description = "Not an active witness, or the cosignature does not verify", body = ErrorBody),
        (status = 404, description = "The ledger signed no checkpoint of this size", body = ErrorBody),
        (status = 413, description = "The body is over 1024 bytes", body = ErrorBody),
        NotJson, StorageUnavailable))]
pub async fn cosign(
    state: web::Data<LedgerState>,
    body: Json<CosignatureSubmission>,
) -> Result<HttpResponse, ApiError> {
    let CosignatureSubmission {
        tree_size,
        cosignature,
    } = body.into_inner();
    in_storage("tree_size", tree_size)?;
    let signature = parse_signature_line(&cosignature).map_err(|_| {
        ApiError::BadRequest("the cosignature is not a signed-note signature line".into())
    })?;
    let witness: MemberId = signature
        .name
        .parse()
        .map_err(|_| ApiError::NotWitness("the signer".into()))?;
    let key = state
        .sequencer
        .directory()
        .read()
        .active(&witness)
        .filter(|m| matches!(m.role, MemberRole::Hospital | MemberRole::Regulator))
        .map(|m| m.ed25519)
        .ok_or_else(|| ApiError::NotWitness(witness.to_string()))?;
    let verifier = CosignatureVerifier::from_public_key(witness.as_str(), &key.to_bytes())
        .map_err(|_| ApiError::NotWitness(witness.to_string()))?;
    let store = state.store.clone();
    web::block(move || {
        let checkpoint = store.checkpoint(tree_size)?.ok_or_else(|| {
            ApiError::NotFound(format!(
                "the ledger signed no checkpoint of size {tree_size}"
            ))
        })?;
        let note = Note::parse(&checkpoint.note)
            .map_err(|_| ApiError::Internal("a stored checkpoint is unreadable"))?;
        let timestamp = verifier
            .verify_cosignature(&note.text, &signature)
            .map_err(|_| ApiError::BadCosignature)?;
        let timestamp = i64::try_from(timestamp).map_err(|_| ApiError::BadCosignature)?;
        if timestamp > state.sequencer.clock().now_secs() + MAX_COSIGNATURE_SKEW_SECS {
            return Err(ApiError::BadRequest(
                "the cosignature is dated in the future".into(),
            ));
        }
        store.insert_cosignature(&NewCosignature {
            tree_size: checkpoint.tree_size,
            witness: &witness,
            timestamp,
            signature_line: &signature.to_string(),
        })?;
        Ok::<_, ApiError>(())
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// The log's public key in C2SP vkey form. Pin it from the consortium
/// directory; this copy is a convenience.
#[utoipa::path(get, path = "/ledger/vkey", tag = "ledger",
    responses((status = 200, description = "C2SP note verifier key", body = String, content_type = "text/plain")))]
pub async fn vkey(state: web::Data<LedgerState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body(format!("{}\n", state.vkey))
}

/// Submits one signed entry (canonical JSON, at most 65,535 bytes). Answers
/// once the entry is durable.
#[utoipa::path(post, path = "/ledger/entries", tag = "ledger",
    request_body(content = String, description = "A signed entry, RFC 8785 canonical JSON", content_type = "application/json"),
    responses(
        (status = 200, body = Receipt),
        (status = 400, description = "Not a canonical signed entry, or dated too far from the ledger's clock", body = ErrorBody),
        (status = 403, description = "Unknown or inactive submitter, a bad signature, an entry the submitter may not log, or an access under a revoked grant", body = ErrorBody),
        (status = 413, description = "The entry is over 65,535 bytes", body = ErrorBody),
        (status = 503, description = "The ledger is busy or cannot write", body = ErrorBody)))]
pub async fn submit(
    state: web::Data<LedgerState>,
    request: HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Json<Receipt>, ApiError> {
    // A declared length over the limit is refused before reading anything.
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_ENTRY_BYTES as u64) {
        return Err(SubmitError::TooLarge.into());
    }
    // Read by hand so an oversized body is refused with our own error, early.
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_ENTRY_BYTES {
            return Err(SubmitError::TooLarge.into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(web::Json(state.sequencer.submit(&body).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// Leaf index, below `size`.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub index: u64,
    /// Tree size, at most the newest checkpoint's.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub size: u64,
}

/// RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves.
#[utoipa::path(get, path = "/ledger/proof/inclusion", tag = "ledger", params(InclusionQuery),
    responses((status = 200, body = InclusionProof),
        (status = 400, description = "A malformed query, an index not below the size, or a size beyond the newest checkpoint", body = ErrorBody),
        NoCheckpoint))]
pub async fn prove_inclusion(
    state: web::Data<LedgerState>,
    query: web::Query<InclusionQuery>,
) -> Result<web::Json<InclusionProof>, ApiError> {
    let InclusionQuery { index, size } = query.into_inner();
    check_size(&state, size)?;
    if index >= size {
        return Err(ApiError::BadRequest(format!(
            "index {index} is not below size {size}"
        )));
    }
    let proof = proof_hashes(&state, move |store| inclusion_proof(store, index, size)).await?;
    Ok(web::Json(InclusionProof { index, size, proof }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size, at least 1.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub first: u64,
    /// The newer tree size, at most the newest checkpoint's.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub second: u64,
}

/// RFC 9162 consistency proof between tree sizes `first` and `second`.
#[utoipa::path(get, path = "/ledger/proof/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof),
        (status = 400, description = "A malformed query, first 0 or above second, or second beyond the newest checkpoint", body = ErrorBody),
        NoCheckpoint))]
pub async fn prove_consistency(
    state: web::Data<LedgerState>,
    query: web::Query<ConsistencyQuery>,
) -> Result<web::Json<ConsistencyProof>, ApiError> {
    let ConsistencyQuery { first, second } = query.into_inner();
    check_size(&state, second)?;
    if first > second {
        return Err(ApiError::BadRequest(format!(
            "first {first} is larger than second {second}"
        )));
    }
    let proof = proof_hashes(&state, move |store| consistency_proof(store, first, second)).await?;
    Ok(web::Json(ConsistencyProof {
        first,
        second,
        proof,
    }))
}

/// Builds a proof from storage off the async runtime, as base64 hashes.
async fn proof_hashes(
    state: &LedgerState,
    prove: impl FnOnce(&LedgerStore) -> Result<Vec<[u8; 32]>, ProofError<StoreError>> + Send + 'static,
) -> Result<Vec<String>, ApiError> {
    let store = state.store.clone();
    let proof = web::block(move || prove(&store))
        .await?
        .map_err(proof_error)?;
    Ok(encode_hashes(&proof))
}

fn check_size(state: &LedgerState, size: u64) -> Result<Published, ApiError> {
    let published = published(state)?;
    if size > published.size {
        return Err(ApiError::BeyondTree(format!(
            "size {size} is beyond the newest checkpoint ({})",
            published.size
        )));
    }
    Ok(published)
}

/// A C2SP tlog-tiles resource: `tile/<L>/<N>[.p/<W>]` (hashes) or
/// `tile/entries/<N>[.p/<W>]` (entry bundles).
#[utoipa::path(get, path = "/ledger/tile/{path}", tag = "ledger",
    params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]` as in C2SP tlog-tiles",
        pattern = "^([0-9]|[1-5][0-9]|6[0-3]|entries)/(x[0-9]{3}/)*[0-9]{3}(\\.p/([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]))?$")),
    responses((status = 200, description = "Tile hashes or an entry bundle", body = crate::wire::Binary, content_type = "application/octet-stream"),
        (status = 404, description = "Not a canonical tile path, or a tile beyond the published tree", body = ErrorBody),
        NoCheckpoint))]
pub async fn tile(
    state: web::Data<LedgerState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let full = format!("tile/{}", path.into_inner());
    let parsed = parse_tile_path(&full).map_err(|e| ApiError::NotFound(format!("{full}: {e}")))?;
    let size = published(&state)?.size;
    let store = state.store.clone();
    let (body, width) = match parsed {
        TilePath::Hash(tile) => {
            if !tile_available(tile.level, tile.index, tile.width, size) {
                return Err(ApiError::NotFound(format!(
                    "{full} is not in the published tree"
                )));
            }
            let level = tile.level.saturating_mul(8);
            let start = tile.index * TILE_WIDTH;
            let end = start + u64::from(tile.width);
            let hashes = web::block(move || store.node_range(level, start, end)).await??;
            (hashes.concat(), tile.width)
        }
        TilePath::Entries { index, width } => {
            if !tile_available(0, index, width, size) {
                return Err(ApiError::NotFound(format!(
                    "{full} is not in the published tree"
                )));
            }
            let start = index * TILE_WIDTH;
            let end = start + u64::from(width);
            let bodies = web::block(move || store.entry_bodies(start, end)).await??;
            let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
            // Every logged entry fits a bundle (the sequencer takes none larger).
            let bundle = encode_entry_bundle(&refs)
                .map_err(|_| ApiError::Internal("a stored entry does not fit an entry bundle"))?;
            (bundle, width)
        }
    };
    // Tiles never change once served; a full one never grows either.
    let cache = if u64::from(width) == TILE_WIDTH {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/octet-stream"))
        .insert_header((CACHE_CONTROL, cache))
        .body(body))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntryQuery {
    /// Entry type, e.g. `record.retrieved`.
    #[serde(rename = "type")]
    #[param(pattern = "^[a-z._]{1,64}$", max_length = 64)]
    pub entry_type: Option<String>,
    /// Member id of the submitter.
    #[param(pattern = "^[a-z](-?[a-z0-9])*$", max_length = 64)]
    pub submitter: Option<String>,
    /// Patient key (64 lowercase hex characters).
    #[param(pattern = "^[0-9a-f]{64}$", min_length = 64, max_length = 64)]
    pub subject: Option<String>,
    /// Grant id (a lowercase hyphenated UUID).
    #[param(
        format = "uuid",
        pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub grant: Option<String>,
    /// Entry time from (inclusive), RFC 3339.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Entry time until (exclusive), RFC 3339, not before `from`.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Paging cursor: entries after this index.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::BadRequest(format!("{field} is not an RFC 3339 time")))
        })
        .transpose()
}

fn validated<T: std::str::FromStr>(
    field: &str,
    value: Option<String>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::BadRequest(format!("{field} is not valid")))
        })
        .transpose()
}

impl EntryQuery {
    fn filter(self) -> Result<(EntryFilter, u32), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        if let Some(t) = &self.entry_type {
            let ok = !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
            if !ok {
                return Err(ApiError::BadRequest("type is not valid".into()));
            }
        }
        let after = self
            .after
            .map(|a| stored_int("after", a).map_err(|e| ApiError::BadRequest(e.message)))
            .transpose()?;
        let from_ms = parse_time("from", self.from.as_deref())?;
        let until_ms = parse_time("until", self.until.as_deref())?;
        if let (Some(from), Some(until)) = (from_ms, until_ms) {
            if from > until {
                return Err(ApiError::BadRequest("from is later than until".into()));
            }
        }
        Ok((
            EntryFilter {
                from_ms,
                until_ms,
                entry_type: self.entry_type,
                submitter: validated::<MemberId>("submitter", self.submitter)?,
                subject: validated::<PatientKey>("subject", self.subject)?,
                grant_id: validated::<GrantId>("grant", self.grant)?,
                after,
            },
            limit,
        ))
    }
}

fn logged(entry: EntryRow) -> Result<LoggedEntry, ApiError> {
    Ok(LoggedEntry {
        index: entry.idx as u64,
        leaf_hash: BASE64.encode(&entry.leaf_hash),
        sequenced_at_ms: entry.sequenced_at,
        entry: serde_json::from_str(&entry.body)
            .map_err(|_| ApiError::Internal("a stored entry is not JSON"))?,
    })
}

/// Entries by type, submitter, patient key, grant and time, in log order, paged.
#[utoipa::path(get, path = "/ledger/entries", tag = "ledger", params(EntryQuery),
    responses((status = 200, body = EntryPage),
        MalformedQuery, NoCheckpoint))]
pub async fn query_entries(
    state: web::Data<LedgerState>,
    query: web::Query<EntryQuery>,
) -> Result<web::Json<EntryPage>, ApiError> {
    let (filter, limit) = query.into_inner().filter()?;
    let size = published(&state)?.size;
    let store = state.store.clone();
    let rows = web::block(move || store.query(&filter, size, i64::from(limit))).await??;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.idx as u64))
        .flatten();
    let entries = rows.into_iter().map(logged).collect::<Result<_, _>>()?;
    Ok(web::Json(EntryPage { entries, next }))
}

/// One entry by its index in the log.
#[utoipa::path(get, path = "/ledger/entries/{index}", tag = "ledger",
    params(("index" = u64, Path, description = "leaf index", minimum = 0)),
    responses((status = 200, body = LoggedEntry),
        (status = 404, description = "Not a leaf index of the published tree", body = ErrorBody),
        NoCheckpoint))]
pub async fn entry_by_index(
    state: web::Data<LedgerState>,
    index: web::Path<u64>,
) -> Result<web::Json<LoggedEntry>, ApiError> {
    let index = index.into_inner();
    let size = published(&state)?.size;
    if index >= size {
        return Err(ApiError::NotFound(format!(
            "no entry {index} in the published tree"
        )));
    }
    let store = state.store.clone();
    let entry = web::block(move || store.entry(index))
        .await??
        .ok_or_else(|| ApiError::NotFound(format!("no entry {index}")))?;
    Ok(web::Json(logged(entry)?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(checkpoint, checkpoints, cosign, vkey, submit, prove_inclusion, prove_consistency, tile, query_entries, entry_by_index),
    components(schemas(CheckpointPage, HistoricCheckpoint, CosignatureSubmission, Receipt, InclusionProof, ConsistencyProof, LoggedEntry, EntryPage, ErrorBody)),
    tags((name = "ledger", description = "The tamper-evident ledger: C2SP tlog-tiles reads, RFC 9162 proofs, submission, queries"))
)]
#[derive(Debug)]
pub struct LedgerApiDoc;

//! Retrieval, as custodian: a record leaves only for a grant that covers it,
//! only after its `record.retrieved` entry is durable on the ledger (no log,
//! no data), signed by this hospital (provenance) and sealed to the requester.
//!
//! Anyone holding this hospital's public X25519 key can seal a pointer body, so
//! nothing a requester presents is trusted. The pointer id is resolved through
//! this hospital's own store, to the record version it published under that
//! id; the sealed body only has to agree with what was published. Every check
//! (grant, revocation, pointer known, not withdrawn, current, the grant's
//! patient, body, scope and dates against the stored record, the stored
//! commitment, the requester's key) runs before the release is logged. A
//! failed check is a refusal, logged as `access.refused`, and no release is
//! logged. Once the release is logged, nothing a peer sent can stop it.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::web;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use locus_ledger::client::ClientError;
use locus_ledger::wire::{Receipt, GRANT_REVOKED_CODE};
use locus_platform::access::{check_token, oversized_token, Authorized, Refused};
use locus_platform::http::{ApiError, ErrorBody, ErrorKind, Json};
use locus_platform::openapi::NoClientCertificate;
use locus_platform::tls::PeerCertificate;
use locus_protocol::entry::{Event, RecordRetrieved, RefusalReason};
use locus_protocol::grant_token::MAX_GRANT_TOKEN_LEN;
use locus_protocol::ids::PointerId;
use locus_protocol::pointer::{
    content_digest, PointerBody, Provenance, RecordRelease, SignedProvenance,
};
use locus_protocol::pointer::{decode_sealed, SealedFault, MAX_SEALED_BYTES};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::node::Node;
use crate::records::Record;

/// The base64 of the largest sealed pointer the index keeps.
const SEALED_B64_MAX: usize = MAX_SEALED_BYTES.div_ceil(3) * 4;

/// Largest retrieval body: the longest grant token, the largest sealed
/// pointer, and room for the pointer id and the JSON.
pub const BODY_LIMIT: usize = MAX_GRANT_TOKEN_LEN + SEALED_B64_MAX + 1024;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// The grant token issued to the caller (a JWS in compact form).
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub grant: Option<String>,
    /// The pointer id the index returned.
    #[schema(value_type = locus_platform::openapi::PointerId)]
    pub pointer_id: PointerId,
    /// The sealed pointer as the index returned it, base64 (1 to 4096 bytes).
    /// Only checked against what this hospital published under `pointer_id`.
    #[schema(min_length = 4, max_length = 5464, pattern = "^[A-Za-z0-9+/]*={0,2}$")]
    pub sealed: String,
}

impl RetrieveRequest {
    /// Range checks at the edge: a malformed request is a 400, not a refusal.
    /// Returns the sealed pointer's bytes.
    fn validated(&self) -> Result<Vec<u8>, RetrieveError> {
        if let Some(message) = oversized_token("grant", self.grant.as_deref()) {
            return Err(RetrieveError::BadRequest(message));
        }
        decode_sealed(&self.sealed).map_err(|fault| {
            RetrieveError::BadRequest(match fault {
                SealedFault::NotBase64 => "sealed is not base64".into(),
                SealedFault::OutOfBounds => {
                    format!("sealed must hold 1 to {MAX_SEALED_BYTES} bytes")
                }
            })
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetrieveResponse {
    /// A `ReleasedRecord`, HPKE-sealed to the requester, base64.
    pub sealed_record: String,
    /// The `record.retrieved` entry logged before release.
    pub receipt: Receipt,
}

/// What the requester opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedRecord {
    /// The FHIR resource, exactly the bytes the custodian committed to.
    pub content: String,
    /// The commitment salt, base64url.
    pub salt: String,
    /// The custodian's signed statement about this result.
    pub provenance: SignedProvenance,
}

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("{0}")]
    BadRequest(String),
    #[error("the directory's encryption key for the requester cannot be sealed to, so nothing is released")]
    RequesterKey,
    #[error("the ledger cannot log this retrieval, so nothing is released")]
    LedgerUnavailable,
    #[error("the record failed its integrity check at this hospital and is not released")]
    Integrity,
    #[error("the released record could not be prepared")]
    ReleaseFailed,
    #[error("the connector is unavailable")]
    Unavailable,
}

impl ApiError for RetrieveError {
    const SUBJECT: &'static str = "retrieval";

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Refused(_) => ErrorKind::Forbidden,
            Self::BadRequest(_) => ErrorKind::BadRequest,
            Self::RequesterKey => ErrorKind::Conflict,
            Self::LedgerUnavailable | Self::Unavailable => ErrorKind::Unavailable,
            // Only this hospital's own store or clock can cause these.
            Self::Integrity | Self::ReleaseFailed => ErrorKind::Internal,
        }
    }

    fn code(&self) -> Cow<'static, str> {
        match self {
            Self::Refused(r) => r.code(),
            Self::BadRequest(_) => "bad_request".into(),
            Self::RequesterKey => "requester_key_unusable".into(),
            Self::LedgerUnavailable => "ledger_unavailable".into(),
            Self::Integrity => "integrity".into(),
            Self::ReleaseFailed => "release_failed".into(),
            Self::Unavailable => "unavailable".into(),
        }
    }
}

locus_platform::response_error!(RetrieveError);

/// Releases one record under a grant (mutual TLS).
#[utoipa::path(post, path = "/connector/retrieve", tag = "connector", request_body = RetrieveRequest,
    responses(
        (status = 200, description = "Released, after the retrieval was logged", body = RetrieveResponse),
        (status = 400, description = "Malformed request: not a JSON object, unknown field, bad pointer id, sealed not base64 or out of range, grant too long; nothing logged", body = ErrorBody),
        (status = 403, description = "Refused and logged as access.refused; nothing released", body = ErrorBody),
        (status = 405, description = "Not POST", body = ErrorBody),
        (status = 409, description = "The requester's directory key cannot be sealed to; nothing logged", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 500, description = "This hospital's own record failed its integrity check", body = ErrorBody),
        (status = 503, description = "The ledger or the store is unavailable; nothing released", body = ErrorBody),
        NoClientCertificate))]
pub async fn retrieve(
    node: web::Data<Arc<Node>>,
    peer: PeerCertificate,
    body: Json<RetrieveRequest>,
) -> Result<web::Json<RetrieveResponse>, RetrieveError> {
    // A struct only from a JSON object: `[grant, pointer, sealed]` is a 400.
    let request = body.into_inner();
    match release(&node, &peer, &request).await {
        Err(RetrieveError::Refused(refused)) => {
            node.log_refusal(&refused).await;
            Err(RetrieveError::Refused(refused))
        }
        other => other.map(web::Json),
    }
}

async fn release(
    node: &Node,
    peer: &PeerCertificate,
    request: &RetrieveRequest,
) -> Result<RetrieveResponse, RetrieveError> {
    let sealed = request.validated()?;
    let now = node.clock.now_secs();
    let (authorized, requester_key) = {
        let directory = node.directory.directory().read();
        let authorized: Authorized =
            check_token(&directory, request.grant.as_deref(), &peer.thumbprint, now)?;
        let key = directory.active(&authorized.requester).map(|m| m.x25519);
        (authorized, key.ok_or(RetrieveError::Unavailable)?)
    };
    let claims = &authorized.claims;
    let refused = |reason, message| Refused {
        requester: Some(authorized.requester.clone()),
        grant: Some(claims.jti),
        subject: Some(claims.sub),
        ..Refused::new(reason, message)
    };
    match node.ledger.is_revoked(&claims.jti).await {
        Ok(false) => {}
        Ok(true) => return Err(refused(RefusalReason::Revoked, "the grant was revoked").into()),
        Err(_) => return Err(RetrieveError::LedgerUnavailable),
    }

    // What this hospital published under this pointer id, from its own store.
    let record = node
        .published_record(request.pointer_id)
        .await?
        .ok_or_else(|| {
            refused(
                RefusalReason::TamperedPointer,
                "the pointer is not one this hospital published",
            )
        })?;
    if record.patient_key != claims.sub {
        return Err(refused(
            RefusalReason::WrongPatient,
            "the record is not the granted patient's",
        )
        .into());
    }
    if record.withdrawn_at.is_some() {
        return Err(refused(RefusalReason::TamperedPointer, "the pointer was withdrawn").into());
    }
    if !record.current {
        return Err(refused(
            RefusalReason::TamperedPointer,
            "the pointer is superseded by a newer version of the record",
        )
        .into());
    }
    let stored = crate::publish::pointer_body(&record).map_err(|_| RetrieveError::Integrity)?;
    // The sealed body is a hint at most: it must be exactly what was published
    // under this id for this patient, or the request was not made from it.
    match PointerBody::open(
        &node.x25519,
        &sealed,
        &request.pointer_id,
        &claims.sub,
        &node.hospital,
    ) {
        Ok(presented) if presented == stored => {}
        _ => {
            return Err(refused(
                RefusalReason::TamperedPointer,
                "the sealed pointer is not the one this hospital published under this id",
            )
            .into());
        }
    }
    if let Err(reason) = stored.permitted_by(claims) {
        let message = match reason {
            RefusalReason::OutOfDateRange => "the record is outside the grant's dates",
            _ => "the record is outside the grant's scope",
        };
        return Err(refused(reason, message).into());
    }
    // Releasable as stored: the content is what was committed to when it was
    // published, and the requester's key can be sealed to.
    if !record.verify_commitment() {
        return Err(RetrieveError::Integrity);
    }
    let release = RecordRelease {
        pointer: &request.pointer_id,
        grant: &claims.jti,
        requester: &authorized.requester,
    };
    release
        .seal(&requester_key, &[])
        .map_err(|_| RetrieveError::RequesterKey)?;

    // No log, no data: the retrieval is durable on the ledger before the
    // record leaves.
    let receipt = node
        .log(Event::RecordRetrieved(RecordRetrieved {
            requester: authorized.requester.clone(),
            custodian: node.hospital.clone(),
            grant: claims.jti,
            subject: claims.sub,
            pointer: request.pointer_id,
            commitment: record.commitment,
        }))
        .await
        .map_err(|e| match e {
            ClientError::Refused { code, .. } if code == GRANT_REVOKED_CODE => {
                refused(RefusalReason::Revoked, "the grant was revoked").into()
            }
            _ => RetrieveError::LedgerUnavailable,
        })?;

    // From here on every input is this hospital's own: the stored record, the
    // key checked above, the ledger's receipt.
    let provenance = SignedProvenance::sign(
        Provenance {
            custodian: node.hospital.clone(),
            pointer: request.pointer_id,
            resource_type: record.resource_type,
            resource_id: record.resource_id.clone(),
            version: record.version,
            commitment: record.commitment,
            content_sha256: content_digest(record.content.as_bytes()),
            retrieved_at_ms: node.clock.now_ms(),
            receipt_index: receipt.index,
        },
        &node.key,
    )
    .map_err(|_| RetrieveError::ReleaseFailed)?;
    let released = ReleasedRecord {
        content: record.input.content,
        salt: URL_SAFE_NO_PAD.encode(record.salt),
        provenance,
    };
    let plaintext = serde_json::to_vec(&released).map_err(|_| RetrieveError::ReleaseFailed)?;
    let sealed_record = release
        .seal(&requester_key, &plaintext)
        .map_err(|_| RetrieveError::ReleaseFailed)?;
    Ok(RetrieveResponse {
        sealed_record: BASE64.encode(sealed_record),
        receipt,
    })
}

impl Node {
    /// The record version this hospital published under `pointer`, if any.
    async fn published_record(&self, pointer: PointerId) -> Result<Option<Record>, RetrieveError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.by_pointer(&pointer))
            .await
            .map_err(|_| RetrieveError::Unavailable)?
            .map_err(|e| match e {
                crate::records::StoreError::Corrupt { .. } => RetrieveError::Integrity,
                _ => RetrieveError::Unavailable,
            })
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;

    /// The document's bounds are literals; they must say what the code checks.
    #[test]
    fn documented_bounds_are_the_checked_ones() {
        let doc =
            serde_json::to_value(crate::startup::ConnectorApiDoc::openapi()).unwrap_or_default();
        let fields = &doc["components"]["schemas"]["RetrieveRequest"]["properties"];
        assert_eq!(fields["grant"]["maxLength"], MAX_GRANT_TOKEN_LEN);
        assert_eq!(fields["sealed"]["maxLength"], SEALED_B64_MAX);
    }
}

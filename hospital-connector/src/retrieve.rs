//! Retrieval, as custodian: a record leaves only for a grant that covers it,
//! only after its `record.retrieved` entry is durable on the ledger (no log,
//! no data), signed by this hospital (provenance) and sealed to the requester.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use locus_ledger::client::ClientError;
use locus_ledger::wire::{GRANT_REVOKED_CODE, Receipt};
use locus_protocol::entry::{Event, RecordRetrieved, RefusalReason};
use locus_protocol::ids::PointerId;
use locus_protocol::pointer::{PointerBody, Provenance, SignedProvenance, content_digest, seal_record};
use locus_service::access::{Refused, check_grant};
use locus_service::http::{ErrorBody, json_error};
use locus_service::tls::PeerCertificate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::node::Node;

/// Largest sealed pointer accepted.
const MAX_SEALED_BYTES: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// The grant token issued to the caller.
    #[serde(default)]
    pub grant: Option<String>,
    #[schema(value_type = String)]
    pub pointer_id: PointerId,
    /// The sealed pointer as the index returned it, base64.
    pub sealed: String,
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
    BadRequest(&'static str),
    #[error("the ledger cannot log this retrieval, so nothing is released")]
    LedgerUnavailable,
    #[error("the record failed its integrity check and is not released")]
    Integrity,
    #[error("the connector is unavailable")]
    Unavailable,
}

impl RetrieveError {
    fn code(&self) -> String {
        match self {
            Self::Refused(r) => serde_json::to_value(r.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "refused".into()),
            Self::BadRequest(_) => "bad_request".into(),
            Self::LedgerUnavailable => "ledger_unavailable".into(),
            Self::Integrity => "integrity".into(),
            Self::Unavailable => "unavailable".into(),
        }
    }
}

impl ResponseError for RetrieveError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::LedgerUnavailable | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Integrity => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "retrieval failed");
        } else {
            tracing::info!(code = %self.code(), "retrieval refused");
        }
        json_error(status, &self.code(), &self.to_string())
    }
}

/// Releases one record under a grant (mutual TLS).
#[utoipa::path(post, path = "/connector/retrieve", tag = "connector", request_body = RetrieveRequest,
    responses((status = 200, body = RetrieveResponse), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn retrieve(
    node: web::Data<Arc<Node>>,
    peer: PeerCertificate,
    body: web::Json<RetrieveRequest>,
) -> Result<web::Json<RetrieveResponse>, RetrieveError> {
    let request = body.into_inner();
    match release(&node, &peer, &request).await {
        Err(RetrieveError::Refused(refused)) => {
            node.log_refusal(&refused).await;
            Err(RetrieveError::Refused(refused))
        }
        other => other.map(web::Json),
    }
}

async fn release(node: &Node, peer: &PeerCertificate, request: &RetrieveRequest) -> Result<RetrieveResponse, RetrieveError> {
    let now = chrono::Utc::now().timestamp();
    let authorized = {
        let directory = node.directory.directory().read();
        check_grant(&directory, request.grant.as_deref(), &peer.thumbprint, now)?
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

    // Our own pointer, bound to this grant's patient: a pointer for another
    // patient, or one that was altered, does not open.
    let sealed = BASE64
        .decode(&request.sealed)
        .map_err(|_| RetrieveError::BadRequest("sealed is not base64"))?;
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(RetrieveError::BadRequest("the sealed pointer is too large"));
    }
    let body = match PointerBody::open(&node.x25519, &sealed, &request.pointer_id, &claims.sub, &node.hospital) {
        Ok(body) => body,
        Err(_) => {
            let reason = if node.pointer_of_other_patient(&request.pointer_id, claims).await {
                (RefusalReason::WrongPatient, "the record is not the granted patient's")
            } else {
                (RefusalReason::TamperedPointer, "the pointer does not open")
            };
            return Err(refused(reason.0, reason.1).into());
        }
    };
    // Anyone holding our public key can seal a pointer, so what it claims is
    // not trusted: the record it names must be the current version published
    // under exactly this pointer, and scope and dates are checked against the
    // record as stored.
    let (store, pointer) = (node.store.clone(), request.pointer_id);
    let record = tokio::task::spawn_blocking(move || store.by_pointer(&pointer))
        .await
        .map_err(|_| RetrieveError::Unavailable)?
        .map_err(|_| RetrieveError::Unavailable)?
        .filter(|r| r.current && r.patient_key == claims.sub && r.commitment == body.commitment)
        .ok_or_else(|| refused(RefusalReason::TamperedPointer, "the pointer is not a current pointer of this hospital"))?;
    let stored = crate::publish::pointer_body(&record).map_err(|_| RetrieveError::Integrity)?;
    if let Err(reason) = stored.permitted_by(claims) {
        let message = match reason {
            RefusalReason::OutOfDateRange => "the record is outside the grant's dates",
            _ => "the record is outside the grant's scope",
        };
        return Err(refused(reason, message).into());
    }

    // No log, no data: the retrieval is durable on the ledger before the
    // record is even read.
    let receipt = node
        .log(Event::RecordRetrieved(RecordRetrieved {
            requester: authorized.requester.clone(),
            custodian: node.hospital.clone(),
            grant: claims.jti,
            subject: claims.sub,
            pointer: request.pointer_id,
            commitment: body.commitment,
        }))
        .await
        .map_err(|e| match e {
            ClientError::Refused { code, .. } if code == GRANT_REVOKED_CODE => {
                refused(RefusalReason::Revoked, "the grant was revoked").into()
            }
            _ => RetrieveError::LedgerUnavailable,
        })?;

    // The content must still be what was committed to when it was published.
    if !record.verify_commitment() || !body.commits_to(record.content.as_bytes()) {
        return Err(RetrieveError::Integrity);
    }

    let requester = node
        .directory
        .directory()
        .read()
        .active(&authorized.requester)
        .map(|m| m.x25519)
        .ok_or(RetrieveError::Unavailable)?;
    let provenance = SignedProvenance::sign(
        Provenance {
            custodian: node.hospital.clone(),
            pointer: request.pointer_id,
            resource_type: record.resource_type,
            resource_id: record.resource_id.clone(),
            version: record.version,
            commitment: record.commitment,
            content_sha256: content_digest(record.content.as_bytes()),
            retrieved_at_ms: chrono::Utc::now().timestamp_millis(),
            receipt_index: receipt.index,
        },
        &node.key,
    )
    .map_err(|_| RetrieveError::Integrity)?;
    let released = ReleasedRecord {
        content: record.content,
        salt: URL_SAFE_NO_PAD.encode(record.salt),
        provenance,
    };
    let plaintext = serde_json::to_vec(&released).map_err(|_| RetrieveError::Integrity)?;
    let sealed_record = seal_record(&requester, &request.pointer_id, &claims.jti, &authorized.requester, &plaintext)
        .map_err(|_| RetrieveError::Integrity)?;
    Ok(RetrieveResponse {
        sealed_record: BASE64.encode(sealed_record),
        receipt,
    })
}

impl Node {
    /// Whether `pointer` is one of ours, for another patient than the grant's.
    async fn pointer_of_other_patient(&self, pointer: &PointerId, claims: &locus_protocol::grant::GrantClaims) -> bool {
        let (store, pointer) = (self.store.clone(), *pointer);
        match tokio::task::spawn_blocking(move || store.by_pointer(&pointer)).await {
            Ok(Ok(Some(record))) => record.patient_key != claims.sub,
            _ => false,
        }
    }
}

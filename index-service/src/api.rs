//! The index API, over mutual TLS: custodians publish and withdraw their sealed
//! pointers; grant holders discover the pointers their grant covers. Every
//! discovery, and every refusal, is a ledger entry.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use locus_ledger::directory::LedgerDirectory;
use locus_ledger::sequencer::{Sequencer, SubmitError};
use locus_ledger::store::LedgerStore;
use locus_ledger::wire::Receipt;
use locus_protocol::directory::MemberRole;
use locus_protocol::entry::{Entry, Event, IndexQueried, SignedEntry};
use locus_protocol::ids::{HospitalId, MemberId, PatientKey, PointerId, ScopeTag};
use locus_protocol::signing::SigningKey;
use locus_service::access::{Refused, check_discovery};
use locus_service::http::{ErrorBody, json_config, json_error};
use locus_service::tls::PeerCertificate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pointers::{NewPointer, PointerError, PointerStore};

/// Most pointers in one publish call.
pub const MAX_BATCH: usize = 1000;
/// Largest sealed pointer accepted, in bytes.
pub const MAX_SEALED_BYTES: usize = 4096;
const PUBLISH_BODY_LIMIT: usize = 8 * 1024 * 1024;
const REVOKED: &str = locus_protocol::entry::EventKind::GrantRevoked.as_str();

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub pointers: Vec<PublishedPointer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedPointer {
    #[schema(value_type = String)]
    pub pointer_id: PointerId,
    #[schema(value_type = String)]
    pub patient_key: PatientKey,
    #[schema(value_type = Vec<String>)]
    pub scope_tags: Vec<ScopeTag>,
    /// HPKE-sealed pointer body, base64.
    pub sealed: String,
    /// A pointer of the same custodian this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub supersedes: Option<PointerId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishResponse {
    /// Pointers newly stored (re-published identical pointers are not counted).
    pub published: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    #[schema(value_type = Vec<String>)]
    pub pointer_ids: Vec<PointerId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// The discovery token of a grant issued to the caller (EdDSA JWT): the
    /// patient, the validity and the blinded tags, nothing else.
    #[serde(default)]
    pub discovery: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiscoveredPointer {
    #[schema(value_type = String)]
    pub pointer_id: PointerId,
    #[schema(value_type = String)]
    pub custodian: HospitalId,
    /// Sealed to the custodian; only it can open this.
    pub sealed: String,
    pub published_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiscoverResponse {
    pub pointers: Vec<DiscoveredPointer>,
    /// The `index.queried` entry that logged this discovery.
    pub receipt: Receipt,
}

/// What the index routes need.
#[derive(Debug, Clone)]
pub struct IndexState {
    pub pointers: PointerStore,
    pub ledger: LedgerStore,
    pub sequencer: Sequencer,
    pub directory: Arc<LedgerDirectory>,
    /// The index's own member id and entry-signing key.
    pub member: MemberId,
    pub key: Arc<SigningKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("only an active hospital publishes pointers, and only its own")]
    NotCustodian,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Pointer(#[from] PointerError),
    #[error("the ledger cannot log this request, so it is not served")]
    LedgerUnavailable(#[source] SubmitError),
    #[error("the index is unavailable")]
    Unavailable,
}

impl From<actix_web::error::BlockingError> for IndexError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Unavailable
    }
}

impl IndexError {
    fn code(&self) -> String {
        match self {
            Self::Refused(r) => reason_code(r),
            Self::NotCustodian => "not_a_custodian".into(),
            Self::BadRequest(_) => "bad_request".into(),
            Self::TooLarge(_) => "too_large".into(),
            Self::Pointer(PointerError::Conflict(_)) => "conflict".into(),
            Self::Pointer(PointerError::NotOwned(_)) => "not_owned".into(),
            Self::Pointer(PointerError::Db(_)) | Self::Unavailable => "unavailable".into(),
            Self::LedgerUnavailable(_) => "ledger_unavailable".into(),
        }
    }
}

fn reason_code(refused: &Refused) -> String {
    serde_json::to_value(refused.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "refused".into())
}

impl ResponseError for IndexError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(_) | Self::NotCustodian => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Pointer(PointerError::Conflict(_)) => StatusCode::CONFLICT,
            Self::Pointer(PointerError::NotOwned(_)) => StatusCode::NOT_FOUND,
            Self::Pointer(PointerError::Db(_)) | Self::Unavailable | Self::LedgerUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "index request failed");
        } else {
            tracing::info!(code = %self.code(), "index request refused");
        }
        json_error(status, &self.code(), &self.to_string())
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/index")
            .app_data(json_config(PUBLISH_BODY_LIMIT))
            .route("/pointers", web::post().to(publish))
            .route("/pointers/withdraw", web::post().to(withdraw))
            .route("/discover", web::post().to(discover)),
    );
}

impl IndexState {
    /// Signs and logs one of the index's own entries, waiting until durable.
    async fn log(&self, event: Event) -> Result<Receipt, SubmitError> {
        let now = chrono::Utc::now().timestamp_millis();
        let entry = Entry::new(self.member.clone(), self.key.key_id(), now, event);
        let signed = SignedEntry::sign(entry, &self.key).map_err(|e| SubmitError::Malformed(e.to_string()))?;
        self.sequencer.submit(signed.canonical_bytes()).await
    }

    /// Logs a refusal; the refusal stands even if the ledger cannot take it.
    async fn log_refusal(&self, refused: &Refused) {
        let Some(event) = refused.entry_event(None) else {
            return;
        };
        if let Err(e) = self.log(event).await {
            tracing::warn!(error = %e, "a refusal could not be logged");
        }
    }

    fn custodian(&self, peer: &PeerCertificate) -> Result<HospitalId, IndexError> {
        let directory = self.directory.read();
        let member = locus_service::access::active_peer(&directory, &peer.thumbprint).map_err(|_| IndexError::NotCustodian)?;
        let entry = directory.get(&member).ok_or(IndexError::NotCustodian)?;
        if entry.role != MemberRole::Hospital {
            return Err(IndexError::NotCustodian);
        }
        member.as_str().parse().map_err(|_| IndexError::NotCustodian)
    }
}

/// Publishes a batch of the caller's sealed pointers (all or nothing).
#[utoipa::path(post, path = "/index/pointers", tag = "index", request_body = PublishRequest,
    responses((status = 200, body = PublishResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn publish(
    state: web::Data<IndexState>,
    peer: PeerCertificate,
    body: web::Json<PublishRequest>,
) -> Result<web::Json<PublishResponse>, IndexError> {
    let custodian = state.custodian(&peer)?;
    let request = body.into_inner();
    if request.pointers.is_empty() || request.pointers.len() > MAX_BATCH {
        return Err(IndexError::BadRequest(format!("a batch holds 1 to {MAX_BATCH} pointers")));
    }
    let mut batch = Vec::with_capacity(request.pointers.len());
    for p in request.pointers {
        let sealed = BASE64
            .decode(&p.sealed)
            .map_err(|_| IndexError::BadRequest("sealed is not base64".into()))?;
        if sealed.is_empty() || sealed.len() > MAX_SEALED_BYTES {
            return Err(IndexError::TooLarge(format!("a sealed pointer holds 1 to {MAX_SEALED_BYTES} bytes")));
        }
        if p.scope_tags.is_empty() || p.scope_tags.len() > 64 {
            return Err(IndexError::BadRequest("a pointer carries 1 to 64 scope tags".into()));
        }
        batch.push(NewPointer {
            pointer_id: p.pointer_id,
            patient_key: p.patient_key,
            scope_tags: p.scope_tags,
            sealed,
            supersedes: p.supersedes,
        });
    }
    let store = state.pointers.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let published = web::block(move || store.publish(&custodian, &batch, now)).await??;
    Ok(web::Json(PublishResponse { published }))
}

/// Withdraws some of the caller's pointers.
#[utoipa::path(post, path = "/index/pointers/withdraw", tag = "index", request_body = WithdrawRequest,
    responses((status = 200, body = PublishResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn withdraw(
    state: web::Data<IndexState>,
    peer: PeerCertificate,
    body: web::Json<WithdrawRequest>,
) -> Result<HttpResponse, IndexError> {
    let custodian = state.custodian(&peer)?;
    let ids = body.into_inner().pointer_ids;
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(IndexError::BadRequest(format!("withdraw 1 to {MAX_BATCH} pointers at a time")));
    }
    let store = state.pointers.clone();
    let withdrawn = web::block(move || store.withdraw(&custodian, &ids)).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "withdrawn": withdrawn })))
}

/// The pointers the caller's grant covers, and nothing about the others.
#[utoipa::path(post, path = "/index/discover", tag = "index", request_body = DiscoverRequest,
    responses((status = 200, body = DiscoverResponse), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn discover(
    state: web::Data<IndexState>,
    peer: PeerCertificate,
    body: web::Json<DiscoverRequest>,
) -> Result<web::Json<DiscoverResponse>, IndexError> {
    let now = chrono::Utc::now().timestamp();
    let checked = {
        let directory = state.directory.read();
        check_discovery(&directory, body.discovery.as_deref(), &peer.thumbprint, now)
    };
    let authorized = match checked {
        Ok(authorized) => authorized,
        Err(refused) => {
            state.log_refusal(&refused).await;
            return Err(refused.into());
        }
    };
    let claims = &authorized.claims;
    let (ledger, grant) = (state.ledger.clone(), claims.jti.to_string());
    let revoked = || Refused {
        requester: Some(authorized.requester.clone()),
        grant: Some(claims.jti),
        subject: Some(claims.sub),
        ..Refused::new(locus_protocol::entry::RefusalReason::Revoked, "the grant was revoked")
    };
    if web::block(move || ledger.grant_has(REVOKED, &grant)).await?.map_err(|_| IndexError::Unavailable)? {
        let refused = revoked();
        state.log_refusal(&refused).await;
        return Err(refused.into());
    }

    let store = state.pointers.clone();
    let (subject, tags) = (claims.sub, claims.scope_tags.clone());
    let found = web::block(move || store.discover(&subject, &tags)).await??;
    // The check above can race a revocation; the ledger, which orders both,
    // refuses the discovery then.
    let logged = state
        .log(Event::IndexQueried(IndexQueried {
            requester: authorized.requester.clone(),
            grant: claims.jti,
            subject: claims.sub,
            results: u32::try_from(found.len()).unwrap_or(u32::MAX),
        }))
        .await;
    let receipt = match logged {
        Ok(receipt) => receipt,
        Err(SubmitError::GrantRevoked) => {
            let refused = revoked();
            state.log_refusal(&refused).await;
            return Err(refused.into());
        }
        Err(e) => return Err(IndexError::LedgerUnavailable(e)),
    };
    let pointers = found
        .into_iter()
        .filter_map(|p| {
            Some(DiscoveredPointer {
                pointer_id: p.pointer_id.parse().ok()?,
                custodian: p.custodian.parse().ok()?,
                sealed: BASE64.encode(&p.sealed),
                published_at_ms: p.published_at,
            })
        })
        .collect();
    Ok(web::Json(DiscoverResponse { pointers, receipt }))
}

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(publish, withdraw, discover),
    components(schemas(PublishRequest, PublishedPointer, PublishResponse, WithdrawRequest, DiscoverRequest,
        DiscoveredPointer, DiscoverResponse, ErrorBody)),
    tags((name = "index", description = "The hashed index of sealed pointers (mutual TLS)"))
)]
pub struct IndexApiDoc;

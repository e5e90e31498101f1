//! The index API, over mutual TLS: custodians publish and withdraw their sealed
//! pointers; grant holders discover the pointers their grant covers. Every
//! discovery, and every refusal, is a ledger entry.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::web;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use locus_ledger::directory::LedgerDirectory;
use locus_ledger::sequencer::{Sequencer, SubmitError};
use locus_ledger::store::LedgerStore;
use locus_ledger::wire::Receipt;
use locus_platform::access::{check_token, oversized_token, Refused};
use locus_platform::http::{json_resource, ApiError, ErrorBody, ErrorKind, Json};
use locus_platform::openapi::{
    BodyTooLarge, NoClientCertificate, NotActiveHospital, NotJson, StorageUnavailable,
};
use locus_platform::tls::PeerCertificate;
use locus_protocol::directory::MemberRole;
use locus_protocol::entry::{Entry, Event, EventKind, IndexQueried, SignedEntry};
use locus_protocol::grant_token::{DiscoveryClaims, MAX_GRANT_TOKEN_LEN};
use locus_protocol::ids::{HospitalId, MemberId, PatientKey, PointerId, ScopeTag};
use locus_protocol::signing::SigningKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pointers::{NewPointer, PointerError, PointerStore};

/// Most pointers in one publish call.
pub const MAX_BATCH: usize = 1000;
pub use locus_protocol::pointer::{decode_sealed, SealedFault, MAX_SEALED_BYTES};
/// Most scope tags one pointer carries.
pub const MAX_SCOPE_TAGS: usize = 64;

// Each route takes the largest body its limits allow, written compactly, and
// a little room for whitespace: nothing more is read.
const UUID_JSON: usize = 36 + 3; // quoted, and a comma
const HEX32_JSON: usize = 64 + 3;
const JSON_SLACK: usize = 1024;
/// The largest `PublishedPointer`: its ids, every scope tag and the largest
/// sealed body in base64, with the field names.
const POINTER_JSON: usize =
    128 + 2 * UUID_JSON + HEX32_JSON * (1 + MAX_SCOPE_TAGS) + MAX_SEALED_BYTES.div_ceil(3) * 4;
/// `POST /index/pointers`: a full batch of the largest pointers (about 10 MB).
pub const PUBLISH_BODY_LIMIT: usize = MAX_BATCH * (POINTER_JSON + 1) + JSON_SLACK;
/// `POST /index/pointers/withdraw`: a full batch of pointer ids.
pub const WITHDRAW_BODY_LIMIT: usize = MAX_BATCH * UUID_JSON + JSON_SLACK;
/// `POST /index/discover`: the longest discovery token.
pub const DISCOVER_BODY_LIMIT: usize = MAX_GRANT_TOKEN_LEN + JSON_SLACK;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// 1 to 1000 pointers, published all or none.
    #[schema(min_items = 1, max_items = 1000)]
    pub pointers: Vec<PublishedPointer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedPointer {
    #[schema(value_type = locus_platform::openapi::PointerId)]
    pub pointer_id: PointerId,
    #[schema(value_type = locus_platform::openapi::PatientKey)]
    pub patient_key: PatientKey,
    /// 1 to 64 blinded tags the pointer is discoverable under.
    #[schema(value_type = Vec<locus_platform::openapi::ScopeTag>, min_items = 1, max_items = 64)]
    pub scope_tags: Vec<ScopeTag>,
    /// HPKE-sealed pointer body, 1 to 4096 bytes in standard base64.
    #[schema(
        min_length = 4,
        max_length = 5464,
        pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    )]
    pub sealed: String,
    /// A pointer of the same custodian this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<locus_platform::openapi::PointerId>)]
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
    /// 1 to 1000 of the caller's active pointers.
    #[schema(value_type = Vec<locus_platform::openapi::PointerId>, min_items = 1, max_items = 1000)]
    pub pointer_ids: Vec<PointerId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawResponse {
    /// Pointers withdrawn.
    pub withdrawn: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// The discovery token of a grant issued to the caller (EdDSA JWT, JWS
    /// compact form): the patient, the validity and the blinded tags, nothing
    /// else. Absent or empty: refused, and the refusal logged.
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub discovery: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiscoveredPointer {
    #[schema(value_type = locus_platform::openapi::PointerId)]
    pub pointer_id: PointerId,
    #[schema(value_type = locus_platform::openapi::MemberId)]
    pub custodian: HospitalId,
    /// Sealed to the custodian; only it can open this. Standard base64.
    #[schema(
        min_length = 4,
        max_length = 5464,
        pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    )]
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

impl ApiError for IndexError {
    const SUBJECT: &'static str = "index request";

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Refused(_) | Self::NotCustodian => ErrorKind::Forbidden,
            Self::BadRequest(_) => ErrorKind::BadRequest,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::Pointer(PointerError::Conflict(_)) => ErrorKind::Conflict,
            Self::Pointer(PointerError::NotOwned(_)) => ErrorKind::NotFound,
            Self::Pointer(PointerError::Db(_) | PointerError::Corrupt(_))
            | Self::Unavailable
            | Self::LedgerUnavailable(_) => ErrorKind::Unavailable,
        }
    }

    fn code(&self) -> Cow<'static, str> {
        match self {
            Self::Refused(r) => r.code(),
            Self::NotCustodian => "not_a_custodian".into(),
            Self::BadRequest(_) => "bad_request".into(),
            Self::TooLarge(_) => "too_large".into(),
            Self::Pointer(PointerError::Conflict(_)) => "conflict".into(),
            Self::Pointer(PointerError::NotOwned(_)) => "not_owned".into(),
            Self::Pointer(PointerError::Db(_) | PointerError::Corrupt(_)) | Self::Unavailable => {
                "unavailable".into()
            }
            Self::LedgerUnavailable(_) => "ledger_unavailable".into(),
        }
    }
}

locus_platform::response_error!(IndexError);

/// Registers the index routes, each path one resource (a wrong method is a
/// 405 naming the right one) bounding its own body.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/index")
            .service(json_resource("/pointers", PUBLISH_BODY_LIMIT).route(web::post().to(publish)))
            .service(
                json_resource("/pointers/withdraw", WITHDRAW_BODY_LIMIT)
                    .route(web::post().to(withdraw)),
            )
            .service(
                json_resource("/discover", DISCOVER_BODY_LIMIT).route(web::post().to(discover)),
            ),
    );
}

impl IndexState {
    /// Signs and logs one of the index's own entries, waiting until durable.
    async fn log(&self, event: Event) -> Result<Receipt, SubmitError> {
        let now = self.sequencer.clock().now_ms();
        let entry = Entry::new(self.member.clone(), self.key.key_id(), now, event);
        let signed = SignedEntry::sign(entry, &self.key)
            .map_err(|e| SubmitError::Malformed(e.to_string()))?;
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
        let member = locus_platform::access::active_peer(&directory, &peer.thumbprint)
            .map_err(|_| IndexError::NotCustodian)?;
        let entry = directory.get(&member).ok_or(IndexError::NotCustodian)?;
        if entry.role != MemberRole::Hospital {
            return Err(IndexError::NotCustodian);
        }
        member
            .as_str()
            .parse()
            .map_err(|_| IndexError::NotCustodian)
    }
}

/// Publishes a batch of the caller's sealed pointers (all or nothing).
#[utoipa::path(post, path = "/index/pointers", tag = "index", request_body = PublishRequest,
    responses((status = 200, body = PublishResponse),
        (status = 400, description = "Not a JSON object of this shape, or a batch, tag list or sealed body out of bounds", body = ErrorBody),
        (status = 404, description = "A superseded pointer that is not one of the caller's active pointers", body = ErrorBody),
        (status = 409, description = "A pointer id taken with other content", body = ErrorBody),
        (status = 413, description = "A sealed body over 4096 bytes, or a body over the route's limit", body = ErrorBody),
        NoClientCertificate, NotActiveHospital, StorageUnavailable, NotJson))]
pub async fn publish(
    state: web::Data<IndexState>,
    peer: PeerCertificate,
    body: Json<PublishRequest>,
) -> Result<web::Json<PublishResponse>, IndexError> {
    let custodian = state.custodian(&peer)?;
    let request = body.into_inner();
    if request.pointers.is_empty() || request.pointers.len() > MAX_BATCH {
        return Err(IndexError::BadRequest(format!(
            "a batch holds 1 to {MAX_BATCH} pointers"
        )));
    }
    let mut batch = Vec::with_capacity(request.pointers.len());
    for p in request.pointers {
        let sealed = decode_sealed(&p.sealed).map_err(|fault| match fault {
            SealedFault::NotBase64 => IndexError::BadRequest("sealed is not base64".into()),
            SealedFault::OutOfBounds => IndexError::TooLarge(format!(
                "a sealed pointer holds 1 to {MAX_SEALED_BYTES} bytes"
            )),
        })?;
        if p.scope_tags.is_empty() || p.scope_tags.len() > MAX_SCOPE_TAGS {
            return Err(IndexError::BadRequest(format!(
                "a pointer carries 1 to {MAX_SCOPE_TAGS} scope tags"
            )));
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
    let now = state.sequencer.clock().now_ms();
    let published = web::block(move || store.publish(&custodian, &batch, now)).await??;
    Ok(web::Json(PublishResponse { published }))
}

/// Withdraws some of the caller's pointers.
#[utoipa::path(post, path = "/index/pointers/withdraw", tag = "index", request_body = WithdrawRequest,
    responses((status = 200, body = WithdrawResponse),
        (status = 400, description = "Not a JSON object of this shape, or a batch out of bounds", body = ErrorBody),
        (status = 404, description = "A pointer that is not one of the caller's active pointers", body = ErrorBody),
        NoClientCertificate, NotActiveHospital, StorageUnavailable, BodyTooLarge, NotJson))]
pub async fn withdraw(
    state: web::Data<IndexState>,
    peer: PeerCertificate,
    body: Json<WithdrawRequest>,
) -> Result<web::Json<WithdrawResponse>, IndexError> {
    let custodian = state.custodian(&peer)?;
    let ids = body.into_inner().pointer_ids;
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(IndexError::BadRequest(format!(
            "withdraw 1 to {MAX_BATCH} pointers at a time"
        )));
    }
    let store = state.pointers.clone();
    let withdrawn = web::block(move || store.withdraw(&custodian, &ids)).await??;
    Ok(web::Json(WithdrawResponse { withdrawn }))
}

/// The pointers the caller's grant covers, and nothing about the others.
#[utoipa::path(post, path = "/index/discover", tag = "index", request_body = DiscoverRequest,
    responses((status = 200, body = DiscoverResponse),
        (status = 400, description = "Not a JSON object of this shape, or a token longer than any discovery token (not logged)", body = ErrorBody),
        (status = 403, description = "No grant, or one that does not hold for the caller (logged as a refusal)", body = ErrorBody),
        (status = 503, description = "The ledger cannot log the discovery, or storage unavailable", body = ErrorBody),
        NoClientCertificate, BodyTooLarge, NotJson))]
pub async fn discover(
    state: web::Data<IndexState>,
    peer: PeerCertificate,
    body: Json<DiscoverRequest>,
) -> Result<web::Json<DiscoverResponse>, IndexError> {
    // Malformed is not a refusal: only a request that could be a discovery is logged.
    if let Some(message) = oversized_token("discovery", body.discovery.as_deref()) {
        return Err(IndexError::BadRequest(message));
    }
    let now = state.sequencer.clock().now_secs();
    let checked = {
        let directory = state.directory.read();
        check_token::<DiscoveryClaims>(&directory, body.discovery.as_deref(), &peer.thumbprint, now)
    };
    let authorized = match checked {
        Ok(authorized) => authorized,
        Err(refused) => {
            state.log_refusal(&refused).await;
            return Err(refused.into());
        }
    };
    let claims = &authorized.claims;
    let (ledger, grant) = (state.ledger.clone(), claims.jti);
    let revoked = || Refused {
        requester: Some(authorized.requester.clone()),
        grant: Some(claims.jti),
        subject: Some(claims.sub),
        ..Refused::new(
            locus_protocol::entry::RefusalReason::Revoked,
            "the grant was revoked",
        )
    };
    if web::block(move || ledger.grant_has(EventKind::GrantRevoked, &grant))
        .await?
        .map_err(|_| IndexError::Unavailable)?
    {
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
        .map(|p| DiscoveredPointer {
            pointer_id: p.pointer_id,
            custodian: p.custodian,
            sealed: BASE64.encode(&p.sealed),
            published_at_ms: p.published_at,
        })
        .collect();
    Ok(web::Json(DiscoverResponse { pointers, receipt }))
}

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(publish, withdraw, discover),
    components(schemas(PublishRequest, PublishedPointer, PublishResponse, WithdrawRequest, WithdrawResponse,
        DiscoverRequest, DiscoveredPointer, DiscoverResponse, ErrorBody)),
    tags((name = "index", description = "The hashed index of sealed pointers (mutual TLS)"))
)]
pub struct IndexApiDoc;

//! The consent service's HTTP APIs: one for consortium members over mutual
//! TLS (`/consent/...`), one for patients' devices (`/patient/...`).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_platform::http::{json_resource, ApiError, ErrorBody, ErrorKind, Json};
use locus_platform::openapi::{BodyTooLarge, NotActiveHospital, NotJson};
use locus_platform::tls::PeerCertificate;
use locus_protocol::consent::{Decision, Revocation, RuleRevocation, StandingRule};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::grant::{DataPeriod, GrantClaims, PurposeOfUse};
use locus_protocol::ids::{GrantId, RuleId};
use locus_protocol::ids::{PatientKey, RequestId};
use locus_protocol::scope::ScopeSet;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::ToSchema;

use crate::acts::{ActError, Consent, HistoryEvent};
use crate::session::Session;

locus_platform::error_responses! {
    /// Every act's answer while storage or the ledger cannot be reached.
    Unavailable = 503, "Storage or the ledger is unavailable; an act the ledger could not take completes once it is logged";
    /// A body of the wrong shape on a route with no narrower words for it.
    OutOfShape = 400, "Not a JSON object of this shape, or a value out of range";
    /// A signed-in route's refusal of a missing or stale session.
    NoSession = 401, "No session, an expired one, or one of a removed device";
    /// A signed act's refusal of its session or device signature.
    UnsignedAct = 401, "No valid session, or the device signature does not verify";
    /// A signed act by a device of another patient.
    NotOwnDevice = 403, "Not the signed-in patient's device";
    /// Sign-in with a device that is not enrolled.
    UnknownDevice = 404, "No enrolled device with this id";
    /// The anonymous routes' rate limits.
    Throttled = 429, "Too many attempts from this address or for this device; see Retry-After";
}

impl ApiError for ActError {
    const SUBJECT: &'static str = "consent request";

    fn kind(&self) -> ErrorKind {
        match self {
            Self::BadRequest(_) | Self::Wider(_) => ErrorKind::BadRequest,
            Self::BadCode | Self::Unauthenticated | Self::BadSignature => {
                ErrorKind::Unauthenticated
            }
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::AlreadyDecided | Self::Conflict(_) => ErrorKind::Conflict,
            Self::TooMany(wait) => ErrorKind::TooMany { retry_after: *wait },
            Self::Ledger(_) | Self::Pending | Self::Unavailable => ErrorKind::Unavailable,
        }
    }

    fn code(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::BadRequest(_) => "bad_request",
            Self::Wider(_) => "wider_than_requested",
            Self::BadCode => "bad_enrolment_code",
            Self::Unauthenticated => "unauthenticated",
            Self::BadSignature => "bad_signature",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::AlreadyDecided => "already_decided",
            Self::Conflict(_) => "conflict",
            Self::TooMany(_) => "too_many_requests",
            Self::Ledger(_) => "ledger_refused",
            Self::Pending => "ledger_unavailable",
            Self::Unavailable => "unavailable",
        })
    }
}

locus_platform::response_error!(ActError);

type State = web::Data<Arc<Consent>>;

fn signature(encoded: &str) -> Result<Vec<u8>, ActError> {
    URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| ActError::BadRequest("signature is not base64url".into()))
}

/// The signed-in patient: a valid session of a device still enrolled.
async fn session(state: &Consent, req: &HttpRequest) -> Result<Session, ActError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ActError::Unauthenticated)?;
    state.session(header).await
}

/// Counts an anonymous attempt against the client's address and, where one
/// is named, the device.
fn throttle(
    state: &Consent,
    req: &HttpRequest,
    device: Option<&DeviceKeyId>,
) -> Result<(), ActError> {
    let address = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    state
        .throttles
        .per_address
        .allow(&address)
        .map_err(ActError::TooMany)?;
    if let Some(device) = device {
        state
            .throttles
            .per_device
            .allow(&device.to_string())
            .map_err(ActError::TooMany)?;
    }
    Ok(())
}

// ---- members (mutual TLS) ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentCodeRequest {
    /// The patient key (hex).
    #[schema(value_type = locus_platform::openapi::PatientKey)]
    pub subject: PatientKey,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentCode {
    /// Single use, for the patient to type into their phone.
    pub code: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A one-time code for the patient to enrol a phone, issued at the hospital's desk.
#[utoipa::path(post, path = "/consent/enrolment-codes", tag = "consent-members", request_body = EnrolmentCodeRequest,
    responses((status = 200, body = EnrolmentCode),
        OutOfShape, NotActiveHospital, BodyTooLarge, NotJson, Unavailable))]
pub async fn enrolment_code(
    state: State,
    peer: PeerCertificate,
    body: Json<EnrolmentCodeRequest>,
) -> Result<web::Json<EnrolmentCode>, ActError> {
    let hospital = state.hospital(&peer.thumbprint)?;
    let (code, expires_at) = state.issue_enrolment_code(&hospital, &body.subject).await?;
    Ok(web::Json(EnrolmentCode { code, expires_at }))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The patient key (hex).
    #[schema(value_type = locus_platform::openapi::PatientKey)]
    pub subject: PatientKey,
    /// An HL7 v3 PurposeOfUse code, e.g. `TREAT`.
    #[schema(value_type = String)]
    pub purpose: PurposeOfUse,
    /// SMART scopes, space-separated.
    #[schema(value_type = String)]
    pub scope: ScopeSet,
    /// `{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`, inclusive.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data_period: Option<DataPeriod>,
    /// Defaults by purpose (see `acts::default_duration`).
    #[serde(default)]
    pub duration_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestStatus {
    #[schema(value_type = locus_platform::openapi::RequestId)]
    pub request: RequestId,
    /// `pending`, `approved` or `refused`.
    #[schema(value_type = String)]
    pub status: crate::store::RequestStatus,
    /// The grant token, once approved (only ever shown to the requester): for
    /// the custodians.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Its discovery token: for the index, which sees no scopes or dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
}

/// A hospital asks for access; a standing rule of the patient's may grant it at once.
#[utoipa::path(post, path = "/consent/requests", tag = "consent-members", request_body = NewRequest,
    responses((status = 200, body = RequestStatus),
        (status = 400, description = "Not a JSON object of this shape, terms out of range, or a request that could not be issued as asked", body = ErrorBody),
        NotActiveHospital, BodyTooLarge, NotJson, Unavailable))]
pub async fn new_request(
    state: State,
    peer: PeerCertificate,
    body: Json<NewRequest>,
) -> Result<web::Json<RequestStatus>, ActError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let r = body.into_inner();
    let (request, status, grant) = state
        .request(
            &requester,
            r.subject,
            r.purpose,
            r.scope,
            r.data_period,
            r.duration_secs
                .unwrap_or_else(|| crate::acts::default_duration(r.purpose)),
        )
        .await?;
    let (grant, discovery) = grant.map_or((None, None), |(g, d)| (Some(g), Some(d)));
    Ok(web::Json(RequestStatus {
        request,
        status,
        grant,
        discovery,
    }))
}

/// One of the caller's own requests, with its grant once approved.
#[utoipa::path(get, path = "/consent/requests/{id}", tag = "consent-members",
    params(("id" = String, Path, description = "the request id")),
    responses((status = 200, body = RequestStatus),
        (status = 404, description = "No request of the caller's with this id", body = ErrorBody),
        NotActiveHospital, Unavailable))]
pub async fn request_status(
    state: State,
    peer: PeerCertificate,
    id: web::Path<RequestId>,
) -> Result<web::Json<RequestStatus>, ActError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let (store, rid) = (state.store.clone(), *id);
    let request = tokio::task::spawn_blocking(move || store.request(&rid))
        .await
        .map_err(|_| ActError::Unavailable)??
        .filter(|r| r.requester == requester)
        .ok_or(ActError::NotFound("request"))?;
    let stored = match &request.grant_id {
        Some(g) => {
            let (store, gid) = (state.store.clone(), *g);
            tokio::task::spawn_blocking(move || store.grant(&gid))
                .await
                .map_err(|_| ActError::Unavailable)??
        }
        None => None,
    };
    let discovery = stored
        .as_ref()
        .map(|g| state.discovery_token(g))
        .transpose()?;
    let grant = stored.map(|g| g.token);
    Ok(web::Json(RequestStatus {
        request: *id,
        status: request.status,
        grant,
        discovery,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    /// The patient key (hex).
    #[schema(value_type = locus_platform::openapi::PatientKey)]
    pub subject: PatientKey,
    /// SMART scopes, space-separated.
    #[schema(value_type = String)]
    pub scope: ScopeSet,
    pub reason: String,
    pub duration_secs: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmergencyGrant {
    /// The grant token, for the custodians.
    pub grant: String,
    /// Its discovery token, for the index.
    pub discovery: String,
}

/// Emergency access without the patient: a short grant, flagged on the ledger.
#[utoipa::path(post, path = "/consent/emergency", tag = "consent-members", request_body = EmergencyRequest,
    responses((status = 200, body = EmergencyGrant),
        (status = 400, description = "Not a JSON object of this shape, a duration out of range, or a reason that is not one line of plain text", body = ErrorBody),
        NotActiveHospital, BodyTooLarge, NotJson, Unavailable))]
pub async fn emergency(
    state: State,
    peer: PeerCertificate,
    body: Json<EmergencyRequest>,
) -> Result<web::Json<EmergencyGrant>, ActError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let e = body.into_inner();
    let (grant, discovery) = state
        .emergency(&requester, e.subject, e.scope, e.reason, e.duration_secs)
        .await?;
    Ok(web::Json(EmergencyGrant { grant, discovery }))
}

/// A grant as a FHIR R4 Consent, for its requester.
#[utoipa::path(get, path = "/consent/grants/{id}/fhir", tag = "consent-members",
    params(("id" = String, Path, description = "the grant id")),
    responses((status = 200, description = "A FHIR R4 Consent resource", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "No grant of the caller's with this id", body = ErrorBody),
        NotActiveHospital, Unavailable))]
pub async fn grant_as_fhir(
    state: State,
    peer: PeerCertificate,
    id: web::Path<GrantId>,
) -> Result<HttpResponse, ActError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let (store, gid) = (state.store.clone(), *id);
    let grant = tokio::task::spawn_blocking(move || store.grant(&gid))
        .await
        .map_err(|_| ActError::Unavailable)??
        .filter(|g| g.requester == requester)
        .ok_or(ActError::NotFound("grant"))?;
    fhir_response(&grant, state.clock.now_secs())
}

fn fhir_response(grant: &crate::store::Grant, now: i64) -> Result<HttpResponse, ActError> {
    let claims: GrantClaims =
        serde_json::from_str(&grant.claims).map_err(|_| ActError::Unavailable)?;
    let resource = crate::fhir::consent_resource(&claims, grant.revoked_at.is_some(), now);
    Ok(HttpResponse::Ok()
        .content_type("application/fhir+json")
        .json(resource))
}

/// Body limits per route, in bytes: each a few times the largest body the
/// route's checks let through (scopes, JWKs, signatures, a reason of 280
/// characters), so that nothing larger is even read.
const SMALL_BODY: usize = 1024;
const REQUEST_BODY: usize = 8 * 1024;
const SIGNED_BODY: usize = 16 * 1024;

pub fn configure_members(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/consent/grants/{id}/fhir").route(web::get().to(grant_as_fhir)))
        .service(
            json_resource("/consent/enrolment-codes", SMALL_BODY)
                .route(web::post().to(enrolment_code)),
        )
        .service(
            json_resource("/consent/requests", REQUEST_BODY).route(web::post().to(new_request)),
        )
        .service(web::resource("/consent/requests/{id}").route(web::get().to(request_status)))
        .service(
            json_resource("/consent/emergency", REQUEST_BODY).route(web::post().to(emergency)),
        );
}

// ---- patients ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrol {
    pub code: String,
    /// The device's public key as WebCrypto exports it (JWK).
    #[schema(value_type = Object)]
    pub device_key: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    /// The device's RFC 7638 thumbprint (base64url).
    #[schema(value_type = locus_platform::openapi::DeviceKeyId)]
    pub device: DeviceKeyId,
    /// The patient key (hex).
    #[schema(value_type = locus_platform::openapi::PatientKey)]
    pub subject: PatientKey,
}

/// Redeems an enrolment code with a fresh device key.
#[utoipa::path(post, path = "/patient/enrol", tag = "consent-patients", request_body = Enrol,
    responses((status = 200, body = Enrolled),
        (status = 401, description = "The code is unknown, used or expired", body = ErrorBody),
        (status = 409, description = "The device key was enrolled before", body = ErrorBody),
        OutOfShape, BodyTooLarge, NotJson, Throttled, Unavailable))]
pub async fn enrol(
    state: State,
    req: HttpRequest,
    body: Json<Enrol>,
) -> Result<web::Json<Enrolled>, ActError> {
    throttle(&state, &req, None)?;
    let (device, subject) = state
        .enrol(&body.code, &body.device_key.to_string())
        .await?;
    Ok(web::Json(Enrolled { device, subject }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    #[schema(value_type = locus_platform::openapi::DeviceKeyId)]
    pub device: DeviceKeyId,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Challenge {
    /// Single use, short-lived: the device signs it to sign in.
    pub challenge: String,
}

/// A sign-in challenge for an enrolled device.
#[utoipa::path(post, path = "/patient/challenge", tag = "consent-patients", request_body = ChallengeRequest,
    responses((status = 200, body = Challenge),
        OutOfShape, UnknownDevice, BodyTooLarge, NotJson, Throttled, Unavailable))]
pub async fn challenge(
    state: State,
    req: HttpRequest,
    body: Json<ChallengeRequest>,
) -> Result<web::Json<Challenge>, ActError> {
    throttle(&state, &req, Some(&body.device))?;
    let challenge = state.challenge(&body.device).await?;
    Ok(web::Json(Challenge { challenge }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(value_type = locus_platform::openapi::DeviceKeyId)]
    pub device: DeviceKeyId,
    pub challenge: String,
    /// base64url signature over the `DeviceChallenge` signing bytes.
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionToken {
    /// The bearer token of the patient's other calls.
    pub session: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Signs a patient in: the device signs its challenge, once.
#[utoipa::path(post, path = "/patient/session", tag = "consent-patients", request_body = SignIn,
    responses((status = 200, body = SessionToken),
        (status = 401, description = "The signature does not verify, or the challenge is used or expired", body = ErrorBody),
        OutOfShape, UnknownDevice, BodyTooLarge, NotJson, Throttled, Unavailable))]
pub async fn sign_in(
    state: State,
    req: HttpRequest,
    body: Json<SignIn>,
) -> Result<web::Json<SessionToken>, ActError> {
    throttle(&state, &req, Some(&body.device))?;
    let (session, expires_at) = state
        .sign_in(&body.device, &body.challenge, &signature(&body.signature)?)
        .await?;
    Ok(web::Json(SessionToken {
        session,
        expires_at,
    }))
}

/// A pending request in plain words, with its exact terms for the device to sign.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingRequest {
    pub request: String,
    pub summary: String,
    /// The request's terms, as the ledger holds them.
    #[schema(value_type = Object)]
    pub terms: serde_json::Value,
}

/// The patient's pending requests.
#[utoipa::path(get, path = "/patient/requests", tag = "consent-patients", security(("session" = [])),
    responses((status = 200, body = Vec<PendingRequest>),
        NoSession, Unavailable))]
pub async fn pending(
    state: State,
    req: HttpRequest,
) -> Result<web::Json<Vec<PendingRequest>>, ActError> {
    let session = session(&state, &req).await?;
    let (store, s) = (state.store.clone(), session.sub);
    let rows = tokio::task::spawn_blocking(move || {
        store.requests_of(&s, crate::store::RequestStatus::Pending)
    })
    .await
    .map_err(|_| ActError::Unavailable)??;
    let mut out = Vec::new();
    for row in rows {
        let terms: locus_protocol::consent::RequestTerms =
            serde_json::from_str(&row.terms).map_err(|_| ActError::Unavailable)?;
        out.push(PendingRequest {
            request: row.request_id.to_string(),
            summary: crate::words::describe_request(state.directory.directory(), &terms),
            terms: serde_json::to_value(&terms).map_err(|_| ActError::Unavailable)?,
        });
    }
    Ok(web::Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// An approval (the request's terms, or narrower) or a refusal, with
    /// `"decision": "approve" | "refuse"`.
    #[schema(value_type = Object)]
    pub decision: Decision,
    /// base64url device signature over the decision's signing bytes.
    #[schema(value_type = locus_platform::openapi::DeviceSignature)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    /// The grant issued, or null for a refusal.
    #[schema(value_type = Option<locus_platform::openapi::GrantId>)]
    pub grant: Option<GrantId>,
}

/// The patient's signed answer to one of their requests.
#[utoipa::path(post, path = "/patient/decisions", tag = "consent-patients", request_body = Decide, security(("session" = [])),
    responses((status = 200, body = Decided),
        (status = 400, description = "Not a JSON object of this shape, or an approval wider than the request", body = ErrorBody),
        (status = 403, description = "Not the signed-in patient's device, or the requester is no longer active", body = ErrorBody),
        (status = 404, description = "No request of this patient's", body = ErrorBody),
        (status = 409, description = "The request was decided already, or is being decided", body = ErrorBody),
        UnsignedAct, BodyTooLarge, NotJson, Unavailable))]
pub async fn decide(
    state: State,
    req: HttpRequest,
    body: Json<Decide>,
) -> Result<web::Json<Decided>, ActError> {
    let session = session(&state, &req).await?;
    let grant = state
        .decide(&session, &body.decision, &signature(&body.signature)?)
        .await?;
    Ok(web::Json(Decided { grant }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    #[schema(value_type = Object)]
    pub revocation: Revocation,
    /// base64url device signature over the revocation's signing bytes.
    #[schema(value_type = locus_platform::openapi::DeviceSignature)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    #[schema(value_type = locus_platform::openapi::GrantId)]
    pub revoked: GrantId,
}

/// The patient revokes one of their grants.
#[utoipa::path(post, path = "/patient/revocations", tag = "consent-patients", request_body = Revoke, security(("session" = [])),
    responses((status = 200, body = Revoked),
        (status = 404, description = "No grant of this patient's", body = ErrorBody),
        (status = 409, description = "The grant was revoked already, or is being revoked", body = ErrorBody),
        OutOfShape, UnsignedAct, NotOwnDevice, BodyTooLarge, NotJson, Unavailable))]
pub async fn revoke(
    state: State,
    req: HttpRequest,
    body: Json<Revoke>,
) -> Result<web::Json<Revoked>, ActError> {
    let session = session(&state, &req).await?;
    state
        .revoke(&session, &body.revocation, &signature(&body.signature)?)
        .await?;
    Ok(web::Json(Revoked {
        revoked: body.revocation.grant,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    #[schema(value_type = Object)]
    pub rule: StandingRule,
    /// base64url device signature over the rule's signing bytes.
    #[schema(value_type = locus_platform::openapi::DeviceSignature)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleAdded {
    #[schema(value_type = locus_platform::openapi::RuleId)]
    pub rule: RuleId,
}

/// The patient signs a standing rule.
#[utoipa::path(post, path = "/patient/rules", tag = "consent-patients", request_body = NewRule, security(("session" = [])),
    responses((status = 200, body = RuleAdded),
        (status = 404, description = "The signing device is not enrolled", body = ErrorBody),
        (status = 409, description = "A rule with this id exists", body = ErrorBody),
        OutOfShape, UnsignedAct, NotOwnDevice, BodyTooLarge, NotJson, Unavailable))]
pub async fn add_rule(
    state: State,
    req: HttpRequest,
    body: Json<NewRule>,
) -> Result<web::Json<RuleAdded>, ActError> {
    let session = session(&state, &req).await?;
    state
        .add_rule(&session, &body.rule, &signature(&body.signature)?)
        .await?;
    Ok(web::Json(RuleAdded {
        rule: body.rule.rule,
    }))
}

/// A standing rule in force, in plain words, with its signed terms.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSummary {
    #[schema(value_type = locus_platform::openapi::RuleId)]
    pub rule: RuleId,
    /// The rule in plain words.
    pub summary: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The rule as the patient signed it.
    #[schema(value_type = Object)]
    pub terms: StandingRule,
}

/// The patient's standing rules in force, oldest first.
#[utoipa::path(get, path = "/patient/rules", tag = "consent-patients", security(("session" = [])),
    responses((status = 200, body = Vec<RuleSummary>),
        NoSession, Unavailable))]
pub async fn rules(
    state: State,
    req: HttpRequest,
) -> Result<web::Json<Vec<RuleSummary>>, ActError> {
    let session = session(&state, &req).await?;
    let rules = state.rules(&session).await?;
    Ok(web::Json(
        rules
            .into_iter()
            .map(|(row, rule)| RuleSummary {
                rule: rule.rule,
                summary: crate::words::describe_rule(state.directory.directory(), &rule),
                created_at: row.created_at,
                terms: rule,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRule {
    /// `{"rule", "subject", "device", "signed_at_ms"}`, as the device signs it.
    #[schema(value_type = Object)]
    pub revocation: RuleRevocation,
    /// base64url device signature over the revocation's signing bytes.
    #[schema(value_type = locus_platform::openapi::DeviceSignature)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleRevoked {
    #[schema(value_type = locus_platform::openapi::RuleId)]
    pub revoked: RuleId,
}

/// The patient revokes one of their standing rules; it stops matching at once.
#[utoipa::path(post, path = "/patient/rule-revocations", tag = "consent-patients", request_body = RevokeRule,
    security(("session" = [])),
    responses((status = 200, body = RuleRevoked),
        (status = 404, description = "No rule of this patient's", body = ErrorBody),
        (status = 409, description = "The rule was revoked already, or is being revoked", body = ErrorBody),
        OutOfShape, UnsignedAct, NotOwnDevice, BodyTooLarge, NotJson, Unavailable))]
pub async fn revoke_rule(
    state: State,
    req: HttpRequest,
    body: Json<RevokeRule>,
) -> Result<web::Json<RuleRevoked>, ActError> {
    let session = session(&state, &req).await?;
    state
        .revoke_rule(&session, &body.revocation, &signature(&body.signature)?)
        .await?;
    Ok(web::Json(RuleRevoked {
        revoked: body.revocation.rule,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantSummary {
    pub grant: String,
    /// The grant in plain words.
    pub summary: String,
    pub emergency: bool,
    pub revoked: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The patient's grants, newest first; emergency ones are flagged.
#[utoipa::path(get, path = "/patient/grants", tag = "consent-patients", security(("session" = [])),
    responses((status = 200, body = Vec<GrantSummary>),
        NoSession, Unavailable))]
pub async fn grants(
    state: State,
    req: HttpRequest,
) -> Result<web::Json<Vec<GrantSummary>>, ActError> {
    let session = session(&state, &req).await?;
    let (store, s) = (state.store.clone(), session.sub);
    let rows = tokio::task::spawn_blocking(move || store.grants_of(&s))
        .await
        .map_err(|_| ActError::Unavailable)??;
    let mut out = Vec::new();
    for row in rows {
        let claims: GrantClaims =
            serde_json::from_str(&row.claims).map_err(|_| ActError::Unavailable)?;
        out.push(GrantSummary {
            grant: row.grant_id.to_string(),
            summary: crate::words::describe_grant(state.directory.directory(), &claims),
            emergency: row.basis == crate::store::BasisKind::Emergency,
            revoked: row.revoked_at.is_some(),
            expires_at: row.expires_at,
        });
    }
    Ok(web::Json(out))
}

/// Everything the ledger holds about the patient, newest first, in words.
#[utoipa::path(get, path = "/patient/history", tag = "consent-patients", security(("session" = [])),
    responses((status = 200, body = Vec<HistoryEvent>),
        NoSession, Unavailable))]
pub async fn history(
    state: State,
    req: HttpRequest,
) -> Result<web::Json<Vec<HistoryEvent>>, ActError> {
    let session = session(&state, &req).await?;
    Ok(web::Json(state.history(&session).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceRemoved {
    #[schema(value_type = locus_platform::openapi::DeviceKeyId)]
    pub removed: DeviceKeyId,
}

/// The patient removes one of their devices (from any of their devices).
#[utoipa::path(delete, path = "/patient/devices/{id}", tag = "consent-patients", security(("session" = [])),
    params(("id" = String, Path, description = "the device's RFC 7638 thumbprint")),
    responses((status = 200, body = DeviceRemoved),
        (status = 404, description = "No enrolled device of this patient's", body = ErrorBody),
        (status = 409, description = "The device is being removed", body = ErrorBody),
        NoSession, Unavailable))]
pub async fn remove_device(
    state: State,
    req: HttpRequest,
    device: web::Path<DeviceKeyId>,
) -> Result<web::Json<DeviceRemoved>, ActError> {
    let session = session(&state, &req).await?;
    state.remove_device(&session, &device).await?;
    Ok(web::Json(DeviceRemoved { removed: *device }))
}

/// One of the patient's own grants as a FHIR R4 Consent.
#[utoipa::path(get, path = "/patient/grants/{id}/fhir", tag = "consent-patients", security(("session" = [])),
    params(("id" = String, Path, description = "the grant id")),
    responses((status = 200, description = "A FHIR R4 Consent resource", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "No grant of this patient's", body = ErrorBody),
        NoSession, Unavailable))]
pub async fn own_grant_as_fhir(
    state: State,
    req: HttpRequest,
    id: web::Path<GrantId>,
) -> Result<HttpResponse, ActError> {
    let session = session(&state, &req).await?;
    let (store, gid) = (state.store.clone(), *id);
    let grant = tokio::task::spawn_blocking(move || store.grant(&gid))
        .await
        .map_err(|_| ActError::Unavailable)??
        .filter(|g| g.patient_key == session.sub)
        .ok_or(ActError::NotFound("grant"))?;
    fhir_response(&grant, state.clock.now_secs())
}

pub fn configure_patients(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/patient/enrol", REQUEST_BODY).route(web::post().to(enrol)))
        .service(json_resource("/patient/challenge", SMALL_BODY).route(web::post().to(challenge)))
        .service(json_resource("/patient/session", SMALL_BODY).route(web::post().to(sign_in)))
        .service(web::resource("/patient/requests").route(web::get().to(pending)))
        .service(json_resource("/patient/decisions", SIGNED_BODY).route(web::post().to(decide)))
        .service(json_resource("/patient/revocations", REQUEST_BODY).route(web::post().to(revoke)))
        .service(
            json_resource("/patient/rules", SIGNED_BODY)
                .route(web::post().to(add_rule))
                .route(web::get().to(rules)),
        )
        .service(
            json_resource("/patient/rule-revocations", REQUEST_BODY)
                .route(web::post().to(revoke_rule)),
        )
        .service(web::resource("/patient/grants").route(web::get().to(grants)))
        .service(web::resource("/patient/grants/{id}/fhir").route(web::get().to(own_grant_as_fhir)))
        .service(web::resource("/patient/history").route(web::get().to(history)))
        .service(web::resource("/patient/devices/{id}").route(web::delete().to(remove_device)));
}

/// The members' API document: every route is over mutual TLS, the caller
/// named by its consortium certificate.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(grant_as_fhir, enrolment_code, new_request, request_status, emergency),
    components(schemas(EnrolmentCodeRequest, EnrolmentCode, NewRequest, RequestStatus, EmergencyRequest,
        EmergencyGrant, ErrorBody)),
    modifiers(&MutualTls),
    security(("mutual_tls" = [])),
    tags((name = "consent-members", description = "Enrolment codes, access requests, emergency access and grants, for hospitals (mutual TLS)"))
)]
pub struct ConsentMemberApiDoc;

/// The patients' API document: phones sign in with a device key and send the
/// session as a bearer token.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(enrol, challenge, sign_in, pending, decide, revoke, add_rule, rules, revoke_rule, grants, own_grant_as_fhir, history,
        remove_device),
    components(schemas(Enrol, Enrolled, ChallengeRequest, Challenge, SignIn, SessionToken, PendingRequest, Decide,
        Decided, Revoke, Revoked, NewRule, RuleAdded, RuleSummary, RevokeRule, RuleRevoked, GrantSummary, HistoryEvent, DeviceRemoved, ErrorBody)),
    modifiers(&PatientSession),
    tags((name = "consent-patients", description = "Enrolment, sign-in, decisions, revocations, rules, grants and history, for patients' devices"))
)]
pub struct ConsentPatientApiDoc;

/// Declares the `mutual_tls` scheme the members' document requires.
#[derive(Debug)]
struct MutualTls;

impl utoipa::Modify for MutualTls {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "mutual_tls",
                SecurityScheme::MutualTls {
                    description: Some(
                        "A client certificate of an active consortium hospital".into(),
                    ),
                    deprecated: None,
                    extensions: None,
                },
            );
    }
}

/// Declares the `session` bearer scheme of the patients' signed-in routes.
#[derive(Debug)]
struct PatientSession;

impl utoipa::Modify for PatientSession {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("The session `POST /patient/session` returns".into());
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("session", SecurityScheme::Http(bearer));
    }
}

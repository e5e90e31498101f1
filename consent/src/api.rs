//! The consent service's HTTP APIs: one for consortium members over mutual
//! TLS (`/consent/...`), one for patients' devices (`/patient/...`).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use locus_protocol::consent::{Decision, Revocation, StandingRule};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::grant::{DataPeriod, GrantClaims, PurposeOfUse};
use locus_protocol::ids::{PatientKey, RequestId};
use locus_protocol::scope::ScopeSet;
use locus_service::http::json_error;
use locus_service::tls::PeerCertificate;
use serde::{Deserialize, Serialize};

use crate::service::{Consent, ConsentError};
use crate::session::Session;

impl ResponseError for ConsentError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Wider(_) => StatusCode::BAD_REQUEST,
            Self::BadCode | Self::Unauthenticated | Self::BadSignature => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::AlreadyDecided => StatusCode::CONFLICT,
            Self::Ledger(_) | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            Self::BadRequest(_) => "bad_request",
            Self::Wider(_) => "wider_than_requested",
            Self::BadCode => "bad_enrolment_code",
            Self::Unauthenticated => "unauthenticated",
            Self::BadSignature => "bad_signature",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::AlreadyDecided => "already_decided",
            Self::Ledger(_) => "ledger_unavailable",
            Self::Unavailable => "unavailable",
        };
        if self.status_code().is_server_error() {
            tracing::error!(error = ?self, "consent request failed");
        } else {
            tracing::info!(code, "consent request refused");
        }
        json_error(self.status_code(), code, &self.to_string())
    }
}

type State = web::Data<Arc<Consent>>;

fn signature(encoded: &str) -> Result<Vec<u8>, ConsentError> {
    URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| ConsentError::BadRequest("signature is not base64url".into()))
}

fn session(state: &Consent, req: &HttpRequest) -> Result<Session, ConsentError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ConsentError::Unauthenticated)?;
    state.session(header)
}

// ---- members (mutual TLS) ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentCodeRequest {
    pub subject: PatientKey,
}

async fn enrolment_code(state: State, peer: PeerCertificate, body: web::Json<EnrolmentCodeRequest>) -> Result<HttpResponse, ConsentError> {
    let hospital = state.hospital(&peer.thumbprint)?;
    let (code, expires_at) = state.issue_enrolment_code(&hospital, &body.subject).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "code": code, "expires_at": expires_at })))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub subject: PatientKey,
    pub purpose: PurposeOfUse,
    pub scope: ScopeSet,
    #[serde(default)]
    pub data_period: Option<DataPeriod>,
    /// Defaults by purpose (see `service::default_duration`).
    #[serde(default)]
    pub duration_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestStatus {
    pub request: RequestId,
    pub status: String,
    /// The grant token, once approved (only ever shown to the requester): for
    /// the custodians.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Its discovery token: for the index, which sees no scopes or dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
}

async fn new_request(state: State, peer: PeerCertificate, body: web::Json<NewRequest>) -> Result<HttpResponse, ConsentError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let r = body.into_inner();
    let (request, status, grant) = state
        .request(
            &requester,
            r.subject,
            r.purpose,
            r.scope,
            r.data_period,
            r.duration_secs.unwrap_or_else(|| crate::service::default_duration(r.purpose)),
        )
        .await?;
    let (grant, discovery) = grant.map_or((None, None), |(g, d)| (Some(g), Some(d)));
    Ok(HttpResponse::Ok().json(RequestStatus { request, status: status.into(), grant, discovery }))
}

async fn request_status(state: State, peer: PeerCertificate, id: web::Path<RequestId>) -> Result<HttpResponse, ConsentError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let (store, rid) = (state.store.clone(), id.to_string());
    let request = tokio::task::spawn_blocking(move || store.request(&rid))
        .await
        .map_err(|_| ConsentError::Unavailable)??
        .filter(|r| r.requester == requester.as_str())
        .ok_or(ConsentError::NotFound("request"))?;
    let stored = match &request.grant_id {
        Some(g) => {
            let (store, gid) = (state.store.clone(), g.clone());
            tokio::task::spawn_blocking(move || store.grant(&gid))
                .await
                .map_err(|_| ConsentError::Unavailable)??
        }
        None => None,
    };
    let discovery = stored.as_ref().map(|g| state.discovery_token(g)).transpose()?;
    let grant = stored.map(|g| g.token);
    Ok(HttpResponse::Ok().json(RequestStatus { request: *id, status: request.status, grant, discovery }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyRequest {
    pub subject: PatientKey,
    pub scope: ScopeSet,
    pub reason: String,
    pub duration_secs: i64,
}

async fn emergency(state: State, peer: PeerCertificate, body: web::Json<EmergencyRequest>) -> Result<HttpResponse, ConsentError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let e = body.into_inner();
    let (grant, discovery) = state.emergency(&requester, e.subject, e.scope, e.reason, e.duration_secs).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "grant": grant, "discovery": discovery })))
}

/// A grant as a FHIR R4 Consent, for its requester.
async fn grant_as_fhir(state: State, peer: PeerCertificate, id: web::Path<String>) -> Result<HttpResponse, ConsentError> {
    let requester = state.hospital(&peer.thumbprint)?;
    let (store, gid) = (state.store.clone(), id.into_inner());
    let grant = tokio::task::spawn_blocking(move || store.grant(&gid))
        .await
        .map_err(|_| ConsentError::Unavailable)??
        .filter(|g| g.requester == requester.as_str())
        .ok_or(ConsentError::NotFound("grant"))?;
    fhir_response(&grant)
}

fn fhir_response(grant: &crate::store::Grant) -> Result<HttpResponse, ConsentError> {
    let claims: GrantClaims = serde_json::from_str(&grant.claims).map_err(|_| ConsentError::Unavailable)?;
    let resource = crate::fhir::consent_resource(&claims, grant.revoked_at.is_some(), crate::service::now_secs());
    Ok(HttpResponse::Ok().content_type("application/fhir+json").json(resource))
}

pub fn configure_members(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/consent")
            .route("/grants/{id}/fhir", web::get().to(grant_as_fhir))
            .route("/enrolment-codes", web::post().to(enrolment_code))
            .route("/requests", web::post().to(new_request))
            .route("/requests/{id}", web::get().to(request_status))
            .route("/emergency", web::post().to(emergency)),
    );
}

// ---- patients ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrol {
    pub code: String,
    /// The device's public key as WebCrypto exports it (JWK).
    pub device_key: serde_json::Value,
}

async fn enrol(state: State, body: web::Json<Enrol>) -> Result<HttpResponse, ConsentError> {
    let (device, subject) = state.enrol(&body.code, &body.device_key.to_string()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "device": device, "subject": subject })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub device: DeviceKeyId,
}

async fn challenge(state: State, body: web::Json<ChallengeRequest>) -> Result<HttpResponse, ConsentError> {
    let challenge = state.challenge(&body.device).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "challenge": challenge })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub device: DeviceKeyId,
    pub challenge: String,
    /// base64url signature over the `DeviceChallenge` signing bytes.
    pub signature: String,
}

async fn sign_in(state: State, body: web::Json<SignIn>) -> Result<HttpResponse, ConsentError> {
    let (token, expires_at) = state.sign_in(&body.device, &body.challenge, &signature(&body.signature)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "session": token, "expires_at": expires_at })))
}

/// A pending request in plain words, with its exact terms for the device to sign.
#[derive(Debug, Serialize)]
pub struct PendingRequest {
    pub request: String,
    pub summary: String,
    pub terms: serde_json::Value,
}

async fn pending(state: State, req: HttpRequest) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    let (store, s) = (state.store.clone(), session.sub.clone());
    let rows = tokio::task::spawn_blocking(move || store.requests_of(&s, crate::store::PENDING))
        .await
        .map_err(|_| ConsentError::Unavailable)??;
    let mut out = Vec::new();
    for row in rows {
        let terms: locus_protocol::consent::RequestTerms = serde_json::from_str(&row.terms).map_err(|_| ConsentError::Unavailable)?;
        out.push(PendingRequest {
            request: row.request_id,
            summary: crate::words::describe_request(&state, &terms),
            terms: serde_json::to_value(&terms).map_err(|_| ConsentError::Unavailable)?,
        });
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    pub decision: Decision,
    pub signature: String,
}

async fn decide(state: State, req: HttpRequest, body: web::Json<Decide>) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    let grant = state.decide(&session, &body.decision, &signature(&body.signature)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "grant": grant })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub revocation: Revocation,
    pub signature: String,
}

async fn revoke(state: State, req: HttpRequest, body: web::Json<Revoke>) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    state.revoke(&session, &body.revocation, &signature(&body.signature)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "revoked": body.revocation.grant })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub rule: StandingRule,
    pub signature: String,
}

async fn add_rule(state: State, req: HttpRequest, body: web::Json<NewRule>) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    state.add_rule(&session, &body.rule, &signature(&body.signature)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "rule": body.rule.rule })))
}

/// The patient's grants, newest first; emergency ones are flagged.
async fn grants(state: State, req: HttpRequest) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    let (store, s) = (state.store.clone(), session.sub.clone());
    let rows = tokio::task::spawn_blocking(move || store.grants_of(&s))
        .await
        .map_err(|_| ConsentError::Unavailable)??;
    let mut out = Vec::new();
    for row in rows {
        let claims: GrantClaims = serde_json::from_str(&row.claims).map_err(|_| ConsentError::Unavailable)?;
        out.push(serde_json::json!({
            "grant": row.grant_id,
            "summary": crate::words::describe_grant(&state, &claims),
            "emergency": row.basis == "emergency",
            "revoked": row.revoked_at.is_some(),
            "expires_at": row.expires_at,
        }));
    }
    Ok(HttpResponse::Ok().json(out))
}

async fn history(state: State, req: HttpRequest) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    Ok(HttpResponse::Ok().json(state.history(&session).await?))
}

async fn remove_device(state: State, req: HttpRequest, device: web::Path<DeviceKeyId>) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    state.remove_device(&session, &device).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "removed": *device })))
}

/// One of the patient's own grants as a FHIR R4 Consent.
async fn own_grant_as_fhir(state: State, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ConsentError> {
    let session = session(&state, &req)?;
    let (store, gid) = (state.store.clone(), id.into_inner());
    let grant = tokio::task::spawn_blocking(move || store.grant(&gid))
        .await
        .map_err(|_| ConsentError::Unavailable)??
        .filter(|g| g.patient_key == session.sub)
        .ok_or(ConsentError::NotFound("grant"))?;
    fhir_response(&grant)
}

pub fn configure_patients(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/patient")
            .route("/enrol", web::post().to(enrol))
            .route("/challenge", web::post().to(challenge))
            .route("/session", web::post().to(sign_in))
            .route("/requests", web::get().to(pending))
            .route("/decisions", web::post().to(decide))
            .route("/revocations", web::post().to(revoke))
            .route("/rules", web::post().to(add_rule))
            .route("/grants", web::get().to(grants))
            .route("/grants/{id}/fhir", web::get().to(own_grant_as_fhir))
            .route("/history", web::get().to(history))
            .route("/devices/{id}", web::delete().to(remove_device)),
    );
}

//! The checks every party that honours a grant makes, in one place: who is
//! asking (their certificate, in the directory, active), whether the grant
//! token verifies for them (consent's signature, audience, time), and whether
//! it is bound to the certificate they present (RFC 8705).
//! Revocation is checked by the caller, against the ledger it can reach.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError as _;
use locus_protocol::directory::{Directory, MemberRole, MemberStatus};
use locus_protocol::entry::{AccessRefused, Event, RefusalReason};
use locus_protocol::grant::{Confirmation, GrantClaims};
use locus_protocol::grant_token::{
    decode_discovery, decode_grant, DiscoveryClaims, GrantTokenError, TokenCheck,
    MAX_GRANT_TOKEN_LEN,
};
use locus_protocol::ids::{GrantId, HospitalId, MemberId, PatientKey};

use crate::http::JsonError;
use crate::tls::PeerCertificate;

/// Longest grant any verifier accepts, whatever the consent service says.
pub const MAX_GRANT_SECS: i64 = locus_protocol::consent::MAX_GRANT_DURATION_SECS;

/// A presented token longer than any the consent service issues, as the 400
/// message naming `field`: a malformed request, not one anyone could grant, so
/// it is never logged as a refusal.
pub fn oversized_token(field: &str, token: Option<&str>) -> Option<String> {
    token
        .is_some_and(|t| t.len() > MAX_GRANT_TOKEN_LEN)
        .then(|| format!("{field} is longer than any {field} token ({MAX_GRANT_TOKEN_LEN} bytes)"))
}

/// A request whose token holds, from a member allowed to act: a grant's claims,
/// or (for the index) a discovery's.
#[derive(Debug, Clone)]
pub struct Authorized<C = GrantClaims> {
    pub requester: MemberId,
    pub claims: C,
}

/// Why a request was refused, with what is known of it for the ledger.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub reason: RefusalReason,
    pub requester: Option<MemberId>,
    /// The grant and patient, when the token verified far enough to know them.
    pub grant: Option<GrantId>,
    pub subject: Option<PatientKey>,
    pub message: &'static str,
}

impl Refused {
    /// The `access.refused` entry that records this refusal by its submitter:
    /// `custodian` is the hospital refusing a retrieval asked of it, `None` for
    /// the index refusing a discovery (the ledger takes a refusal only from the
    /// party it names as refusing). `None` when the requester is not even known
    /// (nothing to attribute it to).
    pub fn entry_event(&self, custodian: Option<&HospitalId>) -> Option<Event> {
        Some(Event::AccessRefused(AccessRefused {
            requester: self.requester.clone()?,
            custodian: custodian.cloned(),
            grant: self.grant,
            subject: self.subject,
            reason: self.reason,
        }))
    }

    /// The API's `error` code for this refusal: its reason as the ledger spells it.
    pub fn code(&self) -> Cow<'static, str> {
        serde_json::to_value(self.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .map_or(Cow::Borrowed("refused"), Cow::Owned)
    }

    pub fn new(reason: RefusalReason, message: &'static str) -> Self {
        Self {
            reason,
            requester: None,
            grant: None,
            subject: None,
            message,
        }
    }
}

/// Who may use a mutual-TLS listener at all, as app data for [`members_only`]:
/// `admits` says whether a peer certificate belongs to the consortium (an
/// active member, or whoever else the service pins, such as the authority).
#[derive(Clone)]
pub struct PeerGate {
    admits: Arc<dyn Fn(&Confirmation) -> bool + Send + Sync>,
}

impl PeerGate {
    pub fn new(admits: impl Fn(&Confirmation) -> bool + Send + Sync + 'static) -> Self {
        Self {
            admits: Arc::new(admits),
        }
    }
}

impl std::fmt::Debug for PeerGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerGate").finish_non_exhaustive()
    }
}

/// Middleware (`actix_web::middleware::from_fn(members_only)`) for a
/// mutual-TLS listener: a certificate the consortium CA signed is not yet
/// membership, so before any route runs the peer must be one the app's
/// [`PeerGate`] admits: 403 otherwise, and 401 without a certificate. Without
/// a `PeerGate` nobody is admitted.
pub async fn members_only<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let refusal = match (
        req.conn_data::<PeerCertificate>(),
        req.app_data::<PeerGate>(),
    ) {
        (None, _) => Some(JsonError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "this endpoint requires mutual TLS with a consortium certificate",
        )),
        (Some(peer), Some(gate)) if (gate.admits)(&peer.thumbprint) => None,
        (Some(_), _) => Some(JsonError::new(
            StatusCode::FORBIDDEN,
            "not_a_member",
            "the client certificate belongs to no active member of the consortium",
        )),
    };
    match refusal {
        Some(refused) => {
            tracing::info!(code = refused.code, "peer refused");
            Ok(req
                .into_response(refused.error_response())
                .map_into_right_body())
        }
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}

/// The member behind a TLS peer, only if active.
pub fn active_peer(directory: &Directory, peer: &Confirmation) -> Result<MemberId, Refused> {
    let member = directory.by_certificate(peer).ok_or_else(|| {
        Refused::new(
            RefusalReason::MemberSuspended,
            "the client certificate belongs to no member",
        )
    })?;
    if member.status != MemberStatus::Active {
        return Err(Refused {
            requester: Some(member.member.clone()),
            ..Refused::new(
                RefusalReason::MemberSuspended,
                "the requesting member is not active",
            )
        });
    }
    Ok(member.member.clone())
}

/// Looks up a consent key by its id.
pub type KeyResolver<'a> =
    dyn Fn(&locus_protocol::ids::KeyId) -> Option<locus_protocol::signing::VerifyingKey> + 'a;

/// The tokens the consent service issues, as [`check_token`] checks them: a grant,
/// or the discovery token the index sees, which shows it no scopes, codes or dates.
pub trait Token: Sized {
    /// Verifies `token` as shown by `audience` at `now` (Unix seconds), with
    /// the keys `keys` resolves; the protocol's decoder for this kind.
    fn decode(
        token: &str,
        keys: &KeyResolver<'_>,
        audience: &MemberId,
        now: i64,
    ) -> Result<Self, GrantTokenError>;

    /// The certificate it is bound to, its grant and its patient.
    fn binding(&self) -> (&Confirmation, GrantId, PatientKey);
}

/// Each token is decoded by its own function and bound by the same claims.
macro_rules! token {
    ($($claims:ty => $decode:ident),*) => {$(
        impl Token for $claims {
            fn decode(
                token: &str,
                keys: &KeyResolver<'_>,
                audience: &MemberId,
                now: i64,
            ) -> Result<Self, GrantTokenError> {
                $decode(
                    token,
                    &TokenCheck { keys, audience, now, max_duration_secs: MAX_GRANT_SECS },
                )
            }

            fn binding(&self) -> (&Confirmation, GrantId, PatientKey) {
                (&self.cnf, self.jti, self.sub)
            }
        }
    )*};
}

token!(GrantClaims => decode_grant, DiscoveryClaims => decode_discovery);

/// Checks a presented token for the peer holding `peer` at time `now`: the peer
/// is an active member, a token was presented, it verifies under an active
/// consent key for that member at `now`, and it is bound to the peer's
/// certificate.
pub fn check_token<C: Token>(
    directory: &Directory,
    token: Option<&str>,
    peer: &Confirmation,
    now: i64,
) -> Result<Authorized<C>, Refused> {
    let requester = active_peer(directory, peer)?;
    let refused = |reason, message| Refused {
        requester: Some(requester.clone()),
        ..Refused::new(reason, message)
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(refused(RefusalReason::NoGrant, "no grant was presented"));
    };
    let keys = |kid: &_| directory.active_key(MemberRole::Consent, kid);
    let claims = C::decode(token, &keys, &requester, now).map_err(|e| match e {
        GrantTokenError::Expired | GrantTokenError::NotYetValid => refused(
            RefusalReason::Expired,
            "the grant has expired or is not yet valid",
        ),
        GrantTokenError::WrongAudience => refused(
            RefusalReason::InvalidGrant,
            "the grant was issued to another member",
        ),
        _ => refused(RefusalReason::InvalidGrant, "the grant does not verify"),
    })?;
    let (cnf, grant, subject) = claims.binding();
    if cnf != peer {
        return Err(Refused {
            grant: Some(grant),
            subject: Some(subject),
            ..refused(
                RefusalReason::CertificateMismatch,
                "the grant is bound to another certificate",
            )
        });
    }
    Ok(Authorized { requester, claims })
}

//! What the consent service does, independent of HTTP: enrol devices, sign
//! patients in, take requests, turn a patient's signed decision (or a rule
//! they signed, or a stated emergency) into a grant, and revoke. Every step is
//! a ledger entry, made durable before anyone is answered.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use locus_ledger::client::{ClientError, DirectoryFollower, LedgerClient};
use locus_ledger::wire::Receipt;
use locus_protocol::consent::{Decision, DeviceChallenge, RequestTerms, Revocation, StandingRule};
use locus_protocol::device::{DeviceKey, DeviceKeyId};
use locus_protocol::directory::MemberRole;
use locus_protocol::entry::{
    AccessDecided, AccessRequested, DeviceEnrolled, DeviceRevocation, Event, GrantIssued, GrantRevoked, RuleCreated,
};
use locus_protocol::grant::{DataPeriod, GrantBasis, GrantClaims, PurposeOfUse, scope_tags_for};
use locus_protocol::grant_token::{encode_discovery, encode_grant};
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId};
use locus_protocol::linkage::LinkageKey;
use locus_protocol::scope::ScopeSet;
use locus_protocol::signing::{Signature64, SigningKey};
use rand_core::{OsRng, RngCore};

use crate::session::{SESSION_SECS, Session, SessionKeys};
use crate::store::{APPROVED, AccessRequest, ConsentStore, Device, Grant, PENDING, REFUSED, Rule, StoreError};

/// How long a grant lasts when the request does not say: short for an
/// emergency, a week for treatment, a month for care coordination.
pub fn default_duration(purpose: PurposeOfUse) -> i64 {
    match purpose {
        PurposeOfUse::EmergencyTreatment => 24 * 3600,
        PurposeOfUse::Treatment | PurposeOfUse::PatientRequested => 7 * 86_400,
        PurposeOfUse::CareManagement => 30 * 86_400,
    }
}

/// How long a sign-in challenge is good for.
pub const CHALLENGE_SECS: i64 = 120;
/// The alphabet of enrolment codes: no 0/O, 1/I/L, easy to read out at a desk.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub enrolment_code_secs: i64,
    pub max_grant_secs: i64,
    pub max_emergency_secs: i64,
}

pub struct Consent {
    pub member: MemberId,
    pub key: SigningKey,
    pub linkage: LinkageKey,
    pub store: ConsentStore,
    pub ledger: LedgerClient,
    pub directory: DirectoryFollower,
    pub sessions: SessionKeys,
    pub limits: Limits,
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consent").field("member", &self.member).finish_non_exhaustive()
    }
}

/// One ledger entry about a patient, as their history shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryEvent {
    /// The entry's index in the ledger.
    pub index: u64,
    pub time_ms: i64,
    /// The entry type, e.g. `grant.issued`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The entry in plain words.
    pub text: String,
}

/// Why the consent service says no. Each maps to one status in `api`.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the enrolment code is unknown, used or expired")]
    BadCode,
    #[error("not signed in, or the session has expired")]
    Unauthenticated,
    #[error("the device signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the request was already decided")]
    AlreadyDecided,
    #[error("the approval is wider than the request: {0}")]
    Wider(String),
    #[error("the ledger cannot log this, so it is not done")]
    Ledger(#[from] ClientError),
    #[error("the consent service is unavailable")]
    Unavailable,
}

impl From<StoreError> for ConsentError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "consent storage failed");
        Self::Unavailable
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn random_code() -> String {
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes.iter().map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()])).collect();
    format!("{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12])
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, ConsentError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(|_| ConsentError::Unavailable)??)
}

impl Consent {
    async fn log(&self, event: Event) -> Result<Receipt, ConsentError> {
        Ok(self.ledger.log(&self.member, &self.key, event).await?)
    }

    /// The active hospital a mutual-TLS peer is.
    pub fn hospital(&self, peer: &locus_protocol::grant::Confirmation) -> Result<MemberId, ConsentError> {
        let directory = self.directory.directory().read();
        let member = directory
            .by_certificate(peer)
            .filter(|m| m.status == locus_protocol::directory::MemberStatus::Active && m.role == MemberRole::Hospital)
            .ok_or(ConsentError::Forbidden("only an active hospital may do this"))?;
        Ok(member.member.clone())
    }

    /// A one-time code the hospital's desk gives the patient to enrol a phone.
    pub async fn issue_enrolment_code(&self, hospital: &MemberId, subject: &PatientKey) -> Result<(String, i64), ConsentError> {
        let code = random_code();
        let expires = now_secs() + self.limits.enrolment_code_secs;
        let (store, c, s, h) = (self.store.clone(), code.clone(), subject.to_string(), hospital.to_string());
        blocking(move || store.add_enrolment_code(&c, &s, &h, expires)).await?;
        Ok((code, expires))
    }

    /// Redeems a code with a fresh device key.
    pub async fn enrol(&self, code: &str, jwk: &str) -> Result<(DeviceKeyId, PatientKey), ConsentError> {
        let key = DeviceKey::from_webcrypto_jwk(jwk).map_err(|e| ConsentError::BadRequest(format!("device key: {e}")))?;
        let (store, code_owned) = (self.store.clone(), code.trim().to_ascii_uppercase());
        let subject = blocking(move || store.redeem_enrolment_code(&code_owned, now_secs()))
            .await?
            .ok_or(ConsentError::BadCode)?;
        let subject: PatientKey = subject.parse().map_err(|_| ConsentError::Unavailable)?;
        let device = key.thumbprint();
        self.log(Event::DeviceEnrolled(DeviceEnrolled { subject, device, key: key.clone() }))
            .await?;
        let row = Device {
            device_id: device.to_string(),
            patient_key: subject.to_string(),
            public_jwk: serde_json::to_string(&key).map_err(|_| ConsentError::Unavailable)?,
            enrolled_at: now_ms(),
            removed_at: None,
        };
        let store = self.store.clone();
        blocking(move || store.add_device(&row)).await?;
        Ok((device, subject))
    }

    async fn device(&self, device: &DeviceKeyId) -> Result<(PatientKey, DeviceKey), ConsentError> {
        let (store, id) = (self.store.clone(), device.to_string());
        let row = blocking(move || store.device(&id)).await?.ok_or(ConsentError::NotFound("device"))?;
        let key: DeviceKey = serde_json::from_str(&row.public_jwk).map_err(|_| ConsentError::Unavailable)?;
        Ok((row.patient_key.parse().map_err(|_| ConsentError::Unavailable)?, key))
    }

    pub async fn challenge(&self, device: &DeviceKeyId) -> Result<String, ConsentError> {
        self.device(device).await?;
        let nonce = random_nonce();
        let (store, n, d) = (self.store.clone(), nonce.clone(), device.to_string());
        blocking(move || store.add_challenge(&n, &d, now_secs() + CHALLENGE_SECS)).await?;
        Ok(nonce)
    }

    /// Signs a patient in: the device signs the challenge it was given, once.
    pub async fn sign_in(&self, device: &DeviceKeyId, challenge: &str, signature: &[u8]) -> Result<(String, i64), ConsentError> {
        let (subject, key) = self.device(device).await?;
        let signed = DeviceChallenge { challenge: challenge.to_owned(), device: *device };
        let bytes = signed.signing_bytes().map_err(|e| ConsentError::BadRequest(e.to_string()))?;
        key.verify(&bytes, signature).map_err(|_| ConsentError::BadSignature)?;
        let (store, c, d) = (self.store.clone(), challenge.to_owned(), device.to_string());
        if !blocking(move || store.use_challenge(&c, &d, now_secs())).await? {
            return Err(ConsentError::BadSignature);
        }
        let exp = now_secs() + SESSION_SECS;
        let token = self.sessions.issue(&Session { sub: subject.to_string(), dev: device.to_string(), exp });
        Ok((token, exp))
    }

    pub fn session(&self, token: &str) -> Result<Session, ConsentError> {
        self.sessions.verify(token, now_secs()).map_err(|_| ConsentError::Unauthenticated)
    }

    /// A hospital asks; a standing rule of the patient's may grant at once.
    pub async fn request(
        &self,
        requester: &MemberId,
        subject: PatientKey,
        purpose: PurposeOfUse,
        scope: ScopeSet,
        data_period: Option<DataPeriod>,
        duration_secs: i64,
    ) -> Result<(RequestId, &'static str, Option<(String, String)>), ConsentError> {
        let terms = RequestTerms {
            request: RequestId::new_random(),
            requester: requester.clone(),
            subject,
            purpose,
            scope,
            data_period,
            duration_secs,
        };
        terms.check().map_err(|e| ConsentError::BadRequest(e.to_string()))?;
        if duration_secs > self.limits.max_grant_secs {
            return Err(ConsentError::BadRequest(format!("the duration is over the maximum of {} seconds", self.limits.max_grant_secs)));
        }
        self.log(Event::AccessRequested(AccessRequested { terms: terms.clone() })).await?;
        let row = AccessRequest {
            request_id: terms.request.to_string(),
            patient_key: subject.to_string(),
            requester: requester.to_string(),
            terms: serde_json::to_string(&terms).map_err(|_| ConsentError::Unavailable)?,
            status: PENDING.into(),
            created_at: now_ms(),
            decided_at: None,
            grant_id: None,
        };
        let store = self.store.clone();
        blocking(move || store.add_request(&row)).await?;

        // A rule the patient signed ahead of time decides it now.
        let (store, s) = (self.store.clone(), subject.to_string());
        for rule in blocking(move || store.rules_of(&s)).await? {
            let Ok(rule) = serde_json::from_str::<StandingRule>(&rule.rule) else {
                continue;
            };
            if !rule.matches(&terms, true) {
                continue;
            }
            let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
            let Ok(period) = rule.data_period_for(terms.data_period.as_ref(), &today) else {
                continue;
            };
            let duration = terms.duration_secs.min(rule.grant_duration_secs);
            let (token, grant) = self
                .issue(&terms.subject, requester, terms.purpose, &terms.scope, period, duration, GrantBasis::StandingRule { rule: rule.rule.to_string() })
                .await?;
            let discovery = self.discovery_token(&grant)?;
            let (store, id) = (self.store.clone(), terms.request.to_string());
            blocking(move || store.decide(&id, APPROVED, Some(&grant), now_ms())).await?;
            return Ok((terms.request, APPROVED, Some((token, discovery))));
        }
        Ok((terms.request, PENDING, None))
    }

    /// Signs and logs a grant; returns the token and the row to store.
    #[allow(clippy::too_many_arguments)]
    async fn issue(
        &self,
        subject: &PatientKey,
        requester: &MemberId,
        purpose: PurposeOfUse,
        scope: &ScopeSet,
        data_period: Option<DataPeriod>,
        duration_secs: i64,
        basis: GrantBasis,
    ) -> Result<(String, Grant), ConsentError> {
        let cnf = self
            .directory
            .directory()
            .read()
            .active(requester)
            .map(|m| m.certificate.clone())
            .ok_or(ConsentError::Forbidden("the requester is not an active member"))?;
        let now = now_secs();
        let claims = GrantClaims {
            iss: self.member.clone(),
            sub: *subject,
            aud: requester.clone(),
            jti: GrantId::new_random(),
            iat: now,
            nbf: now,
            exp: now + duration_secs,
            scope_tags: scope_tags_for(&self.linkage, subject, scope, data_period.as_ref()),
            scope: scope.clone(),
            purpose,
            data_period,
            cnf,
            basis,
        };
        let token = encode_grant(&claims, &self.key).map_err(|e| ConsentError::BadRequest(e.to_string()))?;
        self.log(Event::GrantIssued(GrantIssued::from_claims(&claims))).await?;
        let basis = match &claims.basis {
            GrantBasis::PatientApproval { .. } => "patient_approval",
            GrantBasis::StandingRule { .. } => "standing_rule",
            GrantBasis::Emergency { .. } => "emergency",
        };
        let grant = Grant {
            grant_id: claims.jti.to_string(),
            patient_key: subject.to_string(),
            requester: requester.to_string(),
            basis: basis.into(),
            token: token.clone(),
            claims: serde_json::to_string(&claims).map_err(|_| ConsentError::Unavailable)?,
            issued_at: now,
            expires_at: claims.exp,
            revoked_at: None,
        };
        Ok((token, grant))
    }

    /// The discovery token of a stored grant: what the requester shows the
    /// index (signed again on demand; Ed25519 is deterministic).
    pub fn discovery_token(&self, grant: &Grant) -> Result<String, ConsentError> {
        let claims: GrantClaims = serde_json::from_str(&grant.claims).map_err(|_| ConsentError::Unavailable)?;
        encode_discovery(&claims, &self.key).map_err(|e| ConsentError::BadRequest(e.to_string()))
    }

    /// The patient's signed answer to one of their requests.
    pub async fn decide(&self, session: &Session, decision: &Decision, signature: &[u8]) -> Result<Option<GrantId>, ConsentError> {
        if decision.subject().to_string() != session.sub || decision.device().to_string() != session.dev {
            return Err(ConsentError::Forbidden("a patient decides only their own requests, from their signed-in device"));
        }
        let (_, key) = self.device(decision.device()).await?;
        decision.verify_signature(&key, signature).map_err(|_| ConsentError::BadSignature)?;
        let (store, id) = (self.store.clone(), decision.request().to_string());
        let request = blocking(move || store.request(&id)).await?.ok_or(ConsentError::NotFound("request"))?;
        if request.patient_key != session.sub {
            return Err(ConsentError::Forbidden("a patient decides only their own requests, from their signed-in device"));
        }
        if request.status != PENDING {
            return Err(ConsentError::AlreadyDecided);
        }
        let terms: RequestTerms = serde_json::from_str(&request.terms).map_err(|_| ConsentError::Unavailable)?;
        let signature64 = Signature64::try_from(signature).map_err(|_| ConsentError::BadSignature)?;
        match decision {
            Decision::Approve(approval) => {
                decision.narrows(&terms).map_err(|e| ConsentError::Wider(e.to_string()))?;
                if approval.duration_secs > self.limits.max_grant_secs {
                    return Err(ConsentError::Wider("the duration is over the maximum".into()));
                }
                self.log(Event::AccessDecided(AccessDecided { decision: decision.clone(), signature: signature64 })).await?;
                let (_, grant) = self
                    .issue(
                        &approval.subject,
                        &approval.requester,
                        approval.purpose,
                        &approval.scope,
                        approval.data_period.clone(),
                        approval.duration_secs,
                        GrantBasis::PatientApproval { request: approval.request },
                    )
                    .await?;
                let id = grant.grant_id.parse().ok();
                let (store, rid) = (self.store.clone(), request.request_id.clone());
                if !blocking(move || store.decide(&rid, APPROVED, Some(&grant), now_ms())).await? {
                    return Err(ConsentError::AlreadyDecided);
                }
                Ok(id)
            }
            Decision::Refuse(_) => {
                self.log(Event::AccessDecided(AccessDecided { decision: decision.clone(), signature: signature64 })).await?;
                let (store, rid) = (self.store.clone(), request.request_id.clone());
                if !blocking(move || store.decide(&rid, REFUSED, None, now_ms())).await? {
                    return Err(ConsentError::AlreadyDecided);
                }
                Ok(None)
            }
        }
    }

    /// Emergency access: a short grant without the patient, flagged on the
    /// ledger (its basis) and shown to the patient.
    pub async fn emergency(
        &self,
        requester: &MemberId,
        subject: PatientKey,
        scope: ScopeSet,
        reason: String,
        duration_secs: i64,
    ) -> Result<(String, String), ConsentError> {
        if duration_secs <= 0 || duration_secs > self.limits.max_emergency_secs {
            return Err(ConsentError::BadRequest(format!(
                "an emergency grant lasts at most {} seconds",
                self.limits.max_emergency_secs
            )));
        }
        let (token, grant) = self
            .issue(&subject, requester, PurposeOfUse::EmergencyTreatment, &scope, None, duration_secs, GrantBasis::Emergency { reason })
            .await?;
        let discovery = self.discovery_token(&grant)?;
        let store = self.store.clone();
        blocking(move || store.add_grant(&grant)).await?;
        Ok((token, discovery))
    }

    /// The patient revokes one of their grants, with their device's signature.
    pub async fn revoke(&self, session: &Session, revocation: &Revocation, signature: &[u8]) -> Result<(), ConsentError> {
        if revocation.subject.to_string() != session.sub || revocation.device.to_string() != session.dev {
            return Err(ConsentError::Forbidden("a patient revokes only their own grants, from their signed-in device"));
        }
        let (_, key) = self.device(&revocation.device).await?;
        revocation.verify_signature(&key, signature).map_err(|_| ConsentError::BadSignature)?;
        let (store, id) = (self.store.clone(), revocation.grant.to_string());
        let grant = blocking(move || store.grant(&id)).await?.ok_or(ConsentError::NotFound("grant"))?;
        if grant.patient_key != session.sub {
            return Err(ConsentError::NotFound("grant"));
        }
        let signature = Signature64::try_from(signature).map_err(|_| ConsentError::BadSignature)?;
        self.log(Event::GrantRevoked(GrantRevoked {
            grant: revocation.grant,
            subject: revocation.subject,
            by_device: Some(DeviceRevocation {
                device: revocation.device,
                signed_at_ms: revocation.signed_at_ms,
                signature,
            }),
        }))
        .await?;
        let (store, s, g) = (self.store.clone(), session.sub.clone(), revocation.grant.to_string());
        blocking(move || store.revoke_grant(&s, &g, now_ms())).await?;
        Ok(())
    }

    /// The patient removes one of their devices (from any of their devices).
    pub async fn remove_device(&self, session: &Session, device: &DeviceKeyId) -> Result<(), ConsentError> {
        let subject: PatientKey = session.sub.parse().map_err(|_| ConsentError::Unauthenticated)?;
        let (store, s, d) = (self.store.clone(), session.sub.clone(), device.to_string());
        let mine = blocking(move || store.devices_of(&s)).await?.into_iter().any(|row| row.device_id == d);
        if !mine {
            return Err(ConsentError::NotFound("device"));
        }
        self.log(Event::DeviceRemoved(locus_protocol::entry::DeviceRemoved { subject, device: *device })).await?;
        let (store, s, d) = (self.store.clone(), session.sub.clone(), device.to_string());
        blocking(move || store.remove_device(&s, &d, now_ms())).await?;
        Ok(())
    }

    /// Everything the ledger holds about the patient, newest first, in words.
    pub async fn history(&self, session: &Session) -> Result<Vec<HistoryEvent>, ConsentError> {
        let subject: PatientKey = session.sub.parse().map_err(|_| ConsentError::Unauthenticated)?;
        let mut events = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let query = match after {
                Some(a) => format!("subject={subject}&limit=1000&after={a}"),
                None => format!("subject={subject}&limit=1000"),
            };
            let page = self.ledger.entries(&query).await?;
            for logged in &page.entries {
                let Ok(entry) = serde_json::from_value::<locus_protocol::entry::SignedEntry>(logged.entry.clone()) else {
                    continue;
                };
                events.push(HistoryEvent {
                    index: logged.index,
                    time_ms: entry.entry().time_ms,
                    kind: entry.entry().event.kind().to_owned(),
                    text: crate::words::describe_event(self, &entry.entry().event),
                });
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        events.reverse();
        Ok(events)
    }

    /// The patient signs a standing rule.
    pub async fn add_rule(&self, session: &Session, rule: &StandingRule, signature: &[u8]) -> Result<(), ConsentError> {
        if rule.subject.to_string() != session.sub || rule.device.to_string() != session.dev {
            return Err(ConsentError::Forbidden("a patient makes rules only for themselves, from their signed-in device"));
        }
        rule.check().map_err(|e| ConsentError::BadRequest(e.to_string()))?;
        let (_, key) = self.device(&rule.device).await?;
        rule.verify_signature(&key, signature).map_err(|_| ConsentError::BadSignature)?;
        let signature64 = Signature64::try_from(signature).map_err(|_| ConsentError::BadSignature)?;
        self.log(Event::RuleCreated(RuleCreated { rule: rule.clone(), signature: signature64 })).await?;
        let row = Rule {
            rule_id: rule.rule.to_string(),
            patient_key: session.sub.clone(),
            rule: serde_json::to_string(rule).map_err(|_| ConsentError::Unavailable)?,
            signature: URL_SAFE_NO_PAD.encode(signature),
            created_at: now_ms(),
            revoked_at: None,
        };
        let store = self.store.clone();
        blocking(move || store.add_rule(&row)).await?;
        Ok(())
    }
}

//! What the consent service does, independent of HTTP: enrol devices, sign
//! patients in, take requests, turn a patient's signed decision (or a rule
//! they signed, or a stated emergency) into a grant, and revoke. Every step is
//! a ledger entry, made durable before anyone is answered.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_ledger::client::{ClientError, DirectoryFollower, LedgerClient};
use locus_ledger::sequencer::MAX_ENTRY_BYTES;
use locus_platform::clock::Clock;
use locus_protocol::consent::{
    Decision, DeviceChallenge, RequestTerms, Revocation, RuleRevocation, StandingRule,
};
use locus_protocol::device::{DeviceKey, DeviceKeyId};
use locus_protocol::directory::MemberRole;
use locus_protocol::entry::{
    AccessDecided, AccessRequested, DeviceEnrolled, DeviceRevocation, Entry, Event, GrantIssued,
    GrantRevoked, RuleCreated, RuleRevoked, SignedEntry,
};
use locus_protocol::grant::{
    scope_tags_for, Confirmation, DataPeriod, GrantBasis, GrantClaims, PurposeOfUse,
};
use locus_protocol::grant_token::{encode_discovery, encode_grant};
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId};
use locus_protocol::linkage::LinkageKey;
use locus_protocol::scope::ScopeSet;
use locus_protocol::signing::{Signature64, SigningKey};
use rand_core::{OsRng, RngCore};

use crate::session::{Session, SessionKeys, SESSION_SECS};
use crate::store::{
    AccessRequest, Act, BasisKind, Change, Conflict, ConsentStore, Device, Grant, RequestStatus,
    Rule, StoreError,
};
use crate::throttle::Throttles;

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
/// How many unexpired, unused challenges a device may hold at once.
pub const MAX_OPEN_CHALLENGES: i64 = 5;
/// The longest emergency reason, in characters: one sentence for the patient.
pub const MAX_REASON_CHARS: usize = 280;
/// The alphabet of enrolment codes: no 0/O, 1/I/L, easy to read out at a desk.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// The longest enrolment code accepted, in bytes (codes are 14 characters).
const MAX_CODE_LEN: usize = 32;

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
    pub throttles: Throttles,
    /// Acts this process is logging right now, by act key: the finisher of
    /// acts left over leaves these to their handlers.
    pub in_flight: InFlight,
    /// What the service takes the time to be.
    pub clock: Clock,
}

// Keys and stores are not for logs.
locus_platform::debug_fields!(Consent: member);

/// The act keys being worked on in this process.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    /// Takes `key` for the life of the guard; `None` if it is already taken.
    fn take(&self, key: &str) -> Option<InFlightGuard<'_>> {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.insert(key.to_owned()).then(|| InFlightGuard {
            set: self,
            key: key.to_owned(),
        })
    }
}

struct InFlightGuard<'a> {
    set: &'a InFlight,
    key: String,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
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
pub enum ActError {
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
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the request was already decided")]
    AlreadyDecided,
    #[error("the approval is wider than the request: {0}")]
    Wider(String),
    #[error("too many attempts; try again in {0} seconds")]
    TooMany(u64),
    #[error("the ledger refused this, so it is not done: {0}")]
    Ledger(ClientError),
    #[error("the ledger cannot be reached; this is kept and completes once it is logged")]
    Pending,
    #[error("the consent service is unavailable")]
    Unavailable,
}

impl From<StoreError> for ActError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "consent storage failed");
        Self::Unavailable
    }
}

impl From<ClientError> for ActError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused { .. } => Self::Ledger(e),
            _ => {
                tracing::warn!(error = %e, "the ledger cannot be reached");
                Self::Unavailable
            }
        }
    }
}

impl From<Conflict> for ActError {
    fn from(c: Conflict) -> Self {
        match c {
            Conflict::UnderWay => Self::Conflict("another change to the same thing is under way"),
            Conflict::CodeUsed => Self::BadCode,
            Conflict::DeviceKnown => {
                Self::Conflict("this device key was enrolled before; make a new key to enrol")
            }
            Conflict::NoDevice => Self::NotFound("device"),
            Conflict::AlreadyDecided => Self::AlreadyDecided,
            Conflict::NoGrant => Self::NotFound("grant"),
            Conflict::AlreadyRevoked => Self::Conflict("the grant was already revoked"),
            Conflict::RuleExists => Self::Conflict("a rule with this id exists"),
            Conflict::NoRule => Self::NotFound("rule in force"),
        }
    }
}

fn random_code() -> String {
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect();
    format!("{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12])
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ActError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ActError::Unavailable)?
        .map_err(ActError::from)
}

/// What a grant is issued under: the scope, period and purpose approved (by
/// the patient, their rule or an emergency), for whom and on what basis.
#[derive(Debug, Clone)]
pub struct GrantTerms {
    pub subject: PatientKey,
    pub requester: MemberId,
    /// The requester's certificate, which the grant is bound to.
    pub cnf: Confirmation,
    pub purpose: PurposeOfUse,
    pub scope: ScopeSet,
    pub data_period: Option<DataPeriod>,
    pub duration_secs: i64,
    pub basis: GrantBasis,
}

impl GrantTerms {
    /// The claims of a new grant under these terms, issued by `issuer` at
    /// `now` for its duration, its scope tagged with the linkage key.
    pub fn claims(self, issuer: &MemberId, linkage: &LinkageKey, now: i64) -> GrantClaims {
        GrantClaims {
            iss: issuer.clone(),
            sub: self.subject,
            aud: self.requester,
            jti: GrantId::new_random(),
            iat: now,
            nbf: now,
            exp: now + self.duration_secs,
            scope_tags: scope_tags_for(
                linkage,
                &self.subject,
                &self.scope,
                self.data_period.as_ref(),
            ),
            scope: self.scope,
            purpose: self.purpose,
            data_period: self.data_period,
            cnf: self.cnf,
            basis: self.basis,
        }
    }
}

/// The grant token of `claims`, signed with the consent key; refused unless
/// its discovery token encodes as well, so an issued grant can be used.
pub fn issue_grant(claims: &GrantClaims, key: &SigningKey) -> Result<String, ActError> {
    let cannot = |e: locus_protocol::grant_token::GrantTokenError| {
        ActError::BadRequest(format!("the grant cannot be issued: {e}"))
    };
    let token = encode_grant(claims, key).map_err(cannot)?;
    encode_discovery(claims, key).map_err(cannot)?;
    Ok(token)
}

/// What a patient revokes with their device's signature: a grant, or a
/// standing rule. Both are checked alike (`Consent::revocation_signature`).
#[derive(Clone, Copy)]
enum SignedRevocation<'a> {
    Grant(&'a Revocation),
    Rule(&'a RuleRevocation),
}

/// A grant ready to be issued: its token, its row and its ledger entry,
/// all made (and so known to be issuable) before anything is logged.
struct PreparedGrant {
    token: String,
    grant: Grant,
    event: Event,
}

/// How far logging an act got.
enum Logged {
    /// Every entry is durable.
    All,
    /// The ledger refused the first entry: nothing of the act is logged.
    Refused(ClientError),
    /// Not yet: the ledger could not be reached, or refused after a first
    /// entry was logged. The act stays reserved and is finished later.
    Later,
}

impl Consent {
    /// Signs `event` as this service, now.
    fn sign(&self, event: Event) -> Result<SignedEntry, ActError> {
        let entry = Entry::new(
            self.member.clone(),
            self.key.key_id(),
            self.clock.now_ms(),
            event,
        );
        let signed =
            SignedEntry::sign(entry, &self.key).map_err(|e| ActError::BadRequest(e.to_string()))?;
        if signed.canonical_bytes().len() > MAX_ENTRY_BYTES {
            return Err(ActError::BadRequest(format!(
                "this would make a ledger entry over {MAX_ENTRY_BYTES} bytes: ask for fewer scopes or a shorter data period"
            )));
        }
        Ok(signed)
    }

    /// Does one act: validated by the caller, reserved under `key` with its
    /// entries, logged, then applied. A duplicate (at once or later) finds
    /// the reservation or the changed state and is refused; an act whose
    /// first entry the ledger refuses is undone; one the ledger could not
    /// take is finished by [`Consent::finish_pending`].
    async fn perform(
        &self,
        key: String,
        events: Vec<Event>,
        change: Change,
    ) -> Result<(), ActError> {
        let Some(_guard) = self.in_flight.take(&key) else {
            return Err(Conflict::UnderWay.into());
        };
        let entries = events
            .into_iter()
            .map(|e| {
                self.sign(e)
                    .map(|s| String::from_utf8_lossy(s.canonical_bytes()).into_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut act = Act { entries, change };
        let (store, k, a) = (self.store.clone(), key.clone(), act.clone());
        let now = self.clock.now_ms();
        blocking(move || store.reserve(&k, &a, now)).await??;
        match self.log_act(&key, &mut act).await {
            Logged::All => {
                let (store, k) = (self.store.clone(), key.clone());
                let now = self.clock.now_ms();
                blocking(move || store.finish(&k, now)).await?;
                Ok(())
            }
            Logged::Refused(e) => {
                let (store, k) = (self.store.clone(), key.clone());
                blocking(move || store.undo(&k)).await?;
                Err(ActError::Ledger(e))
            }
            Logged::Later => Err(ActError::Pending),
        }
    }

    /// Submits an act's entries in order. An entry is resent byte for byte,
    /// so one the ledger already holds gets its receipt, not a second leaf;
    /// one too old for the ledger's clock window is looked up and, if it was
    /// never logged, signed again now.
    async fn log_act(&self, key: &str, act: &mut Act) -> Logged {
        for i in 0..act.entries.len() {
            let Ok(signed) = SignedEntry::parse(act.entries[i].as_bytes()) else {
                tracing::error!(act = key, "a reserved entry does not parse");
                return Logged::Later;
            };
            let outcome = match self.ledger.submit(&signed).await {
                Err(ClientError::Refused { code, .. }) if code == "clock_skew" => {
                    match self.already_logged(&signed).await {
                        Ok(true) => Ok(()),
                        Ok(false) => self.resign(key, act, i, &signed).await,
                        Err(e) => Err(e),
                    }
                }
                other => other.map(|_| ()),
            };
            match outcome {
                Ok(()) => {}
                Err(e @ ClientError::Refused { status, .. })
                    if (400..500).contains(&status) && status != 429 =>
                {
                    if i == 0 {
                        return Logged::Refused(e);
                    }
                    tracing::error!(act = key, error = %e, "the ledger refused the rest of an act it partly logged");
                    return Logged::Later;
                }
                Err(e) => {
                    tracing::warn!(act = key, error = %e, "an act waits for the ledger");
                    return Logged::Later;
                }
            }
        }
        Logged::All
    }

    /// Whether the ledger holds exactly this entry (checkpointed entries of
    /// its type, submitter and millisecond).
    async fn already_logged(&self, signed: &SignedEntry) -> Result<bool, ClientError> {
        let entry = signed.entry();
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        };
        let query = format!(
            "type={}&submitter={}&from={}&until={}&limit=1000",
            entry.event.kind(),
            entry.submitter,
            at(entry.time_ms),
            at(entry.time_ms + 1)
        );
        let page = self.ledger.entries(&query).await?;
        let leaf = base64::engine::general_purpose::STANDARD.encode(
            locus_ledger::merkle::rfc9162_leaf_hash(signed.canonical_bytes()),
        );
        Ok(page.entries.iter().any(|e| e.leaf_hash == leaf))
    }

    /// Signs entry `i` of an act again, now, keeps it, and submits it.
    async fn resign(
        &self,
        key: &str,
        act: &mut Act,
        i: usize,
        old: &SignedEntry,
    ) -> Result<(), ClientError> {
        let fresh = self
            .sign(old.entry().event.clone())
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        act.entries[i] = String::from_utf8_lossy(fresh.canonical_bytes()).into_owned();
        let (store, k, a) = (self.store.clone(), key.to_owned(), act.clone());
        tokio::task::spawn_blocking(move || store.update_act(&k, &a))
            .await
            .map_err(|_| ClientError::Malformed("storage".into()))?
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        self.ledger.submit(&fresh).await.map(|_| ())
    }

    /// Finishes the acts a restart or a lost ledger left reserved: each is
    /// logged and applied, or undone if the ledger refuses it outright.
    /// Returns how many acts remain.
    pub async fn finish_pending(&self) -> Result<usize, ActError> {
        let store = self.store.clone();
        let acts = blocking(move || store.pending_acts()).await?;
        let mut left = 0;
        for (key, mut act) in acts {
            let Some(_guard) = self.in_flight.take(&key) else {
                continue;
            };
            match self.log_act(&key, &mut act).await {
                Logged::All => {
                    let (store, k) = (self.store.clone(), key.clone());
                    let now = self.clock.now_ms();
                    blocking(move || store.finish(&k, now)).await?;
                    tracing::info!(act = %key, "finished an act left over");
                }
                Logged::Refused(e) => {
                    let (store, k) = (self.store.clone(), key.clone());
                    blocking(move || store.undo(&k)).await?;
                    tracing::warn!(act = %key, error = %e, "undid an act the ledger refused");
                }
                Logged::Later => left += 1,
            }
        }
        Ok(left)
    }

    /// The active hospital a mutual-TLS peer is.
    pub fn hospital(&self, peer: &Confirmation) -> Result<MemberId, ActError> {
        let directory = self.directory.directory().read();
        let member = directory
            .by_certificate(peer)
            .filter(|m| {
                m.status == locus_protocol::directory::MemberStatus::Active
                    && m.role == MemberRole::Hospital
            })
            .ok_or(ActError::Forbidden("only an active hospital may do this"))?;
        Ok(member.member.clone())
    }

    /// A one-time code the hospital's desk gives the patient to enrol a phone.
    pub async fn issue_enrolment_code(
        &self,
        hospital: &MemberId,
        subject: &PatientKey,
    ) -> Result<(String, i64), ActError> {
        let code = random_code();
        let expires = self.clock.now_secs() + self.limits.enrolment_code_secs;
        let (store, c, s, h) = (self.store.clone(), code.clone(), *subject, hospital.clone());
        blocking(move || store.add_enrolment_code(&c, &s, &h, expires)).await?;
        Ok((code, expires))
    }

    /// Redeems a code with a fresh device key. `device.enrolled` names the
    /// member whose desk issued the code.
    pub async fn enrol(
        &self,
        code: &str,
        jwk: &str,
    ) -> Result<(DeviceKeyId, PatientKey), ActError> {
        if code.len() > MAX_CODE_LEN {
            return Err(ActError::BadCode);
        }
        let key = DeviceKey::from_webcrypto_jwk(jwk)
            .map_err(|e| ActError::BadRequest(format!("device key: {e}")))?;
        let code = code.trim().to_ascii_uppercase();
        let (store, c) = (self.store.clone(), code.clone());
        let now = self.clock.now_secs();
        let (subject, code_issuer) = blocking(move || store.enrolment_code(&c, now))
            .await?
            .ok_or(ActError::BadCode)?;
        let device = key.thumbprint();
        let store = self.store.clone();
        if blocking(move || store.device_known(&device)).await? {
            return Err(Conflict::DeviceKnown.into());
        }
        let row = Device {
            device_id: device,
            patient_key: subject,
            public_jwk: serde_json::to_string(&key).map_err(|_| ActError::Unavailable)?,
            enrolled_at: self.clock.now_ms(),
            removed_at: None,
            code_issuer: code_issuer.clone(),
        };
        let event = Event::DeviceEnrolled(DeviceEnrolled {
            subject,
            device,
            key,
            code_issuer,
        });
        let change = Change::Enrol {
            device: row,
            code_hash: ConsentStore::code_hash_hex(&code),
        };
        self.perform(format!("device:{device}"), vec![event], change)
            .await?;
        Ok((device, subject))
    }

    async fn device(&self, device: &DeviceKeyId) -> Result<(PatientKey, DeviceKey), ActError> {
        let (store, id) = (self.store.clone(), *device);
        let row = blocking(move || store.device(&id))
            .await?
            .ok_or(ActError::NotFound("device"))?;
        let key: DeviceKey =
            serde_json::from_str(&row.public_jwk).map_err(|_| ActError::Unavailable)?;
        Ok((row.patient_key, key))
    }

    /// A sign-in challenge: single use, short-lived, and at most
    /// [`MAX_OPEN_CHALLENGES`] outstanding per device.
    pub async fn challenge(&self, device: &DeviceKeyId) -> Result<String, ActError> {
        self.device(device).await?;
        let nonce = random_nonce();
        let (store, n, d) = (self.store.clone(), nonce.clone(), *device);
        let now = self.clock.now_secs();
        if !blocking(move || {
            store.add_challenge(&n, &d, now, now + CHALLENGE_SECS, MAX_OPEN_CHALLENGES)
        })
        .await?
        {
            return Err(ActError::TooMany(
                u64::try_from(CHALLENGE_SECS).unwrap_or(120),
            ));
        }
        Ok(nonce)
    }

    /// Signs a patient in: the device signs the challenge it was given, once.
    pub async fn sign_in(
        &self,
        device: &DeviceKeyId,
        challenge: &str,
        signature: &[u8],
    ) -> Result<(String, i64), ActError> {
        let (subject, key) = self.device(device).await?;
        let signed = DeviceChallenge {
            challenge: challenge.to_owned(),
            device: *device,
        };
        let bytes = signed
            .signing_bytes()
            .map_err(|e| ActError::BadRequest(e.to_string()))?;
        key.verify(&bytes, signature)
            .map_err(|_| ActError::BadSignature)?;
        let (store, c, d) = (self.store.clone(), challenge.to_owned(), *device);
        let now = self.clock.now_secs();
        if !blocking(move || store.use_challenge(&c, &d, now)).await? {
            return Err(ActError::BadSignature);
        }
        let exp = self.clock.now_secs() + SESSION_SECS;
        let token = self.sessions.issue(&Session {
            sub: subject,
            dev: *device,
            exp,
        });
        Ok((token, exp))
    }

    /// The session a bearer token carries, if its device is still enrolled
    /// for its patient: removing a device ends its sessions at once.
    pub async fn session(&self, token: &str) -> Result<Session, ActError> {
        let session = self
            .sessions
            .verify(token, self.clock.now_secs())
            .map_err(|_| ActError::Unauthenticated)?;
        let (store, d) = (self.store.clone(), session.dev);
        match blocking(move || store.device(&d)).await? {
            Some(device) if device.patient_key == session.sub => Ok(session),
            _ => Err(ActError::Unauthenticated),
        }
    }

    /// Makes a grant's claims, token, row and ledger event, checking that it
    /// can be issued (an active requester, a token and an entry that encode).
    #[allow(clippy::too_many_arguments)]
    fn prepare_grant(
        &self,
        subject: &PatientKey,
        requester: &MemberId,
        purpose: PurposeOfUse,
        scope: &ScopeSet,
        data_period: Option<DataPeriod>,
        duration_secs: i64,
        basis: GrantBasis,
    ) -> Result<PreparedGrant, ActError> {
        let cnf = self
            .directory
            .directory()
            .read()
            .active(requester)
            .map(|m| m.certificate.clone())
            .ok_or(ActError::Forbidden("the requester is not an active member"))?;
        let now = self.clock.now_secs();
        let claims = GrantTerms {
            subject: *subject,
            requester: requester.clone(),
            cnf,
            purpose,
            scope: scope.clone(),
            data_period,
            duration_secs,
            basis,
        }
        .claims(&self.member, &self.linkage, now);
        let token = issue_grant(&claims, &self.key)?;
        let event = Event::GrantIssued(GrantIssued::from_claims(&claims));
        // Signing now proves the entry encodes and fits; the act signs it again.
        self.sign(event.clone())?;
        let basis = match &claims.basis {
            GrantBasis::PatientApproval { .. } => BasisKind::PatientApproval,
            GrantBasis::StandingRule { .. } => BasisKind::StandingRule,
            GrantBasis::Emergency { .. } => BasisKind::Emergency,
        };
        let grant = Grant {
            grant_id: claims.jti,
            patient_key: *subject,
            requester: requester.clone(),
            basis,
            token: token.clone(),
            claims: serde_json::to_string(&claims).map_err(|_| ActError::Unavailable)?,
            issued_at: now,
            expires_at: claims.exp,
            revoked_at: None,
        };
        Ok(PreparedGrant {
            token,
            grant,
            event,
        })
    }

    /// A hospital asks; a standing rule of the patient's may grant at once.
    /// A request is refused here if what it asks could not be issued, so that
    /// whatever the patient approves of it can be.
    pub async fn request(
        &self,
        requester: &MemberId,
        subject: PatientKey,
        purpose: PurposeOfUse,
        scope: ScopeSet,
        data_period: Option<DataPeriod>,
        duration_secs: i64,
    ) -> Result<(RequestId, RequestStatus, Option<(String, String)>), ActError> {
        let terms = RequestTerms {
            request: RequestId::new_random(),
            requester: requester.clone(),
            subject,
            purpose,
            scope,
            data_period,
            duration_secs,
        };
        terms
            .check()
            .map_err(|e| ActError::BadRequest(e.to_string()))?;
        if duration_secs > self.limits.max_grant_secs {
            return Err(ActError::BadRequest(format!(
                "the duration is over the maximum of {} seconds",
                self.limits.max_grant_secs
            )));
        }
        // The widest approval is the request itself: it must be issuable.
        self.prepare_grant(
            &subject,
            requester,
            purpose,
            &terms.scope,
            terms.data_period.clone(),
            duration_secs,
            GrantBasis::PatientApproval {
                request: terms.request,
            },
        )?;

        // A rule the patient signed ahead of time decides it now.
        let (store, s) = (self.store.clone(), subject);
        let mut granted = None;
        for rule in blocking(move || store.rules_of(&s)).await? {
            let Ok(rule) = serde_json::from_str::<StandingRule>(&rule.rule) else {
                continue;
            };
            if !rule.matches(&terms, true) {
                continue;
            }
            let today = self.clock.now().format("%Y-%m-%d").to_string();
            let Ok(period) = rule.data_period_for(terms.data_period.as_ref(), &today) else {
                continue;
            };
            let duration = terms.duration_secs.min(rule.grant_duration_secs);
            granted = Some(self.prepare_grant(
                &terms.subject,
                requester,
                terms.purpose,
                &terms.scope,
                period,
                duration,
                GrantBasis::StandingRule {
                    rule: rule.rule.to_string(),
                },
            )?);
            break;
        }
        let row = AccessRequest {
            request_id: terms.request,
            patient_key: subject,
            requester: requester.clone(),
            terms: serde_json::to_string(&terms).map_err(|_| ActError::Unavailable)?,
            status: if granted.is_some() {
                RequestStatus::Approved
            } else {
                RequestStatus::Pending
            },
            created_at: self.clock.now_ms(),
            decided_at: granted.as_ref().map(|_| self.clock.now_ms()),
            grant_id: granted.as_ref().map(|g| g.grant.grant_id),
        };
        let mut events = vec![Event::AccessRequested(AccessRequested {
            terms: terms.clone(),
        })];
        events.extend(granted.as_ref().map(|g| g.event.clone()));
        let change = Change::Request {
            request: row,
            grant: granted.as_ref().map(|g| g.grant.clone()),
        };
        self.perform(format!("request:{}", terms.request), events, change)
            .await?;
        match granted {
            Some(g) => {
                let discovery = self.discovery_token(&g.grant)?;
                Ok((
                    terms.request,
                    RequestStatus::Approved,
                    Some((g.token, discovery)),
                ))
            }
            None => Ok((terms.request, RequestStatus::Pending, None)),
        }
    }

    /// The discovery token of a stored grant: what the requester shows the
    /// index (signed again on demand; Ed25519 is deterministic).
    pub fn discovery_token(&self, grant: &Grant) -> Result<String, ActError> {
        let claims: GrantClaims =
            serde_json::from_str(&grant.claims).map_err(|_| ActError::Unavailable)?;
        encode_discovery(&claims, &self.key).map_err(|e| ActError::BadRequest(e.to_string()))
    }

    /// The patient's signed answer to one of their requests: decided once,
    /// however often and however concurrently it is sent.
    pub async fn decide(
        &self,
        session: &Session,
        decision: &Decision,
        signature: &[u8],
    ) -> Result<Option<GrantId>, ActError> {
        if *decision.subject() != session.sub || *decision.device() != session.dev {
            return Err(ActError::Forbidden(
                "a patient decides only their own requests, from their signed-in device",
            ));
        }
        let (_, key) = self.device(decision.device()).await?;
        decision
            .verify_signature(&key, signature)
            .map_err(|_| ActError::BadSignature)?;
        let signature64 = Signature64::try_from(signature).map_err(|_| ActError::BadSignature)?;
        let (store, id) = (self.store.clone(), *decision.request());
        let request = blocking(move || store.request(&id))
            .await?
            .ok_or(ActError::NotFound("request"))?;
        if request.patient_key != session.sub {
            return Err(ActError::NotFound("request"));
        }
        if request.status != RequestStatus::Pending {
            return Err(ActError::AlreadyDecided);
        }
        let terms: RequestTerms =
            serde_json::from_str(&request.terms).map_err(|_| ActError::Unavailable)?;
        let decided = Event::AccessDecided(AccessDecided {
            decision: decision.clone(),
            signature: signature64,
        });
        let key = format!("request:{}", request.request_id);
        match decision {
            Decision::Approve(approval) => {
                decision
                    .narrows(&terms)
                    .map_err(|e| ActError::Wider(e.to_string()))?;
                if approval.duration_secs > self.limits.max_grant_secs {
                    return Err(ActError::Wider("the duration is over the maximum".into()));
                }
                let prepared = self.prepare_grant(
                    &approval.subject,
                    &approval.requester,
                    approval.purpose,
                    &approval.scope,
                    approval.data_period.clone(),
                    approval.duration_secs,
                    GrantBasis::PatientApproval {
                        request: approval.request,
                    },
                )?;
                let id = prepared.grant.grant_id;
                let change = Change::Decide {
                    request_id: request.request_id,
                    status: RequestStatus::Approved,
                    grant: Some(prepared.grant),
                };
                self.perform(key, vec![decided, prepared.event], change)
                    .await?;
                Ok(Some(id))
            }
            Decision::Refuse(_) => {
                let change = Change::Decide {
                    request_id: request.request_id,
                    status: RequestStatus::Refused,
                    grant: None,
                };
                self.perform(key, vec![decided], change).await?;
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
    ) -> Result<(String, String), ActError> {
        if duration_secs <= 0 || duration_secs > self.limits.max_emergency_secs {
            return Err(ActError::BadRequest(format!(
                "an emergency grant lasts 1 to {} seconds",
                self.limits.max_emergency_secs
            )));
        }
        locus_protocol::text::check_shown_text(&reason, MAX_REASON_CHARS)
            .map_err(|e| ActError::BadRequest(format!("the reason {e}")))?;
        let prepared = self.prepare_grant(
            &subject,
            requester,
            PurposeOfUse::EmergencyTreatment,
            &scope,
            None,
            duration_secs,
            GrantBasis::Emergency { reason },
        )?;
        let discovery = self.discovery_token(&prepared.grant)?;
        let key = format!("grant:{}", prepared.grant.grant_id);
        self.perform(
            key,
            vec![prepared.event],
            Change::Emergency {
                grant: prepared.grant,
            },
        )
        .await?;
        Ok((prepared.token, discovery))
    }

    /// The signature of a revocation the signed-in patient made on their
    /// signed-in device, checked under that device's key.
    async fn revocation_signature(
        &self,
        session: &Session,
        revocation: SignedRevocation<'_>,
        signature: &[u8],
    ) -> Result<Signature64, ActError> {
        let (subject, device, forbidden) = match revocation {
            SignedRevocation::Grant(r) => (
                r.subject,
                r.device,
                "a patient revokes only their own grants, from their signed-in device",
            ),
            SignedRevocation::Rule(r) => (
                r.subject,
                r.device,
                "a patient revokes only their own rules, from their signed-in device",
            ),
        };
        if subject != session.sub || device != session.dev {
            return Err(ActError::Forbidden(forbidden));
        }
        let (_, key) = self.device(&device).await?;
        match revocation {
            SignedRevocation::Grant(r) => r.verify_signature(&key, signature),
            SignedRevocation::Rule(r) => r.verify_signature(&key, signature),
        }
        .map_err(|_| ActError::BadSignature)?;
        // A signature the device's key verifies has 64 bytes.
        Signature64::try_from(signature).map_err(|_| ActError::BadSignature)
    }

    /// The patient revokes one of their grants, with their device's signature; once.
    pub async fn revoke(
        &self,
        session: &Session,
        revocation: &Revocation,
        signature: &[u8],
    ) -> Result<(), ActError> {
        let signature = self
            .revocation_signature(session, SignedRevocation::Grant(revocation), signature)
            .await?;
        let (store, id) = (self.store.clone(), revocation.grant);
        let grant = blocking(move || store.grant(&id))
            .await?
            .ok_or(ActError::NotFound("grant"))?;
        if grant.patient_key != session.sub {
            return Err(ActError::NotFound("grant"));
        }
        if grant.revoked_at.is_some() {
            return Err(Conflict::AlreadyRevoked.into());
        }
        let event = Event::GrantRevoked(GrantRevoked {
            grant: revocation.grant,
            subject: revocation.subject,
            by_device: Some(DeviceRevocation {
                device: revocation.device,
                signed_at_ms: revocation.signed_at_ms,
                signature,
            }),
        });
        let change = Change::RevokeGrant {
            patient_key: session.sub,
            grant_id: grant.grant_id,
        };
        self.perform(format!("grant:{}", grant.grant_id), vec![event], change)
            .await
    }

    /// The patient removes one of their devices (from any of their devices).
    /// Its sessions end at once, before the removal is logged.
    pub async fn remove_device(
        &self,
        session: &Session,
        device: &DeviceKeyId,
    ) -> Result<(), ActError> {
        let subject = session.sub;
        let store = self.store.clone();
        let mine = blocking(move || store.devices_of(&subject))
            .await?
            .into_iter()
            .any(|row| row.device_id == *device);
        if !mine {
            return Err(ActError::NotFound("device"));
        }
        let event = Event::DeviceRemoved(locus_protocol::entry::DeviceRemoved {
            subject,
            device: *device,
        });
        let change = Change::RemoveDevice {
            patient_key: session.sub,
            device_id: *device,
        };
        self.perform(format!("device:{device}"), vec![event], change)
            .await
    }

    /// Everything the ledger holds about the patient, newest first, in words.
    pub async fn history(&self, session: &Session) -> Result<Vec<HistoryEvent>, ActError> {
        let subject = session.sub;
        let mut events = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let query = match after {
                Some(a) => format!("subject={subject}&limit=1000&after={a}"),
                None => format!("subject={subject}&limit=1000"),
            };
            let page = self.ledger.entries(&query).await?;
            for logged in &page.entries {
                let Ok(entry) = serde_json::from_value::<SignedEntry>(logged.entry.clone()) else {
                    continue;
                };
                events.push(HistoryEvent {
                    index: logged.index,
                    time_ms: entry.entry().time_ms,
                    kind: entry.entry().event.kind().to_owned(),
                    text: crate::words::describe_event(
                        self.directory.directory(),
                        &entry.entry().event,
                    ),
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

    /// The patient signs a standing rule; a rule id is used once.
    pub async fn add_rule(
        &self,
        session: &Session,
        rule: &StandingRule,
        signature: &[u8],
    ) -> Result<(), ActError> {
        if rule.subject != session.sub || rule.device != session.dev {
            return Err(ActError::Forbidden(
                "a patient makes rules only for themselves, from their signed-in device",
            ));
        }
        rule.check()
            .map_err(|e| ActError::BadRequest(e.to_string()))?;
        let (_, key) = self.device(&rule.device).await?;
        rule.verify_signature(&key, signature)
            .map_err(|_| ActError::BadSignature)?;
        let signature64 = Signature64::try_from(signature).map_err(|_| ActError::BadSignature)?;
        let (store, r) = (self.store.clone(), rule.rule);
        if blocking(move || store.rule(&r)).await?.is_some() {
            return Err(Conflict::RuleExists.into());
        }
        let row = Rule {
            rule_id: rule.rule,
            patient_key: session.sub,
            rule: serde_json::to_string(rule).map_err(|_| ActError::Unavailable)?,
            signature: URL_SAFE_NO_PAD.encode(signature),
            created_at: self.clock.now_ms(),
            revoked_at: None,
        };
        let event = Event::RuleCreated(RuleCreated {
            rule: rule.clone(),
            signature: signature64,
        });
        self.perform(
            format!("rule:{}", rule.rule),
            vec![event],
            Change::AddRule { rule: row },
        )
        .await
    }

    /// The patient's standing rules in force, oldest first.
    pub async fn rules(&self, session: &Session) -> Result<Vec<(Rule, StandingRule)>, ActError> {
        let (store, s) = (self.store.clone(), session.sub);
        blocking(move || store.rules_of(&s))
            .await?
            .into_iter()
            .map(|row| {
                let rule: StandingRule =
                    serde_json::from_str(&row.rule).map_err(|_| ActError::Unavailable)?;
                Ok((row, rule))
            })
            .collect()
    }

    /// The patient revokes one of their standing rules with their device's
    /// signature: it stops matching requests at once, and is logged.
    pub async fn revoke_rule(
        &self,
        session: &Session,
        revocation: &RuleRevocation,
        signature: &[u8],
    ) -> Result<(), ActError> {
        let signature = self
            .revocation_signature(session, SignedRevocation::Rule(revocation), signature)
            .await?;
        let (store, r) = (self.store.clone(), revocation.rule);
        let rule = blocking(move || store.rule(&r)).await?;
        match rule {
            Some(row) if row.patient_key == session.sub => {
                if row.revoked_at.is_some() {
                    return Err(ActError::Conflict("the rule was already revoked"));
                }
            }
            _ => return Err(ActError::NotFound("rule")),
        }
        let event = Event::RuleRevoked(RuleRevoked {
            rule: revocation.rule,
            subject: revocation.subject,
            device: revocation.device,
            signed_at_ms: revocation.signed_at_ms,
            signature,
        });
        let change = Change::RevokeRule {
            patient_key: session.sub,
            rule_id: revocation.rule,
        };
        self.perform(format!("rule:{}", revocation.rule), vec![event], change)
            .await
    }
}

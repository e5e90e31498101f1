//! Signed ledger entries.
//!
//! An entry is canonical JSON (RFC 8785, see [`crate::jcs`]) signed by its submitter
//! with Ed25519 over `ENTRY_SIGNATURE_CONTEXT || canonical(entry)`. The ledger leaf is
//! the canonical JSON of `{"entry": ..., "sig": ...}`. Entries hold no health data and
//! no direct identifiers: only pseudonymous keys, ids, counts, commitments, scopes and
//! purposes (scope strings may name a category or code, e.g. a LOINC code), device
//! public keys and signatures; the only free text is an emergency grant's bounded
//! reason.
//!
//! Consent events carry what the patient's device signed ([`crate::consent`]) and the
//! signature, so a regulator can check from the ledger alone that the patient agreed:
//! see [`Event::device_signed`].
//!
//! Parsing is strict (canonical bytes only, unknown fields and event types refused)
//! so that one entry has exactly one leaf encoding.

use serde::{Deserialize, Serialize};

use crate::consent::{
    check_time, ConsentError, Decision, RequestTerms, Revocation, RuleRevocation, StandingRule,
};
use crate::device::{DeviceKey, DeviceKeyId};
use crate::grant::{
    check_basis_text, Confirmation, DataPeriod, GrantBasis, GrantClaims, PurposeOfUse,
};
use crate::ids::{GrantId, HospitalId, KeyId, MemberId, PatientKey, PointerId, RuleId};
use crate::jcs::{self, CanonicalError};
use crate::member::MemberUpdateError;
use crate::scope::ScopeSet;
use crate::signing::{Signature64, SigningKey, VerifyError, VerifyingKey};

pub use crate::ids::{Commitment, MerkleRoot};
pub use crate::member::{MemberRole, MemberStatus, MemberUpdated};

/// Prepended to the canonical entry before signing, so an entry signature can never
/// be replayed as a signature over anything else a member key signs.
pub const ENTRY_SIGNATURE_CONTEXT: &[u8] = b"locus/entry/v1\n";

/// The only entry format version.
pub const ENTRY_VERSION: u8 = 1;

/// One ledger entry, before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version; must be [`ENTRY_VERSION`].
    pub v: u8,
    /// The member that submits (and signs) the entry.
    pub submitter: MemberId,
    /// The id of the submitter's signing key.
    pub kid: KeyId,
    /// When the submitter made the entry, Unix milliseconds; never negative.
    pub time_ms: i64,
    /// What happened.
    pub event: Event,
}

impl Entry {
    /// A version-1 entry.
    pub fn new(submitter: MemberId, kid: KeyId, time_ms: i64, event: Event) -> Self {
        Self {
            v: ENTRY_VERSION,
            submitter,
            kid,
            time_ms,
            event,
        }
    }

    fn check(&self) -> Result<(), EntryError> {
        if self.v != ENTRY_VERSION {
            return Err(EntryError::UnsupportedVersion(self.v));
        }
        if self.time_ms < 0 {
            return Err(EntryError::NegativeTime);
        }
        self.event.check()
    }
}

/// What an entry records. The JSON form is the variant's fields plus `"type"`.
///
/// To add an event: add a struct with `deny_unknown_fields`, a variant with its
/// `rename`, and its arms in the accessors below (the compiler lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A custodian published a batch of pointers.
    #[serde(rename = "pointers.published")]
    PointersPublished(PointersPublished),
    /// The index answered a discovery query under a grant.
    #[serde(rename = "index.queried")]
    IndexQueried(IndexQueried),
    /// A custodian released a record under a grant.
    #[serde(rename = "record.retrieved")]
    RecordRetrieved(RecordRetrieved),
    /// A query or retrieval was refused.
    #[serde(rename = "access.refused")]
    AccessRefused(AccessRefused),
    /// The consortium authority admitted or changed a member.
    #[serde(rename = "member.updated")]
    MemberUpdated(MemberUpdated),
    /// The consent service revoked a grant.
    #[serde(rename = "grant.revoked")]
    GrantRevoked(GrantRevoked),
    /// The consent service enrolled a patient's device.
    #[serde(rename = "device.enrolled")]
    DeviceEnrolled(DeviceEnrolled),
    /// The consent service removed a patient's device.
    #[serde(rename = "device.removed")]
    DeviceRemoved(DeviceRemoved),
    /// A hospital asked for access.
    #[serde(rename = "access.requested")]
    AccessRequested(AccessRequested),
    /// The patient approved or refused a request on their device.
    #[serde(rename = "access.decided")]
    AccessDecided(AccessDecided),
    /// The consent service issued a grant (after an approval, under a standing rule,
    /// or for an emergency).
    #[serde(rename = "grant.issued")]
    GrantIssued(GrantIssued),
    /// The patient signed a standing rule.
    #[serde(rename = "rule.created")]
    RuleCreated(RuleCreated),
    /// The patient revoked a standing rule.
    #[serde(rename = "rule.revoked")]
    RuleRevoked(RuleRevoked),
}

/// The kinds of event, and their `"type"` strings: the one place those strings are
/// written out besides the serde renames above, which a test holds equal to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `pointers.published`
    PointersPublished,
    /// `index.queried`
    IndexQueried,
    /// `record.retrieved`
    RecordRetrieved,
    /// `access.refused`
    AccessRefused,
    /// `member.updated`
    MemberUpdated,
    /// `grant.revoked`
    GrantRevoked,
    /// `device.enrolled`
    DeviceEnrolled,
    /// `device.removed`
    DeviceRemoved,
    /// `access.requested`
    AccessRequested,
    /// `access.decided`
    AccessDecided,
    /// `grant.issued`
    GrantIssued,
    /// `rule.created`
    RuleCreated,
    /// `rule.revoked`
    RuleRevoked,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 13] = [
        Self::PointersPublished,
        Self::IndexQueried,
        Self::RecordRetrieved,
        Self::AccessRefused,
        Self::MemberUpdated,
        Self::GrantRevoked,
        Self::DeviceEnrolled,
        Self::DeviceRemoved,
        Self::AccessRequested,
        Self::AccessDecided,
        Self::GrantIssued,
        Self::RuleCreated,
        Self::RuleRevoked,
    ];

    /// The `"type"` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PointersPublished => "pointers.published",
            Self::IndexQueried => "index.queried",
            Self::RecordRetrieved => "record.retrieved",
            Self::AccessRefused => "access.refused",
            Self::MemberUpdated => "member.updated",
            Self::GrantRevoked => "grant.revoked",
            Self::DeviceEnrolled => "device.enrolled",
            Self::DeviceRemoved => "device.removed",
            Self::AccessRequested => "access.requested",
            Self::AccessDecided => "access.decided",
            Self::GrantIssued => "grant.issued",
            Self::RuleCreated => "rule.created",
            Self::RuleRevoked => "rule.revoked",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `"type"` string that names no kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a kind of ledger entry")]
pub struct UnknownEventKind;

impl std::str::FromStr for EventKind {
    type Err = UnknownEventKind;
    fn from_str(s: &str) -> Result<Self, UnknownEventKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(UnknownEventKind)
    }
}

impl Event {
    /// The kind of this event.
    pub fn event_kind(&self) -> EventKind {
        match self {
            Self::PointersPublished(_) => EventKind::PointersPublished,
            Self::IndexQueried(_) => EventKind::IndexQueried,
            Self::RecordRetrieved(_) => EventKind::RecordRetrieved,
            Self::AccessRefused(_) => EventKind::AccessRefused,
            Self::MemberUpdated(_) => EventKind::MemberUpdated,
            Self::GrantRevoked(_) => EventKind::GrantRevoked,
            Self::DeviceEnrolled(_) => EventKind::DeviceEnrolled,
            Self::DeviceRemoved(_) => EventKind::DeviceRemoved,
            Self::AccessRequested(_) => EventKind::AccessRequested,
            Self::AccessDecided(_) => EventKind::AccessDecided,
            Self::GrantIssued(_) => EventKind::GrantIssued,
            Self::RuleCreated(_) => EventKind::RuleCreated,
            Self::RuleRevoked(_) => EventKind::RuleRevoked,
        }
    }

    /// The `"type"` string of this event.
    pub fn kind(&self) -> &'static str {
        self.event_kind().as_str()
    }

    /// The patient the event is about, if any.
    pub fn subject(&self) -> Option<&PatientKey> {
        self.subject_and_grant().0
    }

    /// The grant the event was made under, if any.
    pub fn grant(&self) -> Option<&GrantId> {
        self.subject_and_grant().1
    }

    /// The patient and the grant the event names, each if any: one table for both.
    fn subject_and_grant(&self) -> (Option<&PatientKey>, Option<&GrantId>) {
        match self {
            Self::PointersPublished(_) | Self::MemberUpdated(_) => (None, None),
            Self::IndexQueried(e) => (Some(&e.subject), Some(&e.grant)),
            Self::RecordRetrieved(e) => (Some(&e.subject), Some(&e.grant)),
            Self::AccessRefused(e) => (e.subject.as_ref(), e.grant.as_ref()),
            Self::GrantRevoked(e) => (Some(&e.subject), Some(&e.grant)),
            Self::DeviceEnrolled(e) => (Some(&e.subject), None),
            Self::DeviceRemoved(e) => (Some(&e.subject), None),
            Self::AccessRequested(e) => (Some(&e.terms.subject), None),
            Self::AccessDecided(e) => (Some(e.decision.subject()), None),
            Self::GrantIssued(e) => (Some(&e.subject), Some(&e.grant)),
            Self::RuleCreated(e) => (Some(&e.rule.subject), None),
            Self::RuleRevoked(e) => (Some(&e.subject), None),
        }
    }

    /// Checks what serde alone cannot (for events built in code rather than parsed).
    fn check(&self) -> Result<(), EntryError> {
        match self {
            Self::MemberUpdated(e) => Ok(e.check()?),
            Self::GrantRevoked(e) => Ok(e.check()?),
            Self::DeviceEnrolled(e) => Ok(e.check()?),
            Self::AccessRequested(e) => Ok(e.terms.check()?),
            Self::AccessDecided(e) => Ok(e.decision.check()?),
            Self::GrantIssued(e) => Ok(e.check()?),
            Self::RuleCreated(e) => Ok(e.rule.check()?),
            Self::RuleRevoked(e) => Ok(e.check()?),
            Self::PointersPublished(_)
            | Self::IndexQueried(_)
            | Self::RecordRetrieved(_)
            | Self::AccessRefused(_)
            | Self::DeviceRemoved(_) => Ok(()),
        }
    }
}

/// A device signature from the ledger with the bytes it covers (without
/// [`crate::device::DEVICE_SIGNATURE_CONTEXT`]); see [`Event::device_signed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedConsent {
    /// The device that signed.
    pub device: DeviceKeyId,
    /// The patient it signed for: the device must be enrolled for this patient.
    pub subject: PatientKey,
    /// The consent object's signing bytes.
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Signature64,
}

impl SignedConsent {
    /// Checks that `key` is the signing device's key and that the signature is valid.
    pub fn verify(&self, key: &DeviceKey) -> Result<(), VerifyError> {
        if key.thumbprint() != self.device {
            return Err(VerifyError);
        }
        key.verify(&self.message, self.signature.as_bytes())
    }
}

/// `pointers.published`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointersPublished {
    /// The hospital that holds the records.
    pub custodian: HospitalId,
    /// Number of pointers in the batch.
    pub count: u32,
    /// Merkle root over the batch's content commitments.
    pub batch_root: MerkleRoot,
}

/// `index.queried`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexQueried {
    /// Who asked.
    pub requester: MemberId,
    /// Under which grant.
    pub grant: GrantId,
    /// About which patient.
    pub subject: PatientKey,
    /// How many pointers were returned.
    pub results: u32,
}

/// `record.retrieved`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRetrieved {
    /// Who received the record.
    pub requester: MemberId,
    /// Who released it.
    pub custodian: HospitalId,
    /// Under which grant.
    pub grant: GrantId,
    /// About which patient.
    pub subject: PatientKey,
    /// Which pointer.
    pub pointer: PointerId,
    /// The record's content commitment, as in the pointer.
    pub commitment: Commitment,
}

/// `access.refused`: a refusal by its submitter of a request made to it, so it
/// speaks only of the submitter's own act (see [`crate::roles`]). `custodian`,
/// `grant` and `subject` are left out of the JSON when absent (not written as
/// `null`), keeping one canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRefused {
    /// Who was refused.
    pub requester: MemberId,
    /// The hospital a refused retrieval was asked of, which refused it; absent
    /// when the index refused a discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodian: Option<HospitalId>,
    /// The grant presented, if any could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantId>,
    /// The patient concerned, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<PatientKey>,
    /// Why.
    pub reason: RefusalReason,
}

checked_struct! {
    /// `grant.revoked`. `by_device` is present when the patient revoked the grant
    /// from a device, and left out of the JSON otherwise (so entries written before
    /// it existed still parse, with the same bytes).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct GrantRevoked {
        /// Which grant (its `jti`).
        pub grant: GrantId,
        /// The grant's patient.
        pub subject: PatientKey,
        /// The patient's signed revocation, if it came from the patient.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub by_device: Option<DeviceRevocation>,
    }
}

impl GrantRevoked {
    /// Checks the device signing time, if any.
    pub fn check(&self) -> Result<(), ConsentError> {
        match &self.by_device {
            Some(by) => by.check(),
            None => Ok(()),
        }
    }

    /// The revocation the device signed, rebuilt from the entry, if it came from a
    /// device.
    pub fn revocation(&self) -> Option<Revocation> {
        self.by_device.as_ref().map(|by| self.revocation_by(by))
    }

    /// The revocation `by` signed, rebuilt from the entry.
    pub(crate) fn revocation_by(&self, by: &DeviceRevocation) -> Revocation {
        Revocation {
            grant: self.grant,
            subject: self.subject,
            device: by.device,
            signed_at_ms: by.signed_at_ms,
        }
    }
}

checked_struct! {
    /// Who revoked a grant from which device, and the signature over the
    /// [`Revocation`] built from the `grant.revoked` entry and these fields.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct DeviceRevocation {
        /// The device that signed.
        pub device: DeviceKeyId,
        /// When, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
        /// The device signature.
        pub signature: Signature64,
    }
}

impl DeviceRevocation {
    /// Checks the signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_time(self.signed_at_ms)
    }
}

checked_struct! {
    /// `device.enrolled`: the device's public key, so that its signatures can be
    /// checked from the ledger alone. `device` must be the key's thumbprint.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct DeviceEnrolled {
        /// The patient.
        pub subject: PatientKey,
        /// The device (its key's RFC 7638 thumbprint).
        pub device: DeviceKeyId,
        /// The public key, as a JWK.
        pub key: DeviceKey,
        /// The member whose desk issued the enrolment code: the desk's word is
        /// trusted, so it is named, and audited where it benefits.
        pub code_issuer: MemberId,
    }
}

impl DeviceEnrolled {
    /// Checks that `device` is the key's thumbprint.
    pub fn check(&self) -> Result<(), ConsentError> {
        if self.key.thumbprint() == self.device {
            Ok(())
        } else {
            Err(ConsentError::DeviceMismatch)
        }
    }
}

/// `device.removed`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRemoved {
    /// The patient.
    pub subject: PatientKey,
    /// The device.
    pub device: DeviceKeyId,
}

/// `access.requested`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRequested {
    /// What was asked for.
    pub terms: RequestTerms,
}

/// `access.decided`: the patient's decision and their device's signature over
/// [`Decision::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessDecided {
    /// What the patient signed.
    pub decision: Decision,
    /// The device signature.
    pub signature: Signature64,
}

checked_struct! {
    /// `grant.issued`: everything a later retrieval is checked against (the token's
    /// claims but `iss`, `iat` and the scope tags). Times are Unix seconds, as in the
    /// token. An emergency grant is one with `basis.kind = "emergency"`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct GrantIssued {
        /// The grant (the token's `jti`).
        pub grant: GrantId,
        /// The patient (`sub`).
        pub subject: PatientKey,
        /// Who may use it (`aud`).
        pub requester: MemberId,
        /// What may be read.
        pub scope: ScopeSet,
        /// Which clinical dates; absent means any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data_period: Option<DataPeriod>,
        /// Why.
        pub purpose: PurposeOfUse,
        /// `nbf`
        pub not_before: i64,
        /// `exp` (exclusive)
        pub expires: i64,
        /// What authorizes it.
        pub basis: GrantBasis,
        /// The certificate it is bound to.
        pub cnf: Confirmation,
    }
}

impl GrantIssued {
    /// The entry for a grant's claims.
    pub fn from_claims(claims: &GrantClaims) -> Self {
        Self {
            grant: claims.jti,
            subject: claims.sub,
            requester: claims.aud.clone(),
            scope: claims.scope.clone(),
            data_period: claims.data_period.clone(),
            purpose: claims.purpose,
            not_before: claims.nbf,
            expires: claims.exp,
            basis: claims.basis.clone(),
            cnf: claims.cnf.clone(),
        }
    }

    /// Checks the validity window, and the basis: a standing rule is named by its
    /// [`RuleId`]; an emergency has purpose `ETREAT` and a reason of at most
    /// [`crate::grant::MAX_BASIS_TEXT_LEN`] bytes without control characters.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_time(self.not_before).map_err(|_| ConsentError::InvalidValidity)?;
        check_time(self.expires).map_err(|_| ConsentError::InvalidValidity)?;
        if self.expires <= self.not_before {
            return Err(ConsentError::InvalidValidity);
        }
        match &self.basis {
            GrantBasis::PatientApproval { .. } => Ok(()),
            GrantBasis::StandingRule { rule } => rule
                .parse::<RuleId>()
                .map(drop)
                .map_err(|_| ConsentError::InvalidRuleBasis),
            GrantBasis::Emergency { reason } => {
                check_basis_text(reason)?;
                if self.purpose != PurposeOfUse::EmergencyTreatment {
                    return Err(crate::grant::GrantError::EmergencyPurpose.into());
                }
                Ok(())
            }
        }
    }
}

/// `rule.created`: the rule and the device signature over
/// [`StandingRule::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCreated {
    /// What the patient signed.
    pub rule: StandingRule,
    /// The device signature.
    pub signature: Signature64,
}

checked_struct! {
    /// `rule.revoked`: the fields of the [`RuleRevocation`] the device signed, and
    /// the signature.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct RuleRevoked {
        /// The rule.
        pub rule: RuleId,
        /// The patient.
        pub subject: PatientKey,
        /// The device that signed.
        pub device: DeviceKeyId,
        /// When, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
        /// The device signature.
        pub signature: Signature64,
    }
}

impl RuleRevoked {
    /// Checks the signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_time(self.signed_at_ms)
    }

    /// The revocation the device signed.
    pub fn revocation(&self) -> RuleRevocation {
        RuleRevocation {
            rule: self.rule,
            subject: self.subject,
            device: self.device,
            signed_at_ms: self.signed_at_ms,
        }
    }
}

/// Why access was refused (a closed list, so regulators can count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No grant was presented.
    NoGrant,
    /// The grant token did not verify: malformed, wrong algorithm, unknown or
    /// inactive signing key, bad signature, another audience, or invalid claims.
    InvalidGrant,
    /// The grant is for another patient.
    WrongPatient,
    /// The record is outside the grant's scopes.
    OutOfScope,
    /// The record is outside the grant's data period.
    OutOfDateRange,
    /// The grant has expired or is not yet valid.
    Expired,
    /// The client certificate does not match the grant's `cnf`.
    CertificateMismatch,
    /// The sealed pointer did not open or did not match its commitment.
    TamperedPointer,
    /// The requester is suspended from the consortium.
    MemberSuspended,
    /// The grant was revoked.
    Revoked,
}

/// Problems building or parsing a signed entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Not canonical JSON of the expected shape (includes unknown fields and
    /// unknown event types).
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// `v` is not 1.
    #[error("unsupported entry version {0}")]
    UnsupportedVersion(u8),
    /// `time_ms` is negative.
    #[error("entry time must not be negative")]
    NegativeTime,
    /// The entry's `kid` is not the id of the signing key.
    #[error("entry kid does not match the signing key")]
    KeyIdMismatch,
    /// A `member.updated` event with an invalid display name or endpoint.
    #[error(transparent)]
    InvalidMember(#[from] MemberUpdateError),
    /// A consent event with an invalid value (duration, time, device id, basis, ...).
    #[error(transparent)]
    InvalidConsent(#[from] ConsentError),
}

/// An entry with its submitter's signature. Built only through [`SignedEntry::sign`],
/// [`SignedEntry::parse`] or [`SignedEntry::from_parts`], which check it, so its
/// canonical bytes are always available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    entry: Entry,
    sig: Signature64,
    /// `ENTRY_SIGNATURE_CONTEXT || canonical(entry)`.
    signed_message: Vec<u8>,
    /// `canonical({"entry": entry, "sig": sig})`, the ledger leaf data.
    leaf: Vec<u8>,
}

#[derive(Serialize)]
struct WireRef<'a> {
    entry: &'a Entry,
    sig: &'a Signature64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    entry: Entry,
    sig: Signature64,
}

impl SignedEntry {
    /// Signs `entry` with `key`. `entry.kid` must be `key.key_id()`.
    pub fn sign(entry: Entry, key: &SigningKey) -> Result<Self, EntryError> {
        entry.check()?;
        if entry.kid != key.key_id() {
            return Err(EntryError::KeyIdMismatch);
        }
        let signed_message = jcs::signed_message(ENTRY_SIGNATURE_CONTEXT, &entry)?;
        let sig = key.sign(&signed_message);
        Self::assemble(entry, sig, signed_message)
    }

    /// Rebuilds a signed entry from its parts (e.g. from storage). Checks the entry's
    /// form but not the signature: call [`SignedEntry::verify`].
    pub fn from_parts(entry: Entry, sig: Signature64) -> Result<Self, EntryError> {
        entry.check()?;
        let signed_message = jcs::signed_message(ENTRY_SIGNATURE_CONTEXT, &entry)?;
        Self::assemble(entry, sig, signed_message)
    }

    fn assemble(
        entry: Entry,
        sig: Signature64,
        signed_message: Vec<u8>,
    ) -> Result<Self, EntryError> {
        let leaf = jcs::to_canonical_vec(&WireRef {
            entry: &entry,
            sig: &sig,
        })?;
        Ok(Self {
            entry,
            sig,
            signed_message,
            leaf,
        })
    }

    /// Parses ledger leaf data. Refuses anything but the canonical encoding of a
    /// well-formed version-1 entry. Does not check the signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        let wire: Wire = jcs::from_canonical_slice(bytes)?;
        let parsed = Self::from_parts(wire.entry, wire.sig)?;
        // Canonical JSON can still differ from our own encoding of what it parsed
        // to, e.g. an explicit `"grant":null` that we leave out.
        if parsed.leaf != bytes {
            return Err(CanonicalError::NotCanonical.into());
        }
        Ok(parsed)
    }

    /// Checks that `key` is the one named by `kid` and that the signature is valid.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), VerifyError> {
        if self.entry.kid != key.key_id() {
            return Err(VerifyError);
        }
        key.verify(&self.signed_message, &self.sig)
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The signature.
    pub fn sig(&self) -> &Signature64 {
        &self.sig
    }

    /// The ledger leaf data (canonical JSON).
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        self.leaf.clone()
    }

    /// The ledger leaf data, borrowed.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.leaf
    }
}

impl Serialize for SignedEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireRef {
            entry: &self.entry,
            sig: &self.sig,
        }
        .serialize(s)
    }
}

/// Accepts any JSON spelling (for embedding in API bodies) but the same checks as
/// [`SignedEntry::from_parts`]; use [`SignedEntry::parse`] for leaf bytes.
impl<'de> Deserialize<'de> for SignedEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        Self::from_parts(wire.entry, wire.sig).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Approval, Refusal, RuleAudience};
    use crate::device::DeviceSigner;
    use crate::test_support::{assert_each_edit_refused, record_retrieved, scopes};

    const PK: &str = "1553afd87589661bffe7f636c024232c40cc9380f60c26b0070d34c25ae50bf6";

    fn key() -> SigningKey {
        SigningKey::from_seed([9; 32])
    }

    fn events() -> Vec<Event> {
        let subject: PatientKey = PK.parse().unwrap();
        let grant: GrantId = "123e4567-e89b-42d3-a456-426614174000".parse().unwrap();
        vec![
            Event::PointersPublished(PointersPublished {
                custodian: "st-mary".parse().unwrap(),
                count: 12,
                batch_root: MerkleRoot::from_bytes([3; 32]),
            }),
            Event::IndexQueried(IndexQueried {
                requester: "city-er".parse().unwrap(),
                grant,
                subject,
                results: 3,
            }),
            record_retrieved(grant, subject),
            Event::AccessRefused(AccessRefused {
                requester: "city-er".parse().unwrap(),
                custodian: Some("st-mary".parse().unwrap()),
                grant: Some(grant),
                subject: None,
                reason: RefusalReason::OutOfDateRange,
            }),
            Event::AccessRefused(AccessRefused {
                requester: "city-er".parse().unwrap(),
                custodian: None,
                grant: None,
                subject: None,
                reason: RefusalReason::NoGrant,
            }),
            Event::MemberUpdated(member_updated()),
            Event::GrantRevoked(GrantRevoked {
                grant,
                subject,
                by_device: None,
            }),
        ]
        .into_iter()
        .chain(consent_events(&device_signer()))
        .collect()
    }

    /// A fixed simulated phone (Ed25519, so signatures are deterministic).
    fn device_signer() -> DeviceSigner {
        DeviceSigner::from_ed25519(SigningKey::from_seed([5; 32])).unwrap()
    }

    fn terms() -> RequestTerms {
        RequestTerms {
            request: "00000000-0000-4000-8000-0000000000aa".parse().unwrap(),
            requester: "city-er".parse().unwrap(),
            subject: PK.parse().unwrap(),
            purpose: PurposeOfUse::Treatment,
            scope: scopes("patient/Observation.rs?code=http://loinc.org|2339-0"),
            data_period: Some(DataPeriod::new("2024-01-01", "2024-06-30").unwrap()),
            duration_secs: 86_400,
        }
    }

    fn rule(device: DeviceKeyId) -> StandingRule {
        StandingRule {
            rule: "00000000-0000-4000-8000-0000000000bb".parse().unwrap(),
            subject: PK.parse().unwrap(),
            who: RuleAudience::AnyHospital,
            scope: scopes("patient/Observation.rs?category=laboratory"),
            data_window_days: Some(365),
            grant_duration_secs: 86_400,
            purposes: vec![PurposeOfUse::EmergencyTreatment],
            device,
            signed_at_ms: 1_699_999_000_000,
        }
    }

    fn issued(basis: GrantBasis, purpose: PurposeOfUse) -> GrantIssued {
        GrantIssued {
            grant: "00000000-0000-4000-8000-0000000000cc".parse().unwrap(),
            subject: PK.parse().unwrap(),
            requester: "city-er".parse().unwrap(),
            scope: terms().scope,
            data_period: terms().data_period,
            purpose,
            not_before: 1_700_000_000,
            expires: 1_700_086_400,
            basis,
            cnf: Confirmation::for_certificate_der(b"city-er certificate"),
        }
    }

    fn sig64(bytes: Vec<u8>) -> Signature64 {
        Signature64::try_from(&bytes[..]).unwrap()
    }

    /// One of each consent event, device-signed by `phone`.
    fn consent_events(phone: &DeviceSigner) -> Vec<Event> {
        let device = phone.device_id();
        let subject: PatientKey = PK.parse().unwrap();
        let mut approval = Approval::of(&terms(), device, 1_699_999_500_000);
        approval.duration_secs = 3600;
        let decision = Decision::Approve(approval);
        let refusal = Decision::Refuse(Refusal {
            request: terms().request,
            subject,
            device,
            signed_at_ms: 1_699_999_500_000,
        });
        let rule = rule(device);
        let revocation = Revocation {
            grant: "00000000-0000-4000-8000-0000000000cc".parse().unwrap(),
            subject,
            device,
            signed_at_ms: 1_700_000_100_000,
        };
        let rule_revocation = RuleRevocation {
            rule: rule.rule,
            subject,
            device,
            signed_at_ms: 1_700_000_200_000,
        };
        let sign = |bytes: Vec<u8>| sig64(phone.sign(&bytes));
        vec![
            Event::DeviceEnrolled(DeviceEnrolled {
                subject,
                device,
                key: phone.public_jwk(),
                code_issuer: "hospital-a".parse().unwrap(),
            }),
            Event::DeviceRemoved(DeviceRemoved { subject, device }),
            Event::AccessRequested(AccessRequested { terms: terms() }),
            Event::AccessDecided(AccessDecided {
                signature: sign(decision.signing_bytes().unwrap()),
                decision,
            }),
            Event::AccessDecided(AccessDecided {
                signature: sign(refusal.signing_bytes().unwrap()),
                decision: refusal,
            }),
            Event::GrantIssued(issued(
                GrantBasis::PatientApproval {
                    request: terms().request,
                },
                PurposeOfUse::Treatment,
            )),
            Event::GrantIssued(issued(
                GrantBasis::StandingRule {
                    rule: rule.rule.to_string(),
                },
                PurposeOfUse::EmergencyTreatment,
            )),
            Event::GrantIssued(issued(
                GrantBasis::Emergency {
                    reason: "unconscious on arrival".into(),
                },
                PurposeOfUse::EmergencyTreatment,
            )),
            Event::RuleCreated(RuleCreated {
                signature: sign(rule.signing_bytes().unwrap()),
                rule,
            }),
            Event::RuleRevoked(RuleRevoked {
                rule: rule_revocation.rule,
                subject,
                device,
                signed_at_ms: rule_revocation.signed_at_ms,
                signature: sign(rule_revocation.signing_bytes().unwrap()),
            }),
            Event::GrantRevoked(GrantRevoked {
                grant: revocation.grant,
                subject,
                by_device: Some(DeviceRevocation {
                    device,
                    signed_at_ms: revocation.signed_at_ms,
                    signature: sign(revocation.signing_bytes().unwrap()),
                }),
            }),
        ]
    }

    fn member_updated() -> MemberUpdated {
        MemberUpdated {
            member: "st-mary".parse().unwrap(),
            role: MemberRole::Hospital,
            display_name: "St Mary's Hospital".into(),
            ed25519: key().verifying_key(),
            x25519: crate::seal::X25519SecretKey::from_bytes([8; 32]).public_key(),
            certificate: Confirmation::for_certificate_der(b"st-mary certificate"),
            endpoint: None,
            status: MemberStatus::Active,
        }
    }

    fn entry(event: Event) -> Entry {
        Entry::new(
            "st-mary".parse().unwrap(),
            key().key_id(),
            1_700_000_000_000,
            event,
        )
    }

    fn signed() -> SignedEntry {
        SignedEntry::sign(entry(events().remove(2)), &key()).unwrap()
    }

    /// Replaces `from` by `to` in the canonical leaf text.
    fn edit(from: &str, to: &str) -> Vec<u8> {
        let text = String::from_utf8(signed().to_canonical_bytes()).unwrap();
        assert!(text.contains(from), "{from} not in {text}");
        text.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn round_trip_every_event() {
        let key = key();
        for event in events() {
            let kind = event.kind();
            let signed = SignedEntry::sign(entry(event), &key).unwrap();
            signed.verify(&key.verifying_key()).unwrap();
            let bytes = signed.to_canonical_bytes();
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(text.contains(&format!("\"type\":\"{kind}\"")), "{text}");
            assert!(!text.contains("null"));
            let parsed = SignedEntry::parse(&bytes).unwrap();
            assert_eq!(parsed, signed);
            parsed.verify(&key.verifying_key()).unwrap();
            // serde in an API body (any spelling) round-trips too.
            let pretty = serde_json::to_string_pretty(&signed).unwrap();
            assert_eq!(
                serde_json::from_str::<SignedEntry>(&pretty).unwrap(),
                signed
            );
        }
    }

    #[test]
    fn consent_accessors() {
        let subject: PatientKey = PK.parse().unwrap();
        let kinds: Vec<&str> = consent_events(&device_signer())
            .iter()
            .map(Event::kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "device.enrolled",
                "device.removed",
                "access.requested",
                "access.decided",
                "access.decided",
                "grant.issued",
                "grant.issued",
                "grant.issued",
                "rule.created",
                "rule.revoked",
                "grant.revoked",
            ]
        );
        for e in consent_events(&device_signer()) {
            assert_eq!(e.subject(), Some(&subject), "{}", e.kind());
            assert_eq!(e.custodian(), None);
            let has_grant = matches!(e.kind(), "grant.issued" | "grant.revoked");
            assert_eq!(e.grant().is_some(), has_grant, "{}", e.kind());
            assert_eq!(serde_json::to_value(&e).unwrap()["type"], e.kind());
        }
    }

    /// What a regulator does: from the ledger leaves alone, find each device's key
    /// in its `device.enrolled` entry and check every device signature.
    #[test]
    fn device_signatures_verify_from_the_ledger_alone() {
        let phone = device_signer();
        let leaves: Vec<Vec<u8>> = consent_events(&phone)
            .into_iter()
            .map(|e| {
                SignedEntry::sign(entry(e), &key())
                    .unwrap()
                    .to_canonical_bytes()
            })
            .collect();
        let parsed: Vec<Event> = leaves
            .iter()
            .map(|leaf| SignedEntry::parse(leaf).unwrap().entry().event.clone())
            .collect();
        let enrolled: Vec<&DeviceEnrolled> = parsed
            .iter()
            .filter_map(|e| match e {
                Event::DeviceEnrolled(d) => Some(d),
                _ => None,
            })
            .collect();
        let mut checked = 0;
        for event in &parsed {
            if let Some(signed) = event.device_signed().unwrap() {
                let enrolment = enrolled
                    .iter()
                    .find(|d| d.device == signed.device && d.subject == signed.subject)
                    .unwrap();
                signed.verify(&enrolment.key).unwrap();
                // The signed bytes are the consent object's canonical JSON.
                assert!(jcs::from_canonical_slice::<serde_json::Value>(&signed.message).is_ok());
                checked += 1;
            }
        }
        assert_eq!(checked, 5);

        // A decision altered after signing (here: a longer grant) no longer verifies,
        // nor does a signature moved onto another decision.
        let Event::AccessDecided(mut decided) = parsed[3].clone() else {
            panic!("expected access.decided");
        };
        let Decision::Approve(approval) = &mut decided.decision else {
            panic!("expected an approval");
        };
        approval.duration_secs = 86_400;
        let signed = Event::AccessDecided(decided)
            .device_signed()
            .unwrap()
            .unwrap();
        assert_eq!(signed.verify(&enrolled[0].key), Err(VerifyError));
        let Event::AccessDecided(mut refused) = parsed[4].clone() else {
            panic!("expected access.decided");
        };
        let Event::AccessDecided(approved) = &parsed[3] else {
            panic!("expected access.decided");
        };
        refused.signature = approved.signature;
        let signed = Event::AccessDecided(refused)
            .device_signed()
            .unwrap()
            .unwrap();
        assert_eq!(signed.verify(&enrolled[0].key), Err(VerifyError));
        // Another device's key is refused before the signature is even checked.
        let other = DeviceSigner::generate_p256().public_jwk();
        let signed = parsed[8].device_signed().unwrap().unwrap();
        assert_eq!(signed.verify(&other), Err(VerifyError));
        // Events without a device signature give none.
        for i in [0, 1, 2, 5, 6, 7] {
            assert_eq!(parsed[i].device_signed().unwrap(), None, "{i}");
        }
    }

    #[test]
    fn old_grant_revoked_entries_still_parse() {
        let grant: GrantId = "123e4567-e89b-42d3-a456-426614174000".parse().unwrap();
        // The exact event JSON written before `by_device` existed.
        let old =
            format!("{{\"grant\":\"{grant}\",\"subject\":\"{PK}\",\"type\":\"grant.revoked\"}}");
        let event: Event = serde_json::from_str(&old).unwrap();
        let Event::GrantRevoked(revoked) = &event else {
            panic!("expected grant.revoked");
        };
        assert_eq!(revoked.by_device, None);
        assert_eq!(revoked.revocation(), None);
        assert_eq!(jcs::to_canonical_vec(&event).unwrap(), old.as_bytes());
        let signed = SignedEntry::sign(entry(event), &key()).unwrap();
        assert_eq!(
            SignedEntry::parse(signed.canonical_bytes()).unwrap(),
            signed
        );
    }

    #[test]
    fn consent_event_checks() {
        let phone = device_signer();
        let events = consent_events(&phone);
        let refused = |event: Event| {
            let json = serde_json::to_value(&event).unwrap();
            assert!(
                serde_json::from_value::<Event>(json).is_err(),
                "{}",
                event.kind()
            );
            assert!(
                matches!(
                    SignedEntry::sign(entry(event), &key()),
                    Err(EntryError::InvalidConsent(_))
                ),
                "sign"
            );
        };
        // Enrolled device id must be the key's thumbprint.
        refused(Event::DeviceEnrolled(DeviceEnrolled {
            subject: PK.parse().unwrap(),
            device: DeviceSigner::generate_p256().device_id(),
            key: phone.public_jwk(),
            code_issuer: "hospital-a".parse().unwrap(),
        }));
        // A grant must expire after it starts.
        let mut g = issued(
            GrantBasis::PatientApproval {
                request: terms().request,
            },
            PurposeOfUse::Treatment,
        );
        g.expires = g.not_before;
        refused(Event::GrantIssued(g));
        // Emergency grants need ETREAT and a bounded reason.
        refused(Event::GrantIssued(issued(
            GrantBasis::Emergency {
                reason: "cardiac arrest".into(),
            },
            PurposeOfUse::Treatment,
        )));
        refused(Event::GrantIssued(issued(
            GrantBasis::Emergency {
                reason: "x".repeat(513),
            },
            PurposeOfUse::EmergencyTreatment,
        )));
        // A rule basis names a rule id, not free text.
        refused(Event::GrantIssued(issued(
            GrantBasis::StandingRule {
                rule: "labs for any ED, ask Dr Smith".into(),
            },
            PurposeOfUse::EmergencyTreatment,
        )));
        // Negative device times.
        let Event::RuleRevoked(mut r) = events[9].clone() else {
            panic!("expected rule.revoked");
        };
        r.signed_at_ms = -1;
        refused(Event::RuleRevoked(r));
        let Event::GrantRevoked(mut g) = events[10].clone() else {
            panic!("expected grant.revoked");
        };
        if let Some(by) = &mut g.by_device {
            by.signed_at_ms = -1;
        }
        refused(Event::GrantRevoked(g));
        // Invalid consent objects inside events.
        let mut t = terms();
        t.duration_secs = 0;
        refused(Event::AccessRequested(AccessRequested { terms: t }));
        let mut r = rule(phone.device_id());
        r.purposes.clear();
        refused(Event::RuleCreated(RuleCreated {
            rule: r,
            signature: Signature64::from_bytes([0; 64]),
        }));

        // Unknown members are refused everywhere, including nested objects.
        for (i, event) in events.iter().enumerate() {
            let json = serde_json::to_value(event).unwrap();
            let mut extra = json.clone();
            extra["note"] = "free text".into();
            assert!(serde_json::from_value::<Event>(extra).is_err(), "{i}");
            for nested in ["terms", "decision", "rule", "by_device", "key"] {
                if json.get(nested).is_some_and(serde_json::Value::is_object) {
                    let mut extra = json.clone();
                    extra[nested]["note"] = "free text".into();
                    assert!(
                        serde_json::from_value::<Event>(extra).is_err(),
                        "{i} {nested}"
                    );
                }
            }
        }
        // The grant.issued entry carries the token's claims.
        let claims = GrantClaims {
            iss: "consent".parse().unwrap(),
            sub: PK.parse().unwrap(),
            aud: "city-er".parse().unwrap(),
            jti: "00000000-0000-4000-8000-0000000000cc".parse().unwrap(),
            iat: 1_700_000_000,
            nbf: 1_700_000_000,
            exp: 1_700_086_400,
            scope: terms().scope,
            scope_tags: Vec::new(),
            purpose: PurposeOfUse::Treatment,
            data_period: terms().data_period,
            cnf: Confirmation::for_certificate_der(b"city-er certificate"),
            basis: GrantBasis::PatientApproval {
                request: terms().request,
            },
        };
        assert_eq!(
            Event::GrantIssued(GrantIssued::from_claims(&claims)),
            events[5]
        );
    }

    #[test]
    fn wire_form() {
        let s = String::from_utf8(signed().to_canonical_bytes()).unwrap();
        let want_prefix = format!(
            "{{\"entry\":{{\"event\":{{\"commitment\":\"{}\",\"custodian\":\"st-mary\",\
             \"grant\":\"123e4567-e89b-42d3-a456-426614174000\",\
             \"pointer\":\"00000000-0000-4000-8000-000000000001\",\"requester\":\"city-er\",\
             \"subject\":\"{PK}\",\"type\":\"record.retrieved\"}},\"kid\":\"{}\",\
             \"submitter\":\"st-mary\",\"time_ms\":1700000000000,\"v\":1}},\"sig\":\"",
            "04".repeat(32),
            key().key_id()
        );
        assert!(s.starts_with(&want_prefix), "{s}");
        assert!(s.ends_with("==\"}"));
    }

    #[test]
    fn accessors() {
        let evs = events();
        assert_eq!(evs[0].subject(), None);
        assert_eq!(evs[0].grant(), None);
        assert_eq!(evs[0].custodian().unwrap().as_str(), "st-mary");
        assert_eq!(evs[1].subject().unwrap().to_string(), PK);
        assert!(evs[1].grant().is_some());
        assert_eq!(evs[2].kind(), "record.retrieved");
        assert!(evs[3].grant().is_some() && evs[3].subject().is_none());
        assert_eq!(evs[3].custodian().unwrap().as_str(), "st-mary");
        assert!(evs[4].grant().is_none() && evs[4].custodian().is_none());
        assert_eq!(evs[5].kind(), "member.updated");
        assert!(evs[5].subject().is_none() && evs[5].grant().is_none());
        assert!(evs[5].custodian().is_none());
        assert_eq!(evs[6].kind(), "grant.revoked");
        assert_eq!(evs[6].subject().unwrap().to_string(), PK);
        assert!(evs[6].grant().is_some() && evs[6].custodian().is_none());
        for e in &evs {
            let v = serde_json::to_value(e).unwrap();
            assert_eq!(v["type"], e.kind());
            assert_eq!(e.kind().parse::<EventKind>(), Ok(e.event_kind()));
        }
        // The samples hold every kind, so the serde renames and `EventKind`
        // agree on all of them.
        let mut seen: Vec<EventKind> = evs.iter().map(Event::event_kind).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, EventKind::ALL);
        assert_eq!("record.deleted".parse::<EventKind>(), Err(UnknownEventKind));
    }

    #[test]
    fn sign_checks() {
        let mut e = entry(events().remove(0));
        e.kid = SigningKey::from_seed([1; 32]).key_id();
        assert!(matches!(
            SignedEntry::sign(e, &key()),
            Err(EntryError::KeyIdMismatch)
        ));
        let mut e = entry(events().remove(0));
        e.v = 2;
        assert!(matches!(
            SignedEntry::sign(e, &key()),
            Err(EntryError::UnsupportedVersion(2))
        ));
        let mut e = entry(events().remove(0));
        e.time_ms = -1;
        assert!(matches!(
            SignedEntry::sign(e, &key()),
            Err(EntryError::NegativeTime)
        ));
        let mut e = entry(events().remove(0));
        e.time_ms = 1 << 53;
        assert!(matches!(
            SignedEntry::sign(e, &key()),
            Err(EntryError::Canonical(_))
        ));
    }

    #[test]
    fn parse_rejections() {
        let canonical = signed().to_canonical_bytes();
        let text = String::from_utf8(canonical.clone()).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("whitespace", format!("{text}\n").into_bytes()),
            ("pretty", serde_json::to_vec_pretty(&signed()).unwrap()),
            ("version", edit("\"v\":1", "\"v\":2")),
            ("version 0", edit("\"v\":1", "\"v\":0")),
            ("unknown event", edit("record.retrieved", "record.deleted")),
            ("unknown entry field", edit("\"v\":1}", "\"v\":1,\"x\":1}")),
            (
                "unknown event field",
                edit("\"record.retrieved\"}", "\"record.retrieved\",\"zz\":1}"),
            ),
            ("unknown top field", edit("==\"}", "==\",\"z\":0}")),
            ("missing field", edit("\"requester\":\"city-er\",", "")),
            (
                "bad id",
                edit("\"submitter\":\"st-mary\"", "\"submitter\":\"St-Mary\""),
            ),
            ("negative time", edit("1700000000000", "-1700000000000")),
            ("float time", edit("1700000000000", "1700000000000.5")),
            (
                "escaped",
                edit("st-mary\",\"time", "st\\u002dmary\",\"time"),
            ),
            ("empty", Vec::new()),
        ];
        for (name, bytes) in cases {
            assert!(SignedEntry::parse(&bytes).is_err(), "{name}");
        }
        assert!(SignedEntry::parse(&canonical).is_ok());

        // An explicit null for an optional field is canonical JSON, but not our encoding.
        let refused = SignedEntry::sign(entry(events().remove(4)), &key()).unwrap();
        let text = String::from_utf8(refused.to_canonical_bytes()).unwrap();
        let with_null = text.replacen("\"reason\"", "\"grant\":null,\"reason\"", 1);
        assert!(matches!(
            SignedEntry::parse(with_null.as_bytes()),
            Err(EntryError::Canonical(CanonicalError::NotCanonical))
        ));
        assert!(
            serde_json::from_str::<SignedEntry>(&with_null.replace("\"v\":1", "\"v\":3")).is_err()
        );
    }

    #[test]
    fn event_serde_is_strict() {
        let good = serde_json::to_value(&events()[0]).unwrap();
        assert!(serde_json::from_value::<Event>(good.clone()).is_ok());
        let mut extra = good.clone();
        extra["note"] = "hi".into();
        assert!(serde_json::from_value::<Event>(extra).is_err());
        let mut untyped = good.clone();
        untyped.as_object_mut().unwrap().remove("type");
        assert!(serde_json::from_value::<Event>(untyped).is_err());
        let mut renamed = good;
        renamed["type"] = "pointers.Published".into();
        assert!(serde_json::from_value::<Event>(renamed).is_err());
        let bad_reason = serde_json::json!({
            "type": "access.refused", "requester": "a", "reason": "because"
        });
        assert!(serde_json::from_value::<Event>(bad_reason).is_err());
        let ok_reason = serde_json::json!({
            "type": "access.refused", "requester": "a", "reason": "member_suspended"
        });
        assert!(serde_json::from_value::<Event>(ok_reason).is_ok());
    }

    #[test]
    fn member_updated_wire_and_checks() {
        let mut m = member_updated();
        m.endpoint = Some("https://st-mary.example:8443".into());
        let json = serde_json::to_value(Event::MemberUpdated(m.clone())).unwrap();
        assert_eq!(json["type"], "member.updated");
        assert_eq!(json["role"], "hospital");
        assert_eq!(json["status"], "active");
        assert_eq!(
            json["certificate"]["x5t#S256"].as_str().unwrap(),
            m.certificate.x5t_s256
        );
        assert_eq!(
            serde_json::from_value::<Event>(json.clone()).unwrap(),
            Event::MemberUpdated(m.clone())
        );
        // No endpoint: left out, not null.
        let bare = serde_json::to_value(Event::MemberUpdated(member_updated())).unwrap();
        assert!(bare.get("endpoint").is_none());

        assert_each_edit_refused::<Event>(
            &json,
            [
                ("display_name", serde_json::json!("")),
                ("display_name", serde_json::json!("St\u{0}Mary")),
                ("display_name", serde_json::json!("x".repeat(129))),
                ("endpoint", serde_json::json!("http://st-mary.example")),
                ("endpoint", serde_json::json!("https://st mary.example")),
                ("role", serde_json::json!("owner")),
                ("status", serde_json::json!("Active")),
                ("certificate", serde_json::json!({"x5t#S256": "short"})),
                ("extra", serde_json::json!(1)),
            ],
        );

        // Built in code, the same checks run when signing.
        let mut m = member_updated();
        m.display_name = "line\nbreak".into();
        let e = entry(Event::MemberUpdated(m));
        assert!(matches!(
            SignedEntry::sign(e, &key()),
            Err(EntryError::InvalidMember(
                MemberUpdateError::InvalidDisplayName
            ))
        ));
        let mut m = member_updated();
        m.endpoint = Some("ftp://x".into());
        assert!(matches!(
            SignedEntry::from_parts(entry(Event::MemberUpdated(m)), key().sign(b"")),
            Err(EntryError::InvalidMember(
                MemberUpdateError::InvalidEndpoint
            ))
        ));
        let reason = serde_json::json!({
            "type": "access.refused", "requester": "a", "reason": "invalid_grant"
        });
        assert!(serde_json::from_value::<Event>(reason).is_ok());
    }

    #[test]
    fn wrong_key_or_kid_fails() {
        let s = signed();
        let other = SigningKey::from_seed([2; 32]);
        assert_eq!(s.verify(&other.verifying_key()), Err(VerifyError));
        // Right kid, wrong signature: re-attach another key's signature.
        let forged = SignedEntry::from_parts(s.entry().clone(), other.sign(b"x")).unwrap();
        assert_eq!(forged.verify(&key().verifying_key()), Err(VerifyError));
        // An entry signed without the context prefix does not verify.
        let bare = key().sign(&jcs::to_canonical_vec(s.entry()).unwrap());
        let no_ctx = SignedEntry::from_parts(s.entry().clone(), bare).unwrap();
        assert_eq!(no_ctx.verify(&key().verifying_key()), Err(VerifyError));
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let vk = key().verifying_key();
        let bytes = signed().to_canonical_bytes();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x20, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                if let Ok(parsed) = SignedEntry::parse(&bad) {
                    assert!(parsed.verify(&vk).is_err(), "byte {i} mask {mask:#x}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = SignedEntry::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_near_valid(pos in 0usize..1000, byte in proptest::num::u8::ANY) {
            let mut bytes = signed().to_canonical_bytes();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            if let Ok(parsed) = SignedEntry::parse(&bytes) {
                proptest::prop_assert_eq!(parsed.canonical_bytes(), &bytes[..]);
            }
        }
    }
}

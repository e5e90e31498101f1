//! What patients sign: the canonical terms of access requests, decisions, standing
//! rules and revocations.
//!
//! A patient's device signs `DEVICE_SIGNATURE_CONTEXT || signing_bytes()` (see
//! [`crate::device`]), where `signing_bytes()` is the RFC 8785 canonical JSON of the
//! object exactly as it is written to the ledger. A regulator can therefore check,
//! from the ledger alone, that the patient agreed: take the object from the
//! `access.decided`, `rule.created`, `rule.revoked` or `grant.revoked` entry, its
//! device key from the `device.enrolled` entry, and verify.
//!
//! Each signed object has a member no other has (`decision`, `who`, `grant`, `rule`
//! without `who`, `challenge`), so a signature over one kind can never be presented
//! as another. Devices must sign only these objects, never raw bytes chosen by a
//! server: a sign-in challenge is a [`DeviceChallenge`].
//!
//! Values are checked on every path in: parsing runs the same checks as
//! `check()`, and `signing_bytes()` refuses what `check()` refuses.

use serde::{Deserialize, Serialize};

use crate::device::{DeviceKey, DeviceKeyId};
use crate::grant::{DataPeriod, GrantError, PurposeOfUse};
use crate::ids::{GrantId, MemberId, PatientKey, RequestId, RuleId};
use crate::jcs;
use crate::scope::ScopeSet;
use crate::signing::VerifyError;

/// Longest grant any consent object may ask for or allow, in seconds (30 days).
/// Grants are "hours or days, never open-ended"; services may enforce less.
pub const MAX_GRANT_DURATION_SECS: i64 = 30 * 86_400;

/// Longest data window a standing rule may name, in days (four years): the period
/// it gives always fits in [`crate::grant::MAX_PERIOD_MONTHS`].
pub const MAX_DATA_WINDOW_DAYS: u32 = 1461;

/// Shortest [`DeviceChallenge::challenge`], in characters (128 bits of base64url).
pub const MIN_CHALLENGE_LEN: usize = 22;
/// Longest [`DeviceChallenge::challenge`], in characters.
pub const MAX_CHALLENGE_LEN: usize = 128;

/// Why a consent object is not acceptable. Values are never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// A duration outside `1..=MAX_GRANT_DURATION_SECS`.
    #[error("duration must be 1 to {MAX_GRANT_DURATION_SECS} seconds")]
    InvalidDuration,
    /// A timestamp below 0 or above 2^53 - 1.
    #[error("timestamps must be between 0 and 2^53 - 1")]
    InvalidTime,
    /// No purposes, or one named twice.
    #[error("a standing rule needs at least one purpose, each named once")]
    InvalidPurposes,
    /// A data window outside `1..=MAX_DATA_WINDOW_DAYS`.
    #[error("a data window must be 1 to {MAX_DATA_WINDOW_DAYS} days")]
    InvalidDataWindow,
    /// The request's data period and the rule's window have no day in common.
    #[error("the requested data period is entirely outside the rule's data window")]
    OutsideDataWindow,
    /// Not 22 to 128 characters of base64url.
    #[error("a challenge must be 22 to 128 base64url characters")]
    InvalidChallenge,
    /// A `device.enrolled` entry whose device id is not its key's thumbprint.
    #[error("device id is not the thumbprint of the device key")]
    DeviceMismatch,
    /// A grant that does not expire after it starts, or a negative time.
    #[error("a grant must expire after it becomes valid, at non-negative times")]
    InvalidValidity,
    /// A standing-rule basis whose rule is not a rule id.
    #[error("a standing-rule grant basis must name a rule id")]
    InvalidRuleBasis,
    /// A grant field is not acceptable (dates, basis text, emergency purpose).
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// Could not be encoded as canonical JSON (only for values that skip `check`).
    #[error("could not encode as canonical JSON")]
    Encoding,
}

fn check_duration(secs: i64) -> Result<(), ConsentError> {
    if (1..=MAX_GRANT_DURATION_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(ConsentError::InvalidDuration)
    }
}

/// Checks a time (any unit) is one canonical JSON can carry exactly.
pub(crate) fn check_time(t: i64) -> Result<(), ConsentError> {
    if (0..=jcs::MAX_SAFE_INTEGER as i64).contains(&t) {
        Ok(())
    } else {
        Err(ConsentError::InvalidTime)
    }
}

fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, ConsentError> {
    jcs::to_canonical_vec(value).map_err(|_| ConsentError::Encoding)
}

/// Gives a consent object a patient's device signs its `signing_bytes` (the
/// canonical JSON of the object, refused when its `check()` fails; the device signs
/// them after [`crate::device::DEVICE_SIGNATURE_CONTEXT`]) and `verify_signature`
/// (that a key is the device the object names and signed them).
macro_rules! device_signed {
    ($($ty:ty => |$this:ident| $device:expr;)+) => {$(
        impl $ty {
            /// The bytes the device signs: the canonical JSON of the checked object.
            pub fn signing_bytes(&self) -> Result<Vec<u8>, ConsentError> {
                self.check()?;
                canonical(self)
            }

            /// Checks that `key` is this object's device and signed it.
            pub fn verify_signature(
                &self,
                key: &DeviceKey,
                signature: &[u8],
            ) -> Result<(), VerifyError> {
                let $this = self;
                if key.thumbprint() != *$device {
                    return Err(VerifyError);
                }
                key.verify(&self.signing_bytes().map_err(|_| VerifyError)?, signature)
            }
        }
    )+};
}

device_signed! {
    Decision => |d| d.device();
    StandingRule => |r| &r.device;
    Revocation => |r| &r.device;
    RuleRevocation => |r| &r.device;
    DeviceChallenge => |c| &c.device;
}

checked_struct! {
    /// What a hospital asks for: the terms the patient's app shows and the patient
    /// approves (possibly narrowed) or refuses. `data_period` is left out of the JSON
    /// when absent (any date).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct RequestTerms {
        /// The request.
        pub request: RequestId,
        /// Who asks.
        pub requester: MemberId,
        /// About which patient.
        pub subject: PatientKey,
        /// Why.
        pub purpose: PurposeOfUse,
        /// What it would read.
        pub scope: ScopeSet,
        /// Which clinical dates; absent means any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data_period: Option<DataPeriod>,
        /// For how long, in seconds.
        pub duration_secs: i64,
    }
}

impl RequestTerms {
    /// Checks the duration (the other fields are valid by type).
    pub fn check(&self) -> Result<(), ConsentError> {
        check_duration(self.duration_secs)
    }
}

/// A patient's answer to a request. JSON: the variant's fields plus
/// `"decision": "approve" | "refuse"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The patient approves these terms: the request's, or narrower.
    Approve(Approval),
    /// The patient refuses.
    Refuse(Refusal),
}

checked_struct! {
    /// The terms a patient approves. They may only narrow the request
    /// ([`Approval::narrows`]).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Approval {
        /// The request answered.
        pub request: RequestId,
        /// The patient.
        pub subject: PatientKey,
        /// Who may read.
        pub requester: MemberId,
        /// Why.
        pub purpose: PurposeOfUse,
        /// What may be read.
        pub scope: ScopeSet,
        /// Which clinical dates; absent means any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data_period: Option<DataPeriod>,
        /// For how long the grant lasts, in seconds.
        pub duration_secs: i64,
        /// The device that signs.
        pub device: DeviceKeyId,
        /// When the patient signed, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
    }
}

checked_struct! {
    /// A patient's refusal of a request.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Refusal {
        /// The request answered.
        pub request: RequestId,
        /// The patient.
        pub subject: PatientKey,
        /// The device that signs.
        pub device: DeviceKeyId,
        /// When the patient signed, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
    }
}

/// Why an approval does not merely narrow the request. Messages name what is wider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NarrowingError {
    /// The decision answers another request.
    #[error("the decision answers another request")]
    OtherRequest,
    /// The decision is about another patient.
    #[error("the decision is about another patient")]
    OtherSubject,
    /// The approval names another requester.
    #[error("the approval names another requester than the request")]
    OtherRequester,
    /// The approval names another purpose.
    #[error("the approval's purpose {approved} is not the requested {requested}")]
    OtherPurpose {
        /// The approved purpose's code.
        approved: &'static str,
        /// The requested purpose's code.
        requested: &'static str,
    },
    /// An approved scope is not within any requested scope.
    #[error("approved scope {0} is not within the requested scopes")]
    WiderScope(String),
    /// The approved data period reaches outside the requested one.
    #[error(
        "approved data period {}..{} is not inside the requested {}..{}",
        .approved.start, .approved.end, .requested.start, .requested.end
    )]
    WiderDataPeriod {
        /// The approved period.
        approved: DataPeriod,
        /// The requested period.
        requested: DataPeriod,
    },
    /// The request limits the dates and the approval does not.
    #[error(
        "the request limits data to {}..{} but the approval has no data period",
        .requested.start, .requested.end
    )]
    UnboundedDataPeriod {
        /// The requested period.
        requested: DataPeriod,
    },
    /// The approved grant lasts longer than requested.
    #[error("approved duration of {approved} s is longer than the requested {requested} s")]
    LongerDuration {
        /// Approved seconds.
        approved: i64,
        /// Requested seconds.
        requested: i64,
    },
    /// The approval itself is not valid.
    #[error(transparent)]
    Invalid(#[from] ConsentError),
}

impl Approval {
    /// Approves `terms` exactly as asked; narrow the fields before signing.
    pub fn of(terms: &RequestTerms, device: DeviceKeyId, signed_at_ms: i64) -> Self {
        Self {
            request: terms.request,
            subject: terms.subject,
            requester: terms.requester.clone(),
            purpose: terms.purpose,
            scope: terms.scope.clone(),
            data_period: terms.data_period.clone(),
            duration_secs: terms.duration_secs,
            device,
            signed_at_ms,
        }
    }

    /// Checks the duration and signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_duration(self.duration_secs)?;
        check_time(self.signed_at_ms)
    }

    /// Checks that this approval only narrows `terms`: the same request, patient,
    /// requester and purpose; every approved scope within a requested one
    /// ([`crate::scope::Scope::is_within`]); the data period inside the requested
    /// one (absent only if the request has none); the duration no longer.
    pub fn narrows(&self, terms: &RequestTerms) -> Result<(), NarrowingError> {
        self.check()?;
        if self.request != terms.request {
            return Err(NarrowingError::OtherRequest);
        }
        if self.subject != terms.subject {
            return Err(NarrowingError::OtherSubject);
        }
        if self.requester != terms.requester {
            return Err(NarrowingError::OtherRequester);
        }
        if self.purpose != terms.purpose {
            return Err(NarrowingError::OtherPurpose {
                approved: self.purpose.code(),
                requested: terms.purpose.code(),
            });
        }
        if let Some(scope) = self.scope.first_outside(&terms.scope) {
            return Err(NarrowingError::WiderScope(scope.to_string()));
        }
        match (&self.data_period, &terms.data_period) {
            (_, None) => {}
            (None, Some(requested)) => {
                return Err(NarrowingError::UnboundedDataPeriod {
                    requested: requested.clone(),
                })
            }
            (Some(approved), Some(requested)) if !approved.is_within(requested) => {
                return Err(NarrowingError::WiderDataPeriod {
                    approved: approved.clone(),
                    requested: requested.clone(),
                })
            }
            (Some(_), Some(_)) => {}
        }
        if self.duration_secs > terms.duration_secs {
            return Err(NarrowingError::LongerDuration {
                approved: self.duration_secs,
                requested: terms.duration_secs,
            });
        }
        Ok(())
    }
}

impl Refusal {
    /// Checks the signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_time(self.signed_at_ms)
    }
}

impl Decision {
    /// The request answered.
    pub fn request(&self) -> &RequestId {
        match self {
            Self::Approve(a) => &a.request,
            Self::Refuse(r) => &r.request,
        }
    }

    /// The patient.
    pub fn subject(&self) -> &PatientKey {
        match self {
            Self::Approve(a) => &a.subject,
            Self::Refuse(r) => &r.subject,
        }
    }

    /// The device that signs.
    pub fn device(&self) -> &DeviceKeyId {
        match self {
            Self::Approve(a) => &a.device,
            Self::Refuse(r) => &r.device,
        }
    }

    /// Checks the variant's fields.
    pub fn check(&self) -> Result<(), ConsentError> {
        match self {
            Self::Approve(a) => a.check(),
            Self::Refuse(r) => r.check(),
        }
    }

    /// Checks that the decision answers `terms` and, if it approves, only narrows
    /// them (see [`Approval::narrows`]). A refusal must name the same request and
    /// patient.
    pub fn narrows(&self, terms: &RequestTerms) -> Result<(), NarrowingError> {
        match self {
            Self::Approve(a) => a.narrows(terms),
            Self::Refuse(r) => {
                r.check()?;
                if r.request != terms.request {
                    return Err(NarrowingError::OtherRequest);
                }
                if r.subject != terms.subject {
                    return Err(NarrowingError::OtherSubject);
                }
                Ok(())
            }
        }
    }
}

/// Who a standing rule lets in. JSON: `{"member": "<member id>"}` or `"any_hospital"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAudience {
    /// One consortium member.
    Member(MemberId),
    /// Any member whose directory role is hospital.
    AnyHospital,
}

checked_struct! {
    /// A rule a patient signs ahead of time, e.g. "any hospital may read my lab
    /// results of the last 365 days, for emergency treatment, for 24 hours". Requests
    /// it [matches](StandingRule::matches) get a grant without asking the patient.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct StandingRule {
        /// The rule's id (a grant's `basis.rule`).
        pub rule: RuleId,
        /// The patient.
        pub subject: PatientKey,
        /// Who may be granted access.
        pub who: RuleAudience,
        /// The most a grant may read.
        pub scope: ScopeSet,
        /// The grant covers only the last this many days of data (up to and
        /// including the day it is issued); absent means any date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data_window_days: Option<u32>,
        /// The longest grant issued under the rule, in seconds.
        pub grant_duration_secs: i64,
        /// The purposes a request may state (at least one, each once).
        pub purposes: Vec<PurposeOfUse>,
        /// The device that signs.
        pub device: DeviceKeyId,
        /// When the patient signed, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
    }
}

/// How many purposes there are: a longer list must repeat one.
const PURPOSE_COUNT: usize = 4;

impl StandingRule {
    /// Checks the duration, window, purposes and signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_duration(self.grant_duration_secs)?;
        if let Some(days) = self.data_window_days {
            if !(1..=MAX_DATA_WINDOW_DAYS).contains(&days) {
                return Err(ConsentError::InvalidDataWindow);
            }
        }
        let p = &self.purposes;
        if p.is_empty()
            || p.len() > PURPOSE_COUNT
            || p.iter().enumerate().any(|(i, x)| p[..i].contains(x))
        {
            return Err(ConsentError::InvalidPurposes);
        }
        check_time(self.signed_at_ms)
    }

    /// Whether the rule covers a request: same patient, an allowed requester
    /// (`requester_is_hospital`: whether the directory lists it as an active
    /// hospital), an allowed purpose, every requested scope within the rule's, and a
    /// duration no longer than the rule's. Dates are not compared here: a grant
    /// under the rule gets [`StandingRule::data_period_for`].
    pub fn matches(&self, terms: &RequestTerms, requester_is_hospital: bool) -> bool {
        let requester_ok = match &self.who {
            RuleAudience::Member(member) => *member == terms.requester,
            RuleAudience::AnyHospital => requester_is_hospital,
        };
        self.check().is_ok()
            && terms.check().is_ok()
            && self.subject == terms.subject
            && requester_ok
            && self.purposes.contains(&terms.purpose)
            && terms.scope.is_within(&self.scope)
            && terms.duration_secs <= self.grant_duration_secs
    }

    /// The data period of a grant issued under the rule on `today` (`YYYY-MM-DD`):
    /// the requested period cut to the rule's window. `None` means any date (neither
    /// limits it); an error if they have no day in common.
    pub fn data_period_for(
        &self,
        requested: Option<&DataPeriod>,
        today: &str,
    ) -> Result<Option<DataPeriod>, ConsentError> {
        let window = match self.data_window_days {
            None => return Ok(requested.cloned()),
            Some(days) => DataPeriod::last_days(today, days)?,
        };
        match requested {
            None => Ok(Some(window)),
            Some(period) => period
                .intersection(&window)
                .map(Some)
                .ok_or(ConsentError::OutsideDataWindow),
        }
    }
}

checked_struct! {
    /// A patient's revocation of a grant.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Revocation {
        /// The grant (its `jti`).
        pub grant: GrantId,
        /// The patient.
        pub subject: PatientKey,
        /// The device that signs.
        pub device: DeviceKeyId,
        /// When the patient signed, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
    }
}

impl Revocation {
    /// Checks the signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_time(self.signed_at_ms)
    }
}

checked_struct! {
    /// A patient's revocation of a standing rule.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct RuleRevocation {
        /// The rule.
        pub rule: RuleId,
        /// The patient.
        pub subject: PatientKey,
        /// The device that signs.
        pub device: DeviceKeyId,
        /// When the patient signed, Unix milliseconds (device clock).
        pub signed_at_ms: i64,
    }
}

impl RuleRevocation {
    /// Checks the signing time.
    pub fn check(&self) -> Result<(), ConsentError> {
        check_time(self.signed_at_ms)
    }
}

checked_struct! {
    /// What a device signs to prove it holds its key (sign-in, enrolment): a fresh
    /// server nonce inside a typed object, so no server can get a decision signed
    /// by passing it off as a nonce.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct DeviceChallenge {
        /// The server's nonce: 22 to 128 characters of base64url.
        pub challenge: String,
        /// The device answering.
        pub device: DeviceKeyId,
    }
}

impl DeviceChallenge {
    /// Checks the nonce's form.
    pub fn check(&self) -> Result<(), ConsentError> {
        let c = &self.challenge;
        let ok = (MIN_CHALLENGE_LEN..=MAX_CHALLENGE_LEN).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then_some(()).ok_or(ConsentError::InvalidChallenge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceSigner;
    use crate::test_support::{assert_each_edit_refused, scopes};

    const HOUR: i64 = 3600;
    const T: i64 = 1_700_000_000_000;

    fn terms() -> RequestTerms {
        RequestTerms {
            request: "123e4567-e89b-42d3-a456-426614174000".parse().unwrap(),
            requester: "city-er".parse().unwrap(),
            subject: PatientKey::from_bytes([1; 32]),
            purpose: PurposeOfUse::Treatment,
            scope: scopes("patient/Observation.rs?category=laboratory patient/DiagnosticReport.rs"),
            data_period: Some(DataPeriod::new("2024-01-01", "2024-12-31").unwrap()),
            duration_secs: 24 * HOUR,
        }
    }

    fn device() -> DeviceKeyId {
        DeviceKeyId::from_bytes([2; 32])
    }

    fn approval() -> Approval {
        Approval::of(&terms(), device(), T)
    }

    fn rule() -> StandingRule {
        StandingRule {
            rule: "00000000-0000-4000-8000-00000000000a".parse().unwrap(),
            subject: PatientKey::from_bytes([1; 32]),
            who: RuleAudience::AnyHospital,
            scope: scopes("patient/Observation.rs?category=laboratory"),
            data_window_days: Some(365),
            grant_duration_secs: 24 * HOUR,
            purposes: vec![PurposeOfUse::EmergencyTreatment, PurposeOfUse::Treatment],
            device: device(),
            signed_at_ms: T,
        }
    }

    #[test]
    fn narrowing_table() {
        type Edit = Box<dyn Fn(&mut Approval)>;
        let period = |s: &str, e: &str| Some(DataPeriod::new(s, e).unwrap());
        let narrower: Vec<(&str, Edit)> = vec![
            ("as asked", Box::new(|_| {})),
            (
                "one scope",
                Box::new(|a| a.scope = "patient/DiagnosticReport.rs".parse().unwrap()),
            ),
            (
                "read only",
                Box::new(|a| {
                    a.scope = "patient/Observation.r?category=laboratory".parse().unwrap()
                }),
            ),
            (
                "filtered",
                Box::new(|a| {
                    a.scope = "patient/DiagnosticReport.r?code=http://loinc.org|24323-8"
                        .parse()
                        .unwrap()
                }),
            ),
            (
                "shorter period",
                Box::new(move |a| a.data_period = period("2024-06-01", "2024-12-31")),
            ),
            ("shorter", Box::new(|a| a.duration_secs = HOUR)),
        ];
        for (name, edit) in narrower {
            let mut a = approval();
            edit(&mut a);
            assert_eq!(a.narrows(&terms()), Ok(()), "{name}");
            assert_eq!(Decision::Approve(a).narrows(&terms()), Ok(()), "{name}");
        }
        // A request without a period may be approved with one.
        let mut open = terms();
        open.data_period = None;
        let mut a = Approval::of(&open, device(), T);
        a.data_period = period("2024-01-01", "2024-01-31");
        assert_eq!(a.narrows(&open), Ok(()));

        let wider: Vec<(&str, Edit, NarrowingError)> = vec![
            (
                "other request",
                Box::new(|a| a.request = RequestId::new_random()),
                NarrowingError::OtherRequest,
            ),
            (
                "other subject",
                Box::new(|a| a.subject = PatientKey::from_bytes([9; 32])),
                NarrowingError::OtherSubject,
            ),
            (
                "other requester",
                Box::new(|a| a.requester = "st-mary".parse().unwrap()),
                NarrowingError::OtherRequester,
            ),
            (
                "other purpose",
                Box::new(|a| a.purpose = PurposeOfUse::CareManagement),
                NarrowingError::OtherPurpose {
                    approved: "CAREMGT",
                    requested: "TREAT",
                },
            ),
            (
                "unfiltered scope",
                Box::new(|a| a.scope = "patient/Observation.rs".parse().unwrap()),
                NarrowingError::WiderScope("patient/Observation.rs".into()),
            ),
            (
                "other category",
                Box::new(|a| {
                    a.scope = "patient/DiagnosticReport.rs patient/Observation.rs?category=imaging"
                        .parse()
                        .unwrap()
                }),
                NarrowingError::WiderScope("patient/Observation.rs?category=imaging".into()),
            ),
            (
                "earlier start",
                Box::new(move |a| a.data_period = period("2023-12-31", "2024-06-30")),
                NarrowingError::WiderDataPeriod {
                    approved: DataPeriod::new("2023-12-31", "2024-06-30").unwrap(),
                    requested: DataPeriod::new("2024-01-01", "2024-12-31").unwrap(),
                },
            ),
            (
                "later end",
                Box::new(move |a| a.data_period = period("2024-01-01", "2025-01-01")),
                NarrowingError::WiderDataPeriod {
                    approved: DataPeriod::new("2024-01-01", "2025-01-01").unwrap(),
                    requested: DataPeriod::new("2024-01-01", "2024-12-31").unwrap(),
                },
            ),
            (
                "no period",
                Box::new(|a| a.data_period = None),
                NarrowingError::UnboundedDataPeriod {
                    requested: DataPeriod::new("2024-01-01", "2024-12-31").unwrap(),
                },
            ),
            (
                "longer",
                Box::new(|a| a.duration_secs = 24 * HOUR + 1),
                NarrowingError::LongerDuration {
                    approved: 24 * HOUR + 1,
                    requested: 24 * HOUR,
                },
            ),
            (
                "zero duration",
                Box::new(|a| a.duration_secs = 0),
                NarrowingError::Invalid(ConsentError::InvalidDuration),
            ),
            (
                "negative time",
                Box::new(|a| a.signed_at_ms = -1),
                NarrowingError::Invalid(ConsentError::InvalidTime),
            ),
        ];
        for (name, edit, want) in wider {
            let mut a = approval();
            edit(&mut a);
            assert_eq!(a.narrows(&terms()), Err(want), "{name}");
        }
        // Messages name what is wider.
        let mut a = approval();
        a.data_period = period("2023-12-31", "2024-06-30");
        assert_eq!(
            a.narrows(&terms()).unwrap_err().to_string(),
            "approved data period 2023-12-31..2024-06-30 is not inside the requested 2024-01-01..2024-12-31"
        );

        let refusal = |request: RequestId, subject: PatientKey| {
            Decision::Refuse(Refusal {
                request,
                subject,
                device: device(),
                signed_at_ms: T,
            })
        };
        let t = terms();
        assert_eq!(refusal(t.request, t.subject).narrows(&t), Ok(()));
        assert_eq!(
            refusal(RequestId::new_random(), t.subject).narrows(&t),
            Err(NarrowingError::OtherRequest)
        );
        assert_eq!(
            refusal(t.request, PatientKey::from_bytes([0; 32])).narrows(&t),
            Err(NarrowingError::OtherSubject)
        );
    }

    #[test]
    fn rule_matching_table() {
        let mut request = terms();
        request.purpose = PurposeOfUse::EmergencyTreatment;
        request.scope = "patient/Observation.r?category=laboratory".parse().unwrap();
        request.duration_secs = 12 * HOUR;
        assert!(rule().matches(&request, true));

        type Edit = Box<dyn Fn(&mut StandingRule, &mut RequestTerms)>;
        let cases: Vec<(&str, Edit, bool, bool)> = vec![
            ("not a hospital", Box::new(|_, _| {}), false, false),
            (
                "named member",
                Box::new(|r, _| r.who = RuleAudience::Member("city-er".parse().unwrap())),
                false,
                true,
            ),
            (
                "other member",
                Box::new(|r, _| r.who = RuleAudience::Member("st-mary".parse().unwrap())),
                true,
                false,
            ),
            (
                "purpose not allowed",
                Box::new(|_, t| t.purpose = PurposeOfUse::CareManagement),
                true,
                false,
            ),
            (
                "treatment allowed",
                Box::new(|_, t| t.purpose = PurposeOfUse::Treatment),
                true,
                true,
            ),
            (
                "wider scope",
                Box::new(|_, t| t.scope = "patient/Observation.rs".parse().unwrap()),
                true,
                false,
            ),
            (
                "other resource",
                Box::new(|_, t| {
                    t.scope = "patient/Observation.r?category=laboratory patient/DiagnosticReport.r"
                        .parse()
                        .unwrap()
                }),
                true,
                false,
            ),
            (
                "narrower scope",
                Box::new(|_, t| {
                    t.scope = "patient/Observation.s?category=laboratory".parse().unwrap()
                }),
                true,
                true,
            ),
            (
                "as long as the rule",
                Box::new(|_, t| t.duration_secs = 24 * HOUR),
                true,
                true,
            ),
            (
                "longer",
                Box::new(|_, t| t.duration_secs = 24 * HOUR + 1),
                true,
                false,
            ),
            (
                "other patient",
                Box::new(|_, t| t.subject = PatientKey::from_bytes([3; 32])),
                true,
                false,
            ),
            (
                "invalid rule",
                Box::new(|r, _| r.purposes.clear()),
                true,
                false,
            ),
        ];
        for (name, edit, is_hospital, want) in cases {
            let (mut r, mut t) = (rule(), request.clone());
            edit(&mut r, &mut t);
            assert_eq!(r.matches(&t, is_hospital), want, "{name}");
        }
    }

    #[test]
    fn rule_data_window() {
        let r = rule();
        let period = |s: &str, e: &str| DataPeriod::new(s, e).unwrap();
        assert_eq!(
            r.data_period_for(None, "2024-12-31").unwrap(),
            Some(period("2024-01-02", "2024-12-31"))
        );
        assert_eq!(
            r.data_period_for(Some(&period("2020-01-01", "2024-06-30")), "2024-12-31")
                .unwrap(),
            Some(period("2024-01-02", "2024-06-30"))
        );
        assert_eq!(
            r.data_period_for(Some(&period("2020-01-01", "2020-06-30")), "2024-12-31"),
            Err(ConsentError::OutsideDataWindow)
        );
        assert!(r.data_period_for(None, "2024-13-01").is_err());
        let mut open = rule();
        open.data_window_days = None;
        assert_eq!(open.data_period_for(None, "2024-12-31").unwrap(), None);
        let p = period("2020-01-01", "2020-06-30");
        assert_eq!(
            open.data_period_for(Some(&p), "2024-12-31").unwrap(),
            Some(p)
        );
        // The longest window always gives a valid grant period.
        let mut longest = rule();
        longest.data_window_days = Some(MAX_DATA_WINDOW_DAYS);
        for today in ["2024-12-31", "2024-01-31", "2025-03-01", "0005-01-01"] {
            let p = longest.data_period_for(None, today).unwrap().unwrap();
            assert_eq!(p.end.to_string(), today);
        }
    }

    #[test]
    fn checks_and_json() {
        let t = terms();
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["purpose"], "TREAT");
        assert_eq!(
            serde_json::from_value::<RequestTerms>(json.clone()).unwrap(),
            t
        );
        assert_each_edit_refused::<RequestTerms>(
            &json,
            [
                ("duration_secs", serde_json::json!(0)),
                (
                    "duration_secs",
                    serde_json::json!(MAX_GRANT_DURATION_SECS + 1),
                ),
                ("duration_secs", serde_json::json!(1.5)),
                ("purpose", serde_json::json!("treat")),
                ("scope", serde_json::json!("patient/*.rs")),
                ("extra", serde_json::json!(1)),
            ],
        );

        let d = Decision::Approve(approval());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["decision"], "approve");
        assert_eq!(serde_json::from_value::<Decision>(json.clone()).unwrap(), d);
        let mut bad = json.clone();
        bad["signed_at_ms"] = serde_json::json!(-5);
        assert!(serde_json::from_value::<Decision>(bad).is_err());
        let mut bad = json.clone();
        bad["note"] = serde_json::json!("because");
        assert!(serde_json::from_value::<Decision>(bad).is_err());
        let mut bad = json;
        bad["decision"] = serde_json::json!("maybe");
        assert!(serde_json::from_value::<Decision>(bad).is_err());

        let r = Decision::Refuse(Refusal {
            request: t.request,
            subject: t.subject,
            device: device(),
            signed_at_ms: T,
        });
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["decision"], "refuse");
        assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), r);
        assert_eq!(r.request(), &t.request);
        assert_eq!(r.subject(), &t.subject);
        assert_eq!(r.device(), &device());

        let rule_json = serde_json::to_value(rule()).unwrap();
        assert_eq!(rule_json["who"], "any_hospital");
        assert_eq!(
            rule_json["purposes"],
            serde_json::json!(["ETREAT", "TREAT"])
        );
        assert_eq!(
            serde_json::from_value::<StandingRule>(rule_json.clone()).unwrap(),
            rule()
        );
        let mut named = rule();
        named.who = RuleAudience::Member("city-er".parse().unwrap());
        assert_eq!(
            serde_json::to_value(&named).unwrap()["who"],
            serde_json::json!({"member": "city-er"})
        );
        assert_each_edit_refused::<StandingRule>(
            &rule_json,
            [
                ("purposes", serde_json::json!([])),
                ("purposes", serde_json::json!(["TREAT", "TREAT"])),
                ("data_window_days", serde_json::json!(0)),
                (
                    "data_window_days",
                    serde_json::json!(MAX_DATA_WINDOW_DAYS + 1),
                ),
                ("grant_duration_secs", serde_json::json!(-1)),
                ("rule", serde_json::json!("ed-labs-12m")),
                ("who", serde_json::json!("anyone")),
            ],
        );

        let c = DeviceChallenge {
            challenge: "A".repeat(22),
            device: device(),
        };
        assert!(c.signing_bytes().is_ok());
        for bad in [
            "A".repeat(21),
            "A".repeat(129),
            format!("{}\"", "A".repeat(22)),
            format!("{}=", "A".repeat(22)),
        ] {
            let c = DeviceChallenge {
                challenge: bad,
                device: device(),
            };
            assert_eq!(c.signing_bytes(), Err(ConsentError::InvalidChallenge));
        }
    }

    #[test]
    fn signing_bytes_are_canonical_and_distinct() {
        let t = terms();
        let objects: Vec<Vec<u8>> = vec![
            Decision::Approve(approval()).signing_bytes().unwrap(),
            Decision::Refuse(Refusal {
                request: t.request,
                subject: t.subject,
                device: device(),
                signed_at_ms: T,
            })
            .signing_bytes()
            .unwrap(),
            rule().signing_bytes().unwrap(),
            Revocation {
                grant: GrantId::new_random(),
                subject: t.subject,
                device: device(),
                signed_at_ms: T,
            }
            .signing_bytes()
            .unwrap(),
            RuleRevocation {
                rule: rule().rule,
                subject: t.subject,
                device: device(),
                signed_at_ms: T,
            }
            .signing_bytes()
            .unwrap(),
            DeviceChallenge {
                challenge: "A".repeat(22),
                device: device(),
            }
            .signing_bytes()
            .unwrap(),
        ];
        for (i, bytes) in objects.iter().enumerate() {
            // Canonical: parses back byte for byte.
            let v: serde_json::Value = jcs::from_canonical_slice(bytes).unwrap();
            assert_eq!(jcs::canonicalize(&v).unwrap().as_bytes(), &bytes[..]);
            // No object's bytes parse as another kind.
            let parses = [
                serde_json::from_slice::<Decision>(bytes).is_ok(),
                serde_json::from_slice::<StandingRule>(bytes).is_ok(),
                serde_json::from_slice::<Revocation>(bytes).is_ok(),
                serde_json::from_slice::<RuleRevocation>(bytes).is_ok(),
                serde_json::from_slice::<DeviceChallenge>(bytes).is_ok(),
            ];
            let kind = [0, 0, 1, 2, 3, 4][i];
            for (k, ok) in parses.iter().enumerate() {
                assert_eq!(*ok, k == kind, "object {i} as kind {k}");
            }
        }
        // Invalid values are never signed.
        let mut a = approval();
        a.signed_at_ms = i64::MAX;
        assert_eq!(
            Decision::Approve(a).signing_bytes(),
            Err(ConsentError::InvalidTime)
        );
    }

    #[test]
    fn device_signatures_over_consent() {
        for signer in DeviceSigner::of_each_algorithm() {
            let key = signer.public_jwk();
            let mut a = approval();
            a.device = signer.device_id();
            let decision = Decision::Approve(a.clone());
            let sig = signer.sign(&decision.signing_bytes().unwrap());
            decision.verify_signature(&key, &sig).unwrap();
            // Replayed onto wider or other terms, it fails.
            let mut wider = a.clone();
            wider.duration_secs += 1;
            assert_eq!(
                Decision::Approve(wider).verify_signature(&key, &sig),
                Err(VerifyError)
            );
            let refusal = Decision::Refuse(Refusal {
                request: a.request,
                subject: a.subject,
                device: a.device,
                signed_at_ms: a.signed_at_ms,
            });
            assert_eq!(refusal.verify_signature(&key, &sig), Err(VerifyError));
            // Another device's key fails: it is not the device the decision names.
            let other = DeviceSigner::generate_ed25519();
            assert_eq!(
                decision.verify_signature(&other.public_jwk(), &sig),
                Err(VerifyError)
            );

            let mut r = rule();
            r.device = signer.device_id();
            let sig = signer.sign(&r.signing_bytes().unwrap());
            r.verify_signature(&key, &sig).unwrap();
            r.scope = "patient/Observation.rs".parse().unwrap();
            assert_eq!(r.verify_signature(&key, &sig), Err(VerifyError));

            let rev = Revocation {
                grant: GrantId::new_random(),
                subject: a.subject,
                device: signer.device_id(),
                signed_at_ms: T,
            };
            let sig = signer.sign(&rev.signing_bytes().unwrap());
            rev.verify_signature(&key, &sig).unwrap();
            let rr = RuleRevocation {
                rule: rule().rule,
                subject: a.subject,
                device: signer.device_id(),
                signed_at_ms: T,
            };
            assert_eq!(rr.verify_signature(&key, &sig), Err(VerifyError));
            let sig = signer.sign(&rr.signing_bytes().unwrap());
            rr.verify_signature(&key, &sig).unwrap();
            let ch = DeviceChallenge {
                challenge: "nonce-nonce-nonce-nonce".into(),
                device: signer.device_id(),
            };
            let sig = signer.sign(&ch.signing_bytes().unwrap());
            ch.verify_signature(&key, &sig).unwrap();
        }
    }
}

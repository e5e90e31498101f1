//! Grant claims: the payload of the EdDSA JWT the consent service issues (the token
//! itself is [`crate::grant_token`]). This module holds the claims type and the
//! checks every party runs on it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{Datelike as _, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{PatientKey, RequestId, ScopeTag};
use crate::linkage::{scope_tag, LinkageKey};
use crate::scope::{dated_tag_input, ScopeSet};

/// Clock difference tolerated between services, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
/// Longest `standing_rule.rule` / `emergency.reason`, in bytes.
pub const MAX_BASIS_TEXT_LEN: usize = 512;

token_claims! {
    /// Claims of a grant token.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GrantClaims {
        /// What may be read.
        pub scope: ScopeSet,
        /// `scope_tag(K_link, sub, input)` for each of `scope.tag_inputs()`.
        pub scope_tags: Vec<ScopeTag>,
        /// Why.
        pub purpose: PurposeOfUse,
        /// Which clinical dates the records may have; absent means any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data_period: Option<DataPeriod>,
        /// Certificate binding (RFC 8705): only the holder of that certificate may use it.
        pub cnf: Confirmation,
        /// What authorizes the grant.
        pub basis: GrantBasis,
    }
}

/// HL7 v3 PurposeOfUse codes Locus accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PurposeOfUse {
    /// Treatment.
    #[serde(rename = "TREAT")]
    Treatment,
    /// Emergency treatment (break-glass).
    #[serde(rename = "ETREAT")]
    EmergencyTreatment,
    /// Care management.
    #[serde(rename = "CAREMGT")]
    CareManagement,
    /// The patient asked for the transfer.
    #[serde(rename = "PATRQT")]
    PatientRequested,
}

impl PurposeOfUse {
    /// The HL7 code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Treatment => "TREAT",
            Self::EmergencyTreatment => "ETREAT",
            Self::CareManagement => "CAREMGT",
            Self::PatientRequested => "PATRQT",
        }
    }
}

/// What authorizes a grant. JSON: `{"kind": "patient_approval", "request": ...}` etc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GrantBasis {
    /// The patient approved this request on their device.
    PatientApproval {
        /// The request the patient signed.
        request: RequestId,
    },
    /// A standing rule the patient signed ahead of time.
    StandingRule {
        /// The rule's id.
        rule: String,
    },
    /// Break-glass access, flagged for review.
    Emergency {
        /// The stated reason.
        reason: String,
    },
}

/// The longest data period a grant may name, in months: bounds the number of
/// dated scope tags a grant carries.
pub const MAX_PERIOD_MONTHS: usize = 60;

/// An inclusive range of clinical dates. JSON: `{"start": "YYYY-MM-DD", "end": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DataPeriodWire")]
pub struct DataPeriod {
    /// First date included.
    #[serde(serialize_with = "write_date")]
    pub start: NaiveDate,
    /// Last date included.
    #[serde(serialize_with = "write_date")]
    pub end: NaiveDate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataPeriodWire {
    start: String,
    end: String,
}

impl TryFrom<DataPeriodWire> for DataPeriod {
    type Error = GrantError;
    fn try_from(w: DataPeriodWire) -> Result<Self, GrantError> {
        Self::new(&w.start, &w.end)
    }
}

fn write_date<S: serde::Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&date.format(DATE_FORMAT))
}

/// The one spelling of a date on the wire.
const DATE_FORMAT: &str = "%Y-%m-%d";

impl DataPeriod {
    /// A checked period from its wire dates.
    pub fn new(start: &str, end: &str) -> Result<Self, GrantError> {
        match (parse_date(start), parse_date(end)) {
            (Some(start), Some(end)) => Self::between(start, end),
            _ => Err(GrantError::InvalidDate),
        }
    }

    /// A checked period.
    pub fn between(start: NaiveDate, end: NaiveDate) -> Result<Self, GrantError> {
        let period = Self { start, end };
        period.check()?;
        Ok(period)
    }

    fn check(&self) -> Result<(), GrantError> {
        if !in_date_range(self.start) || !in_date_range(self.end) {
            return Err(GrantError::InvalidDate);
        }
        if self.start > self.end {
            return Err(GrantError::DataPeriodReversed);
        }
        if self.months().len() > MAX_PERIOD_MONTHS {
            return Err(GrantError::DataPeriodTooLong);
        }
        Ok(())
    }

    /// Every month (`YYYY-MM`) the period touches, in order: the granularity at
    /// which the index can match dates (see [`crate::scope::dated_tag_input`]).
    pub fn months(&self) -> Vec<String> {
        let mut months = Vec::new();
        let mut month = self.start.with_day(1);
        while let Some(first) = month.filter(|m| *m <= self.end) {
            if months.len() > MAX_PERIOD_MONTHS {
                break;
            }
            months.push(first.format("%Y-%m").to_string());
            month = first.checked_add_months(Months::new(1));
        }
        months
    }

    /// Whether `date` (`YYYY-MM-DD`) falls in the period; false for invalid dates.
    pub fn contains(&self, date: &str) -> bool {
        parse_date(date).is_some_and(|d| self.start <= d && d <= self.end)
    }

    /// The `days` days (at least 1) ending with `end` (`YYYY-MM-DD`, inclusive),
    /// e.g. a standing rule's "last 365 days" of data as of `end`.
    pub fn last_days(end: &str, days: u32) -> Result<Self, GrantError> {
        Self::ending(parse_date(end).ok_or(GrantError::InvalidDate)?, days)
    }

    /// The `days` days (at least 1) ending with `end` (inclusive).
    pub fn ending(end: NaiveDate, days: u32) -> Result<Self, GrantError> {
        if days == 0 {
            return Err(GrantError::DataPeriodReversed);
        }
        let start = end
            .checked_sub_days(Days::new(u64::from(days - 1)))
            .ok_or(GrantError::InvalidDate)?;
        Self::between(start, end)
    }

    /// Whether every date of this period is also in `outer`.
    pub fn is_within(&self, outer: &DataPeriod) -> bool {
        outer.start <= self.start && self.end <= outer.end
    }

    /// The dates in both periods, if any.
    pub fn intersection(&self, other: &DataPeriod) -> Option<DataPeriod> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start <= end).then_some(Self { start, end })
    }
}

/// The date `s` names if it is a real calendar date written `YYYY-MM-DD` (years
/// 0001 to 9999, proleptic Gregorian), the only spelling accepted.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    // chrono alone would also take signs, one-digit fields and longer years.
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, c)| match i {
            4 | 7 => c == b'-',
            _ => c.is_ascii_digit(),
        });
    let date = NaiveDate::parse_from_str(s, DATE_FORMAT).ok();
    date.filter(|d| shape && in_date_range(*d))
}

fn in_date_range(date: NaiveDate) -> bool {
    (1..=9999).contains(&date.year())
}

/// RFC 8705 confirmation: the SHA-256 thumbprint of the holder's DER certificate,
/// base64url without padding (43 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConfirmationWire")]
pub struct Confirmation {
    /// `x5t#S256`
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmationWire {
    #[serde(rename = "x5t#S256")]
    x5t_s256: String,
}

impl TryFrom<ConfirmationWire> for Confirmation {
    type Error = GrantError;
    fn try_from(w: ConfirmationWire) -> Result<Self, GrantError> {
        Self::new(&w.x5t_s256)
    }
}

impl Confirmation {
    /// A checked thumbprint.
    pub fn new(x5t_s256: &str) -> Result<Self, GrantError> {
        let c = Self {
            x5t_s256: x5t_s256.to_owned(),
        };
        c.check()?;
        Ok(c)
    }

    /// The binding for a DER-encoded certificate.
    pub fn for_certificate_der(der: &[u8]) -> Self {
        Self {
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
        }
    }

    fn check(&self) -> Result<(), GrantError> {
        // Strict decoding also refuses non-canonical trailing bits, so each
        // thumbprint has one spelling.
        match URL_SAFE_NO_PAD.decode(&self.x5t_s256) {
            Ok(bytes) if self.x5t_s256.len() == 43 && bytes.len() == 32 => Ok(()),
            _ => Err(GrantError::InvalidThumbprint),
        }
    }
}

/// Why grant claims are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// `exp` is not after `nbf`.
    #[error("grant expires before it becomes valid")]
    EmptyValidity,
    /// `nbf` is before `iat` (beyond clock skew).
    #[error("grant becomes valid before it was issued")]
    NotBeforeIssued,
    /// `exp - nbf` is longer than allowed.
    #[error("grant lasts longer than the allowed {max_secs} seconds")]
    TooLong {
        /// The limit in force.
        max_secs: i64,
    },
    /// `iat` is in the future (beyond clock skew).
    #[error("grant was issued in the future")]
    IssuedInFuture,
    /// `nbf` is in the future (beyond clock skew).
    #[error("grant is not yet valid")]
    NotYetValid,
    /// `exp` has passed.
    #[error("grant has expired")]
    Expired,
    /// A data period date is not a valid `YYYY-MM-DD` date.
    #[error("data period dates must be valid YYYY-MM-DD dates")]
    InvalidDate,
    /// The data period ends before it starts.
    #[error("data period ends before it starts")]
    DataPeriodReversed,
    /// The data period spans more than [`MAX_PERIOD_MONTHS`] months.
    #[error("the data period spans more than {MAX_PERIOD_MONTHS} months")]
    DataPeriodTooLong,
    /// `cnf.x5t#S256` is not a base64url SHA-256 thumbprint.
    #[error("cnf.x5t#S256 must be base64url (no padding) of a 32-byte SHA-256 thumbprint")]
    InvalidThumbprint,
    /// The number of scope tags does not match the scopes.
    #[error("scope_tags must hold one tag per distinct scope tag input ({expected})")]
    ScopeTagCount {
        /// How many the scopes call for.
        expected: usize,
    },
    /// The same scope tag twice.
    #[error("duplicate scope tag")]
    DuplicateScopeTag,
    /// A rule id or reason is empty, too long, padded, or holds control or
    /// bidirectional characters.
    #[error("a reason must be 1 to 512 bytes of one line of plain text: no surrounding spaces, control characters or bidirectional controls")]
    InvalidBasisText,
    /// An emergency grant must state emergency treatment as its purpose.
    #[error("an emergency grant must have purpose ETREAT")]
    EmergencyPurpose,
}

pub(crate) fn check_basis_text(text: &str) -> Result<(), GrantError> {
    // Bytes bound the token; characters bound what a person reads.
    if text.len() > MAX_BASIS_TEXT_LEN {
        return Err(GrantError::InvalidBasisText);
    }
    crate::text::check_shown_text(text, MAX_BASIS_TEXT_LEN)
        .map_err(|_| GrantError::InvalidBasisText)
}

/// The scope tags for `scope`, in the order of [`ScopeSet::tag_inputs`].
pub fn scope_tags_for(
    key: &LinkageKey,
    subject: &PatientKey,
    scope: &ScopeSet,
    period: Option<&DataPeriod>,
) -> Vec<ScopeTag> {
    tag_inputs_for(scope, period)
        .iter()
        .map(|input| scope_tag(key, subject, input))
        .collect()
}

/// The tag inputs a grant is matched by: the scope's, or with a data period,
/// the scope's for each month of the period, so the index returns only records
/// of those months and no count of the others. The custodian enforces the
/// exact days.
pub fn tag_inputs_for(scope: &ScopeSet, period: Option<&DataPeriod>) -> Vec<String> {
    let inputs = scope.tag_inputs();
    match period {
        None => inputs,
        Some(period) => {
            let months = period.months();
            inputs
                .iter()
                .flat_map(|input| months.iter().map(move |m| dated_tag_input(input, m)))
                .collect()
        }
    }
}

impl GrantClaims {
    /// Checks the claims' internal consistency (no clock needed): validity window
    /// ordering and length, dates, thumbprint, basis, scope tag count.
    /// Times are untrusted, so all arithmetic saturates.
    pub fn check_structure(&self, max_duration_secs: i64) -> Result<(), GrantError> {
        if self.exp <= self.nbf {
            return Err(GrantError::EmptyValidity);
        }
        if self.nbf < self.iat.saturating_sub(MAX_CLOCK_SKEW_SECS) {
            return Err(GrantError::NotBeforeIssued);
        }
        if self.exp.saturating_sub(self.nbf) > max_duration_secs {
            return Err(GrantError::TooLong {
                max_secs: max_duration_secs,
            });
        }
        if let Some(period) = &self.data_period {
            period.check()?;
        }
        self.cnf.check()?;
        match &self.basis {
            GrantBasis::PatientApproval { .. } => {}
            GrantBasis::StandingRule { rule } => check_basis_text(rule)?,
            GrantBasis::Emergency { reason } => {
                check_basis_text(reason)?;
                if self.purpose != PurposeOfUse::EmergencyTreatment {
                    return Err(GrantError::EmergencyPurpose);
                }
            }
        }
        let expected = tag_inputs_for(&self.scope, self.data_period.as_ref()).len();
        if self.scope_tags.len() != expected {
            return Err(GrantError::ScopeTagCount { expected });
        }
        let mut tags = self.scope_tags.clone();
        tags.sort();
        tags.dedup();
        if tags.len() != self.scope_tags.len() {
            return Err(GrantError::DuplicateScopeTag);
        }
        Ok(())
    }

    /// [`GrantClaims::check_structure`], and that the grant is in force at `now`
    /// (Unix seconds), allowing [`MAX_CLOCK_SKEW_SECS`] of skew for `iat`/`nbf`.
    pub fn validate(&self, now: i64, max_duration_secs: i64) -> Result<(), GrantError> {
        self.check_structure(max_duration_secs)?;
        let lenient_now = now.saturating_add(MAX_CLOCK_SKEW_SECS);
        if self.iat > lenient_now {
            return Err(GrantError::IssuedInFuture);
        }
        if self.nbf > lenient_now {
            return Err(GrantError::NotYetValid);
        }
        if now >= self.exp {
            return Err(GrantError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::GrantId;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_700_000_000;

    fn key() -> LinkageKey {
        LinkageKey::new("k1", [5; 32]).unwrap()
    }

    fn claims() -> GrantClaims {
        let sub = PatientKey::from_bytes([1; 32]);
        let scope: ScopeSet =
            "patient/Observation.rs?category=laboratory patient/DiagnosticReport.r"
                .parse()
                .unwrap();
        GrantClaims {
            iss: "consent".parse().unwrap(),
            sub,
            aud: "city-er".parse().unwrap(),
            jti: GrantId::new_random(),
            iat: NOW,
            nbf: NOW,
            exp: NOW + DAY,
            scope_tags: scope_tags_for(&key(), &sub, &scope, Some(&period())),
            scope,
            purpose: PurposeOfUse::Treatment,
            data_period: Some(period()),
            cnf: Confirmation::for_certificate_der(b"certificate"),
            basis: GrantBasis::PatientApproval {
                request: RequestId::new_random(),
            },
        }
    }

    fn period() -> DataPeriod {
        DataPeriod::new("2024-01-01", "2024-12-31").unwrap()
    }

    #[test]
    fn months_of_a_period() {
        let months = DataPeriod::new("2023-11-15", "2024-02-01")
            .unwrap()
            .months();
        assert_eq!(months, ["2023-11", "2023-12", "2024-01", "2024-02"]);
        assert_eq!(period().months().len(), 12);
        assert!(matches!(
            DataPeriod::new("2000-01-01", "2010-01-01"),
            Err(GrantError::DataPeriodTooLong)
        ));
    }

    #[test]
    fn dated_grants_match_only_their_months() {
        let scope: ScopeSet = "patient/Observation.rs?category=laboratory"
            .parse()
            .unwrap();
        let sub = PatientKey::from_bytes([9; 32]);
        let tags = scope_tags_for(
            &key(),
            &sub,
            &scope,
            Some(&DataPeriod::new("2024-03-01", "2024-04-30").unwrap()),
        );
        let record = |date: &str| -> Vec<ScopeTag> {
            crate::scope::record_tag_inputs(
                crate::scope::ResourceType::Observation,
                &["laboratory"],
                &[],
                Some(date),
            )
            .iter()
            .map(|i| scope_tag(&key(), &sub, i))
            .collect()
        };
        assert!(record("2024-03-31").iter().any(|t| tags.contains(t)));
        assert!(record("2024-04-01").iter().any(|t| tags.contains(t)));
        assert!(!record("2024-05-01").iter().any(|t| tags.contains(t)));
        assert!(!record("2023-03-15").iter().any(|t| tags.contains(t)));
        // An undated grant still finds a dated record.
        let undated = scope_tags_for(&key(), &sub, &scope, None);
        assert!(record("2019-01-01").iter().any(|t| undated.contains(t)));
    }

    #[test]
    fn valid_grant_and_json() {
        let c = claims();
        c.validate(NOW + 10, 7 * DAY).unwrap();
        // The tags are exactly those the linkage key gives, and no other key's.
        let tags_for = |key: &LinkageKey| {
            let mut want = scope_tags_for(key, &c.sub, &c.scope, c.data_period.as_ref());
            let mut have = c.scope_tags.clone();
            want.sort();
            have.sort();
            want == have
        };
        assert!(tags_for(&key()));
        assert!(!tags_for(&LinkageKey::new("k2", [6; 32]).unwrap()));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["purpose"], "TREAT");
        assert_eq!(json["basis"]["kind"], "patient_approval");
        assert_eq!(
            json["scope"],
            "patient/Observation.rs?category=laboratory patient/DiagnosticReport.r"
        );
        assert_eq!(json["cnf"]["x5t#S256"].as_str().unwrap().len(), 43);
        assert_eq!(json["data_period"]["start"], "2024-01-01");
        let back: GrantClaims = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn time_checks() {
        let max = 7 * DAY;
        let c = claims();
        assert_eq!(c.validate(NOW + DAY, max), Err(GrantError::Expired));
        assert_eq!(c.validate(NOW - 61, max), Err(GrantError::IssuedInFuture));
        assert!(c.validate(NOW - 60, max).is_ok());
        assert_eq!(
            c.validate(NOW, DAY - 1),
            Err(GrantError::TooLong { max_secs: DAY - 1 })
        );

        let mut c = claims();
        c.nbf = NOW + 3600;
        assert_eq!(c.validate(NOW, max), Err(GrantError::NotYetValid));
        assert!(c.validate(NOW + 3600, max).is_ok());

        let mut c = claims();
        c.exp = c.nbf;
        assert_eq!(c.check_structure(max), Err(GrantError::EmptyValidity));
        let mut c = claims();
        c.nbf = NOW - 61;
        assert_eq!(c.check_structure(max), Err(GrantError::NotBeforeIssued));

        // Hostile values do not overflow.
        let mut c = claims();
        c.iat = i64::MIN;
        c.nbf = i64::MIN;
        c.exp = i64::MAX;
        assert_eq!(
            c.validate(i64::MAX, max),
            Err(GrantError::TooLong { max_secs: max })
        );
        let mut c = claims();
        c.iat = i64::MAX;
        c.nbf = i64::MAX - 1;
        c.exp = i64::MAX;
        assert_eq!(c.validate(i64::MAX, max), Err(GrantError::Expired));
        assert_eq!(c.validate(0, max), Err(GrantError::IssuedInFuture));
    }

    #[test]
    fn structure_checks() {
        let max = 7 * DAY;
        let mut c = claims();
        c.scope_tags.pop();
        // Two scopes, each tagged for each of the period's 12 months.
        assert_eq!(
            c.check_structure(max),
            Err(GrantError::ScopeTagCount { expected: 24 })
        );
        let mut c = claims();
        c.scope_tags[1] = c.scope_tags[0];
        assert_eq!(c.check_structure(max), Err(GrantError::DuplicateScopeTag));

        let mut c = claims();
        c.basis = GrantBasis::Emergency {
            reason: "unconscious patient in ED".into(),
        };
        assert_eq!(c.check_structure(max), Err(GrantError::EmergencyPurpose));
        c.purpose = PurposeOfUse::EmergencyTreatment;
        assert!(c.check_structure(max).is_ok());
        for bad in ["", "   ", "line\nbreak", &"x".repeat(513)] {
            c.basis = GrantBasis::Emergency { reason: bad.into() };
            assert_eq!(
                c.check_structure(max),
                Err(GrantError::InvalidBasisText),
                "{bad:?}"
            );
            c.basis = GrantBasis::StandingRule { rule: bad.into() };
            assert_eq!(
                c.check_structure(max),
                Err(GrantError::InvalidBasisText),
                "{bad:?}"
            );
        }

        let mut c = claims();
        c.cnf.x5t_s256.pop();
        assert_eq!(c.check_structure(max), Err(GrantError::InvalidThumbprint));
        let mut c = claims();
        c.data_period = Some(DataPeriod {
            start: NaiveDate::from_ymd_opt(2024, 2, 28).unwrap(),
            end: NaiveDate::from_ymd_opt(10_000, 3, 1).unwrap(),
        });
        assert_eq!(c.check_structure(max), Err(GrantError::InvalidDate));
    }

    #[test]
    fn json_rejections() {
        let base = serde_json::to_value(claims()).unwrap();
        type Mutation = fn(&mut serde_json::Value);
        let mutations: Vec<(&str, Mutation)> = vec![
            ("unknown claim", |v| v["extra"] = 1.into()),
            ("unknown purpose", |v| v["purpose"] = "HPAYMT".into()),
            ("lowercase purpose", |v| v["purpose"] = "treat".into()),
            ("basis kind", |v| v["basis"]["kind"] = "guess".into()),
            ("basis field", |v| v["basis"]["extra"] = 1.into()),
            ("cnf field", |v| v["cnf"]["x5t"] = "a".into()),
            ("cnf short", |v| v["cnf"]["x5t#S256"] = "abc".into()),
            ("cnf padded", |v| {
                v["cnf"]["x5t#S256"] = format!("{}=", "A".repeat(43)).into()
            }),
            ("period field", |v| v["data_period"]["tz"] = "Z".into()),
            ("period date", |v| {
                v["data_period"]["end"] = "2024-13-01".into()
            }),
            ("period reversed", |v| {
                v["data_period"]["start"] = "2025-01-01".into()
            }),
            ("scope", |v| v["scope"] = "patient/Observation.cruds".into()),
            ("sub", |v| v["sub"] = "ABC".into()),
            ("aud", |v| v["aud"] = "City ER".into()),
            ("missing cnf", |v| {
                v.as_object_mut().unwrap().remove("cnf");
            }),
        ];
        for (name, mutate) in mutations {
            let mut v = base.clone();
            mutate(&mut v);
            assert!(serde_json::from_value::<GrantClaims>(v).is_err(), "{name}");
        }
        // data_period may be absent.
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("data_period");
        assert_eq!(
            serde_json::from_value::<GrantClaims>(v)
                .unwrap()
                .data_period,
            None
        );
        // Other bases.
        for (basis, want) in [
            (
                serde_json::json!({"kind": "standing_rule", "rule": "ed-labs-12m"}),
                GrantBasis::StandingRule {
                    rule: "ed-labs-12m".into(),
                },
            ),
            (
                serde_json::json!({"kind": "emergency", "reason": "cardiac arrest"}),
                GrantBasis::Emergency {
                    reason: "cardiac arrest".into(),
                },
            ),
        ] {
            assert_eq!(serde_json::from_value::<GrantBasis>(basis).unwrap(), want);
        }
    }

    #[test]
    fn dates() {
        for good in [
            "2024-02-29",
            "2000-02-29",
            "1999-12-31",
            "0001-01-01",
            "9999-12-31",
            "2023-04-30",
        ] {
            assert!(parse_date(good).is_some(), "{good}");
        }
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2024-04-31",
            "2024-00-10",
            "2024-13-10",
            "2024-01-00",
            "2024-01-32",
            "0000-01-01",
            "2024-1-01",
            "2024/01/01",
            "24-01-01",
            "2024-01-01T00:00:00Z",
            "２０２４-01-01",
            "+024-01-01",
            "",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
        let p = DataPeriod::new("2024-01-01", "2024-06-30").unwrap();
        assert!(p.contains("2024-01-01") && p.contains("2024-06-30") && p.contains("2024-03-15"));
        assert!(!p.contains("2023-12-31") && !p.contains("2024-07-01") && !p.contains("2024-03"));
        assert_eq!(
            DataPeriod::new("2024-02-01", "2024-01-31"),
            Err(GrantError::DataPeriodReversed)
        );
        assert!(DataPeriod::new("2024-02-01", "2024-02-01").is_ok());
    }

    #[test]
    fn last_days_and_period_algebra() {
        let p = |s: &str, e: &str| DataPeriod::new(s, e).unwrap();
        // (end, days, the period's first and last day or the error)
        type Want = Result<(&'static str, &'static str), GrantError>;
        let cases: [(&str, u32, Want); 13] = [
            ("2024-12-31", 1, Ok(("2024-12-31", "2024-12-31"))),
            ("2024-12-31", 366, Ok(("2024-01-01", "2024-12-31"))),
            ("2024-03-01", 2, Ok(("2024-02-29", "2024-03-01"))),
            ("2023-03-01", 2, Ok(("2023-02-28", "2023-03-01"))),
            ("2000-03-01", 2, Ok(("2000-02-29", "2000-03-01"))),
            ("1900-03-01", 2, Ok(("1900-02-28", "1900-03-01"))),
            ("2025-01-01", 365, Ok(("2024-01-03", "2025-01-01"))),
            ("0001-01-01", 1, Ok(("0001-01-01", "0001-01-01"))),
            ("0001-01-01", 2, Err(GrantError::InvalidDate)),
            ("2024-02-30", 2, Err(GrantError::InvalidDate)),
            ("2024-01-01", 0, Err(GrantError::DataPeriodReversed)),
            ("2024-01-01", u32::MAX, Err(GrantError::InvalidDate)),
            ("2024-01-01", 3000, Err(GrantError::DataPeriodTooLong)),
        ];
        for (end, days, want) in cases {
            assert_eq!(
                DataPeriod::last_days(end, days),
                want.map(|(s, e)| p(s, e)),
                "{end} {days}"
            );
        }
        // Day arithmetic agrees with a plain walk over every date of four centuries.
        let mut previous: Option<String> = None;
        for year in 1999..=2401 {
            for month in 1..=12u32 {
                for d in 1..=31u32 {
                    let date = format!("{year:04}-{month:02}-{d:02}");
                    if parse_date(&date).is_some() {
                        if let Some(previous) = &previous {
                            assert_eq!(
                                DataPeriod::last_days(&date, 2).unwrap(),
                                p(previous, &date),
                                "{date}"
                            );
                        }
                        previous = Some(date);
                    }
                }
            }
        }
        assert_eq!(
            DataPeriod::last_days("1970-01-02", 2).unwrap().start,
            chrono::DateTime::UNIX_EPOCH.date_naive()
        );

        let year = p("2024-01-01", "2024-12-31");
        assert!(p("2024-02-01", "2024-02-29").is_within(&year));
        assert!(year.is_within(&year));
        assert!(!p("2023-12-31", "2024-01-31").is_within(&year));
        assert!(!p("2024-12-01", "2025-01-01").is_within(&year));
        assert_eq!(
            year.intersection(&p("2024-12-01", "2025-01-31")),
            Some(p("2024-12-01", "2024-12-31"))
        );
        assert_eq!(year.intersection(&p("2025-01-01", "2025-01-31")), None);
    }

    #[test]
    fn certificate_binding() {
        let cnf = Confirmation::for_certificate_der(b"cert A");
        assert!(cnf == Confirmation::for_certificate_der(b"cert A"));
        assert!(cnf != Confirmation::for_certificate_der(b"cert B"));
        assert_eq!(Confirmation::new(&cnf.x5t_s256).unwrap(), cnf);
        assert_eq!(Confirmation::new("x"), Err(GrantError::InvalidThumbprint));
        // Wrong alphabet.
        assert_eq!(
            Confirmation::new(&format!("{}+", "A".repeat(42))),
            Err(GrantError::InvalidThumbprint)
        );
        // Non-canonical last character (unused bits set).
        assert_eq!(
            Confirmation::new(&format!("{}B", "A".repeat(42))),
            Err(GrantError::InvalidThumbprint)
        );
        assert_eq!(PurposeOfUse::EmergencyTreatment.code(), "ETREAT");
    }
}

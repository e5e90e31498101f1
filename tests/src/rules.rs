//! Patients' standing rules as the tests make them.

use locus_protocol::consent::{RuleAudience, StandingRule};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::grant::PurposeOfUse;
use locus_protocol::ids::{PatientKey, RuleId};

use crate::index::now_ms;

/// A new standing rule of `subject`'s over `scope`, signed now on `device`:
/// any hospital, to treat, grants of an hour, no data window. A test changes
/// the fields it is about with struct update syntax.
pub fn standing_rule(subject: PatientKey, device: DeviceKeyId, scope: &str) -> StandingRule {
    StandingRule {
        rule: RuleId::new_random(),
        subject,
        who: RuleAudience::AnyHospital,
        scope: scope.parse().expect("a scope"),
        data_window_days: None,
        grant_duration_secs: 3600,
        purposes: vec![PurposeOfUse::Treatment],
        device,
        signed_at_ms: now_ms(),
    }
}

//! Helpers shared by the crate's unit tests.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::entry::{Commitment, Event, RecordRetrieved};
use crate::ids::{GrantId, PatientKey};
use crate::scope::ScopeSet;

/// Asserts that `good` with any one member replaced (each edit on its own) no
/// longer parses as `T`, so every check is shown to run on JSON input.
pub(crate) fn assert_each_edit_refused<T: DeserializeOwned>(
    good: &Value,
    edits: impl IntoIterator<Item = (&'static str, Value)>,
) {
    for (field, value) in edits {
        let mut bad = good.clone();
        bad[field] = value;
        assert!(serde_json::from_value::<T>(bad).is_err(), "{field}");
    }
}

/// A fixture's scopes, written as the scope string.
pub(crate) fn scopes(s: &str) -> ScopeSet {
    s.parse().unwrap()
}

/// St Mary's release of a record to City ER under `grant`, the retrieval several
/// modules' tests log.
pub(crate) fn record_retrieved(grant: GrantId, subject: PatientKey) -> Event {
    Event::RecordRetrieved(RecordRetrieved {
        requester: "city-er".parse().unwrap(),
        custodian: "st-mary".parse().unwrap(),
        grant,
        subject,
        pointer: "00000000-0000-4000-8000-000000000001".parse().unwrap(),
        commitment: Commitment::from_bytes([4; 32]),
    })
}

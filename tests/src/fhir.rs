//! Small FHIR R4 bundles made in code, for tests and benchmarks that must not
//! depend on sample files.

use serde_json::{json, Value};

/// A laboratory Observation for [`lab_bundle`]: its id, LOINC code, value and date.
#[derive(Debug, Clone)]
pub struct LabObservation {
    pub id: String,
    pub loinc: String,
    pub value: f64,
    pub unit: String,
    pub date: String,
}

impl LabObservation {
    pub fn new(id: &str, loinc: &str, value: f64, date: &str) -> Self {
        Self {
            id: id.to_owned(),
            loinc: loinc.to_owned(),
            value,
            unit: "mg/dL".into(),
            date: date.to_owned(),
        }
    }
}

/// Three laboratory results of 2024 (glucose twice, cholesterol once) of the
/// patient with `ssn`, as [`lab_bundle`]; ids are `{prefix}-0000-4000-8000-…`,
/// so that each test's records are its own.
pub fn three_lab_results(prefix: &str, ssn: &str) -> Vec<u8> {
    let id = |tail: &str| format!("{prefix}-0000-4000-8000-{tail}");
    lab_bundle(
        &id("0000000000aa"),
        ssn,
        &[
            LabObservation::new(&id("000000000001"), "2339-0", 95.0, "2024-03-04"),
            LabObservation::new(&id("000000000002"), "2093-3", 180.0, "2024-03-20"),
            LabObservation::new(&id("000000000003"), "2339-0", 99.0, "2024-05-02"),
        ],
    )
}

/// A transaction Bundle with one Patient (identified by `ssn` in the US SSN
/// system) and the given laboratory Observations, shaped like Synthea's.
pub fn lab_bundle(patient_id: &str, ssn: &str, observations: &[LabObservation]) -> Vec<u8> {
    let patient = json!({
        "fullUrl": format!("urn:uuid:{patient_id}"),
        "resource": {
            "resourceType": "Patient",
            "id": patient_id,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}],
        },
    });
    let mut entries = vec![patient];
    for o in observations {
        entries.push(json!({
            "fullUrl": format!("urn:uuid:{}", o.id),
            "resource": {
                "resourceType": "Observation",
                "id": o.id,
                "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": o.loinc}]},
                "subject": {"reference": format!("urn:uuid:{patient_id}")},
                "effectiveDateTime": format!("{}T09:30:00+00:00", o.date),
                "valueQuantity": {"value": o.value, "unit": o.unit, "system": "http://unitsofmeasure.org", "code": o.unit},
            },
        }));
    }
    let bundle: Value = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    serde_json::to_vec(&bundle).unwrap_or_default()
}

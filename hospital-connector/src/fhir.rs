//! Reads a FHIR R4 Bundle (Synthea style: one patient per bundle) into the
//! patient's linkage identifier and the records the connector publishes: every
//! Observation and DiagnosticReport. Other resource types are skipped.
//!
//! Errors say where (entry number, JSON line and column) and what, and never
//! echo a value from the bundle: a malformed identifier must not end up in a log.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDate;
use locus_protocol::ids::FhirId;
use locus_protocol::linkage::{normalize_identifier, IdentifierError, NormalizedIdentifier};
use locus_protocol::pointer::MAX_POINTER_TOKENS;
use locus_protocol::scope::{Coding as ScopeCoding, ResourceType, Token, MAX_SCOPE_LEN};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::records::NewRecordInput;

/// The US Social Security Number identifier system, the default linkage identifier.
pub const US_SSN_SYSTEM: &str = "http://hl7.org/fhir/sid/us-ssn";
/// The standard observation category system; its codes are stored bare
/// (`laboratory`), every other system's as `system|code`.
pub const OBSERVATION_CATEGORY_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
/// Largest bundle accepted, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;
/// Most entries in one bundle. Also a hard cap on what parsing keeps in memory.
pub const MAX_ENTRIES: usize = 100_000;
/// Most category plus code codings read from one resource.
pub const MAX_CODINGS: usize = 256;

/// Size bounds for [`parse_bundle_with`]; values above the defaults are clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_BUNDLE_BYTES,
            max_entries: MAX_ENTRIES,
        }
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    #[error("bundle is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("bundle is not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("bundle does not have the structure of a FHIR Bundle (line {line}, column {column})")]
    Structure { line: usize, column: usize },
    #[error("not a FHIR Bundle: resourceType must be \"Bundle\"")]
    NotABundle,
    #[error("bundle has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("bundle entry {entry}: {problem}")]
    Entry { entry: usize, problem: EntryProblem },
    #[error("bundle has no Patient resource")]
    NoPatient,
    #[error("bundle has more than one Patient resource (entries {first} and {second})")]
    SeveralPatients { first: usize, second: usize },
    #[error("the bundle's Patient has no identifier with system {system}")]
    MissingIdentifier { system: String },
    #[error("the bundle's Patient has several different identifiers with system {system}")]
    AmbiguousIdentifier { system: String },
    #[error("the bundle's Patient identifier with system {system} is invalid: {source}")]
    InvalidIdentifier {
        system: String,
        source: IdentifierError,
    },
}

/// What is wrong with one bundle entry (entries count from 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("resource does not have the expected structure (line {line}, column {column} of the resource)")]
    Structure { line: usize, column: usize },
    #[error("resource has no id and its fullUrl is not urn:uuid:")]
    NoId,
    #[error("resource id is not a valid FHIR id (1 to 64 of A-Z, a-z, 0-9, '-', '.')")]
    InvalidId,
    #[error("same resource as entry {first}")]
    Duplicate { first: usize },
    #[error("effective date is not a valid FHIR date or dateTime")]
    InvalidDate,
    #[error("subject is not the bundle's Patient")]
    OtherSubject,
    #[error("more than {MAX_CODINGS} category and code codings")]
    TooManyCodings,
    #[error("more than {MAX_POINTER_TOKENS} distinct categories or codes, more than a pointer can carry")]
    TooManyTokens,
}

/// One Observation or DiagnosticReport, ready to store once its patient key is
/// known. Its content is the resource's original JSON text without
/// insignificant whitespace.
pub type ParsedRecord = NewRecordInput<()>;

/// A parsed bundle. Its `Debug` shows neither the identifier nor any content.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    /// The Patient's linkage identifier, normalized.
    pub identifier: NormalizedIdentifier,
    pub records: Vec<ParsedRecord>,
    /// Entries of resource types the connector does not carry (Patient included).
    pub skipped: usize,
}

/// Parses `json` with the default [`Limits`].
pub fn parse_bundle(json: &[u8], identifier_system: &str) -> Result<ParsedBundle, FhirError> {
    parse_bundle_with(json, identifier_system, Limits::default())
}

/// Parses `json`, taking the linkage identifier from the Patient's identifier
/// with `identifier_system`.
pub fn parse_bundle_with(
    json: &[u8],
    identifier_system: &str,
    limits: Limits,
) -> Result<ParsedBundle, FhirError> {
    let max_bytes = limits.max_bytes.min(MAX_BUNDLE_BYTES);
    let max_entries = limits.max_entries.min(MAX_ENTRIES);
    if json.len() > max_bytes {
        return Err(FhirError::TooLarge { limit: max_bytes });
    }
    let bundle: BundleJson<'_> = serde_json::from_slice(json).map_err(bundle_error)?;
    if bundle.resource_type.as_deref() != Some("Bundle") {
        return Err(FhirError::NotABundle);
    }
    if bundle.entry.total > max_entries {
        return Err(FhirError::TooManyEntries { limit: max_entries });
    }

    let mut patient: Option<(usize, PatientJson, Option<String>)> = None;
    let mut clinical = Vec::new();
    let mut skipped = 0;
    for (index, entry) in bundle.entry.kept.into_iter().enumerate() {
        let Some(raw) = entry.resource else {
            continue;
        };
        let entry_error = |problem| FhirError::Entry {
            entry: index,
            problem,
        };
        let head: HeadJson = parse_resource(raw).map_err(entry_error)?;
        let resource_type = match head.resource_type.as_str() {
            "Patient" => {
                skipped += 1;
                if let Some((first, ..)) = patient {
                    return Err(FhirError::SeveralPatients {
                        first,
                        second: index,
                    });
                }
                patient = Some((
                    index,
                    parse_resource(raw).map_err(entry_error)?,
                    entry.full_url,
                ));
                continue;
            }
            "Observation" => ResourceType::Observation,
            "DiagnosticReport" => ResourceType::DiagnosticReport,
            _ => {
                skipped += 1;
                continue;
            }
        };
        let resource: ClinicalJson = parse_resource(raw).map_err(entry_error)?;
        clinical.push((index, resource_type, resource, entry.full_url, raw));
    }

    let (_, patient, patient_url) = patient.ok_or(FhirError::NoPatient)?;
    let identifier = linkage_identifier(&patient, identifier_system)?;
    // The references by which a record may name this bundle's Patient.
    let patient_refs: Vec<String> = patient_url
        .into_iter()
        .chain(patient.id.iter().map(|id| format!("Patient/{id}")))
        .collect();

    let mut seen: HashMap<(ResourceType, FhirId), usize> = HashMap::new();
    let mut records = Vec::with_capacity(clinical.len());
    for (index, resource_type, resource, full_url, raw) in clinical {
        let entry_error = |problem| FhirError::Entry {
            entry: index,
            problem,
        };
        let record = clinical_record(
            resource_type,
            resource,
            full_url.as_deref(),
            raw,
            &patient_refs,
        )
        .map_err(entry_error)?;
        if let Some(first) = seen.insert((resource_type, record.resource_id.clone()), index) {
            return Err(entry_error(EntryProblem::Duplicate { first }));
        }
        records.push(record);
    }
    Ok(ParsedBundle {
        identifier,
        records,
        skipped,
    })
}

fn bundle_error(e: serde_json::Error) -> FhirError {
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        serde_json::error::Category::Data => FhirError::Structure { line, column },
        _ => FhirError::Json { line, column },
    }
}

/// Parses one resource, turning serde's message (which may quote a value) into a
/// position only.
fn parse_resource<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, EntryProblem> {
    serde_json::from_str(raw.get()).map_err(|e| EntryProblem::Structure {
        line: e.line(),
        column: e.column(),
    })
}

fn linkage_identifier(
    patient: &PatientJson,
    system: &str,
) -> Result<NormalizedIdentifier, FhirError> {
    let mut found: Option<NormalizedIdentifier> = None;
    let values = patient
        .identifier
        .iter()
        .filter(|i| i.system.as_deref() == Some(system))
        .filter_map(|i| i.value.as_deref());
    for value in values {
        let normalized =
            normalize_identifier(value).map_err(|source| FhirError::InvalidIdentifier {
                system: system.to_owned(),
                source,
            })?;
        match &found {
            Some(previous) if *previous != normalized => {
                return Err(FhirError::AmbiguousIdentifier {
                    system: system.to_owned(),
                })
            }
            _ => found = Some(normalized),
        }
    }
    found.ok_or_else(|| FhirError::MissingIdentifier {
        system: system.to_owned(),
    })
}

fn clinical_record(
    resource_type: ResourceType,
    resource: ClinicalJson,
    full_url: Option<&str>,
    raw: &RawValue,
    patient_refs: &[String],
) -> Result<ParsedRecord, EntryProblem> {
    let resource_id: FhirId = match (
        resource.id,
        full_url.and_then(|u| u.strip_prefix("urn:uuid:")),
    ) {
        (Some(id), _) => id.parse(),
        (None, Some(uuid)) => uuid.parse(),
        (None, None) => return Err(EntryProblem::NoId),
    }
    .map_err(|_| EntryProblem::InvalidId)?;
    // A record filed under the wrong patient would be published under the wrong
    // key: refuse a subject that names anyone but this bundle's Patient.
    if let Some(reference) = resource.subject.and_then(|s| s.reference) {
        if !patient_refs.contains(&reference) {
            return Err(EntryProblem::OtherSubject);
        }
    }

    let category_codings = resource.category.iter().flat_map(|c| c.coding.iter());
    let code_codings = resource.code.iter().flat_map(|c| c.coding.iter());
    if category_codings.clone().count() + code_codings.clone().count() > MAX_CODINGS {
        return Err(EntryProblem::TooManyCodings);
    }
    // Codings that no scope could name (no system, spaces, '|', longer than a
    // scope, ...) are left out: they could never match a grant, and the content
    // keeps them anyway.
    let mut categories = Vec::new();
    for coding in category_codings {
        let (Some(system), Some(code)) = (coding.system.as_deref(), coding.code.as_deref()) else {
            continue;
        };
        let system = (system != OBSERVATION_CATEGORY_SYSTEM).then_some(system);
        if system.map_or(0, str::len) + code.len() > MAX_SCOPE_LEN {
            continue;
        }
        if let Ok(token) = Token::new(system, code) {
            push_unique(&mut categories, token.to_string());
        }
    }
    let mut codes = Vec::new();
    for coding in code_codings {
        let (Some(system), Some(code)) = (coding.system.as_deref(), coding.code.as_deref()) else {
            continue;
        };
        if system.len() + code.len() > MAX_SCOPE_LEN {
            continue;
        }
        if let Ok(coding) = ScopeCoding::new(system, code) {
            push_unique(&mut codes, coding.to_string());
        }
    }
    // Every stored record must fit in a pointer body, or it could never be published.
    if categories.len() > MAX_POINTER_TOKENS || codes.len() > MAX_POINTER_TOKENS {
        return Err(EntryProblem::TooManyTokens);
    }

    let effective = resource
        .effective_date_time
        .or(resource.effective_period.and_then(|p| p.start))
        .or(resource.effective_instant);
    let effective_date = match effective {
        Some(value) => effective_date(&value).ok_or(EntryProblem::InvalidDate)?,
        None => None,
    };

    Ok(ParsedRecord {
        patient_key: (),
        resource_type,
        resource_id,
        categories,
        codes,
        effective_date,
        content: compact_json(raw.get()),
    })
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The calendar date of a FHIR `date`, `dateTime` or `instant`: `Some(Some(d))`
/// for a full date (the date as written, in its own time zone), `Some(None)` for a
/// valid partial date (`YYYY`, `YYYY-MM`), `None` if it is not a FHIR date at all.
/// The time part after `T` is not checked: only the date is used.
fn effective_date(value: &str) -> Option<Option<NaiveDate>> {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .filter(|s| s.iter().all(u8::is_ascii_digit))
            .and_then(|_| value.get(range))
            .and_then(|s| s.parse::<u32>().ok())
    };
    let year = digits(0..4)?;
    if b.len() == 4 {
        return Some(None);
    }
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(5..7)?;
    if b.len() == 7 {
        return (1..=12).contains(&month).then_some(None);
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(8..10)?;
    if b.len() > 10 && b.get(10) != Some(&b'T') {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    NaiveDate::from_ymd_opt(year, month, day).map(Some)
}

/// `raw` (valid JSON) without the whitespace between tokens; strings, numbers and
/// key order stay exactly as written.
fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[derive(Deserialize)]
struct BundleJson<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(default, borrow)]
    entry: Entries<'a>,
}

/// Bundle entries, of which at most [`MAX_ENTRIES`] + 1 are kept while the rest
/// are only counted, so an oversized bundle cannot grow memory past that.
#[derive(Default)]
struct Entries<'a> {
    kept: Vec<EntryJson<'a>>,
    total: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = Entries<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of bundle entries")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries<'a>, A::Error> {
                let mut entries = Entries::default();
                loop {
                    if entries.total <= MAX_ENTRIES {
                        match seq.next_element::<EntryJson<'a>>()? {
                            Some(entry) => entries.kept.push(entry),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    entries.total += 1;
                }
                Ok(entries)
            }
        }

        deserializer.deserialize_seq(EntriesVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct EntryJson<'a> {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct HeadJson {
    #[serde(rename = "resourceType")]
    resource_type: String,
}

#[derive(Deserialize)]
struct PatientJson {
    id: Option<String>,
    #[serde(default)]
    identifier: Vec<IdentifierJson>,
}

#[derive(Deserialize)]
struct IdentifierJson {
    system: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClinicalJson {
    id: Option<String>,
    #[serde(default)]
    category: Vec<CodeableConceptJson>,
    code: Option<CodeableConceptJson>,
    effective_date_time: Option<String>,
    effective_period: Option<PeriodJson>,
    effective_instant: Option<String>,
    subject: Option<ReferenceJson>,
}

#[derive(Deserialize)]
struct CodeableConceptJson {
    #[serde(default)]
    coding: Vec<CodingJson>,
}

#[derive(Deserialize)]
struct CodingJson {
    system: Option<String>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct PeriodJson {
    start: Option<String>,
}

#[derive(Deserialize)]
struct ReferenceJson {
    reference: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const LAB_V2: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";

    fn patient(identifiers: Value) -> Value {
        json!({"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": {
            "resourceType": "Patient", "id": "11111111-1111-4111-8111-111111111111",
            "name": [{"family": "Testperson", "given": ["Alice"]}],
            "identifier": identifiers}})
    }

    fn ssn(value: &str) -> Value {
        json!({"system": US_SSN_SYSTEM, "value": value})
    }

    fn observation(id: &str, extra: Value) -> Value {
        let mut resource = json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY_SYSTEM, "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "effectiveDateTime": "2019-05-01T10:00:00+02:00",
            "valueQuantity": {"value": 5.10, "unit": "mmol/L"}
        });
        if let (Some(obj), Value::Object(extra)) = (resource.as_object_mut(), extra) {
            obj.extend(extra);
        }
        json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource})
    }

    fn bundle(entries: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .unwrap()
    }

    fn parse(entries: Vec<Value>) -> Result<ParsedBundle, FhirError> {
        parse_bundle(&bundle(entries), US_SSN_SYSTEM)
    }

    fn entry_problem(entries: Vec<Value>) -> EntryProblem {
        match parse(entries) {
            Err(FhirError::Entry { problem, .. }) => problem,
            other => panic!("expected an entry problem, got {other:?}"),
        }
    }

    #[test]
    fn small_bundle() {
        let parsed = parse(vec![
            observation("obs-1", json!({})),
            patient(json!([{"system": "urn:other", "value": "X1"}, ssn("999-12-3456")])),
            json!({"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": {
                "resourceType": "DiagnosticReport",
                "category": [{"coding": [
                    {"system": LAB_V2, "code": "LAB"},
                    {"system": LAB_V2, "code": "LAB"},
                    {"code": "no-system"},
                    {"system": "http://x.org", "code": "has space"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}, {"code": "bare"}]},
                "subject": {"reference": "Patient/11111111-1111-4111-8111-111111111111"},
                "effectivePeriod": {"start": "2018-01-31", "end": "2018-02-01"}}}),
            json!({"resource": {"resourceType": "Encounter", "id": "e1", "code": "not a concept"}}),
            json!({"request": {"method": "DELETE", "url": "Observation/x"}}),
        ])
        .unwrap();
        assert_eq!(parsed.identifier.as_str(), "999123456");
        assert_eq!(parsed.skipped, 2);
        assert_eq!(parsed.records.len(), 2);
        let obs = &parsed.records[0];
        assert_eq!(obs.resource_type, ResourceType::Observation);
        assert_eq!(obs.resource_id.as_str(), "obs-1");
        assert_eq!(obs.categories, vec!["laboratory"]);
        assert_eq!(obs.codes, vec!["http://loinc.org|2339-0"]);
        // The date as written, in its own time zone.
        assert_eq!(obs.effective_date, NaiveDate::from_ymd_opt(2019, 5, 1));
        let report = &parsed.records[1];
        assert_eq!(report.resource_type, ResourceType::DiagnosticReport);
        assert_eq!(
            report.resource_id.as_str(),
            "22222222-2222-4222-8222-222222222222"
        );
        assert_eq!(report.categories, vec![format!("{LAB_V2}|LAB")]);
        assert_eq!(report.codes, vec!["http://loinc.org|58410-2"]);
        assert_eq!(report.effective_date, NaiveDate::from_ymd_opt(2018, 1, 31));
        // Debug shows neither the identifier nor content.
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("999") && !shown.contains("mmol"), "{shown}");
    }

    #[test]
    fn content_keeps_the_original_text() {
        let raw = br#"{"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "1"}]}},
            {"resource": {
                "resourceType" : "Observation",  "id": "o1",
                "note": [{"text": "a  \"quoted\"\t \\ text\n"}],
                "valueQuantity": { "value": 5.10, "unit": "mmol/L" },
                "zz": 1e2, "aa": -0.0
            }}]}"#;
        let parsed = parse_bundle(raw, US_SSN_SYSTEM).unwrap();
        assert_eq!(
            parsed.records[0].content,
            r#"{"resourceType":"Observation","id":"o1","note":[{"text":"a  \"quoted\"\t \\ text\n"}],"valueQuantity":{"value":5.10,"unit":"mmol/L"},"zz":1e2,"aa":-0.0}"#
        );
        assert_eq!(parsed.records[0].effective_date, None);
        assert!(parsed.records[0].categories.is_empty());
    }

    #[test]
    fn effective_dates() {
        for (value, want) in [
            ("2019-05-01", Some(NaiveDate::from_ymd_opt(2019, 5, 1))),
            (
                "2019-05-01T23:59:59Z",
                Some(NaiveDate::from_ymd_opt(2019, 5, 1)),
            ),
            (
                "2020-02-29T00:00:00.123+14:00",
                Some(NaiveDate::from_ymd_opt(2020, 2, 29)),
            ),
            ("2019", Some(None)),
            ("2019-12", Some(None)),
            ("2019-13", None),
            ("2019-02-30", None),
            ("20190501", None),
            ("2019-5-01", None),
            ("2019-05-01 10:00", None),
            ("2019-05-01X", None),
            ("", None),
            ("201", None),
            ("２０１９-05-01", None),
            ("2019-0é-01", None),
        ] {
            assert_eq!(effective_date(value), want, "{value:?}");
        }
        let bad = observation("o1", json!({"effectiveDateTime": "2019-02-30T00:00:00Z"}));
        assert_eq!(
            entry_problem(vec![patient(json!([ssn("1")])), bad]),
            EntryProblem::InvalidDate
        );
        let instant = observation("o1", json!({"effectiveDateTime": null}));
        let mut instant = instant;
        instant["resource"]
            .as_object_mut()
            .unwrap()
            .remove("effectiveDateTime");
        instant["resource"]["effectiveInstant"] = json!("2001-01-02T03:04:05Z");
        let parsed = parse(vec![patient(json!([ssn("1")])), instant]).unwrap();
        assert_eq!(
            parsed.records[0].effective_date,
            NaiveDate::from_ymd_opt(2001, 1, 2)
        );
    }

    #[test]
    fn bundle_level_errors() {
        let limits = |max_bytes, max_entries| Limits {
            max_bytes,
            max_entries,
        };
        assert!(matches!(
            parse_bundle(b"not json", US_SSN_SYSTEM),
            Err(FhirError::Json { line: 1, .. })
        ));
        assert!(matches!(
            parse_bundle(b"[1, 2]", US_SSN_SYSTEM),
            Err(FhirError::Structure { .. })
        ));
        assert_eq!(
            parse_bundle(br#"{"resourceType": "Patient"}"#, US_SSN_SYSTEM).unwrap_err(),
            FhirError::NotABundle
        );
        assert_eq!(
            parse_bundle(br#"{"entry": []}"#, US_SSN_SYSTEM).unwrap_err(),
            FhirError::NotABundle
        );
        assert_eq!(parse(vec![]).unwrap_err(), FhirError::NoPatient);
        assert_eq!(
            parse(vec![observation("o1", json!({}))]).unwrap_err(),
            FhirError::NoPatient
        );
        let json = bundle(vec![patient(json!([ssn("1")])); 4]);
        assert_eq!(
            parse_bundle_with(&json, US_SSN_SYSTEM, limits(usize::MAX, 3)).unwrap_err(),
            FhirError::TooManyEntries { limit: 3 }
        );
        assert_eq!(
            parse_bundle(&json, US_SSN_SYSTEM).unwrap_err(),
            FhirError::SeveralPatients {
                first: 0,
                second: 1
            }
        );
        assert_eq!(
            parse_bundle_with(&json, US_SSN_SYSTEM, limits(10, usize::MAX)).unwrap_err(),
            FhirError::TooLarge { limit: 10 }
        );
        // Deep nesting is a JSON error, not a stack overflow.
        let deep = format!(
            r#"{{"resourceType": "Bundle", "entry": [{{"resource": {}{}}}]}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse_bundle(deep.as_bytes(), US_SSN_SYSTEM).is_err());
        // Over the hard cap: counted, not kept.
        let many = format!(
            r#"{{"resourceType": "Bundle", "entry": [{}{{}}]}}"#,
            "{},".repeat(MAX_ENTRIES + 5)
        );
        assert_eq!(
            parse_bundle(many.as_bytes(), US_SSN_SYSTEM).unwrap_err(),
            FhirError::TooManyEntries { limit: MAX_ENTRIES }
        );
    }

    #[test]
    fn identifier_errors_name_the_system_never_the_patient() {
        let other = json!({"system": "urn:oid:2.16.840.1.113883.4.3.25", "value": "S99912573"});
        let err = parse(vec![patient(json!([other])), observation("o1", json!({}))]).unwrap_err();
        assert_eq!(
            err,
            FhirError::MissingIdentifier {
                system: US_SSN_SYSTEM.into()
            }
        );
        let message = err.to_string();
        assert!(message.contains(US_SSN_SYSTEM), "{message}");
        for secret in ["S99912573", "Testperson", "Alice", "11111111"] {
            assert!(!message.contains(secret), "{message}");
        }
        // A system given without a value is still missing.
        let no_value = json!([{"system": US_SSN_SYSTEM}]);
        assert!(matches!(
            parse(vec![patient(no_value)]),
            Err(FhirError::MissingIdentifier { .. })
        ));
        // A malformed value is refused without being echoed.
        let err = parse(vec![patient(json!([ssn("999_12_3456")]))]).unwrap_err();
        assert!(matches!(err, FhirError::InvalidIdentifier { .. }));
        assert!(!err.to_string().contains("999"), "{err}");
        // The same number spelt twice is fine; two different numbers are not.
        let twice = parse(vec![patient(json!([ssn("999-12-3456"), ssn("999123456")]))]);
        assert_eq!(twice.unwrap().identifier.as_str(), "999123456");
        assert_eq!(
            parse(vec![patient(json!([ssn("1"), ssn("2")]))]).unwrap_err(),
            FhirError::AmbiguousIdentifier {
                system: US_SSN_SYSTEM.into()
            }
        );
        // A configured system is used instead of the SSN.
        let json = bundle(vec![patient(
            json!([ssn("1"), {"system": "urn:x", "value": "ab-7"}]),
        )]);
        assert_eq!(
            parse_bundle(&json, "urn:x").unwrap().identifier.as_str(),
            "AB7"
        );
        // A structural error in the Patient never quotes the value.
        let err = parse(vec![patient(
            json!({"system": US_SSN_SYSTEM, "value": "999-12-3456"}),
        )])
        .unwrap_err();
        assert!(matches!(
            err,
            FhirError::Entry {
                entry: 0,
                problem: EntryProblem::Structure { .. }
            }
        ));
        assert!(!err.to_string().contains("999"), "{err}");
    }

    #[test]
    fn entry_errors() {
        let p = || patient(json!([ssn("1")]));
        let mut no_id = observation("o1", json!({}));
        no_id["resource"].as_object_mut().unwrap().remove("id");
        let mut no_url = no_id.clone();
        no_url.as_object_mut().unwrap().remove("fullUrl");
        assert_eq!(entry_problem(vec![p(), no_url]), EntryProblem::NoId);
        no_id["fullUrl"] = json!("http://example.org/Observation/o1");
        assert_eq!(entry_problem(vec![p(), no_id]), EntryProblem::NoId);
        for bad in ["", "a b", "ü", &"x".repeat(65)] {
            assert_eq!(
                entry_problem(vec![p(), observation(bad, json!({}))]),
                EntryProblem::InvalidId,
                "{bad:?}"
            );
        }
        assert_eq!(
            entry_problem(vec![
                p(),
                observation("o1", json!({})),
                observation("o1", json!({}))
            ]),
            EntryProblem::Duplicate { first: 1 }
        );
        let other = observation(
            "o1",
            json!({"subject": {"reference": "Patient/someone-else"}}),
        );
        assert_eq!(entry_problem(vec![p(), other]), EntryProblem::OtherSubject);
        let mut no_subject = observation("o1", json!({}));
        no_subject["resource"]
            .as_object_mut()
            .unwrap()
            .remove("subject");
        assert_eq!(parse(vec![p(), no_subject]).unwrap().records.len(), 1);
        let secret = "999-12-3456";
        for shape in [
            json!({"category": secret}),
            json!({"code": [secret]}),
            json!({"effectiveDateTime": 20190501}),
            json!({"effectivePeriod": secret}),
            json!({"subject": secret}),
        ] {
            let problem = entry_problem(vec![p(), observation("o1", shape.clone())]);
            assert!(
                matches!(problem, EntryProblem::Structure { .. }),
                "{shape}: {problem:?}"
            );
            assert!(!problem.to_string().contains("999"), "{problem}");
        }
        assert!(matches!(
            entry_problem(vec![p(), json!({"resource": {"id": "x"}})]),
            EntryProblem::Structure { .. }
        ));
        assert!(matches!(
            parse(vec![p(), json!({"resource": "Observation"})]),
            Err(FhirError::Entry {
                entry: 1,
                problem: EntryProblem::Structure { .. }
            })
        ));
        let codings: Vec<Value> = (0..=MAX_CODINGS)
            .map(|i| json!({"system": "http://loinc.org", "code": format!("c{i}")}))
            .collect();
        let many = observation("o1", json!({"code": {"coding": codings}}));
        assert_eq!(entry_problem(vec![p(), many]), EntryProblem::TooManyCodings);
        let codings: Vec<Value> = (0..=MAX_POINTER_TOKENS)
            .map(|i| json!({"system": "http://loinc.org", "code": format!("c{i}")}))
            .collect();
        let many = observation("o1", json!({"code": {"coding": codings}}));
        assert_eq!(entry_problem(vec![p(), many]), EntryProblem::TooManyTokens);
        // Repeats and unnameable codings do not count.
        let mut codings: Vec<Value> = (0..MAX_POINTER_TOKENS)
            .map(|i| json!({"system": "http://loinc.org", "code": format!("c{i}")}))
            .collect();
        codings.push(json!({"system": "http://loinc.org", "code": "c0"}));
        codings.push(json!({"system": "http://loinc.org", "code": "x".repeat(MAX_SCOPE_LEN)}));
        let fits = observation("o1", json!({"code": {"coding": codings}}));
        let parsed = parse(vec![p(), fits]).unwrap();
        assert_eq!(parsed.records[0].codes.len(), MAX_POINTER_TOKENS);
    }

    /// Parses a few real Synthea bundles and checks the result against an
    /// independent walk of the same JSON.
    #[test]
    fn synthea_bundles() {
        let dir = locus_tests::synthea::sample_dir();
        let files = locus_tests::synthea::bundle_files(&dir);
        assert!(
            files.len() >= 3,
            "expected Synthea bundles in {}",
            dir.display()
        );
        for path in files.iter().take(3) {
            let bytes = std::fs::read(path).unwrap();
            let parsed = parse_bundle(&bytes, US_SSN_SYSTEM).unwrap();
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            let entries = value["entry"].as_array().unwrap();
            let resources: Vec<&Value> = entries
                .iter()
                .map(|e| &e["resource"])
                .filter(|r| {
                    matches!(
                        r["resourceType"].as_str(),
                        Some("Observation" | "DiagnosticReport")
                    )
                })
                .collect();
            assert_eq!(parsed.records.len(), resources.len());
            assert_eq!(parsed.skipped, entries.len() - resources.len());
            let patient = entries
                .iter()
                .map(|e| &e["resource"])
                .find(|r| r["resourceType"] == "Patient")
                .unwrap();
            let ssn = patient["identifier"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["system"] == US_SSN_SYSTEM)
                .unwrap()["value"]
                .as_str()
                .unwrap();
            assert_eq!(parsed.identifier.as_str(), ssn.replace('-', ""));
            for (record, resource) in parsed.records.iter().zip(resources) {
                assert_eq!(record.resource_type.as_str(), resource["resourceType"]);
                assert_eq!(
                    record.resource_id.as_str(),
                    resource["id"].as_str().unwrap()
                );
                // Same JSON value, whitespace gone.
                let back: Value = serde_json::from_str(&record.content).unwrap();
                assert_eq!(&back, resource);
                assert_eq!(compact_json(&record.content), record.content);
                let category = &resource["category"][0]["coding"][0];
                let want = if category["system"] == OBSERVATION_CATEGORY_SYSTEM {
                    category["code"].as_str().unwrap().to_owned()
                } else {
                    format!(
                        "{}|{}",
                        category["system"].as_str().unwrap(),
                        category["code"].as_str().unwrap()
                    )
                };
                assert_eq!(record.categories, vec![want]);
                let code = &resource["code"]["coding"][0];
                assert_eq!(
                    record.codes,
                    vec![format!(
                        "{}|{}",
                        code["system"].as_str().unwrap(),
                        code["code"].as_str().unwrap()
                    )]
                );
                let when = resource["effectiveDateTime"].as_str().unwrap();
                assert_eq!(
                    record
                        .effective_date
                        .unwrap()
                        .format("%Y-%m-%d")
                        .to_string(),
                    when[..10]
                );
            }
        }
    }
}

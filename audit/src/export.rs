//! Ledger entries as a FHIR R4 `collection` Bundle of AuditEvent resources.
//! Patients appear only as pseudonyms; each AuditEvent names its ledger leaf so
//! it can be proven against a checkpoint.

use locus_ledger::wire::LoggedEntry;
use locus_protocol::entry::EventKind;
use serde_json::{json, Value};

use crate::events::{text, time_of};

/// The log the entries come from, as the AuditEvents name it.
#[derive(Debug, Clone, Copy)]
pub struct LogSite<'a> {
    /// The checkpoint origin line: the AuditEvents' source site.
    pub origin: &'a str,
    /// The C2SP tlog-tiles base URL: entries are named under `<base>/entries`.
    pub tlog_base_url: &'a str,
}

/// The entries as one Bundle, stamped with the time of export (`exported`).
pub fn audit_event_bundle(
    log: LogSite<'_>,
    entries: &[LoggedEntry],
    exported: chrono::DateTime<chrono::Utc>,
) -> Value {
    let resources: Vec<Value> = entries
        .iter()
        .map(|logged| audit_event(log, logged))
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": exported.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "total": resources.len(),
        "entry": resources.into_iter().map(|r| json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": r,
        })).collect::<Vec<_>>(),
    })
}

/// Locus's own code system of ledger entry types.
const LEDGER_ENTRY_SYSTEM: &str = "https://locus.invalid/fhir/CodeSystem/ledger-entry";

/// An entry that is no DICOM act (or of a type this version does not know).
const LEDGER_ENTRY: (&str, &str, &str) =
    (LEDGER_ENTRY_SYSTEM, "ledger-entry", "Locus ledger entry");

/// DICOM audit event codes (DCM) by entry type: what kind of act each entry is.
fn event_type(kind: Option<EventKind>) -> (&'static str, &'static str, &'static str) {
    const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
    let Some(kind) = kind else {
        return LEDGER_ENTRY;
    };
    match kind {
        EventKind::RecordRetrieved => (DCM, "110106", "Export"),
        EventKind::IndexQueried => (DCM, "110112", "Query"),
        EventKind::AccessRefused => (DCM, "110113", "Security Alert"),
        EventKind::MemberUpdated => (DCM, "110136", "Security Roles Changed"),
        EventKind::DeviceEnrolled | EventKind::DeviceRemoved => {
            (DCM, "110114", "User Authentication")
        }
        EventKind::PointersPublished
        | EventKind::GrantRevoked
        | EventKind::AccessRequested
        | EventKind::AccessDecided
        | EventKind::GrantIssued
        | EventKind::RuleCreated
        | EventKind::RuleRevoked => LEDGER_ENTRY,
    }
}

fn audit_event(log: LogSite<'_>, logged: &LoggedEntry) -> Value {
    let e = &logged.entry;
    let kind = text(e, &["entry", "event", "type"]);
    let known = kind.parse::<EventKind>().ok();
    let (system, code, display) = event_type(known);
    let refused = known == Some(EventKind::AccessRefused);
    let member = |id: String| json!({ "identifier": { "system": "https://locus.invalid/fhir/member", "value": id } });
    let mut agents = vec![json!({
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "datacollector", "display": "data collector" }] },
        "who": member(text(e, &["entry", "submitter"])),
        "requestor": false,
    })];
    let requester = text(e, &["entry", "event", "requester"]);
    if !requester.is_empty() {
        agents.push(json!({
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient" }] },
            "who": member(requester),
            "requestor": true,
        }));
    }
    let mut entities = vec![json!({
        "what": { "identifier": { "system": format!("{}/entries", log.tlog_base_url), "value": logged.index.to_string() } },
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
        "description": format!("ledger leaf {} (hash {})", logged.index, logged.leaf_hash),
    })];
    let subject = text(e, &["entry", "event", "subject"]);
    if !subject.is_empty() {
        entities.push(json!({
            "what": { "identifier": { "system": "https://locus.invalid/fhir/patient-pseudonym", "value": subject } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
        }));
    }
    let grant = text(e, &["entry", "event", "grant"]);
    if !grant.is_empty() {
        entities.push(json!({
            "what": { "identifier": { "system": "https://locus.invalid/fhir/grant", "value": grant } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
            "description": "consent grant",
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("ledger-{}", logged.index),
        "type": { "system": system, "code": code, "display": display },
        "subtype": [{ "system": LEDGER_ENTRY_SYSTEM, "code": kind }],
        "action": if known == Some(EventKind::RecordRetrieved) { "R" } else { "E" },
        "recorded": time_of(logged),
        "outcome": if refused { "4" } else { "0" },
        "agent": agents,
        "source": { "site": log.origin, "observer": member("index".into()) },
        "entity": entities,
    });
    if refused {
        event["outcomeDesc"] = json!(text(e, &["entry", "event", "reason"]));
    }
    let purpose = text(e, &["entry", "event", "purpose"]);
    if !purpose.is_empty() {
        event["purposeOfEvent"] = json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose }] }]);
    }
    event
}

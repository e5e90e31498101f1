//! A grant as a FHIR R4 Consent resource, for systems that speak FHIR.

use locus_protocol::grant::{GrantBasis, GrantClaims};
use serde_json::{json, Value};

fn instant(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map_or_else(String::new, |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The grant's claims as a Consent (scope `patient-privacy`, category
/// `INFAO`, a permit provision for the requester, its purpose, period, data
/// period and SMART scopes). The patient is referenced by pseudonym only.
pub fn consent_resource(claims: &GrantClaims, revoked: bool, now: i64) -> Value {
    let status = if revoked || now >= claims.exp {
        "inactive"
    } else {
        "active"
    };
    let (policy, extension) = match &claims.basis {
        GrantBasis::PatientApproval { request } => {
            ("patient-approval", json!({"request": request}))
        }
        GrantBasis::StandingRule { rule } => ("standing-rule", json!({"rule": rule})),
        GrantBasis::Emergency { reason } => ("emergency", json!({"reason": reason})),
    };
    let mut provision = json!({
        "type": "permit",
        "period": {"start": instant(claims.nbf), "end": instant(claims.exp)},
        "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
            "reference": {"identifier": {"system": "urn:locus:member", "value": claims.aud.to_string()}},
        }],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": claims.purpose.code()}],
        "extension": [{"url": "urn:locus:smart-scope", "valueString": claims.scope.to_string()}],
    });
    if let Some(period) = &claims.data_period {
        provision["dataPeriod"] = json!({"start": period.start, "end": period.end});
    }
    json!({
        "resourceType": "Consent",
        "id": claims.jti.to_string(),
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "INFAO"}]}],
        "patient": {"identifier": {"system": "urn:locus:patient-key", "value": claims.sub.to_string()}},
        "dateTime": instant(claims.iat),
        "organization": [{"identifier": {"system": "urn:locus:member", "value": claims.iss.to_string()}}],
        "policyRule": {"coding": [{"system": "urn:locus:grant-basis", "code": policy}]},
        "extension": [{"url": "urn:locus:grant-basis-detail", "valueString": extension.to_string()}],
        "provision": provision,
    })
}

//! Patients decide, against the running network: a hospital's desk issues an
//! enrolment code, the patient's phone enrols a device key and signs in,
//! hospital B asks for laboratory results, the patient approves a narrower and
//! shorter grant with a device signature, B retrieves exactly that, the patient
//! revokes and B is refused within a second. Refusals: a reused enrolment code,
//! a forged signature, another patient's request, an approval wider than the
//! request, a duration over the maximum. A standing rule grants by itself; an
//! emergency access is flagged and shown to the patient.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_hospital_connector::fhir::US_SSN_SYSTEM;
use locus_hospital_connector::import::import_bundle;
use locus_hospital_connector::requester::ResultError;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_index_service::client::ServiceRefusal;
use locus_protocol::consent::{Approval, Decision, Refusal, StandingRule};
use locus_protocol::grant::DataPeriod;
use locus_protocol::ids::RequestId;
use locus_tests::fhir::three_lab_results;
use locus_tests::http::{get_json, strings};
use locus_tests::network::{TestHospital, TestNetwork};
use locus_tests::phone::{ask, now_ms, post, Phone};
use locus_tests::rules::standing_rule;
use locus_tests::{both_backends, TestDb};
use serde_json::{json, Value};

const LABS: &str = "patient/Observation.rs?category=laboratory";
const LABS_AND_REPORTS: &str =
    "patient/Observation.rs?category=laboratory patient/DiagnosticReport.rs";

both_backends!(patients_decide);

/// `hospital`'s GET of a route of the consent service's members' API.
async fn consent_get(network: &TestNetwork, hospital: &TestHospital, path: &str) -> Value {
    let url = format!("{}{path}", network.consent_service.member_url);
    get_json(&hospital.node.http, url).await
}

/// Expects the custodian to refuse `request` with 403 and `code`.
async fn refused(
    b: &TestHospital,
    a: &TestHospital,
    request: &RetrieveRequest,
    code: &str,
    what: &str,
) {
    match b.node.request_retrieval(&a.url, request).await {
        Err(ResultError::Refused(ServiceRefusal {
            status: 403,
            code: got,
            ..
        })) => assert_eq!(got, code, "{what}"),
        other => panic!("{what}: expected {code}, got {other:?}"),
    }
}

/// The phone's answer is a refusal with `status` and the JSON error `code`.
fn assert_error((got, body): (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
}

async fn patients_decide(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
    let (a, b) = network.hospitals_a_b();
    let (patient, other_patient) = (
        network.patient_key("999-70-0001"),
        network.patient_key("999-70-0002"),
    );
    let bundle = three_lab_results("5c1d2e3f", "999-70-0001");
    import_bundle(&a.node.store, &network.linkage, US_SSN_SYSTEM, &bundle).unwrap();
    a.node.publish_pending().await.unwrap();

    // Enrolment at A's desk, sign-in with the device key.
    let phone = Phone::enrol(&network, a, patient).await;
    let other_phone = Phone::enrol(&network, a, other_patient).await;

    // B asks for a year of laboratory results and reports, for a week.
    let (status, asked) = ask(
        &network,
        b,
        &patient,
        LABS_AND_REPORTS,
        Some(("2024-01-01", "2024-12-31")),
        7 * 86_400,
    )
    .await;
    assert_eq!(
        (status, asked["status"].as_str()),
        (200, Some("pending")),
        "{asked}"
    );
    let request: RequestId = serde_json::from_value(asked["request"].clone()).unwrap();

    // The phone shows it in plain words, with the exact terms to sign.
    let pending = phone.get_ok("/patient/requests").await;
    let summary = pending[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("Test hospital-b asks to see your laboratory test results"),
        "{summary}"
    );
    assert!(
        summary.contains("from 2024-01-01 to 2024-12-31") && summary.contains("7 day(s)"),
        "{summary}"
    );
    assert_eq!(other_phone.get_ok("/patient/requests").await, json!([]));
    let terms = serde_json::from_value(pending[0]["terms"].clone()).unwrap();
    let narrower = |scope: &str, period: (&str, &str), duration: i64| {
        let mut approval = Approval::of(&terms, phone.signer.device_id(), now_ms());
        approval.scope = scope.parse().unwrap();
        approval.data_period = Some(DataPeriod::new(period.0, period.1).unwrap());
        approval.duration_secs = duration;
        Decision::Approve(approval)
    };

    // Refusals: another patient's session, a forged signature, wider terms.
    let approve = narrower(LABS, ("2024-03-01", "2024-03-31"), 86_400);
    let forged = || Some(other_phone.signer.sign(&approve.signing_bytes().unwrap()));
    assert_error(
        other_phone.decide(&approve, forged()).await,
        403,
        "forbidden",
    );
    assert_error(phone.decide(&approve, forged()).await, 401, "bad_signature");
    let wider = narrower(LABS, ("2023-01-01", "2024-03-31"), 86_400);
    assert_error(
        phone.decide(&wider, None).await,
        400,
        "wider_than_requested",
    );
    let longer = narrower(LABS, ("2024-03-01", "2024-03-31"), 8 * 86_400);
    let (status, _) = phone.decide(&longer, None).await;
    assert_eq!(status, 400);

    // The patient approves: only laboratory Observations, only March, one day.
    let (status, decided) = phone.decide(&approve, None).await;
    assert_eq!(status, 200, "{decided}");
    assert_error(phone.decide(&approve, None).await, 409, "already_decided");

    // B collects the grant and retrieves exactly March's laboratory results.
    let status_path = format!("/consent/requests/{request}");
    let collected = consent_get(&network, b, &status_path).await;
    assert_eq!(collected["status"], "approved");
    let grant = collected["grant"].as_str().unwrap().to_owned();
    let discovery = collected["discovery"].as_str().unwrap().to_owned();
    // The index is shown only the discovery token: no scopes, codes or dates.
    let shown = URL_SAFE_NO_PAD
        .decode(discovery.split('.').nth(1).unwrap())
        .unwrap();
    let shown = String::from_utf8(shown).unwrap();
    assert!(
        !shown.contains("scope\"") && !shown.contains("laboratory") && !shown.contains("2024"),
        "{shown}"
    );
    let report = b.node.fetch_under_grant(&grant, &discovery).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.received.len(), 2, "the two March results, not May's");
    // Outside the approval, B is refused: a May result (found under a wider
    // grant) presented with the March-only grant.
    let (_, wide) = network.grant(b, &patient, LABS, None);
    let march = b.node.index.discover(&discovery).await.unwrap().pointers;
    let all = b
        .node
        .index
        .discover(&network.discovery(&wide))
        .await
        .unwrap()
        .pointers;
    let may = all
        .iter()
        .find(|p| !march.iter().any(|m| m.pointer_id == p.pointer_id))
        .unwrap();
    let outside = RetrieveRequest {
        grant: Some(grant.clone()),
        pointer_id: may.pointer_id,
        sealed: may.sealed.clone(),
    };
    refused(
        b,
        a,
        &outside,
        "out_of_date_range",
        "a result outside the approval",
    )
    .await;

    // A cannot collect B's grant.
    let status_url = format!("{}{status_path}", network.consent_service.member_url);
    assert_eq!(
        a.node.http.get(&status_url).send().await.unwrap().status(),
        404
    );

    // A duration over the maximum is refused at request time.
    let (status, _) = ask(&network, b, &patient, LABS, None, 365 * 86_400).await;
    assert_eq!(status, 400);

    // A request the patient refuses gets no grant.
    let (_, asked) = ask(&network, b, &patient, LABS, None, 3600).await;
    let refused_request: RequestId = serde_json::from_value(asked["request"].clone()).unwrap();
    let refusal = Decision::Refuse(Refusal {
        request: refused_request,
        subject: patient,
        device: phone.signer.device_id(),
        signed_at_ms: now_ms(),
    });
    assert_eq!(phone.decide(&refusal, None).await.0, 200);
    let refused_status =
        consent_get(&network, b, &format!("/consent/requests/{refused_request}")).await;
    assert_eq!(refused_status["status"], "refused");
    assert!(refused_status.get("grant").is_none());

    // Revocation: B is refused at the index and at A within a second.
    let grant_id = decided["grant"].as_str().unwrap();
    let revocation = phone.revocation(grant_id.parse().unwrap());
    let discovered = b.node.index.discover(&discovery).await.unwrap().pointers;
    let revoked_at = Instant::now();
    let (status, _) = phone.post("/patient/revocations", revocation).await;
    assert_eq!(status, 200);
    let request = RetrieveRequest {
        grant: Some(grant.clone()),
        pointer_id: discovered[0].pointer_id,
        sealed: discovered[0].sealed.clone(),
    };
    loop {
        let at_index = b.node.index.discover(&discovery).await;
        let at_custodian = b.node.request_retrieval(&a.url, &request).await;
        if at_index.is_err() && at_custodian.is_err() {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "revocation took effect everywhere within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "revocation took effect everywhere after {:?}",
        revoked_at.elapsed()
    );

    // A standing rule grants by itself: any hospital, laboratory results, 1 day.
    let rule = StandingRule {
        grant_duration_secs: 86_400,
        ..standing_rule(patient, phone.signer.device_id(), LABS)
    };
    let (status, body) = phone.post("/patient/rules", phone.rule_body(&rule)).await;
    assert_eq!(status, 200, "{body}");
    let (status, auto) = ask(&network, b, &patient, LABS, None, 3600).await;
    assert_eq!(
        (status, auto["status"].as_str()),
        (200, Some("approved")),
        "{auto}"
    );
    let report = b
        .node
        .fetch_under_grant(
            auto["grant"].as_str().unwrap(),
            auto["discovery"].as_str().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        report.received.len(),
        3,
        "the rule allows every laboratory result"
    );

    // Emergency access: granted without the patient, flagged, shown to them.
    let emergency_url = format!("{}/consent/emergency", network.consent_service.member_url);
    let emergency = |reason: &str, duration_secs: i64| {
        let body = json!({ "subject": patient, "scope": LABS, "reason": reason, "duration_secs": duration_secs });
        post(&b.node.http, emergency_url.clone(), body, None)
    };
    let (status, granted) = emergency("unconscious on arrival", 4 * 3600).await;
    assert_eq!(status, 200, "{granted}");
    let (status, _) = emergency("too long", 30 * 86_400).await;
    assert_eq!(status, 400);
    let grants = phone.get_ok("/patient/grants").await;
    let flagged: Vec<&Value> = grants
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["emergency"] == true)
        .collect();
    assert_eq!(flagged.len(), 1);
    assert!(flagged[0]["summary"]
        .as_str()
        .unwrap()
        .contains("EMERGENCY ACCESS"));
    assert!(grants
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["revoked"] == true));

    // The patient's access history: newest first, in words, including the
    // emergency access and B's retrievals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let history = phone.get_ok("/patient/history").await;
    let texts = strings(&history, "text");
    assert!(
        texts[0].contains("EMERGENCY ACCESS was given to Test hospital-b"),
        "{texts:?}"
    );
    assert!(texts
        .iter()
        .any(|t| t.contains("Test hospital-b received one of your records from Test hospital-a")));
    assert!(texts
        .iter()
        .any(|t| t.contains("You approved access for Test hospital-b")));
    let indexes: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(indexes.windows(2).all(|w| w[0] > w[1]), "newest first");

    // The grant as a FHIR R4 Consent, for its requester and for the patient.
    let fhir = consent_get(&network, b, &format!("/consent/grants/{grant_id}/fhir")).await;
    assert_eq!(fhir["resourceType"], "Consent");
    assert_eq!(
        fhir["status"], "inactive",
        "a revoked grant is no longer active"
    );
    assert_eq!(fhir["provision"]["purpose"][0]["code"], "TREAT");
    assert_eq!(fhir["provision"]["dataPeriod"]["start"], "2024-03-01");
    assert_eq!(
        phone
            .get_ok(&format!("/patient/grants/{grant_id}/fhir"))
            .await["id"],
        grant_id
    );

    // A second device, then removed: it can no longer sign in.
    let second = Phone::enrol(&network, a, patient).await;
    assert_eq!(phone.remove_device(&second.device()).await.0, 200);
    let (status, _) = post(
        &second.client,
        format!("{}/patient/challenge", second.base),
        json!({ "device": second.signer.device_id() }),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Grant tokens that must not work, presented to the custodian.
    let discovered = b
        .node
        .index
        .discover(auto["discovery"].as_str().unwrap())
        .await
        .unwrap()
        .pointers;
    let retrieve = |token: String| RetrieveRequest {
        grant: Some(token),
        pointer_id: discovered[0].pointer_id,
        sealed: discovered[0].sealed.clone(),
    };
    let real = auto["grant"].as_str().unwrap();
    let payload = real.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let hs256 = {
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#,
            network.consent.key.key_id()
        ));
        network.hs256_forgery(&header, payload)
    };
    let (unknown_key, _) = {
        let mut impostor = locus_tests::index::TestMember::new("consent");
        impostor.key = locus_protocol::signing::SigningKey::generate();
        let claims: locus_protocol::grant::GrantClaims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        (
            locus_protocol::grant_token::encode_grant(&claims, &impostor.key).unwrap(),
            (),
        )
    };
    for (name, token) in [
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("a key not in the directory", unknown_key),
    ] {
        refused(b, a, &retrieve(token), "invalid_grant", name).await;
    }

    // A grant expires by itself.
    let (_, short) = ask(&network, b, &patient, LABS, None, 2).await;
    let short_request: RequestId = serde_json::from_value(short["request"].clone()).unwrap();
    let short_status =
        consent_get(&network, b, &format!("/consent/requests/{short_request}")).await;
    // The standing rule already granted it (for at most 2 seconds).
    let short_grant = short_status["grant"].as_str().unwrap().to_owned();
    network.clock.advance(Duration::from_secs(3));
    refused(b, a, &retrieve(short_grant), "expired", "an expired grant").await;

    // A regulator, from the ledger alone: every grant is backed by the
    // patient's device signature, a rule the patient signed, or an emergency flag,
    // and every access happened under a grant logged before it. The one
    // exception is this test's own: the wider grant it signed with the consent
    // key to find a May result was never logged, and its discovery is named.
    // The newest checkpoint covers the last entries within its interval.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = network.grant_audit(0).await;
    let [finding] = audit.findings.as_slice() else {
        panic!(
            "expected one finding, the unlogged test grant: {:?}",
            audit.findings
        )
    };
    assert_eq!(finding.grant, Some(wide.jti), "{finding:?}");
    assert_eq!(
        finding.problem,
        "index.queried under a grant never issued before it"
    );
    assert_eq!(audit.backed_by_approval, 1);
    assert_eq!(audit.backed_by_rule, 2);
    assert_eq!(audit.emergency_grants.len(), 1);
    assert_eq!(audit.grants_checked, 4);

    network.stop().await;
}

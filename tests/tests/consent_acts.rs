//! The consent service's acts under hostile and concurrent input, against the
//! running network: each act is validated fully before it is logged, applied
//! exactly once however often or concurrently it is sent, and an act left
//! half done (reserved, or logged but not applied) is finished on restart so
//! that the ledger and the store agree. A removed device is dead at once;
//! sign-in challenges are bounded; rules are listed and revoked.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_consent::store::{Act, Change, ConsentStore, Device};
use locus_ledger::store::LedgerStore;
use locus_platform::db::{connect, DatabaseUrl};
use locus_protocol::consent::{Approval, Decision, StandingRule};
use locus_protocol::directory::MemberStatus;
use locus_protocol::entry::{DeviceEnrolled, Entry, Event, SignedEntry};
use locus_protocol::grant::PurposeOfUse;
use locus_protocol::ids::RuleId;
use locus_tests::http::strings;
use locus_tests::network::{TestHospital, TestNetwork};
use locus_tests::phone::{ask, enrolment_code, now_ms, post, Phone};
use locus_tests::rules::standing_rule;
use locus_tests::{both_backends, TestDb};
use serde_json::{json, Value};

const LABS: &str = "patient/Observation.rs?category=laboratory";

both_backends!(acts_are_validated_logged_once_and_recovered);

/// The ledger's entries of `kind`, read from its own store (so entries not
/// yet under a checkpoint count too).
fn logged(ledger: &LedgerStore, kind: &str) -> Vec<Value> {
    ledger
        .entry_bodies_of_type(kind.parse().unwrap())
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

fn count(ledger: &LedgerStore, kind: &str) -> usize {
    logged(ledger, kind).len()
}

/// The pending request `id` as the phone sees it, approved as asked.
async fn approval_of(phone: &Phone, id: &str) -> Decision {
    let pending = phone.get_ok("/patient/requests").await;
    let request = pending
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["request"] == id)
        .unwrap();
    let terms = serde_json::from_value(request["terms"].clone()).unwrap();
    Decision::Approve(Approval::of(&terms, phone.device(), now_ms()))
}

fn rule_of(phone: &Phone, id: RuleId) -> StandingRule {
    StandingRule {
        rule: id,
        purposes: vec![PurposeOfUse::EmergencyTreatment],
        ..standing_rule(phone.subject, phone.device(), LABS)
    }
}

/// The authority sets `hospital`'s status, and the consent service's
/// directory is refreshed so that its next act sees it.
async fn set_status_seen_by_consent(
    network: &TestNetwork,
    hospital: &TestHospital,
    status: MemberStatus,
) {
    network.set_status(hospital, status).await;
    let directory = &network.consent_service.state.directory;
    directory.refresh().await.unwrap();
}

fn error(body: &Value) -> &str {
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"].as_str().unwrap_or_default()
}

async fn acts_are_validated_logged_once_and_recovered(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
    let (a, b) = network.hospitals_a_b();
    let ledger = LedgerStore::open(
        connect(&DatabaseUrl::parse(network.index_db.url()).unwrap(), 2).unwrap(),
    )
    .unwrap();
    let consent_store = ConsentStore::open(
        connect(
            &DatabaseUrl::parse(network.consent_service.database_url()).unwrap(),
            2,
        )
        .unwrap(),
    )
    .unwrap();
    let (patient, other) = (
        network.patient_key("999-71-0001"),
        network.patient_key("999-71-0002"),
    );
    let phone = Phone::enrol(&network, a, patient).await;
    let mut other_phone = Phone::enrol(&network, a, other).await;

    // ---- 6. device.enrolled names the desk that issued the code; the patient is told.
    let enrolled = logged(&ledger, "device.enrolled");
    assert!(
        enrolled
            .iter()
            .all(|e| e["entry"]["event"]["code_issuer"] == "hospital-a"),
        "{enrolled:?}"
    );
    let history = phone.get_ok("/patient/history").await;
    let texts = strings(&history, "text");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("with a code from Test hospital-a")),
        "{texts:?}"
    );

    // ---- 1. An unissuable request is refused when it is filed, and not logged:
    // four scopes over sixty months make a grant token too large.
    let requested = count(&ledger, "access.requested");
    let wide =
        "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs \
                patient/DiagnosticReport.rs patient/Observation.rs?code=http://loinc.org|2339-0";
    let (status, body) = ask(
        &network,
        b,
        &patient,
        wide,
        Some(("2020-01-01", "2024-12-31")),
        3600,
    )
    .await;
    assert_eq!((status, error(&body)), (400, "bad_request"), "{body}");
    assert_eq!(
        count(&ledger, "access.requested"),
        requested,
        "an unissuable request is not logged"
    );

    // ---- 1. An approval of a request whose requester was suspended meanwhile
    // is refused before anything is logged.
    let (status, asked) = ask(&network, b, &patient, LABS, None, 3600).await;
    assert_eq!(status, 200, "{asked}");
    let request_id = asked["request"].as_str().unwrap().to_owned();
    let approve = approval_of(&phone, &request_id).await;
    set_status_seen_by_consent(&network, b, MemberStatus::Suspended).await;
    let decided = count(&ledger, "access.decided");
    let (status, body) = phone.decide(&approve, None).await;
    assert_eq!((status, error(&body)), (403, "forbidden"), "{body}");
    assert_eq!(
        count(&ledger, "access.decided"),
        decided,
        "a refused approval is not logged"
    );
    set_status_seen_by_consent(&network, b, MemberStatus::Active).await;

    // ---- 2. The same signed approval six times at once: one decision, one grant.
    let issued = count(&ledger, "grant.issued");
    let sends = (0..6).map(|_| phone.decide(&approve, None));
    let answers = futures::future::join_all(sends).await;
    let ok: Vec<&(u16, Value)> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 200 || (*s == 409 && !error(b).is_empty())),
        "{answers:?}"
    );
    assert_eq!(count(&ledger, "access.decided"), decided + 1);
    assert_eq!(count(&ledger, "grant.issued"), issued + 1);
    // And once more, later.
    let (status, body) = phone.decide(&approve, None).await;
    assert_eq!((status, error(&body)), (409, "already_decided"));
    assert_eq!(count(&ledger, "access.decided"), decided + 1);
    let grant = ok[0].1["grant"].as_str().unwrap().parse().unwrap();

    // A replayed revocation is refused and logs nothing more; so are three at once.
    let revocation = phone.revocation(grant);
    let revoked = count(&ledger, "grant.revoked");
    let sends = (0..3).map(|_| phone.post("/patient/revocations", revocation.clone()));
    let answers = futures::future::join_all(sends).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{answers:?}"
    );
    let (status, body) = phone.post("/patient/revocations", revocation).await;
    assert_eq!((status, error(&body)), (409, "conflict"), "{body}");
    assert_eq!(count(&ledger, "grant.revoked"), revoked + 1);

    // ---- 1, 2. Rules: an id already taken, a replay, and three at once.
    let rule = rule_of(&phone, RuleId::new_random());
    let created = count(&ledger, "rule.created");
    let sends = (0..3).map(|_| phone.post("/patient/rules", phone.rule_body(&rule)));
    let answers = futures::future::join_all(sends).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{answers:?}"
    );
    let (status, body) = phone.post("/patient/rules", phone.rule_body(&rule)).await;
    assert_eq!((status, error(&body)), (409, "conflict"), "{body}");
    // Another patient's rule under the same id (ids are public on the ledger).
    let stolen = rule_of(&other_phone, rule.rule);
    let (status, body) = other_phone
        .post("/patient/rules", other_phone.rule_body(&stolen))
        .await;
    assert_eq!((status, error(&body)), (409, "conflict"), "{body}");
    assert_eq!(count(&ledger, "rule.created"), created + 1);

    // ---- 8. Rules are listed and revoked; matching stops at once.
    let rules = phone.get_ok("/patient/rules").await;
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    assert!(
        rules[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Any hospital may see your laboratory"),
        "{rules}"
    );
    let emergency_request = || {
        post(
            &b.node.http,
            format!("{}/consent/requests", network.consent_service.member_url),
            json!({ "subject": patient, "purpose": "ETREAT", "scope": LABS, "duration_secs": 600 }),
            None,
        )
    };
    let (status, auto) = emergency_request().await;
    assert_eq!(
        (status, auto["status"].as_str()),
        (200, Some("approved")),
        "{auto}"
    );
    let (status, body) = other_phone
        .post(
            "/patient/rule-revocations",
            other_phone.rule_revocation(rule.rule),
        )
        .await;
    assert_eq!(
        (status, error(&body)),
        (404, "not_found"),
        "another patient's rule: {body}"
    );
    let revocation = phone.rule_revocation(rule.rule);
    let (status, body) = phone
        .post("/patient/rule-revocations", revocation.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&ledger, "rule.revoked"), 1);
    let (status, asked) = emergency_request().await;
    assert_eq!(
        (status, asked["status"].as_str()),
        (200, Some("pending")),
        "the revoked rule no longer grants: {asked}"
    );
    let (status, body) = phone.post("/patient/rule-revocations", revocation).await;
    assert_eq!((status, error(&body)), (409, "conflict"), "{body}");
    assert_eq!(count(&ledger, "rule.revoked"), 1);
    assert_eq!(phone.get_ok("/patient/rules").await, json!([]));

    // ---- 1, 2. Enrolment: a removed key, and a key of another patient's, are
    // refused before logging, and the code stays good.
    let second = Phone::enrol(&network, a, patient).await;
    assert_eq!(phone.remove_device(&second.device()).await.0, 200);
    let enrolled = count(&ledger, "device.enrolled");
    let code = enrolment_code(&network, a, &patient).await;
    let (status, body) = second.redeem(&code).await;
    assert_eq!(
        (status, error(&body)),
        (409, "conflict"),
        "a removed key: {body}"
    );
    let (status, body) = other_phone.redeem(&code).await;
    assert_eq!(
        (status, error(&body)),
        (409, "conflict"),
        "another patient's key: {body}"
    );
    assert_eq!(count(&ledger, "device.enrolled"), enrolled);
    let third = Phone::new(&network, patient);
    let (status, body) = third.redeem(&code).await;
    assert_eq!(
        status, 200,
        "the code was not used up by the refusals: {body}"
    );
    assert_eq!(count(&ledger, "device.enrolled"), enrolled + 1);
    // Three phones at once with one code: one device.
    let code = enrolment_code(&network, a, &patient).await;
    let racers: Vec<Phone> = (0..3).map(|_| Phone::new(&network, patient)).collect();
    let answers = futures::future::join_all(racers.iter().map(|p| p.redeem(&code))).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(count(&ledger, "device.enrolled"), enrolled + 2);

    // ---- 3. A removed device is dead at once: its session reads nothing and
    // removes nothing.
    let mut stolen = Phone::enrol(&network, a, patient).await;
    assert_eq!(stolen.get("/patient/grants").await.0, 200);
    assert_eq!(phone.remove_device(&stolen.device()).await.0, 200);
    for path in [
        "/patient/history",
        "/patient/grants",
        "/patient/requests",
        "/patient/rules",
    ] {
        let (status, body) = stolen.get(path).await;
        assert_eq!((status, error(&body)), (401, "unauthenticated"), "{path}");
    }
    let removed = count(&ledger, "device.removed");
    let (status, _) = stolen.remove_device(&phone.device()).await;
    assert_eq!(status, 401);
    assert_eq!(count(&ledger, "device.removed"), removed);
    assert_eq!(
        phone.get("/patient/grants").await.0,
        200,
        "the patient's own phone still works"
    );
    let (status, _) = stolen.sign_in().await;
    assert_eq!(status, 404, "a removed device gets no challenge");

    // ---- 3. Challenges: bounded outstanding per device, rate-limited.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(phone.challenge().await.0);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429, 429],
        "five open challenges at most"
    );
    let burst = futures::future::join_all((0..300).map(|_| other_phone.challenge())).await;
    let answered = burst.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        answered <= 10,
        "{answered} of 300 anonymous challenges answered"
    );
    assert!(burst
        .iter()
        .all(|(s, b)| *s == 200 || (*s == 429 && error(b) == "too_many_requests")));
    let (status, _) = other_phone.sign_in().await;
    assert_eq!(status, 429, "sign-in is limited too");

    // ---- 1. Recovery: acts left half done by a crash are finished on
    // restart, once. (a) Reserved, never logged. (b) Logged, not applied.
    // (c) Reserved so long ago that the ledger's clock window has passed.
    let consent = &network.consent_service.state;
    let half_done = |device: &Phone, code: &str, time_ms: i64| {
        let event = Event::DeviceEnrolled(DeviceEnrolled {
            subject: patient,
            device: device.device(),
            key: device.signer.public_jwk(),
            code_issuer: "hospital-a".parse().unwrap(),
        });
        let entry = Entry::new(
            network.consent.id.clone(),
            network.consent.key.key_id(),
            time_ms,
            event,
        );
        let signed = SignedEntry::sign(entry, &network.consent.key).unwrap();
        let row = Device {
            device_id: device.device(),
            patient_key: patient,
            public_jwk: serde_json::to_string(&device.signer.public_jwk()).unwrap(),
            enrolled_at: time_ms,
            removed_at: None,
            code_issuer: "hospital-a".parse().unwrap(),
        };
        let act = Act {
            entries: vec![String::from_utf8(signed.canonical_bytes().to_vec()).unwrap()],
            change: Change::Enrol {
                device: row,
                code_hash: ConsentStore::code_hash_hex(code),
            },
        };
        (signed, act)
    };
    let enrolled = count(&ledger, "device.enrolled");
    let phones: Vec<Phone> = (0..3).map(|_| Phone::new(&network, patient)).collect();
    let mut signed_entries = Vec::new();
    for (i, device) in phones.iter().enumerate() {
        let code = enrolment_code(&network, a, &patient).await;
        let time = if i == 2 {
            now_ms() - 10 * 60 * 1000
        } else {
            now_ms()
        };
        let (signed, act) = half_done(device, &code, time);
        assert_eq!(
            consent_store
                .reserve(&format!("device:{}", device.device()), &act, time)
                .unwrap(),
            Ok(())
        );
        signed_entries.push(signed);
    }
    consent.ledger.submit(&signed_entries[1]).await.unwrap();
    assert_eq!(consent.finish_pending().await.unwrap(), 0);
    assert!(consent_store.pending_acts().unwrap().is_empty());
    assert_eq!(
        count(&ledger, "device.enrolled"),
        enrolled + 3,
        "each logged once"
    );
    for device in &phones {
        assert!(
            consent_store.device(&device.device()).unwrap().is_some(),
            "applied"
        );
        let mine = logged(&ledger, "device.enrolled")
            .iter()
            .filter(|e| e["entry"]["event"]["device"] == json!(device.device()))
            .count();
        assert_eq!(mine, 1);
    }
    // Finishing again does nothing.
    assert_eq!(consent.finish_pending().await.unwrap(), 0);
    assert_eq!(count(&ledger, "device.enrolled"), enrolled + 3);

    // The regulator's check still holds on everything above.
    let audit = network.grant_audit(ledger.tree_size().unwrap()).await;
    assert!(audit.findings.is_empty(), "{:?}", audit.findings);

    network.stop().await;
}

//! The record path across real services on loopback, over mutual TLS: the
//! index with its ledger and three hospital connectors, each on its own fresh
//! database. The 41 Synthea patients are split so that each patient's
//! encounters are divided between hospitals A and B. B, under a grant for one
//! patient's laboratory results over a date range, discovers and retrieves
//! exactly what A holds in that range and verifies each result. Then every way
//! a retrieval can be refused is tried: each refusal is clear, releases
//! nothing, and is on the ledger. Finally no identifier, name or LOINC code is
//! found in the index database, the ledger or the logs.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use locus_hospital_connector::import::import_paths;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_index_service::api::DiscoveredPointer;
use locus_index_service::client::{IndexClientError, ServiceRefusal};
use locus_protocol::directory::MemberStatus;
use locus_protocol::ids::PatientKey;
use locus_tests::network::{assert_refused, TestHospital, TestNetwork};
use locus_tests::synthea::{self, lab_results, split_by_encounter, SplitPatient};
use locus_tests::{both_backends, logs, TestDb};

const LABS: &str = "patient/Observation.rs?category=laboratory \
    patient/DiagnosticReport.rs?category=http://terminology.hl7.org/CodeSystem/v2-0074|LAB";

both_backends!(lab_results_cross_hospitals);

async fn refused_with(
    hospital: &TestHospital,
    to: &TestHospital,
    request: &RetrieveRequest,
    status: u16,
    code: &str,
) {
    let result = hospital.node.request_retrieval(&to.url, request).await;
    assert_refused(result, status, code, "a retrieval");
}

/// Waits until the ledger shows an `access.refused` entry with `reason` that
/// matches `query` (`grant=...` or `submitter=...`).
async fn refusal_logged(network: &TestNetwork, query: &str, reason: &str) {
    for _ in 0..100 {
        let page = network
            .ledger_entries(&format!("type=access.refused&{query}&limit=1000"))
            .await;
        if page
            .entries
            .iter()
            .any(|e| e.entry["entry"]["event"]["reason"] == reason)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no access.refused entry with reason {reason} for {query}");
}

async fn nothing_retrieved_under(network: &TestNetwork, grant: &str) {
    let page = network
        .ledger_entries(&format!("type=record.retrieved&grant={grant}"))
        .await;
    assert!(
        page.entries.is_empty(),
        "a refused grant has a retrieval on the ledger"
    );
}

fn key_of(network: &TestNetwork, patient: &SplitPatient) -> PatientKey {
    network.patient_key(&patient.ssn)
}

async fn lab_results_cross_hospitals(db: TestDb) {
    logs::capture();
    let sample = synthea::sample_dir();
    let backend = db.backend();
    drop(db);
    let started = std::time::Instant::now();
    let phase = |name: &str| eprintln!("[{:>6.1}s] {name}", started.elapsed().as_secs_f64());
    let network = TestNetwork::start(backend, &["hospital-a", "hospital-b", "hospital-c"]).await;
    phase("network up");
    let (a, b, c) = (
        network.hospital("hospital-a"),
        network.hospital("hospital-b"),
        network.hospital("hospital-c"),
    );

    // Each patient's encounters divided between A and B; both import and publish.
    let split = tempfile::tempdir().unwrap();
    let patients = split_by_encounter(&sample, split.path(), 2);
    assert_eq!(patients.len(), 41);
    for (h, hospital) in [a, b].into_iter().enumerate() {
        let store = hospital.node.store.clone();
        let linkage =
            locus_platform::files::load_linkage_key(&hospital.config.linkage_key_file).unwrap();
        let system = hospital.node.identifier_system.clone();
        let folder = split.path().join(format!("h{h}"));
        tokio::task::spawn_blocking(move || {
            import_paths(&store, &linkage, &system, &[folder], &|_| {})
        })
        .await
        .unwrap()
        .unwrap();
        phase("imported");
        assert!(hospital.node.publish_pending().await.unwrap() > 0);
        phase("published");
        assert_eq!(
            hospital.node.publish_pending().await.unwrap(),
            0,
            "publishing is done once"
        );
    }

    // A patient's laboratory results at A over the twelve whole months (what
    // the index can match) ending with the latest: the patient for whom that
    // window holds the most results while leaving some out.
    type Window = (String, String, Vec<(String, String)>);
    let window = |labs: &[synthea::LabResult]| -> Option<Window> {
        let latest = labs.iter().map(|l| l.date.as_str()).max()?;
        let end = last_day_of_month(latest);
        let first =
            chrono::NaiveDate::parse_from_str(&format!("{}-01", &latest[..7]), "%Y-%m-%d").unwrap();
        let start = first
            .checked_sub_months(chrono::Months::new(11))
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        let inside: Vec<(String, String)> = labs
            .iter()
            .filter(|l| start.as_str() <= l.date.as_str() && l.date.as_str() <= end.as_str())
            .map(|l| (l.resource_type.clone(), l.id.clone()))
            .collect();
        (inside.len() < labs.len()).then_some((start, end, inside))
    };
    let (patient, (start, end, expected)) = patients
        .iter()
        .filter(|p| !lab_results(&p.files[1]).is_empty())
        .filter_map(|p| Some((p, window(&lab_results(&p.files[0]))?)))
        .max_by_key(|(_, (_, _, inside))| inside.len())
        .unwrap();
    assert!(
        expected.len() >= 2,
        "the sample has a patient with results at A in a year"
    );
    let (start, end) = (start.as_str(), end.as_str());
    assert!(
        !lab_results(&patient.files[1]).is_empty(),
        "B holds some of the patient's results too"
    );
    let key = key_of(&network, patient);

    phase("patient chosen");
    // B fetches under the grant: exactly A's results in range, each verified.
    let (grant, claims) = network.grant(b, &key, LABS, Some((start, end)));
    let discovery = network.discovery(&claims);
    let report = b.node.fetch_under_grant(&grant, &discovery).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let store = b.node.store.clone();
    let received = tokio::task::spawn_blocking(move || store.received_for_patient(&key))
        .await
        .unwrap()
        .unwrap();
    let mut got: Vec<(String, String)> = received
        .iter()
        .map(|r| {
            (
                r.resource_type.as_str().to_owned(),
                r.resource_id.as_str().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(
        got, want,
        "B received exactly A's laboratory results in range"
    );
    for result in &received {
        assert_eq!(result.custodian, a.id);
        let original = a
            .node
            .store
            .get(result.resource_type, &result.resource_id)
            .unwrap()
            .unwrap();
        assert_eq!(
            result.content, original.content,
            "the content is A's, byte for byte"
        );
        assert_eq!(result.commitment, original.commitment);
        assert!(result.provenance.contains("\"sig\""));
    }
    let logged = network
        .ledger_entries(&format!("type=record.retrieved&grant={}", claims.jti))
        .await;
    assert_eq!(
        logged.entries.len(),
        expected.len(),
        "one retrieval entry per released record"
    );

    // Pointers B may hold for the refusal cases: found under its grant.
    let discovered: Vec<DiscoveredPointer> = b
        .node
        .index
        .discover(&discovery)
        .await
        .unwrap()
        .pointers
        .into_iter()
        .filter(|p| p.custodian == a.id)
        .collect();
    let pointer = discovered[0].clone();
    phase("fetched and checked");
    let request = |grant: Option<&str>, pointer: &DiscoveredPointer| RetrieveRequest {
        grant: grant.map(str::to_owned),
        pointer_id: pointer.pointer_id,
        sealed: pointer.sealed.clone(),
    };
    let received_count = received.len();

    // The request for the pointer under `grant`.
    let with = |grant: &str| request(Some(grant), &pointer);
    // A grant for another patient, presented with this patient's pointer.
    let other = patients
        .iter()
        .find(|p| key_of(&network, p) != key)
        .unwrap();
    let (wrong_patient, wrong_patient_claims) =
        network.grant(b, &key_of(&network, other), LABS, None);
    // A category outside the grant's scope.
    let (vitals, vitals_claims) =
        network.grant(b, &key, "patient/Observation.rs?category=vital-signs", None);
    // A code outside the grant's scope.
    let (code_only, code_only_claims) = network.grant(
        b,
        &key,
        "patient/Observation.rs?code=http://loinc.org|0000-0",
        None,
    );
    // A date outside the grant's range.
    let (old_range, old_range_claims) =
        network.grant(b, &key, LABS, Some(("1900-01-01", "1900-12-31")));
    // An expired grant.
    let (expired, _) = network.grant_with(b, &key, LABS, None, |c| {
        c.iat -= 7200;
        c.nbf -= 7200;
        c.exp = c.iat + 3600;
    });
    // A grant bound to another certificate than the one B presents.
    let (misbound, misbound_claims) = network.grant_with(b, &key, LABS, None, |c| {
        c.cnf = network.hospital("hospital-c").certificate.clone()
    });
    // A tampered sealed pointer.
    let mut tampered = pointer.clone();
    let mut sealed = base64_decode(&tampered.sealed);
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    tampered.sealed = base64_encode(&sealed);

    // Each refused with 403 and its code, and the refusal logged by A, found
    // under the grant's id or among A's entries.
    let under = |jti: &dyn std::fmt::Display| format!("grant={jti}");
    let by_a = || "submitter=hospital-a".to_owned();
    let cases: Vec<(&TestHospital, RetrieveRequest, &str, String)> = vec![
        // No grant.
        (b, request(None, &pointer), "no_grant", by_a()),
        (
            b,
            with(&wrong_patient),
            "wrong_patient",
            under(&wrong_patient_claims.jti),
        ),
        (b, with(&vitals), "out_of_scope", under(&vitals_claims.jti)),
        (
            b,
            with(&code_only),
            "out_of_scope",
            under(&code_only_claims.jti),
        ),
        (
            b,
            with(&old_range),
            "out_of_date_range",
            under(&old_range_claims.jti),
        ),
        (b, with(&expired), "expired", by_a()),
        // B's grant presented by another hospital (C, with its own certificate).
        (c, with(&grant), "invalid_grant", by_a()),
        (
            b,
            with(&misbound),
            "certificate_mismatch",
            under(&misbound_claims.jti),
        ),
        (
            b,
            request(Some(&grant), &tampered),
            "tampered_pointer",
            under(&claims_of(&grant)),
        ),
    ];
    for (presenter, request, code, logged_under) in cases {
        refused_with(presenter, a, &request, 403, code).await;
        refusal_logged(&network, &logged_under, code).await;
    }
    for claims in [&wrong_patient_claims, &vitals_claims, &old_range_claims] {
        nothing_retrieved_under(&network, &claims.jti.to_string()).await;
    }

    // A suspended hospital is refused by the custodian and by the index.
    network.set_status(b, MemberStatus::Suspended).await;
    refused_with(b, a, &with(&grant), 403, "member_suspended").await;
    refusal_logged(&network, &by_a(), "member_suspended").await;
    let at_index = b.node.index.discover(&discovery).await;
    assert!(
        matches!(&at_index, Err(IndexClientError::Refused(ServiceRefusal { status: 403, code, .. })) if code == "member_suspended"),
        "{at_index:?}"
    );
    network.set_status(b, MemberStatus::Active).await;

    // Nothing was released by any of these: the only retrievals A logged
    // are the ones under B's grant, before the refusals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let releases = network
        .ledger_entries("type=record.retrieved&submitter=hospital-a&limit=1000")
        .await;
    assert_eq!(
        releases.entries.len(),
        received_count,
        "no refused request released a record"
    );

    phase("refusals checked");
    // Least knowledge: no SSN, MRN, name or LOINC code anywhere the index, the
    // ledger or a log could show it.
    let index_text = index_database_text(&network.index_db);
    let log = network
        .admin
        .ledger
        .download_log(&network.admin.checkpoint().await)
        .await
        .unwrap();
    let ledger_text: String = log
        .entries
        .iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    let logs = logs::captured();
    assert!(!logs.is_empty(), "the services logged something");
    let codes: std::collections::BTreeSet<&String> =
        patients.iter().flat_map(|p| &p.loinc_codes).collect();
    for (place, text) in [
        ("index database", &index_text),
        ("ledger", &ledger_text),
        ("logs", &logs),
    ] {
        for patient in &patients {
            assert_no_identifiers(place, text, patient);
        }
        assert_no_codes(place, text, &codes);
    }
    phase("nothing identifying found");

    // With the ledger stopped, nothing is released: no log, no data. (The
    // refusal itself cannot be logged then.)
    network.stop_index().await;
    refused_with(b, a, &with(&grant), 503, "ledger_unavailable").await;

    network.stop().await;
}

fn last_day_of_month(date: &str) -> String {
    let first =
        chrono::NaiveDate::parse_from_str(&format!("{}-01", &date[..7]), "%Y-%m-%d").unwrap();
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap();
    next.pred_opt().unwrap().format("%Y-%m-%d").to_string()
}

fn claims_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every text column of the index's database (the ledger and the pointer
/// index), and for SQLite the raw file too.
fn index_database_text(db: &TestDb) -> String {
    use diesel::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let url = locus_platform::db::DatabaseUrl::parse(db.url()).unwrap();
    let pool = locus_platform::db::connect(&url, 1).unwrap();
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT body || ' ' || entry_type || ' ' || submitter || ' ' || COALESCE(subject, '') || ' ' || COALESCE(grant_id, '') AS text FROM ledger_entries \
         UNION ALL SELECT note FROM ledger_checkpoints \
         UNION ALL SELECT pointer_id || ' ' || patient_key || ' ' || custodian || ' ' || status FROM pointers \
         UNION ALL SELECT scope_tag FROM pointer_tags",
    )
    .load(&mut *pool.get().unwrap())
    .unwrap();
    let mut text: String = rows.into_iter().map(|r| r.text + "\n").collect();
    if let locus_platform::db::DatabaseUrl::Sqlite(path) = url {
        for suffix in ["", "-wal"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(bytes) = std::fs::read(file) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    text
}

fn assert_no_identifiers(place: &str, text: &str, patient: &SplitPatient) {
    let normalized = patient.ssn.replace('-', "");
    for needle in [&patient.ssn, &normalized]
        .into_iter()
        .chain(&patient.mrns)
        .chain(&patient.names)
    {
        assert!(
            !text.contains(needle.as_str()),
            "a patient identifier or name is in the {place}"
        );
    }
}

fn assert_no_codes(place: &str, text: &str, codes: &std::collections::BTreeSet<&String>) {
    // A LOINC code such as 2339-0 could occur inside a hex string or a UUID
    // only with hex digits around it; as a code it stands alone.
    let bytes = text.as_bytes();
    let is_hex = |i: Option<usize>| {
        i.and_then(|i| bytes.get(i))
            .is_some_and(u8::is_ascii_hexdigit)
    };
    for code in codes {
        for (at, _) in text.match_indices(code.as_str()) {
            let standalone = !is_hex(at.checked_sub(1)) && !is_hex(Some(at + code.len()));
            assert!(!standalone, "LOINC code {code} is in the {place}");
        }
    }
    assert!(
        !text.to_ascii_lowercase().contains("loinc"),
        "a LOINC system is in the {place}"
    );
}

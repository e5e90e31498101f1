//! Importing the Synthea sample bundles into the record store, on both backends.
//! Expected numbers come from walking the JSON here, independently of the importer.

// Helpers and scenarios outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use locus_hospital_connector::fhir::{FhirError, US_SSN_SYSTEM};
use locus_hospital_connector::import::ImportSummary;
use locus_hospital_connector::records::{NewReceivedResult, Published, RecordCount};
use locus_hospital_connector::schema::{received_results, records};
use locus_hospital_connector::{
    import_bundle, import_paths, ImportError, NewRecordInput, RecordStore, StoreError, Upserted,
};
use locus_platform::db::{connect, DatabaseUrl};
use locus_protocol::ids::{FhirId, HospitalId, PatientKey, PointerId};
use locus_protocol::linkage::{normalize_identifier, patient_key, LinkageKey};
use locus_protocol::pointer::content_commitment;
use locus_protocol::scope::ResourceType;
use locus_tests::synthea::{bundle_files, sample_dir};
use locus_tests::{both_backends, TestDb};
use serde_json::Value;

/// Bundles imported by the tests that run on both backends.
const SUBSET: usize = 6;

fn linkage_key() -> LinkageKey {
    LinkageKey::new("test", [7; 32]).unwrap()
}

fn open_store(db: &TestDb) -> RecordStore {
    let pool = connect(&DatabaseUrl::parse(db.url()).unwrap(), 4).unwrap();
    RecordStore::open(pool).unwrap()
}

/// What one bundle should import as, found by walking its JSON.
struct Expected {
    patient_key: PatientKey,
    records: usize,
    laboratory: usize,
    /// Names and identifiers that must never appear outside `content`.
    secrets: Vec<String>,
}

fn expected(path: &Path) -> Expected {
    let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let patient = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .unwrap();
    let mut secrets = vec![patient["id"].as_str().unwrap().to_owned()];
    let mut ssn = None;
    for identifier in patient["identifier"].as_array().unwrap() {
        let value = identifier["value"].as_str().unwrap();
        secrets.push(value.to_owned());
        if identifier["system"] == US_SSN_SYSTEM {
            secrets.push(value.replace('-', ""));
            ssn = Some(value);
        }
    }
    for name in patient["name"].as_array().unwrap() {
        let parts = name["given"].as_array().into_iter().flatten();
        for part in parts.chain(std::iter::once(&name["family"])) {
            // Synthea appends digits to names; the letters are what identify.
            let part: String = part
                .as_str()
                .unwrap()
                .chars()
                .filter(|c| c.is_alphabetic())
                .collect();
            if part.chars().count() >= 3 {
                secrets.push(part);
            }
        }
    }
    let is_record = |r: &&&Value| {
        matches!(
            r["resourceType"].as_str(),
            Some("Observation" | "DiagnosticReport")
        )
    };
    let laboratory = resources
        .iter()
        .filter(is_record)
        .filter(|r| {
            r["category"].as_array().into_iter().flatten().any(|c| {
                c["coding"].as_array().into_iter().flatten().any(|coding| {
                    coding["system"] == "http://terminology.hl7.org/CodeSystem/observation-category"
                        && coding["code"] == "laboratory"
                })
            })
        })
        .count();
    Expected {
        patient_key: patient_key(&linkage_key(), &normalize_identifier(ssn.unwrap()).unwrap()),
        records: resources.iter().filter(is_record).count(),
        laboratory,
        secrets,
    }
}

fn check_patient(store: &RecordStore, want: &Expected) {
    let current = store.current_for_patient(&want.patient_key).unwrap();
    assert_eq!(current.len(), want.records);
    let laboratory = current
        .iter()
        .filter(|r| r.categories.iter().any(|c| c == "laboratory"))
        .count();
    assert_eq!(laboratory, want.laboratory);
    for record in &current {
        assert!(record.current && record.version == 1);
        assert_eq!(record.patient_key, want.patient_key);
        assert!(record.verify_commitment());
        assert!(record.published_pointer.is_none());
    }
}

/// Every column except `content` of every row, as text (binary as hex).
fn non_content_text(store: &RecordStore) -> Vec<String> {
    type Row = (
        String,
        String,
        i32,
        String,
        String,
        String,
        Option<String>,
        Vec<u8>,
        Vec<u8>,
        i64,
        Option<String>,
        bool,
    );
    let mut conn = store.pool().get().unwrap();
    let rows: Vec<Row> = records::table
        .select((
            records::resource_type,
            records::resource_id,
            records::version,
            records::patient_key,
            records::categories,
            records::codes,
            records::effective_date,
            records::salt,
            records::commitment,
            records::imported_at,
            records::published_pointer,
            records::current,
        ))
        .load(&mut conn)
        .unwrap();
    type Received = (String, String, String, String, String, String, Vec<u8>);
    let received: Vec<Received> = received_results::table
        .select((
            received_results::id,
            received_results::patient_key,
            received_results::custodian,
            received_results::pointer_id,
            received_results::resource_type,
            received_results::resource_id,
            received_results::commitment,
        ))
        .load(&mut conn)
        .unwrap();
    rows.iter()
        .map(row_text)
        .chain(received.iter().map(row_text))
        .collect()
}

/// A row's columns as text, space-separated, binary ones as hex: one
/// rendering for every table, so no column is left out of the scan.
fn row_text(row: impl serde::Serialize) -> String {
    let Value::Array(columns) = serde_json::to_value(row).unwrap() else {
        panic!("a row is a tuple of columns");
    };
    let text = |column: &Value| match column {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => bytes
            .iter()
            .map(|b| format!("{:02x}", b.as_u64().unwrap()))
            .collect(),
        other => other.to_string(),
    };
    columns.iter().map(text).collect::<Vec<_>>().join(" ")
}

fn assert_no_secrets(store: &RecordStore, expected: &[Expected]) {
    let rows = non_content_text(store);
    assert!(!rows.is_empty());
    for want in expected {
        for secret in &want.secrets {
            assert!(
                !rows.iter().any(|row| row.contains(secret.as_str())),
                "a name or identifier appears outside the content column"
            );
        }
    }
    // The content does hold them: the scan would have found them there.
    let contents: Vec<String> = records::table
        .select(records::content)
        .load(&mut store.pool().get().unwrap())
        .unwrap();
    let patient_id = &expected[0].secrets[0];
    assert!(contents.iter().any(|c| c.contains(patient_id.as_str())));
}

/// Imports the first bundles one by one, then again: the second pass changes nothing.
async fn import_and_reimport(db: TestDb) {
    let dir = sample_dir();
    let store = open_store(&db);
    let key = linkage_key();
    let files: Vec<PathBuf> = bundle_files(&dir).into_iter().take(SUBSET).collect();
    let expected: Vec<Expected> = files.iter().map(|f| expected(f)).collect();
    let total: usize = expected.iter().map(|e| e.records).sum();

    for (file, want) in files.iter().zip(&expected) {
        let json = std::fs::read(file).unwrap();
        let report = import_bundle(&store, &key, US_SSN_SYSTEM, &json).unwrap();
        assert_eq!(report.patient_key, want.patient_key);
        assert_eq!(
            (report.inserted, report.unchanged, report.new_versions),
            (want.records, 0, 0)
        );
        check_patient(&store, want);
    }
    let count = RecordCount {
        versions: total as u64,
        current: total as u64,
    };
    assert_eq!(store.count().unwrap(), count);

    for (file, want) in files.iter().zip(&expected) {
        let json = std::fs::read(file).unwrap();
        let report = import_bundle(&store, &key, US_SSN_SYSTEM, &json).unwrap();
        assert_eq!(
            (report.inserted, report.unchanged, report.new_versions),
            (0, want.records, 0)
        );
    }
    assert_eq!(store.count().unwrap(), count);
    assert_no_secrets(&store, &expected);
}

/// One changed value in one Observation makes version 2 of that record only.
async fn modified_resource_gets_new_version(db: TestDb) {
    let dir = sample_dir();
    let store = open_store(&db);
    let key = linkage_key();
    let file = &bundle_files(&dir)[0];
    let want = expected(file);
    let original = std::fs::read_to_string(file).unwrap();
    import_bundle(&store, &key, US_SSN_SYSTEM, original.as_bytes()).unwrap();

    // Edit the text in place, so that every other resource stays byte-identical.
    let at = original.find("\"valueQuantity\"").unwrap();
    let value_at = at + original[at..].find("\"value\": ").unwrap() + "\"value\": ".len();
    let value_end = value_at + original[value_at..].find([',', '\n', '}']).unwrap();
    let observation_at = original[..at]
        .rfind("\"resourceType\": \"Observation\"")
        .unwrap();
    let id_at = observation_at + original[observation_at..].find("\"id\": \"").unwrap() + 7;
    let id: FhirId = original[id_at..id_at + original[id_at..].find('"').unwrap()]
        .parse()
        .unwrap();
    let modified = format!(
        "{}{}{}",
        &original[..value_at],
        "12345.678",
        &original[value_end..]
    );

    let report = import_bundle(&store, &key, US_SSN_SYSTEM, modified.as_bytes()).unwrap();
    assert_eq!(
        (report.inserted, report.unchanged, report.new_versions),
        (0, want.records - 1, 1)
    );
    assert_eq!(
        store.count().unwrap(),
        RecordCount {
            versions: want.records as u64 + 1,
            current: want.records as u64
        }
    );
    let current = store.get(ResourceType::Observation, &id).unwrap().unwrap();
    assert_eq!(current.version, 2);
    assert!(current.current && current.verify_commitment());
    assert!(current.content.contains("12345.678"));
    let old = store
        .get_version(ResourceType::Observation, &id, 1)
        .unwrap()
        .unwrap();
    assert!(!old.current && old.verify_commitment());
    assert_ne!(old.salt, current.salt);
    assert_ne!(old.commitment, current.commitment);
    let versions = store.versions(ResourceType::Observation, &id).unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|r| (r.version, r.current))
            .collect::<Vec<_>>(),
        vec![(1, false), (2, true)]
    );
    assert_eq!(
        store.current_for_patient(&want.patient_key).unwrap().len(),
        want.records
    );

    // The changed file again: unchanged. The original again: version 3.
    let report = import_bundle(&store, &key, US_SSN_SYSTEM, modified.as_bytes()).unwrap();
    assert_eq!(report.unchanged, want.records);
    let report = import_bundle(&store, &key, US_SSN_SYSTEM, original.as_bytes()).unwrap();
    assert_eq!(report.new_versions, 1);
    assert_eq!(
        store
            .get(ResourceType::Observation, &id)
            .unwrap()
            .unwrap()
            .version,
        3
    );
}

/// A bundle without the linkage identifier is refused by naming the system, and
/// stores nothing.
async fn bundle_without_ssn_is_refused(db: TestDb) {
    let dir = sample_dir();
    let store = open_store(&db);
    let file = &bundle_files(&dir)[0];
    let want = expected(file);
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    for entry in bundle["entry"].as_array_mut().unwrap() {
        if entry["resource"]["resourceType"] == "Patient" {
            entry["resource"]["identifier"]
                .as_array_mut()
                .unwrap()
                .retain(|i| i["system"] != US_SSN_SYSTEM);
        }
    }
    let json = serde_json::to_vec(&bundle).unwrap();
    let err = import_bundle(&store, &linkage_key(), US_SSN_SYSTEM, &json).unwrap_err();
    assert!(
        matches!(
            &err,
            ImportError::Bundle(FhirError::MissingIdentifier { system }) if system == US_SSN_SYSTEM
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(US_SSN_SYSTEM), "{message}");
    for secret in &want.secrets {
        assert!(!message.contains(secret.as_str()), "{message}");
    }
    assert_eq!(
        store.count().unwrap(),
        RecordCount {
            versions: 0,
            current: 0
        }
    );

    // Another identifier system can be configured instead.
    let report = import_bundle(
        &store,
        &linkage_key(),
        "http://hospital.smarthealthit.org",
        &json,
    )
    .unwrap();
    assert_eq!(report.inserted, want.records);
    assert_ne!(report.patient_key, want.patient_key);
}

fn input(id: &str, patient: PatientKey, value: &str) -> NewRecordInput {
    NewRecordInput {
        patient_key: patient,
        resource_type: ResourceType::Observation,
        resource_id: id.parse().unwrap(),
        categories: vec!["laboratory".into()],
        codes: vec!["http://loinc.org|2339-0".into()],
        effective_date: chrono::NaiveDate::from_ymd_opt(2020, 1, 2),
        content: format!(
            r#"{{"resourceType":"Observation","id":"{id}","valueQuantity":{{"value":{value}}}}}"#
        ),
    }
}

/// The store API directly: versions, publishing marks, received results.
async fn store_api(db: TestDb) {
    let store = open_store(&db);
    let alice = PatientKey::from_bytes([1; 32]);
    let bob = PatientKey::from_bytes([2; 32]);

    assert_eq!(
        store.upsert(&input("o1", alice, "5.10")).unwrap(),
        Upserted::Inserted
    );
    assert_eq!(
        store.upsert(&input("o1", alice, "5.10")).unwrap(),
        Upserted::Unchanged
    );
    assert_eq!(
        store.upsert(&input("o1", alice, "5.1")).unwrap(),
        Upserted::NewVersion(2)
    );
    assert_eq!(
        store.upsert(&input("o1", alice, "5.2")).unwrap(),
        Upserted::NewVersion(3)
    );
    // Metadata alone counts as a change, patient key included.
    let mut moved = input("o1", bob, "5.2");
    assert_eq!(store.upsert(&moved).unwrap(), Upserted::NewVersion(4));
    moved.effective_date = None;
    assert_eq!(store.upsert(&moved).unwrap(), Upserted::NewVersion(5));
    assert!(store.current_for_patient(&alice).unwrap().is_empty());
    let o1: FhirId = "o1".parse().unwrap();
    let record = store.get(ResourceType::Observation, &o1).unwrap().unwrap();
    assert_eq!(
        (record.version, record.patient_key, record.effective_date),
        (5, bob, None)
    );
    assert_eq!(
        record.commitment,
        content_commitment(&record.salt, record.content.as_bytes())
    );
    assert!(record
        .tag_inputs()
        .contains(&"Observation?category=laboratory".to_owned()));
    assert!(store
        .get(ResourceType::DiagnosticReport, &o1)
        .unwrap()
        .is_none());

    // A batch is all or nothing.
    let err = store
        .upsert_many(&[input("o2", alice, "1"), input("o2", alice, "2")])
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateInput { .. }), "{err:?}");
    let mut bad = input("o3", alice, "1");
    bad.content = "{not json".into();
    assert!(matches!(
        store.upsert_many(&[input("o2", alice, "1"), bad]),
        Err(StoreError::InvalidJson(_))
    ));
    assert_eq!(
        store.count().unwrap(),
        RecordCount {
            versions: 5,
            current: 1
        }
    );
    let outcomes = store
        .upsert_many(&[
            input("o2", alice, "1"),
            input("o1", bob, "0"),
            input("o3", alice, "1"),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            Upserted::Inserted,
            Upserted::NewVersion(6),
            Upserted::Inserted
        ]
    );

    // Publishing marks.
    let unpublished = store.unpublished(10).unwrap();
    assert_eq!(unpublished.len(), 3);
    assert!(unpublished.iter().all(|r| r.current));
    assert_eq!(store.unpublished(2).unwrap().len(), 2);
    let pointer = PointerId::new_random();
    let mark = Published {
        resource_type: ResourceType::Observation,
        resource_id: "o2".parse().unwrap(),
        version: 1,
        pointer_id: pointer,
    };
    store.mark_published(std::slice::from_ref(&mark)).unwrap();
    store.mark_published(std::slice::from_ref(&mark)).unwrap();
    let o2 = store
        .get(ResourceType::Observation, &mark.resource_id)
        .unwrap()
        .unwrap();
    assert_eq!(o2.published_pointer, Some(pointer));
    assert_eq!(store.unpublished(10).unwrap().len(), 2);
    let other = Published {
        pointer_id: PointerId::new_random(),
        ..mark.clone()
    };
    let o3 = Published {
        resource_id: "o3".parse().unwrap(),
        ..other.clone()
    };
    // The refused batch marks nothing, o3 included.
    assert!(matches!(
        store.mark_published(&[o3.clone(), other]),
        Err(StoreError::AlreadyPublished { version: 1, .. })
    ));
    assert_eq!(store.unpublished(10).unwrap().len(), 2);
    let missing = Published {
        version: 9,
        ..o3.clone()
    };
    assert!(matches!(
        store.mark_published(&[missing]),
        Err(StoreError::NotFound { version: 9, .. })
    ));
    // A superseded version can still be marked (publishing raced an import).
    let old = Published {
        resource_id: o1.clone(),
        version: 2,
        pointer_id: PointerId::new_random(),
        resource_type: ResourceType::Observation,
    };
    store.mark_published(&[o3, old]).unwrap();
    assert_eq!(store.unpublished(10).unwrap().len(), 1);

    // Withdrawing: found by pointer, marked once; an unknown pointer marks nothing.
    assert_eq!(
        store.by_pointer(&pointer).unwrap().unwrap().withdrawn_at,
        None
    );
    let unknown = PointerId::new_random();
    assert!(matches!(
        store.mark_withdrawn(&[pointer, unknown]),
        Err(StoreError::UnknownPointer(p)) if p == unknown
    ));
    assert_eq!(
        store.by_pointer(&pointer).unwrap().unwrap().withdrawn_at,
        None
    );
    assert_eq!(store.mark_withdrawn(&[pointer]).unwrap(), 1);
    let withdrawn_at = store.by_pointer(&pointer).unwrap().unwrap().withdrawn_at;
    assert!(withdrawn_at.is_some());
    assert_eq!(store.mark_withdrawn(&[pointer]).unwrap(), 0);
    assert_eq!(
        store.by_pointer(&pointer).unwrap().unwrap().withdrawn_at,
        withdrawn_at,
        "withdrawing again changes nothing"
    );
    assert_eq!(store.unpublished(10).unwrap().len(), 1);

    // Received results.
    let custodian: HospitalId = "hospital-b".parse().unwrap();
    let salt = [9; 32];
    let content = r#"{"resourceType":"Observation","id":"x1","valueQuantity":{"value":7.25}}"#;
    let new = NewReceivedResult {
        patient_key: alice,
        custodian: custodian.clone(),
        pointer_id: PointerId::new_random(),
        resource_type: ResourceType::Observation,
        resource_id: "x1".parse().unwrap(),
        version: 1,
        content: content.into(),
        commitment: content_commitment(&salt, content.as_bytes()),
        provenance: r#"{"provenance":{},"signature":"..."}"#.into(),
        receipt_index: 41,
    };
    let stored = store.insert_received(&new).unwrap();
    assert_eq!(stored.custodian, custodian);
    assert_eq!(stored.content, content);
    assert!(matches!(
        store.insert_received(&new),
        Err(StoreError::DuplicateReceipt)
    ));
    let again = NewReceivedResult {
        receipt_index: 42,
        ..new.clone()
    };
    store.insert_received(&again).unwrap();
    let bad = NewReceivedResult {
        provenance: "not json".into(),
        receipt_index: 43,
        ..new.clone()
    };
    assert!(matches!(
        store.insert_received(&bad),
        Err(StoreError::InvalidJson("provenance"))
    ));
    let listed = store.received_for_patient(&alice).unwrap();
    assert_eq!(
        listed.iter().map(|r| r.receipt_index).collect::<Vec<_>>(),
        vec![41, 42]
    );
    assert_eq!(listed[0], stored);
    assert_eq!(store.received(stored.id).unwrap(), Some(stored));
    assert!(store.received_for_patient(&bob).unwrap().is_empty());
    // Reopening runs no migration twice.
    let reopened = RecordStore::open(store.pool().clone()).unwrap();
    assert_eq!(reopened.count().unwrap().current, 3);
}

/// Importers racing over the same bundles: each resource is stored once, and
/// nobody fails.
async fn concurrent_imports(db: TestDb) {
    let dir = sample_dir();
    let store = open_store(&db);
    let files: Vec<PathBuf> = bundle_files(&dir).into_iter().take(2).collect();
    let total: usize = files.iter().map(|f| expected(f).records).sum();
    let bundles: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let threads = 4;
    let (inserted, unchanged) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, bundles) = (store.clone(), &bundles);
                scope.spawn(move || {
                    let key = linkage_key();
                    let mut sums = (0, 0);
                    for i in 0..bundles.len() {
                        let bundle = &bundles[(i + t) % bundles.len()];
                        let report = import_bundle(&store, &key, US_SSN_SYSTEM, bundle).unwrap();
                        assert_eq!(report.new_versions, 0);
                        sums.0 += report.inserted;
                        sums.1 += report.unchanged;
                    }
                    sums
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    assert_eq!((inserted, unchanged), (total, (threads - 1) * total));
    assert_eq!(
        store.count().unwrap(),
        RecordCount {
            versions: total as u64,
            current: total as u64
        }
    );
}

both_backends!(
    concurrent_imports,
    import_and_reimport,
    modified_resource_gets_new_version,
    bundle_without_ssn_is_refused,
    store_api
);

/// All 41 bundles through the folder import, on SQLite.
#[test]
fn import_all_bundles_from_a_folder() {
    let dir = sample_dir();
    let db = TestDb::sqlite();
    let store = open_store(&db);
    let key = linkage_key();
    let files = bundle_files(&dir);
    assert_eq!(files.len(), 41);
    let expected: Vec<Expected> = files.iter().map(|f| expected(f)).collect();
    let total: usize = expected.iter().map(|e| e.records).sum();

    let seen = RefCell::new(Vec::new());
    let progress = |p: locus_hospital_connector::ImportProgress<'_>| {
        seen.borrow_mut().push((
            p.file.is_some(),
            p.files_done,
            p.files_total,
            p.bytes_done,
            p.bytes_total,
        ));
    };
    let summary = import_paths(
        &store,
        &key,
        US_SSN_SYSTEM,
        std::slice::from_ref(&dir),
        &progress,
    )
    .unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            files: 41,
            inserted: total,
            unchanged: 0,
            new_versions: 0
        }
    );
    let seen = seen.into_inner();
    assert_eq!(seen.len(), 42);
    let bytes_total: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert_eq!(seen[0], (false, 0, 41, 0, bytes_total));
    assert_eq!(seen[41], (true, 41, 41, bytes_total, bytes_total));
    for want in &expected {
        check_patient(&store, want);
    }
    let mut keys: Vec<PatientKey> = expected.iter().map(|e| e.patient_key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 41, "every patient has their own key");
    assert_eq!(
        store.count().unwrap(),
        RecordCount {
            versions: total as u64,
            current: total as u64
        }
    );
    assert_no_secrets(&store, &expected);

    // Again, given as single files: nothing changes.
    let summary = import_paths(&store, &key, US_SSN_SYSTEM, &files, &|_| {}).unwrap();
    assert_eq!(
        (summary.files, summary.unchanged, summary.inserted),
        (41, total, 0)
    );
    assert_eq!(store.count().unwrap().versions, total as u64);

    // A failing file is named, and the files before it stay imported.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::copy(&files[0], scratch.path().join("a.json")).unwrap();
    std::fs::write(
        scratch.path().join("b.json"),
        b"{\"resourceType\": \"Bundle\"}",
    )
    .unwrap();
    std::fs::write(scratch.path().join("c.txt"), b"ignored").unwrap();
    let err = import_paths(
        &store,
        &key,
        US_SSN_SYSTEM,
        &[scratch.path().to_owned()],
        &|_| {},
    )
    .unwrap_err();
    match &err {
        ImportError::File { path, source } => {
            assert!(path.ends_with("b.json"));
            assert!(matches!(
                **source,
                ImportError::Bundle(FhirError::NoPatient)
            ));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("b.json"));
    let missing = import_paths(
        &store,
        &key,
        US_SSN_SYSTEM,
        &[scratch.path().join("nope.json")],
        &|_| {},
    );
    assert!(matches!(missing, Err(ImportError::Read { .. })));
    // An oversized file is refused before parsing (sparse: no disk used).
    let big = scratch.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(locus_hospital_connector::fhir::MAX_BUNDLE_BYTES as u64 + 1)
        .unwrap();
    assert!(matches!(
        import_paths(&store, &key, US_SSN_SYSTEM, &[big], &|_| {}),
        Err(ImportError::TooLarge { .. })
    ));
}

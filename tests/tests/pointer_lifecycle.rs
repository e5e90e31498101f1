//! Pointers at the index over their life: published by their custodian only,
//! superseded by a new version, withdrawn; discovery always shows exactly the
//! active pointers the grant covers.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_hospital_connector::fhir::US_SSN_SYSTEM;
use locus_hospital_connector::import::import_bundle;
use locus_index_service::client::{IndexClient, IndexClientError, ServiceRefusal};
use locus_protocol::linkage::{normalize_identifier, patient_key};
use locus_tests::fhir::{lab_bundle, LabObservation};
use locus_tests::network::TestNetwork;
use locus_tests::{both_backends, TestDb};

const PATIENT: &str = "0a7e1c34-5d0b-4c5e-9a53-1f1d2a3b4c5d";
const SSN: &str = "999-55-0001";
const LABS: &str = "patient/Observation.rs?category=laboratory";

both_backends!(publish_supersede_withdraw);

fn refused(result: Result<impl std::fmt::Debug, IndexClientError>, status: u16, code: &str) {
    match result {
        Err(IndexClientError::Refused(ServiceRefusal {
            status: s, code: c, ..
        })) => assert_eq!((s, c.as_str()), (status, code)),
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

async fn publish_supersede_withdraw(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
    let (a, b) = network.hospitals_a_b();
    let key = patient_key(&network.linkage, &normalize_identifier(SSN).unwrap());
    let labs = |glucose: f64| {
        lab_bundle(
            PATIENT,
            SSN,
            &[
                LabObservation::new(
                    "1b2c3d4e-0000-4000-8000-000000000001",
                    "2339-0",
                    glucose,
                    "2024-03-01",
                ),
                LabObservation::new(
                    "1b2c3d4e-0000-4000-8000-000000000002",
                    "2093-3",
                    180.0,
                    "2024-03-01",
                ),
            ],
        )
    };
    import_bundle(&a.node.store, &network.linkage, US_SSN_SYSTEM, &labs(95.0)).unwrap();
    assert_eq!(a.node.publish_pending().await.unwrap(), 2);

    let (_, claims) = network.grant(b, &key, LABS, None);
    let grant = network.discovery(&claims);
    let first = b.node.index.discover(&grant).await.unwrap().pointers;
    assert_eq!(first.len(), 2);

    // A corrected result is a new version; its pointer replaces the old one.
    let report =
        import_bundle(&a.node.store, &network.linkage, US_SSN_SYSTEM, &labs(101.0)).unwrap();
    assert_eq!(report.new_versions, 1);
    assert_eq!(a.node.publish_pending().await.unwrap(), 1);
    let second = b.node.index.discover(&grant).await.unwrap().pointers;
    assert_eq!(second.len(), 2);
    let old: Vec<_> = first.iter().map(|p| p.pointer_id).collect();
    let replaced: Vec<_> = second
        .iter()
        .filter(|p| !old.contains(&p.pointer_id))
        .collect();
    assert_eq!(
        replaced.len(),
        1,
        "exactly the corrected result has a new pointer"
    );
    let stored = a
        .node
        .store
        .by_pointer(&replaced[0].pointer_id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);

    // Only the custodian withdraws its pointers, and only active ones.
    let target = vec![replaced[0].pointer_id];
    refused(
        b.node.index.withdraw(target.clone()).await,
        404,
        "not_owned",
    );
    a.node.index.withdraw(target.clone()).await.unwrap();
    refused(a.node.index.withdraw(target).await, 404, "not_owned");
    let third = b.node.index.discover(&grant).await.unwrap().pointers;
    assert_eq!(third.len(), 1);

    // Someone who is not a hospital cannot publish.
    let authority_http = network.admin.http.clone();
    let as_authority = IndexClient::new(&network.index_url, authority_http);
    refused(as_authority.publish(vec![]).await, 403, "not_a_custodian");
    // And a hospital cannot publish an empty or malformed batch.
    refused(a.node.index.publish(vec![]).await, 400, "bad_request");

    // Discovery without a grant is refused, and the refusal is logged.
    refused(b.node.index.discover("").await, 403, "no_grant");
    let mut logged = false;
    for _ in 0..100 {
        let page = network
            .ledger_entries("type=access.refused&submitter=index")
            .await;
        if page
            .entries
            .iter()
            .any(|e| e.entry["entry"]["event"]["reason"] == "no_grant")
        {
            logged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(logged, "the index logged the refusal");
    network.stop().await;
}

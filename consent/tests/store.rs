//! The consent store's single-use and state rules, on both backends.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_consent::store::{APPROVED, AccessRequest, ConsentStore, Device, Grant, PENDING, REFUSED};
use locus_service::db::{DatabaseUrl, connect};
use locus_tests::{TestDb, both_backends};

both_backends!(codes_challenges_and_decisions_are_single_use);

const PATIENT: &str = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";

async fn codes_challenges_and_decisions_are_single_use(db: TestDb) {
    let store = ConsentStore::open(connect(&DatabaseUrl::parse(db.url()).unwrap(), 4).unwrap()).unwrap();

    // An enrolment code works once, and not after it expires.
    store.add_enrolment_code("ABCD-EFGH-JKLM", PATIENT, "hospital-a", 1_000).unwrap();
    store.add_enrolment_code("OLD-CODE", PATIENT, "hospital-a", 500).unwrap();
    assert_eq!(store.redeem_enrolment_code("ABCD-EFGH-JKLM", 900).unwrap().as_deref(), Some(PATIENT));
    assert_eq!(store.redeem_enrolment_code("ABCD-EFGH-JKLM", 901).unwrap(), None);
    assert_eq!(store.redeem_enrolment_code("OLD-CODE", 600).unwrap(), None);
    assert_eq!(store.redeem_enrolment_code("NEVER-ISSUED", 600).unwrap(), None);

    // Devices, and challenges that work once, for their own device only.
    for id in ["device-1", "device-2"] {
        store
            .add_device(&Device {
                device_id: id.into(),
                patient_key: PATIENT.into(),
                public_jwk: "{}".into(),
                enrolled_at: 1,
                removed_at: None,
            })
            .unwrap();
    }
    store.add_challenge("nonce-1", "device-1", 1_000).unwrap();
    assert!(!store.use_challenge("nonce-1", "device-2", 10).unwrap());
    assert!(store.use_challenge("nonce-1", "device-1", 10).unwrap());
    assert!(!store.use_challenge("nonce-1", "device-1", 11).unwrap());
    assert!(store.remove_device(PATIENT, "device-2", 20).unwrap());
    assert!(!store.remove_device(PATIENT, "device-2", 21).unwrap());
    assert!(store.device("device-2").unwrap().is_none());
    assert_eq!(store.devices_of(PATIENT).unwrap().len(), 1);

    // A request is decided once; the grant is stored with the decision.
    for id in ["r1", "r2"] {
        store
            .add_request(&AccessRequest {
                request_id: id.into(),
                patient_key: PATIENT.into(),
                requester: "hospital-b".into(),
                terms: "{}".into(),
                status: PENDING.into(),
                created_at: 5,
                decided_at: None,
                grant_id: None,
            })
            .unwrap();
    }
    let grant = Grant {
        grant_id: "g1".into(),
        patient_key: PATIENT.into(),
        requester: "hospital-b".into(),
        basis: "patient_approval".into(),
        token: "token".into(),
        claims: "{}".into(),
        issued_at: 6,
        expires_at: 100,
        revoked_at: None,
    };
    assert!(store.decide("r1", APPROVED, Some(&grant), 6).unwrap());
    assert!(!store.decide("r1", REFUSED, None, 7).unwrap());
    assert!(store.decide("r2", REFUSED, None, 7).unwrap());
    assert_eq!(store.requests_of(PATIENT, PENDING).unwrap().len(), 0);
    assert_eq!(store.request("r1").unwrap().unwrap().grant_id.as_deref(), Some("g1"));

    // A grant is revoked once, and only by its own patient.
    assert!(!store.revoke_grant("someone-else", "g1", 8).unwrap());
    assert!(store.revoke_grant(PATIENT, "g1", 8).unwrap());
    assert!(!store.revoke_grant(PATIENT, "g1", 9).unwrap());
}

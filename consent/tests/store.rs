//! The consent store's acts (reserve, finish, undo) and single-use rules, on
//! both backends: what storage itself guarantees, whoever calls it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::{Arc, Barrier};

use locus_consent::store::{
    AccessRequest, Act, BasisKind, Change, Conflict, ConsentStore, Device, Grant, RequestStatus,
    Rule,
};
use locus_platform::db::{connect, DatabaseUrl};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId, RuleId};
use locus_tests::{both_backends, TestDb};

both_backends!(acts_are_reserved_applied_and_undone_once);
both_backends!(concurrent_acts_on_one_thing_reserve_once);
both_backends!(challenges_are_single_use_and_bounded);

const PATIENT: PatientKey = PatientKey::from_bytes([0x0f; 32]);
const OTHER: PatientKey = PatientKey::from_bytes([0x1f; 32]);

/// The `n`th id of a kind: ids are typed, so the tests name them by number.
fn uuid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn dev(n: u8) -> DeviceKeyId {
    DeviceKeyId::from_bytes([n; 32])
}

fn rid(n: usize) -> RequestId {
    uuid(n).parse().unwrap()
}

fn gid(n: usize) -> GrantId {
    uuid(100 + n).parse().unwrap()
}

fn rule_one() -> RuleId {
    uuid(200).parse().unwrap()
}

fn member(name: &str) -> MemberId {
    name.parse().unwrap()
}

fn open(db: &TestDb) -> ConsentStore {
    ConsentStore::open(connect(&DatabaseUrl::parse(db.url()).unwrap(), 8).unwrap()).unwrap()
}

fn act(change: Change) -> Act {
    Act {
        entries: vec!["{}".into()],
        change,
    }
}

fn device(id: DeviceKeyId, patient: PatientKey) -> Device {
    Device {
        device_id: id,
        patient_key: patient,
        public_jwk: "{}".into(),
        enrolled_at: 1,
        removed_at: None,
        code_issuer: member("hospital-a"),
    }
}

fn enrol(id: DeviceKeyId, patient: PatientKey, code: &str) -> Act {
    act(Change::Enrol {
        device: device(id, patient),
        code_hash: ConsentStore::code_hash_hex(code),
    })
}

fn request(id: RequestId) -> AccessRequest {
    AccessRequest {
        request_id: id,
        patient_key: PATIENT,
        requester: member("hospital-b"),
        terms: "{}".into(),
        status: RequestStatus::Pending,
        created_at: 5,
        decided_at: None,
        grant_id: None,
    }
}

fn grant(id: GrantId) -> Grant {
    Grant {
        grant_id: id,
        patient_key: PATIENT,
        requester: member("hospital-b"),
        basis: BasisKind::PatientApproval,
        token: "token".into(),
        claims: "{}".into(),
        issued_at: 6,
        expires_at: 100,
        revoked_at: None,
    }
}

/// Reserves and finishes `act` under `key`, expecting no conflict.
fn done(store: &ConsentStore, key: &str, act: &Act) {
    assert_eq!(store.reserve(key, act, 10).unwrap(), Ok(()), "{key}");
    assert!(store.finish(key, 11).unwrap(), "{key}");
}

/// Adds `code`, hospital-a's enrolment code for `PATIENT`, valid until `expires_at_secs` (Unix seconds).
fn desk_code(store: &ConsentStore, code: &str, expires_at_secs: i64) {
    store
        .add_enrolment_code(code, &PATIENT, &member("hospital-a"), expires_at_secs)
        .unwrap();
}

/// Asserts that reserving `act` under `key` at `now_ms` is refused with `conflict`.
fn refused(store: &ConsentStore, key: &str, act: &Act, now_ms: i64, conflict: Conflict) {
    assert_eq!(
        store.reserve(key, act, now_ms).unwrap(),
        Err(conflict),
        "{key}"
    );
}

async fn acts_are_reserved_applied_and_undone_once(db: TestDb) {
    let store = open(&db);
    desk_code(&store, "ABCD-EFGH-JKLM", 1_000);
    desk_code(&store, "OLD-CODE", 0);
    assert_eq!(
        store.enrolment_code("ABCD-EFGH-JKLM", 10).unwrap(),
        Some((PATIENT, member("hospital-a")))
    );
    assert_eq!(store.enrolment_code("OLD-CODE", 10).unwrap(), None);

    // An enrolment uses its code at reservation; undoing gives it back, and
    // nothing of the device is stored until the act is finished.
    let first = enrol(dev(1), PATIENT, "ABCD-EFGH-JKLM");
    assert_eq!(
        store.reserve("device:device-1", &first, 10).unwrap(),
        Ok(())
    );
    assert_eq!(store.enrolment_code("ABCD-EFGH-JKLM", 10).unwrap(), None);
    assert!(store.device(&dev(1)).unwrap().is_none());
    assert_eq!(store.pending_acts().unwrap().len(), 1);
    store.undo("device:device-1").unwrap();
    assert!(store.pending_acts().unwrap().is_empty());
    assert!(store
        .enrolment_code("ABCD-EFGH-JKLM", 10)
        .unwrap()
        .is_some());
    assert!(store.device(&dev(1)).unwrap().is_none());

    // Done for real: finished once; finishing again applies nothing.
    done(&store, "device:device-1", &first);
    assert!(!store.finish("device:device-1", 12).unwrap());
    assert!(store.device(&dev(1)).unwrap().is_some());
    desk_code(&store, "WXYZ-WXYZ-WXYZ", 1_000);
    for (device, patient, code, conflict) in [
        // The code works once; an expired code never.
        (2, PATIENT, "ABCD-EFGH-JKLM", Conflict::CodeUsed),
        (2, PATIENT, "OLD-CODE", Conflict::CodeUsed),
        // A code is for its own patient.
        (2, OTHER, "WXYZ-WXYZ-WXYZ", Conflict::CodeUsed),
        // A known key cannot be enrolled again, for anyone.
        (1, PATIENT, "WXYZ-WXYZ-WXYZ", Conflict::DeviceKnown),
    ] {
        let key = format!("device:device-{device}");
        let enrolment = enrol(dev(device), patient, code);
        refused(&store, &key, &enrolment, 10, conflict);
    }
    done(
        &store,
        "device:device-2",
        &enrol(dev(2), PATIENT, "WXYZ-WXYZ-WXYZ"),
    );

    // Removing a device disables it at reservation; undo restores it; once
    // removed it cannot be removed again, nor enrolled again.
    let remove = act(Change::RemoveDevice {
        patient_key: PATIENT,
        device_id: dev(2),
    });
    assert_eq!(
        store.reserve("device:device-2", &remove, 20).unwrap(),
        Ok(())
    );
    assert!(store.device(&dev(2)).unwrap().is_none());
    store.undo("device:device-2").unwrap();
    assert!(store.device(&dev(2)).unwrap().is_some());
    done(&store, "device:device-2", &remove);
    assert!(store.device(&dev(2)).unwrap().is_none());
    refused(&store, "device:device-2", &remove, 21, Conflict::NoDevice);
    let not_mine = act(Change::RemoveDevice {
        patient_key: OTHER,
        device_id: dev(1),
    });
    refused(&store, "device:device-1", &not_mine, 21, Conflict::NoDevice);
    desk_code(&store, "AAAA-BBBB-CCCC", 1_000);
    refused(
        &store,
        "device:device-2",
        &enrol(dev(2), PATIENT, "AAAA-BBBB-CCCC"),
        22,
        Conflict::DeviceKnown,
    );
    assert_eq!(store.devices_of(&PATIENT).unwrap().len(), 1);

    // A request is decided once; the grant is stored with the decision.
    for (id, n) in [("r1", 1), ("r2", 2)] {
        done(
            &store,
            &format!("request:{id}"),
            &act(Change::Request {
                request: request(rid(n)),
                grant: None,
            }),
        );
    }
    let approve = act(Change::Decide {
        request_id: rid(1),
        status: RequestStatus::Approved,
        grant: Some(grant(gid(1))),
    });
    done(&store, "request:r1", &approve);
    let refuse = act(Change::Decide {
        request_id: rid(1),
        status: RequestStatus::Refused,
        grant: None,
    });
    refused(&store, "request:r1", &refuse, 12, Conflict::AlreadyDecided);
    done(
        &store,
        "request:r2",
        &act(Change::Decide {
            request_id: rid(2),
            status: RequestStatus::Refused,
            grant: None,
        }),
    );
    assert_eq!(
        store
            .requests_of(&PATIENT, RequestStatus::Pending)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store.request(&rid(1)).unwrap().unwrap().grant_id,
        Some(gid(1))
    );
    assert!(store.grant(&gid(1)).unwrap().is_some());

    // A grant is revoked once, and only by its own patient.
    let by_other = act(Change::RevokeGrant {
        patient_key: OTHER,
        grant_id: gid(1),
    });
    refused(&store, "grant:g1", &by_other, 13, Conflict::NoGrant);
    let revoke = act(Change::RevokeGrant {
        patient_key: PATIENT,
        grant_id: gid(1),
    });
    done(&store, "grant:g1", &revoke);
    refused(&store, "grant:g1", &revoke, 14, Conflict::AlreadyRevoked);

    // A rule id is used once; a rule is revoked once, by its own patient, and
    // stops matching from the reservation on.
    let rule = Rule {
        rule_id: rule_one(),
        patient_key: PATIENT,
        rule: "{}".into(),
        signature: "sig".into(),
        created_at: 1,
        revoked_at: None,
    };
    done(
        &store,
        "rule:rule-1",
        &act(Change::AddRule { rule: rule.clone() }),
    );
    refused(
        &store,
        "rule:rule-1",
        &act(Change::AddRule { rule }),
        15,
        Conflict::RuleExists,
    );
    let unrule = act(Change::RevokeRule {
        patient_key: PATIENT,
        rule_id: rule_one(),
    });
    let unrule_other = act(Change::RevokeRule {
        patient_key: OTHER,
        rule_id: rule_one(),
    });
    refused(&store, "rule:rule-1", &unrule_other, 16, Conflict::NoRule);
    assert_eq!(store.reserve("rule:rule-1", &unrule, 16).unwrap(), Ok(()));
    assert!(store.rules_of(&PATIENT).unwrap().is_empty());
    assert!(store.finish("rule:rule-1", 17).unwrap());
    refused(&store, "rule:rule-1", &unrule, 18, Conflict::NoRule);
    assert!(store.pending_acts().unwrap().is_empty());
}

async fn concurrent_acts_on_one_thing_reserve_once(db: TestDb) {
    let store = open(&db);
    done(
        &store,
        "request:r1",
        &act(Change::Request {
            request: request(rid(1)),
            grant: None,
        }),
    );
    // Eight threads decide the same request at once (each with its own grant),
    // and eight try to finish it: one reservation, one decision, one grant.
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let decide = act(Change::Decide {
                    request_id: rid(1),
                    status: RequestStatus::Approved,
                    grant: Some(grant(gid(i))),
                });
                barrier.wait();
                let reserved = store.reserve("request:r1", &decide, 20).unwrap();
                let finished = store.finish("request:r1", 21).unwrap();
                (reserved, finished)
            })
        })
        .collect();
    let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let reserved = outcomes.iter().filter(|(r, _)| r.is_ok()).count();
    let finished = outcomes.iter().filter(|(_, f)| *f).count();
    assert_eq!((reserved, finished), (1, 1), "{outcomes:?}");
    assert!(outcomes.iter().all(|(r, _)| matches!(
        r,
        Ok(()) | Err(Conflict::UnderWay | Conflict::AlreadyDecided)
    )));
    assert_eq!(store.grants_of(&PATIENT).unwrap().len(), 1);
    assert_eq!(
        store.request(&rid(1)).unwrap().unwrap().status,
        RequestStatus::Approved
    );
}

async fn challenges_are_single_use_and_bounded(db: TestDb) {
    let store = open(&db);
    desk_code(&store, "ABCD-EFGH-JKLM", 1_000);
    done(
        &store,
        "device:device-1",
        &enrol(dev(1), PATIENT, "ABCD-EFGH-JKLM"),
    );
    assert!(store
        .add_challenge("nonce-1", &dev(1), 1, 1_000, 2)
        .unwrap());
    assert!(!store.use_challenge("nonce-1", &dev(2), 10).unwrap());
    assert!(store.use_challenge("nonce-1", &dev(1), 10).unwrap());
    assert!(!store.use_challenge("nonce-1", &dev(1), 11).unwrap());
    // At most two open at once; a used or expired one frees its place.
    assert!(store
        .add_challenge("nonce-2", &dev(1), 12, 1_000, 2)
        .unwrap());
    assert!(store.add_challenge("nonce-3", &dev(1), 12, 20, 2).unwrap());
    assert!(!store
        .add_challenge("nonce-4", &dev(1), 13, 1_000, 2)
        .unwrap());
    assert!(store
        .add_challenge("nonce-4", &dev(1), 21, 1_000, 2)
        .unwrap());
    assert!(!store.use_challenge("nonce-3", &dev(1), 22).unwrap());
}

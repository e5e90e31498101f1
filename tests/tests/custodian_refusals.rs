//! A custodian trusts nothing a requester presents. Anyone holding a hospital's
//! public X25519 key can seal a pointer body, so B, holding a valid grant for
//! one patient, forges bodies (wrong salt, wrong commitment, another record's
//! body, another patient's record, an unknown pointer id) and presents stale
//! pointers (withdrawn, superseded) to A. Each is a 4xx with a JSON error, one
//! `access.refused` entry by A and nothing else on the ledger, no record
//! released, and neither connector's store changed. Malformed requests (not a
//! JSON object, out-of-range fields, too large, wrong method) are a 400-class
//! answer that logs nothing at all.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use diesel::prelude::*;
use locus_hospital_connector::fhir::US_SSN_SYSTEM;
use locus_hospital_connector::import::import_bundle;
use locus_hospital_connector::publish::pointer_body;
use locus_hospital_connector::records::Record;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_hospital_connector::schema::{received_results, records};
use locus_index_service::api::DiscoveredPointer;
use locus_protocol::grant::GrantClaims;
use locus_protocol::ids::{PatientKey, PointerId};
use locus_protocol::pointer::PointerBody;
use locus_tests::fhir::{lab_bundle, LabObservation};
use locus_tests::http::get_json;
use locus_tests::network::{assert_refused, TestHospital, TestNetwork};
use locus_tests::{both_backends, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

const PATIENT_X: &str = "5b0c6d1e-0000-4000-8000-00000000000a";
const SSN_X: &str = "999-55-0101";
const PATIENT_Y: &str = "5b0c6d1e-0000-4000-8000-00000000000b";
const SSN_Y: &str = "999-55-0202";
const LABS: &str = "patient/Observation.rs?category=laboratory";

both_backends!(forged_and_stale_pointers, malformed_retrievals);

fn obs(n: u8, loinc: &str, value: f64) -> LabObservation {
    LabObservation::new(
        &format!("6c1d7e2f-0000-4000-8000-0000000000{n:02}"),
        loinc,
        value,
        &format!("2024-03-{n:02}"),
    )
}

fn x_labs(last_value: f64) -> Vec<u8> {
    lab_bundle(
        PATIENT_X,
        SSN_X,
        &[
            obs(1, "2339-0", 95.0),
            obs(2, "2093-3", 180.0),
            obs(3, "718-7", 14.1),
            obs(4, "4548-4", last_value),
        ],
    )
}

/// `hospital` imports `bundles` and publishes them: `published` pointers.
async fn publishes(
    network: &TestNetwork,
    hospital: &TestHospital,
    bundles: &[Vec<u8>],
    published: usize,
) {
    for bundle in bundles {
        import_bundle(
            &hospital.node.store,
            &network.linkage,
            US_SSN_SYSTEM,
            bundle,
        )
        .unwrap();
    }
    assert_eq!(hospital.node.publish_pending().await.unwrap(), published);
}

/// What `hospital` discovers at the index under a grant's `claims`.
async fn discover(
    network: &TestNetwork,
    hospital: &TestHospital,
    claims: &GrantClaims,
) -> Vec<DiscoveredPointer> {
    hospital
        .node
        .index
        .discover(&network.discovery(claims))
        .await
        .unwrap()
        .pointers
}

/// Everything in a connector's two data tables, as comparable rows.
type RecordRow = (
    String,
    String,
    i32,
    String,
    Vec<u8>,
    Vec<u8>,
    String,
    Option<String>,
    bool,
    Option<i64>,
);
type ReceivedRow = (String, String, i64, String);

fn stores(hospital: &TestHospital) -> (Vec<RecordRow>, Vec<ReceivedRow>) {
    let url = locus_platform::db::DatabaseUrl::parse(&hospital.config.database_url).unwrap();
    let pool = locus_platform::db::connect(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let records: Vec<RecordRow> = records::table
        .select((
            records::resource_type,
            records::resource_id,
            records::version,
            records::patient_key,
            records::salt,
            records::commitment,
            records::content,
            records::published_pointer,
            records::current,
            records::withdrawn_at,
        ))
        .order((
            records::resource_type,
            records::resource_id,
            records::version,
        ))
        .load(&mut *conn)
        .unwrap();
    let received: Vec<ReceivedRow> = received_results::table
        .select((
            received_results::id,
            received_results::pointer_id,
            received_results::receipt_index,
            received_results::content,
        ))
        .order(received_results::id)
        .load(&mut *conn)
        .unwrap();
    (records, received)
}

/// The ledger's size once nothing has been added for longer than a
/// checkpoint interval (a checkpoint follows new entries within 0.5 s).
async fn settled_size(network: &TestNetwork) -> u64 {
    let mut size = network.admin.checkpoint().await.size;
    let mut quiet = 0;
    while quiet < 8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = network.admin.checkpoint().await.size;
        if now == size {
            quiet += 1;
        } else {
            (size, quiet) = (now, 0);
        }
    }
    size
}

/// The entries logged at or after index `from`, as far as checkpoints cover.
async fn entries_from(network: &TestNetwork, from: u64) -> Vec<Value> {
    let query = match from.checked_sub(1) {
        Some(after) => format!("after={after}&limit=1000"),
        None => "limit=1000".to_owned(),
    };
    let page = network.ledger_entries(&query).await;
    page.entries
        .into_iter()
        .map(|e| json!({"index": e.index, "entry": e.entry}))
        .collect()
}

fn event(logged: &Value) -> &Value {
    &logged["entry"]["entry"]["event"]
}

/// Exactly one entry was added since `from`: A's `access.refused` of B's
/// request under `grant`, for `reason`. Returns the ledger's new size.
async fn refused_once(
    network: &TestNetwork,
    from: u64,
    grant: &GrantClaims,
    reason: &str,
    case: &str,
) -> u64 {
    let mut added = Vec::new();
    for _ in 0..100 {
        added = entries_from(network, from).await;
        if added.iter().any(|e| event(e)["type"] == "access.refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let types: Vec<&Value> = added.iter().map(|e| &event(e)["type"]).collect();
    assert_eq!(
        added.len(),
        1,
        "{case}: one refusal and nothing else is logged, got {types:?}"
    );
    let refusal = event(&added[0]);
    assert_eq!(refusal["type"], "access.refused", "{case}");
    assert_eq!(refusal["reason"], reason, "{case}");
    assert_eq!(refusal["requester"], "hospital-b", "{case}");
    assert_eq!(refusal["grant"], grant.jti.to_string(), "{case}");
    // The granted patient's key, never that of the record asked for.
    assert_eq!(refusal["subject"], grant.sub.to_string(), "{case}");
    assert_eq!(
        added[0]["entry"]["entry"]["submitter"], "hospital-a",
        "{case}"
    );
    added[0]["index"].as_u64().unwrap() + 1
}

fn request(grant: &str, pointer: PointerId, sealed: &[u8]) -> RetrieveRequest {
    use base64::Engine as _;
    RetrieveRequest {
        grant: Some(grant.to_owned()),
        pointer_id: pointer,
        sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
    }
}

/// A body sealed to A's public key, as anyone in the consortium can.
fn forge(
    a: &TestHospital,
    body: &PointerBody,
    pointer: PointerId,
    patient: &PatientKey,
) -> Vec<u8> {
    body.seal(&a.node.x25519.public_key(), &pointer, patient, &a.id)
        .unwrap()
}

fn published(record: &Record) -> PointerId {
    record
        .published_pointer
        .unwrap_or_else(|| panic!("{record:?} is published"))
}

async fn forged_and_stale_pointers(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
    let (a, b) = network.hospitals_a_b();
    let (x, y) = (network.patient_key(SSN_X), network.patient_key(SSN_Y));
    let y_bundle = lab_bundle(PATIENT_Y, SSN_Y, &[obs(9, "2339-0", 88.0)]);
    publishes(&network, a, &[x_labs(5.4), y_bundle], 5).await;

    let (grant, claims) = network.grant(b, &x, LABS, None);
    let discovered = discover(&network, b, &claims).await;
    assert_eq!(discovered.len(), 4, "B discovers X's four results at A");
    let mut xs: Vec<Record> = a.node.store.current_for_patient(&x).unwrap();
    xs.sort_by_key(|r| r.effective_date);
    let sealed_of = |pointer: PointerId| {
        use base64::Engine as _;
        let found = discovered.iter().find(|p| p.pointer_id == pointer).unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(&found.sealed)
            .unwrap()
    };
    let (r1, r2, r3, r4) = (&xs[0], &xs[1], &xs[2], &xs[3]);
    let (p1, p2, p3, p4) = (published(r1), published(r2), published(r3), published(r4));
    let ry = a.node.store.current_for_patient(&y).unwrap().pop().unwrap();
    let py = published(&ry);

    // The setup is sound: the genuine pointer is released under this grant.
    let released = b
        .node
        .request_retrieval(&a.url, &request(&grant, p1, &sealed_of(p1)))
        .await
        .unwrap();
    let mut size = settled_size(&network).await;
    let logged = network
        .admin
        .ledger
        .entry(released.receipt.index)
        .await
        .unwrap();
    assert!(String::from_utf8(logged)
        .unwrap()
        .contains("record.retrieved"));

    let body1 = pointer_body(r1).unwrap();
    let body2 = pointer_body(r2).unwrap();
    let mut wrong_salt = body1.clone();
    wrong_salt.salt = [0x5a; 32];
    let mut wrong_commitment = body1.clone();
    wrong_commitment.commitment = r2.commitment;
    let unknown = PointerId::new_random();
    let cases: Vec<(&str, PointerId, Vec<u8>, &str)> = vec![
        // The commitment of an in-grant record with a wrong salt: the case that
        // was logged as a release and then failed.
        (
            "a forged body with a wrong salt",
            p1,
            forge(a, &wrong_salt, p1, &x),
            "tampered_pointer",
        ),
        (
            "a forged body with another record's commitment",
            p1,
            forge(a, &wrong_commitment, p1, &x),
            "tampered_pointer",
        ),
        (
            "another in-grant record's whole body under this id",
            p1,
            forge(a, &body2, p1, &x),
            "tampered_pointer",
        ),
        (
            "another patient's record, its body sealed for the granted patient",
            py,
            forge(a, &pointer_body(&ry).unwrap(), py, &x),
            "wrong_patient",
        ),
        (
            "an unknown pointer id with a well-formed body",
            unknown,
            forge(a, &body1, unknown, &x),
            "tampered_pointer",
        ),
    ];
    let before = stores(a);
    let received_before = stores(b);
    for (case, pointer, sealed, reason) in cases {
        let result = b
            .node
            .request_retrieval(&a.url, &request(&grant, pointer, &sealed))
            .await;
        assert_refused(result, 403, reason, case);
        size = refused_once(&network, size, &claims, reason, case).await;
        assert!(stores(a) == before, "{case}: A's store is unchanged");
        assert!(
            stores(b) == received_before,
            "{case}: B's store is unchanged"
        );
    }

    // A withdrawn pointer: A stops releasing it at once, whatever the index says.
    assert_eq!(a.node.withdraw(vec![p3]).await.unwrap(), 1);
    let listed = discover(&network, b, &claims).await;
    assert!(
        listed.iter().all(|p| p.pointer_id != p3),
        "the index no longer lists it"
    );
    // A corrected result supersedes the version its old pointer names.
    let report =
        import_bundle(&a.node.store, &network.linkage, US_SSN_SYSTEM, &x_labs(5.9)).unwrap();
    assert_eq!(report.new_versions, 1);
    assert_eq!(a.node.publish_pending().await.unwrap(), 1);
    size = settled_size(&network).await;
    let before = stores(a);
    for (case, pointer) in [("a withdrawn pointer", p3), ("a superseded pointer", p4)] {
        let result = b
            .node
            .request_retrieval(&a.url, &request(&grant, pointer, &sealed_of(pointer)))
            .await;
        assert_refused(result, 403, "tampered_pointer", case);
        size = refused_once(&network, size, &claims, "tampered_pointer", case).await;
        assert!(stores(a) == before, "{case}: A's store is unchanged");
        assert!(
            stores(b) == received_before,
            "{case}: B's store is unchanged"
        );
    }

    // Nothing was released by any of these, and the genuine pointers of what
    // is current still are.
    let releases = network
        .ledger_entries("type=record.retrieved&limit=1000")
        .await;
    assert_eq!(
        releases.entries.len(),
        1,
        "only the first, genuine request was released"
    );
    b.node
        .request_retrieval(&a.url, &request(&grant, p2, &sealed_of(p2)))
        .await
        .unwrap();
    network.stop().await;
}

/// Posts `body` as JSON to A's retrieval route with B's certificate.
async fn post_raw(
    b: &TestHospital,
    a: &TestHospital,
    body: Vec<u8>,
    content_type: &str,
) -> reqwest::Response {
    b.node
        .http
        .post(format!("{}/connector/retrieve", a.url))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn assert_json_error(response: reqwest::Response, status: u16, code: &str, case: &str) {
    assert_eq!(response.status().as_u16(), status, "{case}");
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{case}: not a JSON body: {e}"));
    assert_eq!(body["error"], code, "{case}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: {body}"
    );
}

async fn malformed_retrievals(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
    let (a, b) = network.hospitals_a_b();
    let x = network.patient_key(SSN_X);
    publishes(&network, a, &[x_labs(5.4)], 4).await;
    let (grant, claims) = network.grant(b, &x, LABS, None);
    let pointer = discover(&network, b, &claims).await.remove(0);
    let (id, sealed) = (pointer.pointer_id.to_string(), pointer.sealed.clone());

    let size = settled_size(&network).await;
    let (a_before, b_before) = (stores(a), stores(b));
    let json = |v: Value| serde_json::to_vec(&v).unwrap();
    let too_long_grant = "a".repeat(locus_protocol::grant_token::MAX_GRANT_TOKEN_LEN + 1);
    let oversized = "A".repeat(40 * 1024);
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("a JSON array of the fields", json(json!([grant, id, sealed])), "application/json", 400, "bad_request"),
        ("a JSON string", json(json!("retrieve")), "application/json", 400, "bad_request"),
        ("a JSON number", b"5".to_vec(), "application/json", 400, "bad_request"),
        ("JSON null", b"null".to_vec(), "application/json", 400, "bad_request"),
        ("not JSON", b"{grant:".to_vec(), "application/json", 400, "bad_request"),
        (
            "an unknown field",
            json(json!({"grant": grant, "pointer_id": id, "sealed": sealed, "extra": 1})),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "a field twice",
            format!(r#"{{"grant":"{grant}","pointer_id":"{id}","pointer_id":"{id}","sealed":"{sealed}"}}"#).into_bytes(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "a pointer id that is not a UUID",
            json(json!({"grant": grant, "pointer_id": "../../etc", "sealed": sealed})),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "sealed not base64",
            json(json!({"grant": grant, "pointer_id": id, "sealed": "not base64!"})),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "sealed empty",
            json(json!({"grant": grant, "pointer_id": id, "sealed": ""})),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "sealed beyond the largest sealed pointer",
            json(json!({"grant": grant, "pointer_id": id, "sealed": "A".repeat(8 * 1024)})),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "a grant longer than any grant token",
            json(json!({"grant": too_long_grant, "pointer_id": id, "sealed": sealed})),
            "application/json",
            400,
            "bad_request",
        ),
        (
            "a body beyond what the route needs",
            json(json!({"grant": grant, "pointer_id": id, "sealed": oversized})),
            "application/json",
            413,
            "too_large",
        ),
        (
            "not declared as JSON",
            json(json!({"grant": grant, "pointer_id": id, "sealed": sealed})),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
    ];
    for (case, body, content_type, status, code) in cases {
        assert_json_error(post_raw(b, a, body, content_type).await, status, code, case).await;
    }
    // A known route asked with another method (and, where checked, the
    // methods it allows).
    for (method, path, allow, case) in [
        (
            Method::GET,
            "/connector/retrieve",
            Some("POST"),
            "GET on the retrieval route",
        ),
        (Method::POST, "/healthz", None, "POST on /healthz"),
    ] {
        let url = format!("{}{path}", a.url);
        let response = b.node.http.request(method, url).send().await.unwrap();
        if let Some(allow) = allow {
            let allowed = response.headers().get("allow");
            assert_eq!(allowed.and_then(|v| v.to_str().ok()), Some(allow));
        }
        assert_json_error(response, 405, "method_not_allowed", case).await;
    }

    // The edges of HTTP answer in the same JSON.
    let long = b
        .node
        .http
        .post(format!(
            "{}/connector/retrieve?{}",
            a.url,
            "q".repeat(9 * 1024)
        ))
        .json(&json!({"grant": grant, "pointer_id": id, "sealed": sealed}))
        .send()
        .await
        .unwrap();
    assert_json_error(long, 414, "uri_too_long", "a request target too long").await;
    let mut many = b
        .node
        .http
        .post(format!("{}/connector/retrieve", a.url))
        .json(&json!({"grant": grant, "pointer_id": id, "sealed": sealed}));
    for n in 0..80 {
        many = many.header(format!("x-filler-{n}"), "1");
    }
    let many = many.send().await.unwrap();
    assert_json_error(many, 431, "headers_too_large", "too many header fields").await;

    // The API document lists what the route answers.
    let doc = get_json(&b.node.http, format!("{}/openapi.json", a.url)).await;
    let responses = &doc["paths"]["/connector/retrieve"]["post"]["responses"];
    for status in [
        "200", "400", "401", "403", "405", "409", "413", "415", "500", "503",
    ] {
        assert!(responses[status].is_object(), "the document lists {status}");
    }
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} resolves"
        );
    }

    // None of these is a refusal: the ledger and both stores are unchanged.
    assert_eq!(
        settled_size(&network).await,
        size,
        "malformed requests log nothing: {:?}",
        entries_from(&network, size).await
    );
    assert!(
        stores(a) == a_before && stores(b) == b_before,
        "malformed requests change no store"
    );

    // A well-formed request without a grant is a refusal, and is logged; the
    // genuine one is released.
    let mut no_grant = request(&grant, pointer.pointer_id, &[]);
    no_grant.grant = None;
    no_grant.sealed = sealed.clone();
    assert_refused(
        b.node.request_retrieval(&a.url, &no_grant).await,
        403,
        "no_grant",
        "no grant",
    );
    let mut genuine = no_grant.clone();
    genuine.grant = Some(grant.clone());
    b.node.request_retrieval(&a.url, &genuine).await.unwrap();
    network.stop().await;
}

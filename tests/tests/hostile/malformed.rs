//! Malformed input: bodies that are not the object a route takes, broken or
//! hostile JSON, queries and path parameters that do not parse, device keys
//! that are not public keys of an accepted kind. Each is a 400 (or 404 for a
//! path that names nothing), never a logged refusal, never a change.

use locus_protocol::device::DeviceSigner;
use locus_tests::hostile::{Expect, Suite};
use reqwest::Method;
use serde_json::json;

use crate::{enrolment_code, Fixture};

group!("malformed": bodies, queries, fields, device_keys);

/// Every JSON route, with the client that may call it (and a session for the
/// patients' signed-in routes).
fn json_routes(f: &Fixture) -> Vec<(String, reqwest::Client, String, Option<String>)> {
    let (i, c, m, p) = (&f.index, &f.connector_a, &f.members, &f.patients);
    let session = Some(f.phone1.session.clone());
    let route = |client: &reqwest::Client, base: &str, path: &str, session: Option<String>| {
        (
            format!("POST {path}"),
            client.clone(),
            format!("{base}{path}"),
            session,
        )
    };
    vec![
        route(&f.a.client, i, "/ledger/entries", None),
        route(&f.a.client, i, "/ledger/cosignatures", None),
        route(&f.a.client, i, "/index/pointers", None),
        route(&f.a.client, i, "/index/pointers/withdraw", None),
        route(&f.b.client, i, "/index/discover", None),
        route(&f.b.client, c, "/connector/retrieve", None),
        route(&f.a.client, m, "/consent/enrolment-codes", None),
        route(&f.b.client, m, "/consent/requests", None),
        route(&f.b.client, m, "/consent/emergency", None),
        route(&f.anonymous, p, "/patient/enrol", None),
        route(&f.anonymous, p, "/patient/challenge", None),
        route(&f.anonymous, p, "/patient/session", None),
        route(&f.phone1.client, p, "/patient/decisions", session.clone()),
        route(&f.phone1.client, p, "/patient/revocations", session.clone()),
        route(&f.phone1.client, p, "/patient/rules", session.clone()),
        route(&f.phone1.client, p, "/patient/rule-revocations", session),
    ]
}

async fn bodies(f: &Fixture, s: &mut Suite) {
    // Deeper than any parser should recurse, small enough for every route.
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    // Every body here is sent as JSON and is a 400.
    let not_an_object: [(&str, Vec<u8>); 10] = [
        ("an empty JSON array", b"[]".to_vec()),
        ("an array holding an object", b"[{}]".to_vec()),
        ("a JSON string", b"\"object\"".to_vec()),
        ("a JSON number", b"42".to_vec()),
        ("JSON null", b"null".to_vec()),
        ("truncated JSON", b"{\"a\":".to_vec()),
        ("an empty body", Vec::new()),
        ("an unknown field", b"{\"unexpected\":true}".to_vec()),
        ("bytes that are not UTF-8", vec![0xff, 0xfe, b'{', b'}']),
        ("arrays nested 300 deep", deep.into_bytes()),
    ];
    let variants: Vec<(&str, Vec<u8>, &str, Expect)> = not_an_object
        .into_iter()
        .map(|(what, body)| (what, body, "application/json", Expect::status(400)))
        .chain([(
            "an object as text/plain",
            b"{}".to_vec(),
            "text/plain",
            Expect::one_of(&[400, 415]),
        )])
        .collect();
    for (route, client, url, session) in json_routes(f) {
        for (what, body, content_type, expect) in &variants {
            let mut request = client
                .post(&url)
                .header("content-type", *content_type)
                .body(body.clone());
            if let Some(session) = &session {
                request = request.bearer_auth(session);
            }
            s.probe(&format!("{route} with {what}"), request, expect.clone())
                .await;
        }
    }
}

async fn queries(f: &Fixture, s: &mut Suite) {
    let bad_queries = [
        "/ledger/entries?type=Record.Retrieved",
        "/ledger/entries?type=a%20b",
        "/ledger/entries?subject=xyz",
        "/ledger/entries?grant=not-a-grant",
        "/ledger/entries?submitter=Not%20A%20Member",
        "/ledger/entries?from=yesterday",
        "/ledger/entries?until=2024-13-45T00:00:00Z",
        "/ledger/entries?limit=abc",
        "/ledger/entries?after=-1",
        "/ledger/entries?unexpected=1",
        "/ledger/checkpoints?from=-1",
        "/ledger/checkpoints?limit=many",
        "/ledger/proof/inclusion?index=0",
        "/ledger/proof/inclusion?index=5&size=3",
        "/ledger/proof/inclusion?index=a&size=b",
        "/ledger/proof/consistency?first=5&second=3",
        "/ledger/proof/consistency?first=1",
    ];
    let regulator = &f.regulator.client;
    s.get_each(regulator, &f.index, &bad_queries, &Expect::status(400))
        .await;
    let not_found = Expect::one_of(&[400, 404]);
    let bad_ledger_paths = [
        "/ledger/entries/abc",
        "/ledger/entries/-1",
        "/ledger/tile/x/y",
        "/ledger/tile/0/-1",
        "/ledger/tile/entries/",
        "/ledger/tile/0/000.p/0",
        "/ledger/tile/0/000.p/257",
        "/ledger/tile/0/x001/000",
    ];
    s.get_each(regulator, &f.index, &bad_ledger_paths, &not_found)
        .await;
    let bad_consent_paths = [
        "/consent/requests/not-a-request",
        "/consent/grants/not-a-grant/fhir",
        "/consent/requests/%00",
    ];
    s.get_each(&f.b.client, &f.members, &bad_consent_paths, &not_found)
        .await;
    let phone = &f.phone1;
    for (method, path) in [
        (Method::DELETE, "/patient/devices/not-a-thumbprint"),
        (Method::GET, "/patient/grants/not-a-grant/fhir"),
    ] {
        let request = phone.client.request(method.clone(), phone.url(path));
        s.probe(
            &format!("{method} {path}"),
            request.bearer_auth(&phone.session),
            not_found.clone(),
        )
        .await;
    }
}

/// Objects of the right shape with a field that does not parse.
async fn fields(f: &Fixture, s: &mut Suite) {
    let requests = format!("{}/consent/requests", f.members);
    let request = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut body = f.request_body(&f.p1);
        change(&mut body);
        f.b.client.post(&requests).json(&body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("a request with an unknown purpose", request(&|b| b["purpose"] = json!("XYZ"))),
        ("a request with an empty scope", request(&|b| b["scope"] = json!(""))),
        ("a request with a scope that is no SMART scope", request(&|b| b["scope"] = json!("everything"))),
        ("a request with a write scope", request(&|b| b["scope"] = json!("patient/Observation.cud"))),
        ("a request for a subject that is not hex", request(&|b| b["subject"] = json!("zz".repeat(32)))),
        ("a request for a subject of 63 characters", request(&|b| b["subject"] = json!("a".repeat(63)))),
        ("a request with a month 13", request(&|b| b["data_period"] = json!({"start": "2024-13-01", "end": "2024-12-31"}))),
        ("a request whose period ends before it starts", request(&|b| b["data_period"] = json!({"start": "2024-06-01", "end": "2024-01-31"}))),
        ("a request with a period of another shape", request(&|b| b["data_period"] = json!(["2024-01-01", "2024-12-31"]))),
        ("a request with a duration in words", request(&|b| b["duration_secs"] = json!("a week"))),
        ("a request with a fractional duration", request(&|b| b["duration_secs"] = json!(1.5))),
        ("a request without a subject", request(&|b| b.as_object_mut().unwrap().remove("subject").map(drop).unwrap_or(()))),
        (
            "an enrolment code for a subject that is not a patient key",
            f.a.client.post(format!("{}/consent/enrolment-codes", f.members)).json(&json!({ "subject": "patient-1" })),
        ),
        (
            "an emergency with a scope that is no SMART scope",
            f.b.client.post(format!("{}/consent/emergency", f.members)).json(&json!({
                "subject": f.p1, "scope": "all", "reason": "unconscious on arrival", "duration_secs": 3600
            })),
        ),
        (
            "a discovery token that is a number",
            f.b.client.post(format!("{}/index/discover", f.index)).json(&json!({ "discovery": 42 })),
        ),
        (
            "a retrieval with a pointer id that is no UUID",
            f.b.client.post(format!("{}/connector/retrieve", f.connector_a)).json(&json!({
                "grant": f.live.token, "pointer_id": "pointer-1", "sealed": f.live.pointers[0].sealed
            })),
        ),
        (
            "a pointer with a scope tag that is not hex",
            f.a.client.post(format!("{}/index/pointers", f.index)).json(&json!({ "pointers": [{
                "pointer_id": uuid::Uuid::new_v4(), "patient_key": f.p1, "scope_tags": ["tag"], "sealed": "AAAA"
            }] })),
        ),
        (
            "a cosignature for a tree size in words",
            f.a.client.post(format!("{}/ledger/cosignatures", f.index)).json(&json!({ "tree_size": "ten", "cosignature": "x" })),
        ),
    ];
    for (what, request) in cases {
        s.probe(what, request, Expect::status(400)).await;
    }
    let phone = &f.phone1;
    let decide = |body: serde_json::Value| phone.request("/patient/decisions", &body);
    let terms = phone.terms(f.pending[4]).await;
    let decision = phone.decision(&phone.approval(&terms));
    let mut maybe = decision.clone();
    maybe["decision"]["decision"] = json!("maybe");
    let mut numeric = decision.clone();
    numeric["signature"] = json!(12345);
    let mut no_decision = decision.clone();
    no_decision.as_object_mut().unwrap().remove("decision");
    for (what, body) in [
        ("a decision that is neither", maybe),
        ("a signature that is a number", numeric),
        ("no decision", no_decision),
    ] {
        s.probe(what, decide(body), Expect::status(400)).await;
    }
}

/// Enrolment with device keys that are not public keys of an accepted kind:
/// refused before the code is redeemed, so the code still works after.
async fn device_keys(f: &Fixture, s: &mut Suite) {
    let code = enrolment_code(f, &f.p2).await;
    s.settled();
    let good = serde_json::to_value(DeviceSigner::generate_p256().public_jwk()).unwrap();
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut key = good.clone();
        change(&mut key);
        key
    };
    let keys = vec![
        ("a P-384 key", with(&|k| k["crv"] = json!("P-384"))),
        ("a private key", with(&|k| k["d"] = json!("AAAA"))),
        (
            "an RSA key",
            json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" }),
        ),
        (
            "a key without kty",
            with(&|k| {
                k.as_object_mut()
                    .unwrap()
                    .remove("kty")
                    .map(drop)
                    .unwrap_or(())
            }),
        ),
        (
            "a key whose x is not base64url",
            with(&|k| k["x"] = json!("%%%")),
        ),
        (
            "a key whose point is not on the curve",
            with(&|k| k["y"] = k["x"].clone()),
        ),
        (
            "an Ed25519 key of 31 bytes",
            json!({ "kty": "OKP", "crv": "Ed25519", "x": crate::b64(&[1u8; 31]) }),
        ),
        ("a key that is a string", json!("a key")),
        (
            "a key of 8 KiB",
            with(&|k| k["pad"] = json!("A".repeat(8192))),
        ),
    ];
    let url = format!("{}/patient/enrol", f.patients);
    for (what, key) in keys {
        s.probe(
            &format!("enrolment with {what}"),
            f.anonymous
                .post(&url)
                .json(&json!({ "code": code, "device_key": key })),
            Expect::one_of(&[400, 413]),
        )
        .await;
    }
    // The code was not used up by any of them.
    let response = f
        .anonymous
        .post(&url)
        .json(&json!({ "code": code, "device_key": good }))
        .send()
        .await
        .unwrap();
    s.settled();
    let status = response.status().as_u16();
    s.check("the code survives malformed keys", status == 200, || {
        format!("the code was used up: {status}")
    });
}

//! Each listener of the running consent service serves, at `/openapi.json`, an
//! OpenAPI 3 document of exactly the routes it serves: every route is
//! documented, and none of the other listener's.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_tests::network::TestNetwork;
use locus_tests::Backend;
use serde_json::{json, Value};

/// The members' API (mutual TLS): path and method.
const MEMBER_ROUTES: &[(&str, &str)] = &[
    ("/consent/enrolment-codes", "post"),
    ("/consent/requests", "post"),
    ("/consent/requests/{id}", "get"),
    ("/consent/emergency", "post"),
    ("/consent/grants/{id}/fhir", "get"),
];

/// The patients' API: path and method.
const PATIENT_ROUTES: &[(&str, &str)] = &[
    ("/patient/enrol", "post"),
    ("/patient/challenge", "post"),
    ("/patient/session", "post"),
    ("/patient/requests", "get"),
    ("/patient/decisions", "post"),
    ("/patient/revocations", "post"),
    ("/patient/rules", "post"),
    ("/patient/rules", "get"),
    ("/patient/rule-revocations", "post"),
    ("/patient/grants", "get"),
    ("/patient/grants/{id}/fhir", "get"),
    ("/patient/history", "get"),
    ("/patient/devices/{id}", "delete"),
];

/// What the default service answers for a route the listener does not have.
const NO_ROUTE: &str = "no such resource";

/// A GET of the listener's OpenAPI document, as `client` is answered.
async fn get_document(client: &reqwest::Client, base: &str) -> reqwest::Response {
    client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
}

async fn document(client: &reqwest::Client, base: &str) -> Value {
    let response = get_document(client, base).await;
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{base}/openapi.json is not JSON ({e}): {text}"))
}

/// Calls a route the way no handler acts on (an invalid body, no session, a
/// certificate that is no hospital's) and returns the error body.
async fn call(client: &reqwest::Client, base: &str, path: &str, method: &str) -> Value {
    // A syntactically valid id for each path parameter, so routing, not the
    // path extractor, decides.
    let path = path
        .replace(
            "/requests/{id}",
            "/requests/00000000-0000-4000-8000-000000000000",
        )
        .replace("/devices/{id}", &format!("/devices/{}", "A".repeat(43)))
        .replace("{id}", "00000000-0000-4000-8000-000000000000");
    let url = format!("{base}{path}");
    let request = match method {
        "get" => client.get(url),
        "post" => client.post(url).json(&json!({})),
        "delete" => client.delete(url),
        other => panic!("no test for method {other}"),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status >= 400,
        "{method} {path} acted on a request it should refuse: {status} {body}"
    );
    body
}

/// The document lists exactly `served`, each with its method; the listener
/// serves each of them and none of `absent`.
async fn check_listener(
    client: &reqwest::Client,
    base: &str,
    served: &[(&str, &str)],
    absent: &[(&str, &str)],
    tag: &str,
) {
    let doc = document(client, base).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3."),
        "{base}: openapi is {:?}",
        doc["openapi"]
    );
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("{base}: no paths in {doc}"));
    for (path, method) in served {
        let operation = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{base}: {path} is not documented"))[*method];
        assert!(
            operation.is_object(),
            "{base}: {method} {path} is not documented"
        );
        assert_eq!(operation["tags"], json!([tag]), "{base}: {method} {path}");
        let error = call(client, base, path, method).await;
        assert_ne!(
            error["message"], NO_ROUTE,
            "{base}: {method} {path} is documented but not served"
        );
    }
    for (path, method) in absent {
        assert!(
            !paths.contains_key(*path),
            "{base}: {path} belongs to the other listener"
        );
        let error = call(client, base, path, method).await;
        assert_eq!(
            error["message"], NO_ROUTE,
            "{base}: {method} {path} is served here too"
        );
    }
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut listed: Vec<&str> = served.iter().map(|(path, _)| *path).collect();
    documented.sort_unstable();
    listed.sort_unstable();
    listed.dedup();
    assert_eq!(documented, listed, "{base}: documented paths");
}

#[actix_web::test]
async fn each_listener_documents_exactly_its_own_routes() {
    let network = TestNetwork::start(Backend::Sqlite, &["hospital-a"]).await;
    let consent = &network.consent_service;

    // The members' listener serves active members only: a hospital's certificate.
    let hospital = &network.hospital("hospital-a").node.http;
    check_listener(
        hospital,
        &consent.member_url,
        MEMBER_ROUTES,
        PATIENT_ROUTES,
        "consent-members",
    )
    .await;
    let members = document(hospital, &consent.member_url).await;
    // The authority's certificate is the consortium's, but no member's.
    let refused = get_document(&network.admin.http, &consent.member_url).await;
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(
        members["components"]["securitySchemes"]["mutual_tls"]["type"],
        "mutualTLS"
    );
    assert_eq!(members["security"], json!([{ "mutual_tls": [] }]));

    let phone = network.phone();
    check_listener(
        &phone,
        &consent.patient_url,
        PATIENT_ROUTES,
        MEMBER_ROUTES,
        "consent-patients",
    )
    .await;
    let patients = document(&phone, &consent.patient_url).await;
    assert_eq!(
        patients["components"]["securitySchemes"]["session"]["scheme"],
        "bearer"
    );
    // Signing in needs no session; reading the patient's grants does.
    assert!(patients["paths"]["/patient/session"]["post"]
        .get("security")
        .is_none());
    assert_eq!(
        patients["paths"]["/patient/grants"]["get"]["security"],
        json!([{ "session": [] }])
    );

    network.stop().await;
}

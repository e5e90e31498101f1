//! Each index route reads only the body it needs, and only a JSON object:
//! a body over the route's limit is a 413, anything that is not the object
//! the route takes (an array, at the top or in place of a nested object) is
//! a 400. Neither is a discovery, so neither is logged as a refusal; the
//! ledger and the index are unchanged.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use locus_index_service::api::{MAX_BATCH, MAX_SCOPE_TAGS, MAX_SEALED_BYTES};
use locus_index_service::client::encode_sealed;
use locus_platform::tls::http_client;
use locus_protocol::grant_token::MAX_GRANT_TOKEN_LEN;
use locus_protocol::ids::PointerId;
use locus_tests::index::random_bytes32;
use locus_tests::network::TestNetwork;
use locus_tests::{both_backends, TestDb};
use serde_json::{json, Value};

both_backends!(index_bodies_are_bounded_objects);

/// The tree size, and every entry the index itself logged.
async fn ledger_state(network: &TestNetwork) -> (u64, usize) {
    let checkpoint = network.admin.checkpoint().await;
    let page = network
        .admin
        .get_json("/ledger/entries?submitter=index&limit=1000")
        .await;
    (checkpoint.size, page["entries"].as_array().unwrap().len())
}

fn hex32() -> String {
    hex(&random_bytes32())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The largest pointer the index takes: 64 tags, a sealed body of 4096
/// bytes, and the pointer it supersedes.
fn largest_pointer(supersedes: &Value) -> Value {
    json!({
        "pointer_id": PointerId::new_random().to_string(),
        "patient_key": hex32(),
        "scope_tags": (0..MAX_SCOPE_TAGS).map(|_| hex32()).collect::<Vec<_>>(),
        "sealed": encode_sealed(&vec![7u8; MAX_SEALED_BYTES]),
        "supersedes": supersedes,
    })
}

fn small_pointer() -> Value {
    json!({
        "pointer_id": PointerId::new_random().to_string(),
        "patient_key": hex32(),
        "scope_tags": [hex32()],
        "sealed": encode_sealed(b"sealed"),
    })
}

async fn index_bodies_are_bounded_objects(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a"]).await;
    let hospital = network.hospital("hospital-a");
    let http = http_client(&hospital.tls, Duration::from_secs(60)).unwrap();
    let post = |path: &str, body: Vec<u8>, content_type: &str| {
        http.post(format!("{}{path}", network.index_url))
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    let expect = |status: u16, code: &'static str| {
        move |response: reqwest::Response| async move {
            let got = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(code)),
                "{body}"
            );
            assert!(!body["message"].as_str().unwrap().is_empty());
        }
    };
    let json = "application/json";
    network.admin.checkpoint_at_least(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = ledger_state(&network).await;

    // Discovery: anything but an object is malformed, not a refusal to log.
    for body in [
        "[]",
        "[null]",
        r#"["a.b.c"]"#,
        r#""a.b.c""#,
        "1",
        "null",
        "true",
        r#"{"discovery": ["a.b.c"]}"#,
        r#"{"discovery": {}}"#,
    ] {
        expect(400, "bad_request")(post("/index/discover", body.into(), json).await.unwrap()).await;
    }
    let long = json!({"discovery": "a".repeat(MAX_GRANT_TOKEN_LEN + 1)}).to_string();
    expect(400, "bad_request")(post("/index/discover", long.into(), json).await.unwrap()).await;
    let over = json!({"discovery": "a".repeat(MAX_GRANT_TOKEN_LEN + 2048)}).to_string();
    expect(413, "too_large")(post("/index/discover", over.into(), json).await.unwrap()).await;
    expect(415, "unsupported_media_type")(
        post("/index/discover", b"{}".to_vec(), "text/plain")
            .await
            .unwrap(),
    )
    .await;

    // Publishing: a pointer written as an array is not a pointer, even with
    // every value valid; a body a full batch cannot reach is not read.
    let pointer = largest_pointer(&json!(PointerId::new_random().to_string()));
    let as_array = json!({"pointers": [[
        pointer["pointer_id"], pointer["patient_key"], pointer["scope_tags"], pointer["sealed"]
    ]]});
    for body in [
        as_array.to_string(),
        "[]".into(),
        json!([[pointer]]).to_string(),
        json!({"pointers": pointer}).to_string(),
    ] {
        expect(400, "bad_request")(post("/index/pointers", body.into(), json).await.unwrap()).await;
    }
    let oversized = vec![b' '; 11 * 1024 * 1024];
    expect(413, "too_large")(post("/index/pointers", oversized, json).await.unwrap()).await;

    // Withdrawing: the same, at its own, smaller limit.
    for body in [
        "[]".to_owned(),
        json!([[PointerId::new_random().to_string()]]).to_string(),
        r#"{"pointer_ids": "x"}"#.to_owned(),
    ] {
        expect(400, "bad_request")(
            post("/index/pointers/withdraw", body.into(), json)
                .await
                .unwrap(),
        )
        .await;
    }
    let ids: Vec<String> = (0..MAX_BATCH + 100)
        .map(|_| PointerId::new_random().to_string())
        .collect();
    let over = json!({"pointer_ids": ids}).to_string();
    expect(413, "too_large")(
        post("/index/pointers/withdraw", over.into(), json)
            .await
            .unwrap(),
    )
    .await;

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        ledger_state(&network).await,
        before,
        "nothing malformed reached the ledger"
    );

    // What the routes need still fits: a full batch of the largest pointers
    // (superseding a batch of small ones), and withdrawing a full batch.
    let post_ok = |path: &'static str, body: String| async move {
        let response = post(path, body.into(), json).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response
    };
    let small: Vec<Value> = (0..MAX_BATCH).map(|_| small_pointer()).collect();
    post_ok("/index/pointers", json!({"pointers": small}).to_string()).await;
    let batch: Vec<Value> = small
        .iter()
        .map(|p| largest_pointer(&p["pointer_id"]))
        .collect();
    let ids: Vec<Value> = batch.iter().map(|p| p["pointer_id"].clone()).collect();
    let body = json!({"pointers": batch}).to_string();
    assert!(body.len() > 8 * 1024 * 1024, "{} bytes", body.len());
    post_ok("/index/pointers", body).await;
    let response = post_ok(
        "/index/pointers/withdraw",
        json!({"pointer_ids": ids}).to_string(),
    )
    .await;
    let withdrawn: Value = response.json().await.unwrap();
    assert_eq!(withdrawn["withdrawn"], MAX_BATCH, "{withdrawn}");
    network.stop().await;
}

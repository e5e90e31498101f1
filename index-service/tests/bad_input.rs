//! Every kind of bad input gets a clear 4xx JSON error and changes nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_protocol::directory::{MemberRole, MemberStatus};
use locus_tests::index::{
    now_ms, random_retrieval, test_config, InProcess, TestClient, TestMember,
};
use locus_tests::{both_backends, TestDb};

mod common;
use common::{cases, start_admitted, state};

both_backends!(
    bad_input_is_refused_and_changes_nothing,
    numbers_beyond_storage_are_refused,
    service_endpoints_answer,
    openapi_lists_statuses_and_shapes
);

async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{code}: {content_type}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
}

/// Submits `body` and checks that it is refused with `status` and `code`.
async fn submit_refused(client: &TestClient, body: Vec<u8>, status: u16, code: &str) {
    expect_error(client.submit(body).await, status, code).await;
}

/// Submits the JSON `body` and checks that it is refused with `status` and `code`.
async fn submit_json_refused(
    client: &TestClient,
    body: &serde_json::Value,
    status: u16,
    code: &str,
) {
    submit_refused(client, serde_json::to_vec(body).unwrap(), status, code).await;
}

/// Posts the cosignature `line` for `tree_size` and checks that it is refused as
/// a bad request; the answer's body.
async fn cosign_refused(
    client: &TestClient,
    line: &str,
    tree_size: serde_json::Value,
) -> serde_json::Value {
    let body = serde_json::json!({"tree_size": tree_size, "cosignature": line}).to_string();
    let response = client
        .http
        .post(client.url("/ledger/cosignatures"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "tree size {tree_size}: {body}"
    );
    body
}

async fn bad_input_is_refused_and_changes_nothing(db: TestDb) {
    let member = TestMember::new("hospital-a");
    let stranger = TestMember::new("hospital-z");
    let suspended = TestMember::new("hospital-s");
    let authority = TestMember::authority();
    let service = start_admitted(&db, &authority, &[&member]).await;
    let client = &service.client;
    let admission =
        authority.signed(suspended.update(MemberRole::Hospital, MemberStatus::Active, None));
    let admitted = client.submit_ok(admission.clone()).await;
    let suspension = suspended.update(MemberRole::Hospital, MemberStatus::Suspended, None);
    client.submit_ok(authority.signed(suspension)).await;

    let good = member.retrieval();
    let receipt = client.submit_ok(good.clone()).await;
    client.checkpoint_at_least(4).await;
    let before = state(client).await;
    assert_eq!(before, (4, 4));

    // The same entry again is not a second leaf: the submitter gets its receipt back.
    assert_eq!(client.submit_ok(good.clone()).await, receipt);

    // A signature that does not verify.
    let mut forged: serde_json::Value = serde_json::from_slice(&member.retrieval()).unwrap();
    let sig = forged["sig"].as_str().unwrap().to_owned();
    let flipped = if sig.starts_with('A') {
        sig.replacen('A', "B", 1)
    } else {
        format!("A{}", &sig[1..])
    };
    forged["sig"] = flipped.into();
    submit_json_refused(client, &forged, 403, "bad_signature").await;

    // Signed by a key that is not the member's.
    let mut impostor = TestMember::new("hospital-a");
    impostor.key = locus_protocol::signing::SigningKey::generate();
    submit_refused(client, impostor.retrieval(), 403, "bad_signature").await;

    // Not a member, and a suspended member.
    submit_refused(client, stranger.retrieval(), 403, "unknown_submitter").await;
    submit_refused(client, suspended.retrieval(), 403, "inactive_submitter").await;

    // Only the authority changes the directory: a member cannot admit itself
    // or anyone else, and the authority's key cannot be forged.
    let self_admission = stranger.update(MemberRole::Hospital, MemberStatus::Active, None);
    submit_refused(
        client,
        member.signed(self_admission.clone()),
        403,
        "not_permitted",
    )
    .await;
    let mut fake_authority = TestMember::authority();
    fake_authority.key = locus_protocol::signing::SigningKey::generate();
    submit_refused(
        client,
        fake_authority.signed(self_admission),
        403,
        "bad_signature",
    )
    .await;

    // A member logs only its own acts: not a release in another hospital's
    // name, not a revocation (the consent service's), not a discovery (the index's).
    let other = TestMember::new("hospital-q");
    let someone_elses_release = random_retrieval(&other.id);
    submit_refused(
        client,
        member.signed(someone_elses_release),
        403,
        "not_permitted",
    )
    .await;
    let revocation =
        locus_protocol::entry::Event::GrantRevoked(locus_protocol::entry::GrantRevoked {
            grant: locus_protocol::ids::GrantId::new_random(),
            subject: locus_protocol::ids::PatientKey::from_bytes([1; 32]),
            by_device: None,
        });
    submit_refused(client, member.signed(revocation), 403, "not_permitted").await;

    // Replaying the suspended member's old admission does not reinstate it:
    // the log already holds it, so it is neither a new leaf nor a change.
    assert_eq!(client.submit_ok(admission).await, admitted);
    submit_refused(client, suspended.retrieval(), 403, "inactive_submitter").await;

    // Not canonical: whitespace, reordered keys, and not JSON at all.
    let pretty = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(&member.retrieval()).unwrap(),
    )
    .unwrap();
    submit_refused(client, pretty, 400, "malformed_entry").await;
    let text = String::from_utf8(member.retrieval()).unwrap();
    let reordered = format!(
        "{{\"sig\":{},\"entry\":{}}}",
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()["sig"])
            .unwrap(),
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()["entry"])
            .unwrap()
    );
    submit_refused(client, reordered.into_bytes(), 400, "malformed_entry").await;
    submit_refused(client, b"not json".to_vec(), 400, "malformed_entry").await;
    submit_refused(client, Vec::new(), 400, "malformed_entry").await;

    // An unknown field inside an otherwise signed entry.
    let mut extra: serde_json::Value = serde_json::from_slice(&member.retrieval()).unwrap();
    extra["entry"]["name"] = "Jane Doe".into();
    submit_json_refused(client, &extra, 400, "malformed_entry").await;

    // Over 64 KiB.
    let oversized = vec![b' '; 64 * 1024 + 1];
    submit_refused(client, oversized, 413, "entry_too_large").await;

    // An entry dated an hour ago.
    let stale = member
        .entry_at(random_retrieval(&member.id), now_ms() - 3_600_000)
        .to_canonical_bytes();
    submit_refused(client, stale, 400, "clock_skew").await;

    // Malformed and out-of-range proof queries, tiles and entries that are not there.
    for [status, code, path] in cases(include_str!("bad_input_cases/small_log.txt")) {
        expect_error(client.get(path).await, status.parse().unwrap(), code).await;
    }

    // Past the checkpoint interval, so anything wrongly accepted would show.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        state(client).await,
        before,
        "refused requests changed nothing"
    );
    service.stop().await;
}

async fn service_endpoints_answer(db: TestDb) {
    let config = test_config(&db, &TestMember::authority());
    let service = InProcess::start(&config).await;
    let client = &service.client;
    assert_eq!(client.get_json("/healthz").await["status"], "ok");
    assert_eq!(client.get_json("/readyz").await["status"], "ready");
    let metrics = String::from_utf8(client.get_bytes("/metrics").await).unwrap();
    assert!(
        metrics.contains("locus_ledger_checkpoint_size"),
        "{metrics}"
    );
    let openapi = client.get_json("/openapi.json").await;
    assert!(openapi["paths"]["/ledger/entries"].is_object());
    assert!(openapi["paths"]["/ledger/proof/inclusion"].is_object());
    let vkey = String::from_utf8(client.get_bytes("/ledger/vkey").await).unwrap();
    assert_eq!(vkey.trim(), client.ledger.verifier().to_vkey());
    // An empty log still has a signed checkpoint, of size 0.
    assert_eq!(client.checkpoint().await.size, 0);
    service.stop().await;
}

/// Every number a request carries is range-checked before it reaches a
/// query: beyond what storage holds is a 400 that says so, never a 503 from
/// the database; beyond the tree is a 400 or a 404 as for any absent thing.
async fn numbers_beyond_storage_are_refused(db: TestDb) {
    use locus_ledger::cosignature::CosignatureSigner;
    use locus_ledger::note::Note;

    let witness = TestMember::new("hospital-w");
    let authority = TestMember::authority();
    let service = start_admitted(&db, &authority, &[&witness]).await;
    let client = &service.client;
    client.submit_ok(witness.retrieval()).await;
    client.checkpoint_at_least(2).await;
    let before = state(client).await;

    const I64_MAX: u64 = i64::MAX as u64;
    let beyond = [I64_MAX + 1, u64::MAX];
    for n in beyond {
        for path in [
            format!("/ledger/checkpoints?from={n}"),
            format!("/ledger/entries?after={n}"),
            format!("/ledger/proof/inclusion?index={n}&size={n}"),
            format!("/ledger/proof/consistency?first={n}&second={n}"),
            format!("/ledger/proof/consistency?first=1&second={n}"),
        ] {
            let response = client.get(&path).await;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(status, 400, "{path}: {body}");
            assert!(
                ["bad_request", "beyond_tree"].contains(&body["error"].as_str().unwrap()),
                "{path}: {body}"
            );
        }
    }
    // The storage's own limit is named in the answer.
    let body: serde_json::Value = client
        .get("/ledger/checkpoints?from=18446744073709551615")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("from must be at most 9223372036854775807"),
        "{body}"
    );
    // The largest number storage holds is a valid, empty page.
    let page = client
        .get_json(&format!("/ledger/checkpoints?from={I64_MAX}"))
        .await;
    assert_eq!(page["checkpoints"].as_array().unwrap().len(), 0, "{page}");
    let page = client
        .get_json(&format!("/ledger/entries?after={I64_MAX}"))
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 0, "{page}");

    // Numbers no integer type of the query holds, limits outside their range, a
    // time range that ends before it starts, and leaf and tile indexes beyond the
    // tree or beyond any u64.
    for [status, code, path] in cases(include_str!("bad_input_cases/beyond_storage.txt")) {
        expect_error(client.get(path).await, status.parse().unwrap(), code).await;
    }

    // A witness's cosignature for tree sizes storage cannot hold, and for
    // sizes no JSON integer of the body holds.
    let checkpoint = client.get_bytes("/ledger/checkpoint").await;
    let text = Note::parse(std::str::from_utf8(&checkpoint).unwrap())
        .unwrap()
        .text;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let line = CosignatureSigner::from_signing_key("hospital-w", witness.key.as_dalek().clone())
        .unwrap()
        .cosign(&text, now)
        .unwrap()
        .to_string();
    for n in beyond {
        let body = cosign_refused(client, &line, n.into()).await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("tree_size must be at most"),
            "{body}"
        );
    }
    for bad in [
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!("2"),
        serde_json::Value::Null,
        serde_json::from_str::<serde_json::Value>("18446744073709551616").unwrap(),
    ] {
        cosign_refused(client, &line, bad).await;
    }

    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        state(client).await,
        before,
        "refused requests changed nothing"
    );
    let cosignatures = client.get_json("/ledger/checkpoints?limit=1000").await;
    assert!(
        !cosignatures.to_string().contains("hospital-w"),
        "no cosignature stored: {cosignatures}"
    );
    service.stop().await;
}

/// The OpenAPI document lists every status each route answers, errors with
/// their JSON body, and the shapes of identifiers and numbers, so a generated
/// client or a fuzzer knows what to send and what to expect.
async fn openapi_lists_statuses_and_shapes(db: TestDb) {
    let config = test_config(&db, &TestMember::authority());
    let service = InProcess::start(&config).await;
    let doc = service.client.get_json("/openapi.json").await;
    let paths = &doc["paths"];
    for (path, method, statuses) in [
        ("/ledger/checkpoint", "get", &[200, 503][..]),
        ("/ledger/checkpoints", "get", &[200, 400, 503]),
        (
            "/ledger/cosignatures",
            "post",
            &[204, 400, 403, 404, 413, 415, 503],
        ),
        ("/ledger/vkey", "get", &[200]),
        ("/ledger/entries", "post", &[200, 400, 403, 413, 503]),
        ("/ledger/entries", "get", &[200, 400, 503]),
        ("/ledger/entries/{index}", "get", &[200, 404, 503]),
        ("/ledger/proof/inclusion", "get", &[200, 400, 503]),
        ("/ledger/proof/consistency", "get", &[200, 400, 503]),
        ("/ledger/tile/{path}", "get", &[200, 404, 503]),
        (
            "/index/pointers",
            "post",
            &[200, 400, 401, 403, 409, 413, 415, 503],
        ),
        (
            "/index/pointers/withdraw",
            "post",
            &[200, 400, 401, 403, 404, 413, 415, 503],
        ),
        (
            "/index/discover",
            "post",
            &[200, 400, 401, 403, 413, 415, 503],
        ),
    ] {
        let responses = paths[path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"));
        for status in statuses {
            let response = &responses
                .get(&status.to_string())
                .unwrap_or_else(|| panic!("{method} {path} lists no {status}"));
            if *status >= 400 {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}"
                );
            }
        }
    }

    // Identifiers by their one string form; sizes and counts by their bounds.
    let schemas = &doc["components"]["schemas"];
    let uuid = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    assert_eq!(schemas["PointerId"]["format"], "uuid");
    assert_eq!(schemas["PointerId"]["pattern"], uuid);
    assert_eq!(schemas["PatientKey"]["pattern"], "^[0-9a-f]{64}$");
    assert_eq!(schemas["ScopeTag"]["maxLength"], 64);
    assert_eq!(schemas["MemberId"]["maxLength"], 64);
    assert_eq!(schemas["HashBase64"]["pattern"], "^[A-Za-z0-9+/]{43}=$");
    let pointer = &schemas["PublishedPointer"]["properties"];
    assert_eq!(
        pointer["pointer_id"]["$ref"],
        "#/components/schemas/PointerId"
    );
    assert_eq!(
        pointer["patient_key"]["$ref"],
        "#/components/schemas/PatientKey"
    );
    assert_eq!(
        pointer["scope_tags"]["items"]["$ref"],
        "#/components/schemas/ScopeTag"
    );
    assert_eq!(
        (
            &pointer["scope_tags"]["minItems"],
            &pointer["scope_tags"]["maxItems"]
        ),
        (&1.into(), &64.into())
    );
    assert_eq!(pointer["sealed"]["maxLength"], 5464);
    assert_eq!(
        schemas["PublishRequest"]["properties"]["pointers"]["maxItems"],
        1000
    );
    assert_eq!(
        schemas["WithdrawRequest"]["properties"]["pointer_ids"]["items"]["$ref"],
        "#/components/schemas/PointerId"
    );
    assert_eq!(
        schemas["DiscoverRequest"]["properties"]["discovery"]["maxLength"],
        16384
    );
    assert_eq!(
        schemas["DiscoveredPointer"]["properties"]["custodian"]["$ref"],
        "#/components/schemas/MemberId"
    );
    assert_eq!(
        schemas["Receipt"]["properties"]["leaf_hash"]["$ref"],
        "#/components/schemas/HashBase64"
    );
    assert_eq!(
        schemas["InclusionProof"]["properties"]["proof"]["items"]["$ref"],
        "#/components/schemas/HashBase64"
    );
    let cosignature = &schemas["CosignatureSubmission"]["properties"];
    assert_eq!(cosignature["tree_size"]["maximum"], i64::MAX);
    assert!(cosignature["cosignature"]["pattern"]
        .as_str()
        .unwrap()
        .starts_with("^— "));
    assert_eq!(
        paths["/index/pointers/withdraw"]["post"]["responses"]["200"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/WithdrawResponse"
    );

    let param = |path: &str, name: &str| {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} {name}"))["schema"]
            .clone()
    };
    assert_eq!(param("/ledger/checkpoints", "from")["maximum"], i64::MAX);
    assert_eq!(
        (
            param("/ledger/checkpoints", "limit")["minimum"].as_u64(),
            param("/ledger/checkpoints", "limit")["maximum"].as_u64()
        ),
        (Some(1), Some(1000))
    );
    assert_eq!(param("/ledger/entries", "after")["maximum"], i64::MAX);
    assert_eq!(
        param("/ledger/entries", "subject")["pattern"],
        "^[0-9a-f]{64}$"
    );
    assert_eq!(param("/ledger/entries", "grant")["pattern"], uuid);
    assert_eq!(param("/ledger/entries", "from")["format"], "date-time");
    assert_eq!(param("/ledger/proof/consistency", "first")["minimum"], 1);
    assert!(param("/ledger/tile/{path}", "path")["pattern"].is_string());
    let tile = &paths["/ledger/tile/{path}"]["get"]["responses"]["200"]["content"]
        ["application/octet-stream"];
    assert_eq!(tile["schema"]["$ref"], "#/components/schemas/Binary");
    assert_eq!(schemas["Binary"]["format"], "binary");
    if std::env::var_os("LOCUS_PRINT_OPENAPI").is_some() {
        eprintln!("{}", serde_json::to_string_pretty(&doc).unwrap());
    }
    service.stop().await;
}

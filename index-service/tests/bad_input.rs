//! Every kind of bad input gets a clear 4xx JSON error and changes nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_protocol::directory::{MemberRole, MemberStatus};
use locus_tests::index::{InProcess, TestClient, TestMember, admit, now_ms, random_retrieval, test_config};
use locus_tests::{TestDb, both_backends};

both_backends!(bad_input_is_refused_and_changes_nothing, service_endpoints_answer);

async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{code}: {content_type}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
}

async fn state(client: &TestClient) -> (u64, usize) {
    let checkpoint = client.checkpoint().await;
    let page = client.get_json("/ledger/entries?limit=1000").await;
    (checkpoint.size, page["entries"].as_array().unwrap().len())
}

async fn bad_input_is_refused_and_changes_nothing(db: TestDb) {
    let member = TestMember::new("hospital-a");
    let stranger = TestMember::new("hospital-z");
    let suspended = TestMember::new("hospital-s");
    let authority = TestMember::authority();
    let config = test_config(&db, &authority);
    let service = InProcess::start(&config).await;
    let client = &service.client;
    admit(client, &authority, &[&member]).await;
    let admission = authority.signed(suspended.update(MemberRole::Hospital, MemberStatus::Active, None));
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
    let flipped = if sig.starts_with('A') { sig.replacen('A', "B", 1) } else { format!("A{}", &sig[1..]) };
    forged["sig"] = flipped.into();
    expect_error(client.submit(serde_json::to_vec(&forged).unwrap()).await, 403, "bad_signature").await;

    // Signed by a key that is not the member's.
    let mut impostor = TestMember::new("hospital-a");
    impostor.key = locus_protocol::signing::SigningKey::generate();
    expect_error(client.submit(impostor.retrieval()).await, 403, "bad_signature").await;

    // Not a member, and a suspended member.
    expect_error(client.submit(stranger.retrieval()).await, 403, "unknown_submitter").await;
    expect_error(client.submit(suspended.retrieval()).await, 403, "inactive_submitter").await;

    // Only the authority changes the directory: a member cannot admit itself
    // or anyone else, and the authority's key cannot be forged.
    let self_admission = stranger.update(MemberRole::Hospital, MemberStatus::Active, None);
    expect_error(client.submit(member.signed(self_admission.clone())).await, 403, "not_permitted").await;
    let mut fake_authority = TestMember::authority();
    fake_authority.key = locus_protocol::signing::SigningKey::generate();
    expect_error(client.submit(fake_authority.signed(self_admission)).await, 403, "bad_signature").await;

    // A member logs only its own acts: not a release in another hospital's
    // name, not a revocation (the consent service's), not a discovery (the index's).
    let other = TestMember::new("hospital-q");
    let someone_elses_release = random_retrieval(&other.id);
    expect_error(client.submit(member.signed(someone_elses_release)).await, 403, "not_permitted").await;
    let revocation = locus_protocol::entry::Event::GrantRevoked(locus_protocol::entry::GrantRevoked {
        grant: locus_protocol::ids::GrantId::new_random(),
        subject: locus_protocol::ids::PatientKey::from_bytes([1; 32]),
        by_device: None,
    });
    expect_error(client.submit(member.signed(revocation)).await, 403, "not_permitted").await;

    // Replaying the suspended member's old admission does not reinstate it:
    // the log already holds it, so it is neither a new leaf nor a change.
    assert_eq!(client.submit_ok(admission).await, admitted);
    expect_error(client.submit(suspended.retrieval()).await, 403, "inactive_submitter").await;

    // Not canonical: whitespace, reordered keys, and not JSON at all.
    let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&member.retrieval()).unwrap()).unwrap();
    expect_error(client.submit(pretty).await, 400, "malformed_entry").await;
    let text = String::from_utf8(member.retrieval()).unwrap();
    let reordered = format!("{{\"sig\":{},\"entry\":{}}}", 
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()["sig"]).unwrap(),
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()["entry"]).unwrap());
    expect_error(client.submit(reordered.into_bytes()).await, 400, "malformed_entry").await;
    expect_error(client.submit(b"not json".to_vec()).await, 400, "malformed_entry").await;
    expect_error(client.submit(Vec::new()).await, 400, "malformed_entry").await;

    // An unknown field inside an otherwise signed entry.
    let mut extra: serde_json::Value = serde_json::from_slice(&member.retrieval()).unwrap();
    extra["entry"]["name"] = "Jane Doe".into();
    expect_error(client.submit(serde_json::to_vec(&extra).unwrap()).await, 400, "malformed_entry").await;

    // Over 64 KiB.
    let oversized = vec![b' '; 64 * 1024 + 1];
    expect_error(client.submit(oversized).await, 413, "entry_too_large").await;

    // An entry dated an hour ago.
    let stale = member.entry_at(random_retrieval(&member.id), now_ms() - 3_600_000).to_canonical_bytes();
    expect_error(client.submit(stale).await, 400, "clock_skew").await;

    // Malformed and out-of-range proof queries.
    for path in [
        "/ledger/proof/inclusion?index=abc&size=1",
        "/ledger/proof/inclusion?index=-1&size=1",
        "/ledger/proof/inclusion?size=1",
        "/ledger/proof/inclusion?index=0&size=1&extra=1",
        "/ledger/proof/inclusion?index=1&size=1",
        "/ledger/proof/inclusion?index=0&size=0",
        "/ledger/proof/consistency?first=2&second=1",
        "/ledger/proof/consistency?first=x&second=1",
        "/ledger/proof/inclusion?index=0&size=18446744073709551616",
        "/ledger/entries?subject=not-a-key",
        "/ledger/entries?limit=0",
        "/ledger/entries?from=yesterday",
        "/ledger/entries?type=DROP%20TABLE",
    ] {
        expect_error(client.get(path).await, 400, "bad_request").await;
    }
    for path in [
        "/ledger/proof/inclusion?index=0&size=5",
        "/ledger/proof/consistency?first=1&second=5",
        "/ledger/proof/inclusion?index=0&size=18446744073709551615",
    ] {
        expect_error(client.get(path).await, 400, "beyond_tree").await;
    }
    for path in [
        "/ledger/tile/0/000",
        "/ledger/tile/0/x000",
        "/ledger/tile/0/000.p/5",
        "/ledger/tile/0/000.p/0",
        "/ledger/tile/entries/001",
        "/ledger/tile/99/000",
        "/ledger/entries/4",
        "/ledger/entries/nope",
        "/no/such/route",
    ] {
        expect_error(client.get(path).await, 404, "not_found").await;
    }

    // Past the checkpoint interval, so anything wrongly accepted would show.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(state(client).await, before, "refused requests changed nothing");
    service.stop().await;
}

async fn service_endpoints_answer(db: TestDb) {
    let config = test_config(&db, &TestMember::authority());
    let service = InProcess::start(&config).await;
    let client = &service.client;
    assert_eq!(client.get_json("/healthz").await["status"], "ok");
    assert_eq!(client.get_json("/readyz").await["status"], "ready");
    let metrics = String::from_utf8(client.get_bytes("/metrics").await).unwrap();
    assert!(metrics.contains("locus_ledger_checkpoint_size"), "{metrics}");
    let openapi = client.get_json("/openapi.json").await;
    assert!(openapi["paths"]["/ledger/entries"].is_object());
    assert!(openapi["paths"]["/ledger/proof/inclusion"].is_object());
    let vkey = String::from_utf8(client.get_bytes("/ledger/vkey").await).unwrap();
    assert_eq!(vkey.trim(), client.ledger.verifier().to_vkey());
    // An empty log still has a signed checkpoint, of size 0.
    assert_eq!(client.checkpoint().await.size, 0);
    service.stop().await;
}

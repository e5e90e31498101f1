//! What more than one of the index-service's test files needs.

// Each test file uses some of these.
#![allow(dead_code)]

use std::sync::Arc;

use locus_tests::index::{admit, test_config, InProcess, TestClient, TestMember};
use locus_tests::TestDb;

/// A fresh index-service in this process on `db`, under `authority`, with
/// `members` admitted as active hospitals.
pub async fn start_admitted(
    db: &TestDb,
    authority: &TestMember,
    members: &[&TestMember],
) -> InProcess {
    let service = InProcess::start(&test_config(db, authority)).await;
    admit(&service.client, authority, members).await;
    service
}

/// The cases of a case file (a table of requests kept out of the code): each
/// line's first three space-separated fields, the third taking the rest of the
/// line; `#` comments and blank lines skipped.
pub fn cases(file: &'static str) -> impl Iterator<Item = [&'static str; 3]> {
    file.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.splitn(3, ' ');
            [(); 3].map(|()| fields.next().unwrap())
        })
}

/// What refused requests must leave unchanged: the checkpoint's size and the
/// number of entries listed.
pub async fn state(client: &TestClient) -> (u64, usize) {
    let checkpoint = client.checkpoint().await;
    let page = client.get_json("/ledger/entries?limit=1000").await;
    (checkpoint.size, page["entries"].as_array().unwrap().len())
}

/// Members `hospital-0` to `hospital-{n-1}`, to submit side by side.
pub fn hospitals(n: usize) -> Vec<TestMember> {
    (0..n)
        .map(|i| TestMember::new(&format!("hospital-{i}")))
        .collect()
}

/// Admits `members` through `client`; how many entries that logged, and a
/// client of the same service for the members' concurrent submitters to share.
pub async fn admit_submitters(
    client: &TestClient,
    authority: &TestMember,
    members: &[TestMember],
) -> (u64, Arc<TestClient>) {
    let admitted = admit(client, authority, &members.iter().collect::<Vec<_>>()).await;
    let shared = TestClient::new(client.base.clone(), &client.ledger.verifier().to_vkey());
    (admitted, Arc::new(shared))
}

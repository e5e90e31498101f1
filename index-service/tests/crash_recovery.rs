//! The real binary is killed (SIGKILL) while members are submitting. After a
//! restart every acknowledged entry is there, byte for byte, and the log's
//! checkpoints stay consistent. A stored tree that no longer extends the last
//! signed checkpoint makes the sequencer refuse to start.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use locus_ledger::checkpoint::Checkpoint;
use locus_tests::index::{
    admit, decode_hash, log_path, process_command, test_config, Process, TestClient, TestMember,
};
use locus_tests::{both_backends, TestDb};

mod common;
use common::{admit_submitters, hospitals};

const BINARY: &str = env!("CARGO_BIN_EXE_index-service");

both_backends!(
    kill_mid_stream_then_restart,
    rewritten_history_is_refused,
    truncated_log_is_refused,
);

async fn assert_consistent(client: &TestClient, old: &Checkpoint, new: &Checkpoint) {
    client
        .ledger
        .prove_consistency(old, new)
        .await
        .expect("new checkpoint extends the old one");
}

async fn kill_mid_stream_then_restart(db: TestDb) {
    let members = hospitals(3);
    let authority = TestMember::authority();
    let config = test_config(&db, &authority);

    let first = Process::start(BINARY.as_ref(), &config);
    let (_, client) = admit_submitters(&first.client, &authority, &members).await;
    // (entry bytes, acknowledged index)
    type Acknowledged = Arc<Mutex<Vec<(Vec<u8>, u64)>>>;
    let acknowledged: Acknowledged = Arc::default();

    // Submitters run until the process dies under them.
    let mut tasks = Vec::new();
    for member in &members {
        for _ in 0..4 {
            let client = Arc::clone(&client);
            let acknowledged = Arc::clone(&acknowledged);
            let bodies: Vec<Vec<u8>> = (0..2000).map(|_| member.retrieval()).collect();
            tasks.push(actix_web::rt::spawn(async move {
                for body in bodies {
                    let Ok(response) = client
                        .http
                        .post(client.url("/ledger/entries"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                    else {
                        return;
                    };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(receipt) = response.json::<locus_ledger::wire::Receipt>().await else {
                        return;
                    };
                    assert_eq!(
                        decode_hash(&receipt.leaf_hash),
                        locus_ledger::merkle::rfc9162_leaf_hash(&body)
                    );
                    acknowledged.lock().unwrap().push((body, receipt.index));
                }
            }));
        }
    }

    // Let a good number land and a few checkpoints be signed, then kill.
    let mut seen = client.checkpoint_at_least(1).await;
    while acknowledged.lock().unwrap().len() < 1500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = client.checkpoint().await;
    }
    first.kill();
    for task in tasks {
        let _ = task.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 1500);

    // Restart on the same database and key.
    let second = Process::start(BINARY.as_ref(), &config);
    let client = &second.client;
    let max_ack = acknowledged.iter().map(|(_, i)| *i).max().unwrap();
    let after_restart = client.checkpoint_at_least(max_ack + 1).await;
    assert_consistent(client, &seen, &after_restart).await;

    for (body, index) in &acknowledged {
        let logged = client.get_json(&format!("/ledger/entries/{index}")).await;
        let stored = serde_json::to_vec(&logged["entry"]).unwrap();
        let submitted: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            logged["entry"], submitted,
            "entry {index} survived the kill"
        );
        assert_eq!(stored.len(), body.len());
    }

    // The log goes on from there, still consistent.
    for member in &members {
        client.submit_ok(member.retrieval()).await;
    }
    let later = client
        .checkpoint_at_least(after_restart.size + members.len() as u64)
        .await;
    assert_consistent(client, &after_restart, &later).await;
    assert_consistent(client, &seen, &later).await;
}

/// Runs a service, logs 20 entries, kills it, lets `tamper` edit the database,
/// and returns what a restart printed, asserting that it refused to start.
async fn restart_after(db: &TestDb, tamper: &str) -> String {
    let member = TestMember::new("hospital-a");
    let authority = TestMember::authority();
    let config = test_config(db, &authority);

    let service = Process::start(BINARY.as_ref(), &config);
    admit(&service.client, &authority, &[&member]).await;
    for _ in 0..19 {
        service.client.submit_ok(member.retrieval()).await;
    }
    service.client.checkpoint_at_least(20).await;
    service.kill();

    let url = locus_platform::db::DatabaseUrl::parse(db.url()).unwrap();
    let pool = locus_platform::db::connect(&url, 1).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut *pool.get().unwrap(), tamper).unwrap();
    drop(pool);

    let output = process_command(BINARY.as_ref(), &config)
        .output()
        .expect("run index-service");
    assert!(
        !output.status.success(),
        "the sequencer must refuse to start"
    );
    std::fs::read_to_string(log_path(&config)).unwrap()
}

async fn rewritten_history_is_refused(db: TestDb) {
    // The 16-leaf subtree at the left of a 20-leaf tree gets another hash, as
    // it would if someone rewrote an entry and recomputed the tree.
    let log = restart_after(
        &db,
        "UPDATE ledger_nodes SET hash = (SELECT hash FROM ledger_nodes WHERE level = 0 AND idx = 0) \
         WHERE level = 4 AND idx = 0",
    )
    .await;
    assert!(
        log.contains("is not consistent with the checkpoint signed at size 20"),
        "{log}"
    );
}

async fn truncated_log_is_refused(db: TestDb) {
    let log = restart_after(
        &db,
        "DELETE FROM ledger_entries WHERE idx >= 10; \
         DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) > 10;",
    )
    .await;
    assert!(
        log.contains("storage holds 10 entries but a signed checkpoint covers 20"),
        "{log}"
    );
}

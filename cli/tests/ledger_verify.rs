//! `locus ledger verify` against a running ledger: accepts an honest log,
//! remembers what it accepted, and names what is wrong with a tampered one.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::process::Command;

use locus_tests::index::{admit, test_config, InProcess, TestMember};
use locus_tests::{both_backends, TestDb};

mod common;
use common::path_arg;

both_backends!(verify_honest_then_tampered_log);

fn locus(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(args)
        .output()
        .expect("run locus");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn verify_honest_then_tampered_log(db: TestDb) {
    let member = TestMember::new("hospital-a");
    let authority = TestMember::authority();
    let config = test_config(&db, &authority);
    let service = InProcess::start(&config).await;
    let client = &service.client;
    admit(client, &authority, &[&member]).await;
    for _ in 0..299 {
        client.submit_ok(member.retrieval()).await;
    }
    client.checkpoint_at_least(300).await;

    let vkey = client.ledger.verifier().to_vkey();
    let state = path_arg(db.scratch_dir().join("seen.checkpoint"));
    let args = [
        "ledger",
        "verify",
        "--url",
        &client.base,
        "--vkey",
        &vkey,
        "--state",
        &state,
    ];

    let (code, out, err) = locus(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("all 300 entries hash to the checkpoint's root"),
        "{out}"
    );

    // More entries: the saved checkpoint must be a prefix of the new one.
    for _ in 0..10 {
        client.submit_ok(member.retrieval()).await;
    }
    client.checkpoint_at_least(310).await;
    let (code, out, err) = locus(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("consistent with the saved checkpoint of size 300"),
        "{out}"
    );

    // Someone edits one stored entry behind the ledger's back.
    {
        let url = locus_platform::db::DatabaseUrl::parse(db.url()).unwrap();
        let pool = locus_platform::db::connect(&url, 1).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut *pool.get().unwrap(),
            "UPDATE ledger_entries SET body = replace(body, '\"v\":1', '\"v\":2') WHERE idx = 42",
        )
        .unwrap();
    }
    let (code, out, err) = locus(&args);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("the log does not match its checkpoint"),
        "{err}"
    );

    // A key that is not the ledger's is refused outright.
    let other = locus_ledger::note::NoteSigner::generate("test.locus.localhost/ledger").unwrap();
    let (code, _, err) = locus(&[
        "ledger",
        "verify",
        "--url",
        &client.base,
        "--vkey",
        &other.verifier().to_vkey(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not verify under the pinned ledger key"),
        "{err}"
    );

    service.stop().await;
}

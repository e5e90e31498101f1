//! `locus import` fills a hospital's store from FHIR bundles, and importing the
//! same bundles again changes nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::process::Command;

use locus_protocol::linkage::LinkageKey;
use locus_tests::{both_backends, synthea, TestDb};

both_backends!(import_twice);

async fn import_twice(db: TestDb) {
    let files = synthea::bundle_files(&synthea::sample_dir());
    let dir = db.scratch_dir();
    let linkage = dir.join("linkage.key");
    locus_platform::files::write_linkage_key(&linkage, &LinkageKey::generate("k1").unwrap())
        .unwrap();
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_locus"))
            .args(["import", "--hospital", "hospital-a"])
            .args(&files[..3])
            .env("LOCUS_DATABASE_URL", db.url())
            .env("LOCUS_LINKAGE_KEY_FILE", &linkage)
            .env_remove("LOCUS_CONFIG")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.contains("3 files") && !first.contains(" 0 records new"),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains("3 files, 0 records new, 0 new versions"),
        "{second}"
    );

    // A file that is not a bundle is named, and the exit code says so.
    let bad = dir.join("not-a-bundle.json");
    std::fs::write(&bad, b"{\"resourceType\": \"Patient\"}").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(["import", "--hospital", "hospital-a"])
        .arg(&bad)
        .env("LOCUS_DATABASE_URL", db.url())
        .env("LOCUS_LINKAGE_KEY_FILE", &linkage)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not-a-bundle.json"));
}

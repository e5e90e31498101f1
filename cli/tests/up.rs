//! `locus up` as a user runs it: first start makes the consortium and its
//! synthetic patients and writes network.json; the regulator's commands work
//! against it; Ctrl-C stops it cleanly; the next start reuses everything and
//! the ledger still verifies, witnesses included.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use locus_cli::consortium::{DropOnExit, Storage};
use locus_tests::command::{code_and_text, Up};

mod common;

fn locus(args: &[&str]) -> (i32, String) {
    code_and_text(
        &Command::new(env!("CARGO_BIN_EXE_locus"))
            .args(args)
            .output()
            .expect("run locus"),
    )
}

/// Starts `locus up` and waits until it has written network.json.
fn up(dir: &Path, database_url: Option<&str>, log: &Path) -> Up {
    let wait = Duration::from_secs(120);
    Up::start(env!("CARGO_BIN_EXE_locus"), dir, database_url, log, wait)
}

/// `signal` (`-INT` as Ctrl-C sends it, `-TERM` as a service manager does);
/// `locus up` must stop cleanly on either.
fn stop(up: Up, log: &Path, signal: &str) -> String {
    let mut child = up.into_child();
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "locus up did not stop within a minute of {signal}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(log).unwrap();
    assert!(status.success(), "locus up stopped with {status}:\n{out}");
    assert!(out.contains("Stopped."), "{out}");
    out
}

fn network_runs_and_restarts(database_url: Option<&str>) {
    let _cleanup = database_url.map(|url| DropOnExit(Storage::from_url(Some(url)).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("locus-data");
    let log = dir.path().join("up.log");
    let network = data.join("network.json");
    let network = network.to_str().unwrap();

    let child = up(&data, database_url, &log);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(network).unwrap()).unwrap();
    for key in ["tlog_base_url", "origin", "vkey"] {
        assert!(
            info["ledger"][key].as_str().is_some_and(|v| !v.is_empty()),
            "ledger.{key} in {info}"
        );
    }
    assert!(info["ca_cert"]["pem"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert!(info["regulator"]["key"]["pem"]
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));
    assert_eq!(info["hospitals"].as_array().unwrap().len(), 2);

    let (code, out) = locus(&["audit", "verify", "--network", network]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = locus(&[
        "audit",
        "events",
        "--network",
        network,
        "--type",
        "pointers.published",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("pointers.published")
            && out.contains("hospital-a")
            && out.contains("hospital-b"),
        "{out}"
    );
    let export = dir.path().join("audit.json");
    let (code, out) = locus(&[
        "audit",
        "export",
        "--network",
        network,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    let events = bundle["entry"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["resource"]["resourceType"] == "AuditEvent"),
        "{bundle}"
    );
    let first = stop(child, &log, "-INT");
    assert!(first.contains("making 3 synthetic patients"), "{first}");

    // The second start makes nothing new, and the ledger it serves still
    // extends everything it signed and the witnesses cosigned.
    let child = up(&data, database_url, &log);
    let (code, out) = locus(&["audit", "verify", "--network", network]);
    assert_eq!(code, 0, "{out}");
    let second = stop(child, &log, "-TERM");
    assert!(
        !second.contains("synthetic patients with"),
        "the second start made patients again:\n{second}"
    );
}

#[test]
fn sqlite() {
    network_runs_and_restarts(None);
}

#[test]
fn postgres() {
    network_runs_and_restarts(Some(&common::throwaway_postgres_url("up")));
}

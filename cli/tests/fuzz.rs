//! The OpenAPI-driven fuzzer: `locus up` on a fresh data folder, then
//! schemathesis against the document of every listener (the index and its
//! ledger, both connectors' peer APIs, the consent service's members' and
//! patients' listeners), with mutual TLS where the listener asks for it and a
//! patient's session on the patients' API. Any 5xx, or any answer whose status,
//! content type, headers or body the document does not describe, fails.
//!
//! The schemathesis command is named by `LOCUS_SCHEMATHESIS` (`.ci/run`
//! installs it in a virtual environment and sets it). Without it the test
//! says so and passes, except in CI (`CI` set), where it fails.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use locus_cli::consortium::{DropOnExit, Storage};
use locus_cli::phone::{enrolment_code, Phone};
use locus_protocol::ids::PatientKey;
use locus_tests::command::Up;

mod common;
use serde_json::Value;

/// Test cases per API operation and phase: enough to reach every route with
/// valid and invalid input, few enough that both backends take minutes.
const MAX_EXAMPLES: &str = "80";

fn schemathesis() -> Option<PathBuf> {
    match std::env::var_os("LOCUS_SCHEMATHESIS") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "LOCUS_SCHEMATHESIS is not set (CI is set, so this fails): .ci/run installs schemathesis and sets it"
            );
            eprintln!("notice: LOCUS_SCHEMATHESIS is not set; the OpenAPI fuzzer does not run");
            None
        }
    }
}

/// One listener to fuzz: its base URL, the client certificate to present and
/// extra headers.
struct Listener {
    name: String,
    base: String,
    identity: Option<(PathBuf, PathBuf)>,
    headers: Vec<String>,
}

fn client(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .pool_idle_timeout(locus_platform::tls::CLIENT_POOL_IDLE)
        .use_native_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .timeout(Duration::from_secs(30));
    if let Some((cert, key)) = identity {
        builder = builder.identity(
            reqwest::Identity::from_pkcs8_pem(
                &std::fs::read(cert).unwrap(),
                &std::fs::read(key).unwrap(),
            )
            .unwrap(),
        );
    }
    builder.build().unwrap()
}

/// A patient's session on the patients' API: a code from hospital-a's desk,
/// a fresh device key, a signed challenge.
async fn patient_session(
    ca: &Path,
    hospital: &(PathBuf, PathBuf),
    members: &str,
    patients: &str,
) -> String {
    let subject = PatientKey::from_bytes([0xab; 32]);
    let code = enrolment_code(&client(ca, Some(hospital)), members, &subject)
        .await
        .unwrap();
    let phone = Phone::new(client(ca, None), patients.to_owned(), subject);
    phone.enrol(&code).await.unwrap().session
}

/// Runs schemathesis on one listener; returns its output if it found anything.
fn fuzz(st: &Path, ca: &Path, listener: &Listener, work: &Path) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The document is fetched here (over mutual TLS where needed) and given
    // to schemathesis as a file, with the listener as the base URL.
    let document: Value = runtime.block_on(async {
        let response = client(ca, listener.identity.as_ref())
            .get(format!("{}/openapi.json", listener.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{} serves its OpenAPI document",
            listener.name
        );
        response.json().await.unwrap()
    });
    let file = work.join(format!("{}.openapi.json", listener.name));
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let mut command = Command::new(st);
    command
        .arg("run")
        .arg(&file)
        .args(["--url", &listener.base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "1010"])
        .args(["--request-timeout", "30"])
        .args(["--workers", "2"])
        .args(["--suppress-health-check", "all"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .arg("--tls-verify")
        .arg(ca)
        .current_dir(work)
        .stdin(Stdio::null());
    if let Some((cert, key)) = &listener.identity {
        command
            .arg("--request-cert")
            .arg(cert)
            .arg("--request-cert-key")
            .arg(key);
    }
    for header in &listener.headers {
        command.args(["--header", header]);
    }
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "schemathesis on {} ({}): exit {:?} after {:.0?}",
        listener.name,
        listener.base,
        output.status.code(),
        started.elapsed()
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis on {} ({}):\n{text}",
            listener.name, listener.base
        ))
    }
}

fn fuzz_every_listener(database_url: Option<&str>) {
    let Some(st) = schemathesis() else {
        return;
    };
    let _cleanup = database_url.map(|url| DropOnExit(Storage::from_url(Some(url)).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("locus-data");
    let log = dir.path().join("up.log");
    let wait = Duration::from_secs(180);
    let _up = Up::start(env!("CARGO_BIN_EXE_locus"), &data, database_url, &log, wait);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("network.json")).unwrap()).unwrap();
    let pki = data.join("pki");
    let ca = pki.join("ca.pem");
    let identity = |id: &str| {
        Some((
            pki.join(format!("{id}.pem")),
            pki.join(format!("{id}-key.pem")),
        ))
    };
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let (members, patients) = (
        text(&info["consent"]["member_url"]),
        text(&info["consent"]["patient_url"]),
    );
    let hospitals = info["hospitals"].as_array().unwrap();
    let first = text(&hospitals[0]["id"]);
    let session = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(patient_session(
            &ca,
            identity(&first).as_ref().unwrap(),
            &members,
            &patients,
        ));

    let mut listeners = vec![Listener {
        name: "index".into(),
        base: text(&info["index"]["url"]),
        identity: identity("regulator"),
        headers: vec![],
    }];
    for (i, hospital) in hospitals.iter().enumerate() {
        // Each connector is called by the other hospital, as a peer would.
        let caller = text(&hospitals[(i + 1) % hospitals.len()]["id"]);
        listeners.push(Listener {
            name: text(&hospital["id"]),
            base: text(&hospital["url"]),
            identity: identity(&caller),
            headers: vec![],
        });
    }
    listeners.push(Listener {
        name: "consent-members".into(),
        base: members,
        identity: identity(&first),
        headers: vec![],
    });
    listeners.push(Listener {
        name: "consent-patients".into(),
        base: patients,
        identity: None,
        headers: vec![format!("Authorization: Bearer {session}")],
    });
    // The ledger's document is fuzzed with a hospital's certificate too: the
    // regulator reads, hospitals submit.
    let index = text(&info["index"]["url"]);
    listeners.push(Listener {
        name: "index-as-hospital".into(),
        base: index,
        identity: identity(&first),
        headers: vec![],
    });

    let findings: Vec<String> = listeners
        .iter()
        .filter_map(|l| fuzz(&st, &ca, l, dir.path()).err())
        .collect();
    assert!(
        findings.is_empty(),
        "the OpenAPI fuzzer found problems on {} listener(s):\n{}",
        findings.len(),
        findings.join("\n\n")
    );
}

#[test]
fn sqlite() {
    fuzz_every_listener(None);
}

#[test]
fn postgres() {
    fuzz_every_listener(Some(&common::throwaway_postgres_url("fuzz")));
}

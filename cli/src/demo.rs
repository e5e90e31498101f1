//! `locus demo`: the story of one patient, told against a real network started
//! just for it, every step checked. It exits non-zero, naming the step, if
//! anything does not behave as it should.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use chrono::{Datelike as _, NaiveDate};
use clap::Args;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_protocol::consent::{Approval, Decision, RequestTerms};
use locus_protocol::grant::DataPeriod;
use locus_protocol::ids::{PatientKey, RequestId};
use locus_protocol::linkage::{normalize_identifier, patient_key};
use serde_json::{json, Value};

use crate::consortium::{DropOnExit, Network, Options, Storage};
use crate::phone::{enrolment_code, post, Phone};

const LAB_RESULTS: &str = "patient/Observation.rs?category=laboratory";
const LAB_RESULTS_AND_REPORTS: &str =
    "patient/Observation.rs?category=laboratory patient/DiagnosticReport.rs";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run every service on PostgreSQL: throwaway databases are created on the
    /// server this URL names and dropped at the end.
    #[arg(long, env = "LOCUS_DATABASE_URL")]
    pub database_url: Option<String>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = tempfile::tempdir().context("a temporary folder")?;
    let mut options = Options::new(dir.path());
    options.patients = 6;
    options.storage = Storage::from_url(args.database_url.as_deref())?.throwaway("demo");
    let _cleanup = DropOnExit(options.storage.clone());
    let result = story(&options).await;
    match result {
        Ok(()) => {
            println!("\nThe demo finished: every step behaved as it should.");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("\nTHE DEMO FAILED: {e:#}");
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

fn chapter(n: u32, title: &str) {
    println!("\n{n}. {title}");
}

fn say(text: &str) {
    println!("   {text}");
}

async fn story(options: &Options) -> anyhow::Result<()> {
    chapter(1, "A small health network starts on this computer");
    say("A ledger that everybody can check, an index that only ever sees scrambled");
    say("pointers, a consent service for patients' phones, two hospitals and a regulator.");
    let network = Network::start(options, &|_| {})
        .await
        .context("starting the network")?;
    let result = chapters(&network).await;
    network.stop().await;
    result
}

async fn chapters(network: &Network) -> anyhow::Result<()> {
    let a = network.hospital("hospital-a")?;
    let b = network.hospital("hospital-b")?;
    let person = network
        .seeded
        .cohort
        .first()
        .context("the network has no patients")?;
    say(&format!(
        "{} and {} keep their records where they are.",
        a.name, b.name
    ));
    say(
        "Only sealed pointers, filed under a pseudonym, are shared. Every patient here is made up.",
    );
    let patient: PatientKey =
        patient_key(&network.linkage, &normalize_identifier(&person.identifier)?);
    let at_a = a
        .node
        .store
        .current_for_patient(&patient)
        .context("reading hospital A's records")?
        .len();
    say(&format!(
        "Meet {}, born {}. {} holds {} of their records, mostly laboratory results.",
        person.name, person.birth_date, a.name, at_a
    ));

    chapter(2, "The patient enrols their phone at the front desk");
    let code = enrolment_code(&a.node.http, &network.info.consent.member_url, &patient).await?;
    let phone = Phone::new(
        network.phone()?,
        network.info.consent.patient_url.clone(),
        patient,
    )
    .enrol(&code)
    .await?;
    say("The desk gave a one-time code; the phone made its own key and registered it.");
    say("From now on, only a signature from this phone can say yes.");

    chapter(
        3,
        &format!("{} asks to see recent laboratory results", b.name),
    );
    let today = network.clock.now().date_naive();
    let year_ago = month_start(today, 11);
    let end = month_end(today);
    let (status, asked) = post(
        &b.node.http,
        format!("{}/consent/requests", network.info.consent.member_url),
        json!({
            "subject": patient, "purpose": "TREAT", "scope": LAB_RESULTS_AND_REPORTS,
            "data_period": { "start": year_ago.to_string(), "end": end.to_string() },
            "duration_secs": 7 * 86_400,
        }),
        None,
    )
    .await?;
    ensure!(
        status == 200 && asked["status"] == "pending",
        "the request was not accepted: {status} {asked}"
    );
    let request: RequestId = serde_json::from_value(asked["request"].clone())?;
    let pending = phone.get_ok("/patient/requests").await?;
    let shown = pending
        .get(0)
        .context("the request did not reach the phone")?;
    say("The phone shows:");
    say(&format!(
        "   \"{}\"",
        shown["summary"].as_str().unwrap_or_default()
    ));

    chapter(4, "The patient agrees, but to less than was asked");
    let terms: RequestTerms = serde_json::from_value(shown["terms"].clone())?;
    let approved_from = month_start(today, 2);
    let mut approval = Approval::of(&terms, phone.signer.device_id(), network.clock.now_ms());
    approval.scope = LAB_RESULTS.parse()?;
    approval.data_period = Some(DataPeriod::new(
        &approved_from.to_string(),
        &end.to_string(),
    )?);
    approval.duration_secs = 86_400;
    let decision = Decision::Approve(approval.clone());
    let body = phone.signed(
        "decision",
        serde_json::to_value(&decision)?,
        &decision.signing_bytes()?,
    );
    let (status, decided) = phone.post("/patient/decisions", body).await?;
    ensure!(
        status == 200,
        "the approval was refused: {status} {decided}"
    );
    say(&format!(
        "Only laboratory results (no reports), only from {approved_from} on, for one day. The phone signed exactly that."
    ));

    chapter(5, &format!("{} finds and fetches what it may see", b.name));
    let collected = get_json(
        &b.node.http,
        format!(
            "{}/consent/requests/{request}",
            network.info.consent.member_url
        ),
    )
    .await?;
    ensure!(
        collected["status"] == "approved",
        "the grant was not issued: {collected}"
    );
    let grant = collected["grant"]
        .as_str()
        .context("no grant token")?
        .to_owned();
    let discovery = collected["discovery"]
        .as_str()
        .context("no discovery token")?
        .to_owned();
    let report = b
        .node
        .fetch_under_grant(&grant, &discovery)
        .await
        .context("fetching under the grant")?;
    ensure!(
        report.failed.is_empty(),
        "some results were not delivered: {:?}",
        report.failed
    );
    ensure!(!report.received.is_empty(), "no results were delivered");
    let mut outside = 0;
    for id in &report.received {
        let result = b
            .node
            .store
            .received(*id)?
            .context("a delivered result is not stored")?;
        let content: Value = serde_json::from_str(&result.content)?;
        let date = content["effectiveDateTime"].as_str().unwrap_or_default();
        if date
            .get(..10)
            .is_some_and(|d| d < approved_from.to_string().as_str())
            || content["resourceType"] != "Observation"
        {
            outside += 1;
        }
    }
    ensure!(
        outside == 0,
        "{outside} delivered result(s) fall outside what the patient approved"
    );
    let example = b
        .node
        .store
        .received(report.received[0])?
        .context("stored result")?;
    let example: Value = serde_json::from_str(&example.content)?;
    say(&format!(
        "{} laboratory results arrived from {}, e.g. {}.",
        report.received.len(),
        a.name,
        describe_observation(&example)
    ));
    say("The index saw only a pseudonym and a token; it learned no test, no date, no name.");
    say("Each result came signed by the hospital that holds it, and only after that hospital");
    say("had written the release into the ledger; B checked the ledger's proof before keeping it.");

    chapter(6, "The patient changes their mind and revokes");
    let discovered = b
        .node
        .index
        .discover(&discovery)
        .await
        .context("discovering before the revocation")?;
    let pointer = discovered
        .pointers
        .iter()
        .find(|p| p.custodian.as_str() == a.id)
        .context("no pointer at hospital A")?;
    let grant_id = decided["grant"]
        .as_str()
        .context("the approval named no grant")?
        .parse()?;
    let revocation = phone.revocation(grant_id, network.clock.now_ms())?;
    let (status, body) = phone.post("/patient/revocations", revocation).await?;
    ensure!(status == 200, "the revocation was refused: {status} {body}");
    let retry = RetrieveRequest {
        grant: Some(grant.clone()),
        pointer_id: pointer.pointer_id,
        sealed: pointer.sealed.clone(),
    };
    let revoked_at = Instant::now();
    loop {
        let at_index = b.node.index.discover(&discovery).await;
        let at_custodian = b.node.request_retrieval(&a.url, &retry).await;
        if at_index.is_err() && at_custodian.is_err() {
            break;
        }
        if revoked_at.elapsed() > Duration::from_secs(10) {
            bail!(
                "ten seconds after the revocation, {} could still use the grant",
                b.name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say(&format!(
        "Within {} ms both the index and {} refuse {}: the grant is dead everywhere.",
        revoked_at.elapsed().as_millis(),
        a.name,
        b.name
    ));

    chapter(7, "An emergency: the patient arrives unconscious");
    let (status, emergency) = post(
        &b.node.http,
        format!("{}/consent/emergency", network.info.consent.member_url),
        json!({ "subject": patient, "scope": LAB_RESULTS, "reason": "unconscious on arrival, suspected diabetic emergency", "duration_secs": 4 * 3600 }),
        None,
    )
    .await?;
    ensure!(
        status == 200,
        "the emergency access was refused: {status} {emergency}"
    );
    let report = b
        .node
        .fetch_under_grant(
            emergency["grant"].as_str().context("no emergency grant")?,
            emergency["discovery"]
                .as_str()
                .context("no emergency discovery token")?,
        )
        .await
        .context("fetching under the emergency grant")?;
    ensure!(
        report.failed.is_empty() && !report.received.is_empty(),
        "the emergency fetch did not deliver"
    );
    say(&format!(
        "{} breaks the glass and gets {} results without the patient's signature.",
        b.name,
        report.received.len()
    ));
    let grants = phone.get_ok("/patient/grants").await?;
    let flagged = grants
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["emergency"] == true)
        .context("the emergency access is not shown on the phone")?;
    say("It is flagged on the ledger and on the patient's phone:");
    say(&format!(
        "   \"{}\"",
        flagged["summary"].as_str().unwrap_or_default()
    ));

    chapter(8, "The regulator audits the ledger");
    say("With only the regulator's certificate and the keys in network.json:");
    let audit = crate::audit::verify(&network.info, Duration::from_secs(15)).await?;
    for fact in &audit.facts {
        say(&format!("  ✓ {fact}"));
    }
    for item in &audit.for_review {
        say(&format!("  ! for review: {item}"));
    }
    if !audit.holds() {
        for problem in &audit.problems {
            say(&format!("  ✗ {problem}"));
        }
        bail!(
            "the regulator's audit found {} problem(s)",
            audit.problems.len()
        );
    }
    let history = phone.get_ok("/patient/history").await?;
    // Repeated events (one per record released) are shown once, counted.
    let mut lines: Vec<(&str, usize)> = Vec::new();
    for text in history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["text"].as_str())
    {
        match lines.last_mut() {
            Some((last, count)) if *last == text => *count += 1,
            _ => lines.push((text, 1)),
        }
    }
    say("And the patient's phone lists everything that happened, newest first:");
    for (text, count) in lines.iter().take(8) {
        let times = if *count > 1 {
            format!(" (×{count})")
        } else {
            String::new()
        };
        say(&format!("   \"{text}\"{times}"));
    }
    Ok(())
}

/// "Hemoglobin A1c 7.9 % (high) on 2026-10-02", from a FHIR Observation.
fn describe_observation(observation: &Value) -> String {
    let code = &observation["code"];
    let name = code["text"]
        .as_str()
        .or_else(|| code["coding"][0]["display"].as_str())
        .unwrap_or("a result");
    let value = &observation["valueQuantity"];
    let flag = match observation["interpretation"][0]["coding"][0]["code"].as_str() {
        Some("H") => " (high)",
        Some("L") => " (low)",
        _ => "",
    };
    let date = observation["effectiveDateTime"]
        .as_str()
        .unwrap_or_default();
    format!(
        "{name} {} {}{flag} on {}",
        value["value"],
        value["unit"].as_str().unwrap_or_default(),
        date.get(..10).unwrap_or(date)
    )
}

/// The first day of the month `back` months before `today`'s.
pub(crate) fn month_start(today: NaiveDate, back: u32) -> NaiveDate {
    let months = today.year() * 12 + today.month0() as i32 - back as i32;
    NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1)
        .unwrap_or(today)
}

/// The last day of `today`'s month.
fn month_end(today: NaiveDate) -> NaiveDate {
    let next = today.year() * 12 + today.month0() as i32 + 1;
    NaiveDate::from_ymd_opt(next.div_euclid(12), next.rem_euclid(12) as u32 + 1, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(today)
}

async fn get_json(client: &reqwest::Client, url: String) -> anyhow::Result<Value> {
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

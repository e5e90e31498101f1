//! `locus bench`: one run, two figures. Ledger appends per second against a
//! plain INSERT of the same rows into the same table; and retrievals per
//! second across the real network (requester → custodian over mutual TLS, the
//! grant check, the `record.retrieved` entry durable on the ledger before the
//! record is sealed and released), with latency percentiles.
//!
//! The criterion benchmarks (`cargo bench`) break these down further; this is
//! the figure an operator can reproduce on their own machine in a minute.
//! Both append the entries of the same [`BenchMember`] and compare against the
//! same [`plain_row`]s, so their figures measure the same work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use clap::Args;
use futures::StreamExt as _;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_ledger::directory::LedgerDirectory;
use locus_ledger::merkle::rfc9162_leaf_hash;
use locus_ledger::metrics::LedgerMetrics;
use locus_ledger::note::NoteSigner;
use locus_ledger::sequencer::{Sequencer, SequencerConfig};
use locus_ledger::store::{EntryRow, LedgerStore};
use locus_platform::clock::Clock;
use locus_platform::db::{self, DatabaseUrl};
use locus_protocol::directory::{MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{
    Commitment, Entry, EntryError, Event, EventKind, MemberUpdated, RecordRetrieved, SignedEntry,
};
use locus_protocol::grant::Confirmation;
use locus_protocol::ids::{GrantId, HospitalId, MemberId, PatientKey, PointerId};
use locus_protocol::linkage::{normalize_identifier, patient_key};
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::SigningKey;
use serde_json::json;

use crate::consortium::{DropOnExit, Network, Options, Storage};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run on PostgreSQL (throwaway databases on the server this URL names,
    /// dropped afterwards); SQLite files in a temporary folder otherwise.
    #[arg(long, env = "LOCUS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Ledger entries to append (and rows to INSERT).
    #[arg(long, default_value_t = 20_000)]
    pub entries: u64,
    /// Entries submitted concurrently (and rows per INSERT transaction).
    #[arg(long, default_value_t = 256)]
    pub batch: u64,
    /// Retrievals to time.
    #[arg(long, default_value_t = 2_000)]
    pub retrievals: usize,
    /// Retrievals in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = tempfile::tempdir()?;
    let storage = Storage::from_url(args.database_url.as_deref())?.throwaway("bench");
    let cleanup = DropOnExit(storage.clone());
    println!(
        "locus bench on {} ({} cores)",
        storage.name(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let result = async {
        appends(&storage, dir.path(), &args).await?;
        retrievals(&storage, dir.path(), &args).await
    }
    .await;
    drop(cleanup);
    result.map(|()| std::process::ExitCode::SUCCESS)
}

/// One admitted hospital and its key.
#[derive(Debug)]
pub struct BenchMember {
    hospital: HospitalId,
    member: MemberId,
    key: SigningKey,
}

impl BenchMember {
    pub fn new(hospital: HospitalId) -> Self {
        let member = hospital.as_member().clone();
        Self {
            hospital,
            member,
            key: SigningKey::generate(),
        }
    }

    /// The canonical bytes of a distinct signed `record.retrieved` entry,
    /// logged by this member as custodian.
    pub fn entry(&self, n: u64) -> Result<Vec<u8>, EntryError> {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&n.to_be_bytes());
        let event = Event::RecordRetrieved(RecordRetrieved {
            requester: self.member.clone(),
            custodian: self.hospital.clone(),
            grant: GrantId::new_random(),
            subject: PatientKey::from_bytes(seed),
            pointer: PointerId::new_random(),
            commitment: Commitment::from_bytes(rfc9162_leaf_hash(&seed)),
        });
        let time = Clock::system().now_ms();
        let entry = Entry::new(self.member.clone(), self.key.key_id(), time, event);
        Ok(SignedEntry::sign(entry, &self.key)?.to_canonical_bytes())
    }

    /// A directory where this member is an admitted hospital.
    pub fn directory(&self) -> Arc<LedgerDirectory> {
        let authority = SigningKey::generate();
        let directory = LedgerDirectory::new(authority.verifying_key());
        if let Ok(authority_id) = AUTHORITY_MEMBER.parse() {
            let admission = Entry::new(
                authority_id,
                authority.key_id(),
                0,
                Event::MemberUpdated(MemberUpdated {
                    member: self.member.clone(),
                    role: MemberRole::Hospital,
                    display_name: "Bench hospital".into(),
                    ed25519: self.key.verifying_key(),
                    x25519: X25519SecretKey::generate().public_key(),
                    certificate: Confirmation::for_certificate_der(b"bench"),
                    endpoint: None,
                    status: MemberStatus::Active,
                }),
            );
            directory.apply(&admission);
        }
        Arc::new(directory)
    }
}

/// `body` as the row a plain INSERT would write: the same columns the ledger
/// fills, without its signature check, queue or subtree hashes.
pub fn plain_row(body: &[u8], idx: i64) -> EntryRow {
    EntryRow {
        idx,
        leaf_hash: rfc9162_leaf_hash(body).to_vec(),
        body: String::from_utf8_lossy(body).into_owned(),
        entry_type: EventKind::RecordRetrieved,
        submitter: "bench".parse().expect("a member id"),
        subject: body
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .map(PatientKey::from_bytes),
        grant_id: None,
        entry_time: 0,
        sequenced_at: 0,
    }
}

fn open(storage: &Storage, dir: &std::path::Path, name: &str) -> anyhow::Result<LedgerStore> {
    let url = storage.url_for(dir, name)?;
    Ok(LedgerStore::open(db::connect(
        &DatabaseUrl::parse(&url)?,
        8,
    )?)?)
}

/// The sequencer against a plain INSERT, on fresh stores of the same backend.
async fn appends(storage: &Storage, dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<()> {
    let member = BenchMember::new("hospital-a".parse()?);
    let batch = args.batch.max(1);
    let bodies = (0..args.entries)
        .map(|n| member.entry(n))
        .collect::<Result<Vec<_>, _>>()?;

    let mut config = SequencerConfig::new("bench.locus.localhost/ledger");
    config.max_batch = usize::try_from(batch)?;
    let (sequencer, _writer) = Sequencer::start(
        open(storage, dir, "bench-ledger")?,
        NoteSigner::generate("bench.locus.localhost/ledger")?,
        member.directory(),
        LedgerMetrics::register(&prometheus::Registry::new())?,
        config,
    )?;
    let started = Instant::now();
    for round in bodies.chunks(usize::try_from(batch)?) {
        let receipts =
            futures::future::join_all(round.iter().map(|body| sequencer.submit(body))).await;
        for receipt in receipts {
            receipt.context("an append failed")?;
        }
    }
    let ledger_secs = started.elapsed().as_secs_f64();

    let plain = open(storage, dir, "bench-plain")?;
    let rows: Vec<_> = (0i64..)
        .zip(&bodies)
        .map(|(idx, body)| plain_row(body, idx))
        .collect();
    let mut conn = plain.conn()?;
    let started = Instant::now();
    for chunk in rows.chunks(usize::try_from(batch)?) {
        plain.append(&mut conn, chunk, &[])?;
    }
    let plain_secs = started.elapsed().as_secs_f64();

    let n = bodies.len() as f64;
    println!();
    println!("Ledger appends ({} entries, {batch} in flight; each signed, verified, hashed into the tree, durable before its receipt)", bodies.len());
    println!("  ledger appends/s     {:>10.0}", n / ledger_secs);
    println!("  plain INSERT rows/s  {:>10.0}   (the same rows, {batch} per transaction, no ledger work)", n / plain_secs);
    println!("  plain / ledger       {:>10.1}", ledger_secs / plain_secs);
    Ok(())
}

/// B retrieves A's records under a grant, `concurrency` at a time.
async fn retrievals(
    storage: &Storage,
    dir: &std::path::Path,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let mut options = Options::new(dir.join("network"));
    options.storage = storage.clone();
    options.patients = 4;
    let network = Network::start(&options, &|_| {}).await?;
    let result = timed_retrievals(&network, args).await;
    network.stop().await;
    result
}

async fn timed_retrievals(network: &Network, args: &BenchArgs) -> anyhow::Result<()> {
    let (a, b) = (
        network.hospital("hospital-a")?,
        network.hospital("hospital-b")?,
    );
    let person = network.seeded.cohort.first().context("no patients")?;
    let patient = patient_key(&network.linkage, &normalize_identifier(&person.identifier)?);
    // An emergency grant: the one grant a hospital gets without a phone in the loop.
    let response = b
        .node
        .http
        .post(format!("{}/consent/emergency", network.info.consent.member_url))
        .json(&json!({ "subject": patient, "scope": "patient/Observation.rs", "reason": "benchmark", "duration_secs": 3600 }))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "no grant for the benchmark: {}",
        response.status()
    );
    let grant: serde_json::Value = response.json().await?;
    let token = grant["grant"]
        .as_str()
        .context("no grant token")?
        .to_owned();
    let discovery = grant["discovery"].as_str().context("no discovery token")?;
    let pointers: Vec<_> = b
        .node
        .index
        .discover(discovery)
        .await?
        .pointers
        .into_iter()
        .filter(|p| p.custodian.as_str() == a.id)
        .collect();
    ensure!(
        !pointers.is_empty(),
        "the patient has no records at {}",
        a.id
    );
    let requests: Arc<Vec<RetrieveRequest>> = Arc::new(
        pointers
            .iter()
            .map(|p| RetrieveRequest {
                grant: Some(token.clone()),
                pointer_id: p.pointer_id,
                sealed: p.sealed.clone(),
            })
            .collect(),
    );

    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..args.retrievals)
        .map(|i| {
            let requests = Arc::clone(&requests);
            let (node, url) = (Arc::clone(&b.node), a.url.clone());
            async move {
                let begun = Instant::now();
                node.request_retrieval(&url, &requests[i % requests.len()])
                    .await
                    .map(|_| begun.elapsed())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .context("a retrieval failed")?;
    let wall = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!();
    println!(
        "Retrievals ({} of {} records, {} in flight; B to A over mutual TLS, grant checked, release durable on the ledger first)",
        latencies.len(),
        requests.len(),
        args.concurrency
    );
    println!("  retrievals/s  {:>8.0}", latencies.len() as f64 / wall);
    println!(
        "  latency ms    p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

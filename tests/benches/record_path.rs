//! Throughput and latency of the record path, across real services on
//! loopback over mutual TLS: the index with its ledger and two hospital
//! connectors (A, the custodian, and B, the requester), each on its own fresh
//! database, once on SQLite and once on PostgreSQL.
//!
//! `cargo bench -p locus-tests --bench record_path`
//!
//! - `publish/<backend>/<n>`: A's `publish_pending()` over `n` freshly imported
//!   laboratory results of one patient (sealing, scope tags, the ledger anchor
//!   entry, the index call, marking published). Records per second. The import
//!   itself is not timed.
//! - `retrieve/<backend>/sequential`: B retrieves one of A's records under a
//!   grant (64 grants for the patient, taking turns), one at a time
//!   (`request_retrieval`: mutual TLS, grant check, the
//!   revocation lookup on the ledger, the `record.retrieved` entry made durable
//!   before release, provenance signature, sealing). Retrievals per second;
//!   the latency of every single retrieval is also kept, and its p50/p95/p99
//!   are printed to stderr at the end of the run.
//! - `retrieve/<backend>/concurrent/<c>`: the same with `c` retrievals in
//!   flight at all times.
//! - `fetch_under_grant/<backend>/<k>`: B's whole requester path for a grant
//!   that covers `k` of A's records: discovery, then for each record the
//!   retrieval, its provenance and commitment, and the receipt's inclusion
//!   proof against a signed checkpoint that covers it (which means waiting for
//!   the next checkpoint: every 100 ms in the test configuration).
//! - `ledger/<backend>/append` and `ledger/<backend>/revocation_lookup/0`: the
//!   two ledger round trips a retrieval makes from A, alone (the lookup for a
//!   grant the ledger has no entry for); `revocation_lookup/<m>`: the lookup
//!   for a grant under which `m` retrievals are logged.
//!
//! Besides criterion's statistics, the run prints to stderr the p50/p95/p99
//! latency of every single retrieval, fetch and ledger call it made, the time
//! of each step of a 500-record publish batch (the connector's steps, replayed
//! and timed one by one) on a fresh store and on a filled one, and the CPU
//! time this process spent per publish and per retrieval.
//!
//! The records are synthetic FHIR R4 bundles built here, so the benchmark runs
//! anywhere. Under `cargo test --benches` (no `--bench` argument) every size
//! is tiny and each benchmark runs once.
//!
//! PostgreSQL comes from `LOCUS_TEST_POSTGRES_URL` (default 127.0.0.1:5432).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed benchmark

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::rt::System;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use locus_hospital_connector::fhir::{OBSERVATION_CATEGORY_SYSTEM, US_SSN_SYSTEM};
use locus_hospital_connector::import::import_bundle;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_index_service::api::DiscoveredPointer;
use locus_protocol::entry::{Commitment, Event, MerkleRoot, PointersPublished, RecordRetrieved};
use locus_protocol::grant::GrantClaims;
use locus_protocol::ids::{GrantId, PatientKey};
use locus_protocol::linkage::{normalize_identifier, patient_key};
use locus_tests::index::random_bytes32;
use locus_tests::network::{TestHospital, TestNetwork};
use locus_tests::Backend;
use serde_json::{json, Value};

const LABS: &str = "patient/Observation.rs?category=laboratory";

/// (LOINC code, display, unit, typical value) of the synthetic results.
const LOINC: [(&str, &str, &str, f64); 6] = [
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 92.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 14.1),
    (
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "mg/dL",
        0.9,
    ),
    (
        "2823-3",
        "Potassium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        4.2,
    ),
    (
        "2951-2",
        "Sodium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        140.0,
    ),
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 6.3),
];

/// `cargo bench` passes `--bench`; `cargo test --benches` does not.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// The sizes of one run: full under `cargo bench`, tiny under `cargo test`.
struct Sizes {
    publish: &'static [u64],
    concurrency: u64,
    fetch_records: u64,
    /// Grants the retrievals take turns under.
    grants: u64,
    /// `record.retrieved` entries logged under the busy grant.
    busy_grant_entries: u64,
    /// Rounds of the publish phase breakdown, and records per round.
    phase_rounds: (u32, u64),
    warm_up: Duration,
    measure: Duration,
}

impl Sizes {
    /// A benchmark group of ten samples, warmed up and measured for these
    /// sizes' times.
    fn group<'a>(&self, c: &'a mut Criterion, name: String) -> BenchmarkGroup<'a, WallTime> {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .warm_up_time(self.warm_up)
            .measurement_time(self.measure);
        group
    }

    fn get() -> Self {
        if bench_mode() {
            Self {
                publish: &[1, 50, 500],
                concurrency: 16,
                fetch_records: 5,
                grants: 64,
                busy_grant_entries: 5000,
                phase_rounds: (5, 500),
                warm_up: Duration::from_secs(1),
                measure: Duration::from_secs(5),
            }
        } else {
            Self {
                publish: &[1, 5],
                concurrency: 4,
                fetch_records: 2,
                grants: 2,
                busy_grant_entries: 20,
                phase_rounds: (1, 5),
                warm_up: Duration::from_millis(100),
                measure: Duration::from_secs(1),
            }
        }
    }
}

/// Synthetic patients: each call is a new one, with its own SSN.
#[derive(Default)]
struct Patients {
    next: Cell<u64>,
}

impl Patients {
    /// A FHIR R4 transaction bundle: one Patient with a US SSN and `labs`
    /// laboratory Observations (LOINC code, valueQuantity, effectiveDateTime),
    /// as Synthea writes them. Returns the SSN and the bundle's bytes.
    fn bundle(&self, labs: u64) -> (String, Vec<u8>) {
        let n = self.next.get();
        self.next.set(n + 1);
        let ssn = format!("999-{:02}-{:04}", (n / 10_000) % 100, n % 10_000);
        let patient_id = uuid::Uuid::new_v4().to_string();
        let patient_url = format!("urn:uuid:{patient_id}");
        let mut entries = vec![json!({
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "id": patient_id,
                "identifier": [
                    {"system": "https://github.com/synthetichealth/synthea", "value": patient_id},
                    {"system": US_SSN_SYSTEM, "value": ssn}
                ],
                "name": [{"use": "official", "family": "Benchperson", "given": [format!("Patient{n}")]}],
                "gender": "female",
                "birthDate": "1970-01-01"
            },
            "request": {"method": "POST", "url": "Patient"}
        })];
        entries.extend((0..labs).map(|i| observation(&patient_url, i)));
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        (ssn, serde_json::to_vec(&bundle).unwrap())
    }
}

fn observation(patient_url: &str, i: u64) -> Value {
    let (code, display, unit, value) = LOINC[(i % LOINC.len() as u64) as usize];
    let id = uuid::Uuid::new_v4().to_string();
    // Spread over two years, so the dated scope tags vary as they do in life.
    let (year, month, day) = (2023 + (i / 12) % 2, 1 + i % 12, 1 + (i * 7) % 28);
    json!({
        "fullUrl": format!("urn:uuid:{id}"),
        "resource": {
            "resourceType": "Observation",
            "id": id,
            "status": "final",
            "category": [{"coding": [{
                "system": OBSERVATION_CATEGORY_SYSTEM,
                "code": "laboratory",
                "display": "Laboratory"
            }]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
            "subject": {"reference": patient_url},
            "effectiveDateTime": format!("{year}-{month:02}-{day:02}T08:30:00+00:00"),
            "issued": format!("{year}-{month:02}-{day:02}T09:30:00.000+00:00"),
            "valueQuantity": {
                "value": value + (i % 5) as f64 / 10.0,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit
            }
        },
        "request": {"method": "POST", "url": "Observation"}
    })
}

/// Imports one synthetic patient with `labs` results into `hospital`'s store;
/// returns the patient's key.
fn import(
    network: &TestNetwork,
    hospital: &TestHospital,
    patients: &Patients,
    labs: u64,
) -> PatientKey {
    let (ssn, bytes) = patients.bundle(labs);
    let report = import_bundle(
        &hospital.node.store,
        &hospital.node.linkage,
        US_SSN_SYSTEM,
        &bytes,
    )
    .unwrap();
    assert_eq!(report.inserted, labs as usize);
    let key = patient_key(&network.linkage, &normalize_identifier(&ssn).unwrap());
    assert_eq!(report.patient_key, key);
    key
}

/// Publish attempts the index refused with SQLITE_BUSY ("database is
/// locked"), with how long each took to fail.
#[derive(Default)]
struct Refusals {
    failed_after: RefCell<Vec<Duration>>,
    attempts: Cell<u64>,
}

impl Refusals {
    fn summary(&self, name: &str) -> String {
        let failed = self.failed_after.borrow();
        let ms: Vec<String> = failed
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect();
        format!(
            "{name}: {} of {} publish attempts refused by the index with \"database is locked\" and retried \
             (as the connector's publish loop does); each failed after [{}] ms",
            failed.len(),
            self.attempts.get(),
            ms.join(", ")
        )
    }
}

/// `publish_pending()` until it succeeds. The index can refuse a batch with
/// SQLITE_BUSY when the ledger writer commits in the middle of the index's
/// read-then-write transaction on the same SQLite file; the connector's
/// publish loop retries then, and so does this (the time of the failed
/// attempt counts). Any other error fails the benchmark.
async fn publish(hospital: &TestHospital, refusals: &Refusals) -> usize {
    loop {
        refusals.attempts.set(refusals.attempts.get() + 1);
        let start = Instant::now();
        match hospital.node.publish_pending().await {
            Ok(published) => return published,
            Err(e) if e.to_string().contains("database is locked") => {
                refusals.failed_after.borrow_mut().push(start.elapsed());
            }
            Err(e) => panic!("publishing failed: {e}"),
        }
    }
}

/// The steps of one publish batch (`publish_batch` in the connector), done
/// the same way but timed one by one: where a batch's time goes. The
/// criterion figure above is the connector's own code; this is a diagnostic.
async fn publish_phases(hospital: &TestHospital, latencies: &Latencies, series: &str) {
    use locus_hospital_connector::publish::{pointer_body, PUBLISH_BATCH};
    use locus_hospital_connector::records::Published;
    use locus_index_service::api::PublishedPointer;
    use locus_index_service::client::encode_sealed;
    use locus_ledger::merkle::{tree_root, MemoryTree};
    use locus_protocol::ids::PointerId;
    use locus_protocol::linkage::scope_tag;

    let node = &hospital.node;
    let mut last = Instant::now();
    let mut lap = |phase: &str| {
        latencies.record(&format!("{series}: {phase}"), [last.elapsed()]);
        last = Instant::now();
    };
    let store = node.store.clone();
    let records = tokio::task::spawn_blocking(move || store.unpublished(PUBLISH_BATCH))
        .await
        .unwrap()
        .unwrap();
    lap("read unpublished");
    let me = node.x25519.public_key();
    let mut sealed = Vec::with_capacity(records.len());
    for record in &records {
        let pointer_id = PointerId::new_random();
        let body = pointer_body(record).unwrap();
        sealed.push((
            pointer_id,
            body.seal(&me, &pointer_id, &record.patient_key, &node.hospital)
                .unwrap(),
        ));
    }
    lap("seal (HPKE)");
    let tags: Vec<Vec<_>> = records
        .iter()
        .map(|r| {
            r.tag_inputs()
                .iter()
                .map(|input| scope_tag(&node.linkage, &r.patient_key, input))
                .collect()
        })
        .collect();
    let mut commitments = MemoryTree::new();
    for record in &records {
        commitments.push(record.commitment.as_bytes());
    }
    let root = tree_root(&commitments, commitments.size()).unwrap();
    lap("scope tags and batch root");
    node.log(Event::PointersPublished(PointersPublished {
        custodian: node.hospital.clone(),
        count: u32::try_from(records.len()).unwrap(),
        batch_root: MerkleRoot::from_bytes(root),
    }))
    .await
    .unwrap();
    lap("ledger anchor entry");
    let pointers = records
        .iter()
        .zip(&sealed)
        .zip(tags)
        .map(
            |((record, (pointer_id, sealed)), scope_tags)| PublishedPointer {
                pointer_id: *pointer_id,
                patient_key: record.patient_key,
                scope_tags,
                sealed: encode_sealed(sealed),
                supersedes: None,
            },
        )
        .collect();
    node.index.publish(pointers).await.unwrap();
    lap("index publish call");
    let published: Vec<Published> = records
        .iter()
        .zip(&sealed)
        .map(|(record, (pointer_id, _))| Published {
            resource_type: record.resource_type,
            resource_id: record.resource_id.clone(),
            version: record.version,
            pointer_id: *pointer_id,
        })
        .collect();
    let store = node.store.clone();
    tokio::task::spawn_blocking(move || store.mark_published(&published))
        .await
        .unwrap()
        .unwrap();
    lap("mark published");
}

/// CPU time used so far by this whole process (every thread), from
/// `/proc/self/stat` in clock ticks of 10 ms; zero where there is no `/proc`.
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name: state is the 3rd field, utime the 14th
    // and stime the 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A logs `entries` retrievals by B under `grant` (16 at a time, so the
/// ledger commits them in groups), as if B had retrieved that many records.
async fn log_retrievals(
    a: &TestHospital,
    b: &TestHospital,
    grant: &GrantClaims,
    pointers: &[DiscoveredPointer],
    entries: u64,
) {
    let events: Vec<Event> = (0..entries)
        .map(|i| {
            let pointer = &pointers[(i % pointers.len() as u64) as usize];
            Event::RecordRetrieved(RecordRetrieved {
                requester: b.node.member.clone(),
                custodian: a.id.clone(),
                grant: grant.jti,
                subject: grant.sub,
                pointer: pointer.pointer_id,
                commitment: Commitment::from_bytes(random_bytes32()),
            })
        })
        .collect();
    let workers: Vec<_> = events
        .chunks(events.len().div_ceil(16).max(1))
        .map(|chunk| {
            let (node, chunk) = (Arc::clone(&a.node), chunk.to_vec());
            actix_web::rt::spawn(async move {
                for event in chunk {
                    node.log(event).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

/// Latencies of single operations, kept beside criterion's own statistics.
#[derive(Default)]
struct Latencies {
    series: RefCell<Vec<(String, Vec<Duration>)>>,
    notes: RefCell<Vec<String>>,
    /// CPU time of this process, wall time and operations, per series.
    cpu: RefCell<Vec<(String, Duration, Duration, u64)>>,
}

impl Latencies {
    fn cpu(&self, name: &str, cpu: Duration, wall: Duration, operations: u64) {
        let mut kept = self.cpu.borrow_mut();
        if let Some((_, c, w, o)) = kept.iter_mut().find(|(n, ..)| n == name) {
            *c += cpu;
            *w += wall;
            *o += operations;
        } else {
            kept.push((name.to_owned(), cpu, wall, operations));
        }
    }

    fn note(&self, note: String) {
        self.notes.borrow_mut().push(note);
    }

    /// Ends a timed run of `operations` begun at `start` (wall clock) and
    /// `cpu_start` (process CPU): keeps its times and `samples` as `series`;
    /// returns its wall time, for criterion.
    fn finish_run(
        &self,
        series: &str,
        (start, cpu_start): (Instant, Duration),
        operations: u64,
        samples: Vec<Duration>,
    ) -> Duration {
        let total = start.elapsed();
        let cpu = process_cpu().saturating_sub(cpu_start);
        self.cpu(series, cpu, total, operations);
        self.record(series, samples);
        total
    }

    /// Awaits `op()` `iters` times in turn on `system`, timing each await
    /// alone (`check` looks at its answer untimed); keeps the times as
    /// `series` and returns the whole run's wall time, for criterion.
    fn sample<T, Fut: std::future::Future<Output = T>>(
        &self,
        system: &actix_web::rt::SystemRunner,
        series: &str,
        iters: u64,
        mut op: impl FnMut() -> Fut,
        mut check: impl FnMut(T),
    ) -> Duration {
        let mut samples = Vec::with_capacity(iters as usize);
        let start = Instant::now();
        system.block_on(async {
            for _ in 0..iters {
                let call = op();
                let t = Instant::now();
                let answer = call.await;
                samples.push(t.elapsed());
                check(answer);
            }
        });
        let total = start.elapsed();
        self.record(series, samples);
        total
    }

    fn record(&self, name: &str, samples: impl IntoIterator<Item = Duration>) {
        let mut series = self.series.borrow_mut();
        if let Some((_, kept)) = series.iter_mut().find(|(n, _)| n == name) {
            kept.extend(samples);
        } else {
            series.push((name.to_owned(), samples.into_iter().collect()));
        }
    }

    fn report(&self) {
        eprintln!();
        for note in self.notes.borrow().iter() {
            eprintln!("{note}");
        }
        let cpu = self.cpu.borrow();
        if !cpu.is_empty() && process_cpu() > Duration::ZERO {
            eprintln!();
            eprintln!("CPU of this process (index, ledger, both connectors and the client; not PostgreSQL's own):");
            eprintln!(
                "{:<52} {:>9} {:>15} {:>12}",
                "series", "ops", "CPU ms per op", "cores busy"
            );
            for (name, cpu, wall, operations) in cpu.iter() {
                eprintln!(
                    "{:<52} {:>9} {:>15.3} {:>12.2}",
                    name,
                    operations,
                    cpu.as_secs_f64() * 1e3 / (*operations).max(1) as f64,
                    cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
                );
            }
        }
        let series = self.series.borrow();
        if series.is_empty() {
            return;
        }
        eprintln!();
        eprintln!("Latency of single operations (every call timed, criterion's warm-up included):");
        eprintln!(
            "{:<52} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "series", "n", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for (name, samples) in series.iter() {
            let mut sorted = samples.clone();
            sorted.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let pct = |p: f64| {
                // Nearest rank.
                let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
                ms(sorted[rank.clamp(1, sorted.len()) - 1])
            };
            let mean = sorted.iter().map(|d| ms(*d)).sum::<f64>() / sorted.len() as f64;
            eprintln!(
                "{:<52} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                sorted.len(),
                mean,
                pct(50.0),
                pct(95.0),
                pct(99.0),
                ms(sorted[sorted.len() - 1])
            );
        }
    }
}

fn record_path(
    c: &mut Criterion,
    system: &actix_web::rt::SystemRunner,
    backend: Backend,
    latencies: &Latencies,
) {
    let sizes = Sizes::get();
    let name = backend_name(backend);
    let patients = Patients::default();
    let network = system.block_on(TestNetwork::start(backend, &["hospital-a", "hospital-b"]));
    let (a, b) = network.hospitals_a_b();

    // Where a batch's time goes, on A's fresh store and the index's fresh
    // database (and again below, once the benchmark has filled them).
    let refusals = Refusals::default();
    let phases = |when: &str| {
        let (rounds, n) = sizes.phase_rounds;
        let before = a.node.store.count().unwrap().versions;
        for _ in 0..rounds {
            import(&network, a, &patients, n);
            system.block_on(publish_phases(
                a,
                latencies,
                &format!("publish/{name}/{n} {when}"),
            ));
        }
        let after = a.node.store.count().unwrap().versions;
        latencies.note(format!(
            "publish/{name}/{n} {when}: A's store (and the index) held {before} to {after} records during these batches"
        ));
    };
    phases("fresh");

    // Publishing: n fresh records per call, of one patient.
    let mut group = sizes.group(c, format!("publish/{name}"));
    group.sampling_mode(SamplingMode::Flat);
    for &n in sizes.publish {
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::from_parameter(n), |bench| {
            bench.iter_custom(|iters| {
                let (mut timed, mut cpu) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    import(&network, a, &patients, n);
                    let (start, cpu_start) = (Instant::now(), process_cpu());
                    let published = system.block_on(publish(a, &refusals));
                    timed += start.elapsed();
                    cpu += process_cpu().saturating_sub(cpu_start);
                    assert_eq!(published as u64, n);
                }
                latencies.cpu(&format!("publish/{name}/{n}"), cpu, timed, iters * n);
                timed
            });
        });
    }
    group.finish();
    phases("filled");

    // Retrieval: B, under grants for one patient's laboratory results, takes
    // A's records in turn. The grants take turns too: the ledger logs each
    // retrieval under its grant, and the revocation lookup's cost grows with
    // the entries a grant has (measured on its own below), so one grant for
    // thousands of retrievals would measure that growth instead.
    let patient = import(&network, a, &patients, 20);
    system.block_on(publish(a, &refusals));
    let grants: Vec<(String, GrantClaims)> = (0..sizes.grants)
        .map(|_| network.grant(b, &patient, LABS, None))
        .collect();
    let discovery = network.discovery(&grants[0].1);
    let pointers: Arc<Vec<DiscoveredPointer>> = Arc::new(
        system
            .block_on(b.node.index.discover(&discovery))
            .unwrap()
            .pointers
            .into_iter()
            .filter(|p| p.custodian == a.id)
            .collect(),
    );
    assert_eq!(pointers.len(), 20);
    let request = |i: u64, pointers: &[DiscoveredPointer]| {
        let pointer = &pointers[(i % pointers.len() as u64) as usize];
        RetrieveRequest {
            grant: Some(grants[(i % grants.len() as u64) as usize].0.clone()),
            pointer_id: pointer.pointer_id,
            sealed: pointer.sealed.clone(),
        }
    };
    // One untimed retrieval opens B's connection to A.
    system
        .block_on(b.node.request_retrieval(&a.url, &request(0, &pointers)))
        .unwrap();

    let mut group = sizes.group(c, format!("retrieve/{name}"));
    group.throughput(Throughput::Elements(1));
    let mut next = 0u64;
    group.bench_function("sequential", |bench| {
        bench.iter_custom(|iters| {
            let mut samples = Vec::with_capacity(iters as usize);
            let started = (Instant::now(), process_cpu());
            system.block_on(async {
                for _ in 0..iters {
                    let one = request(next, &pointers);
                    next += 1;
                    let t = Instant::now();
                    b.node.request_retrieval(&a.url, &one).await.unwrap();
                    samples.push(t.elapsed());
                }
            });
            let series = format!("retrieve/{name}/sequential");
            latencies.finish_run(&series, started, iters, samples)
        });
    });

    // `c` workers, each retrieving one record after another: c in flight.
    let concurrency = sizes.concurrency;
    group.throughput(Throughput::Elements(concurrency));
    group.bench_function(BenchmarkId::new("concurrent", concurrency), |bench| {
        bench.iter_custom(|iters| {
            let started = (Instant::now(), process_cpu());
            let samples = system.block_on(async {
                let workers: Vec<_> = (0..concurrency)
                    .map(|w| {
                        let (node, url, pointers) =
                            (Arc::clone(&b.node), a.url.clone(), Arc::clone(&pointers));
                        let requests: Vec<RetrieveRequest> = (0..iters)
                            .map(|i| request(w * iters + i, &pointers))
                            .collect();
                        actix_web::rt::spawn(async move {
                            let mut samples = Vec::with_capacity(requests.len());
                            for one in &requests {
                                let t = Instant::now();
                                node.request_retrieval(&url, one).await.unwrap();
                                samples.push(t.elapsed());
                            }
                            samples
                        })
                    })
                    .collect();
                let mut samples = Vec::new();
                for worker in workers {
                    samples.extend(worker.await.unwrap());
                }
                samples
            });
            let series = format!("retrieve/{name}/concurrent/{concurrency}");
            latencies.finish_run(&series, started, iters * concurrency, samples)
        });
    });
    group.finish();

    // The whole requester path for a grant over k records, receipts verified.
    let k = sizes.fetch_records;
    let patient = import(&network, a, &patients, k);
    system.block_on(publish(a, &refusals));
    let (grant, claims) = network.grant(b, &patient, LABS, None);
    let discovery = network.discovery(&claims);
    let mut group = sizes.group(c, format!("fetch_under_grant/{name}"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(k));
    group.bench_function(BenchmarkId::from_parameter(k), |bench| {
        bench.iter_custom(|iters| {
            let series = format!("fetch_under_grant/{name}/{k}");
            let fetch = || b.node.fetch_under_grant(&grant, &discovery);
            latencies.sample(system, &series, iters, fetch, |report| {
                let report = report.unwrap();
                assert!(report.failed.is_empty(), "{:?}", report.failed);
                assert_eq!(report.received.len() as u64, k);
            })
        });
    });
    group.finish();

    // The two ledger round trips of a retrieval, alone, from A.
    let mut group = sizes.group(c, format!("ledger/{name}"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("append", |bench| {
        bench.iter_custom(|iters| {
            let append = || {
                a.node.log(Event::PointersPublished(PointersPublished {
                    custodian: a.id.clone(),
                    count: 1,
                    batch_root: MerkleRoot::from_bytes(random_bytes32()),
                }))
            };
            let series = format!("ledger/{name}/append");
            latencies.sample(system, &series, iters, append, |receipt| {
                receipt.unwrap();
            })
        });
    });
    let not_revoked = |answer: Result<bool, _>| assert!(!answer.unwrap());
    let jti = GrantId::new_random();
    group.bench_function(BenchmarkId::new("revocation_lookup", 0), |bench| {
        bench.iter_custom(|iters| {
            let series = format!("ledger/{name}/revocation_lookup/0");
            let lookup = || a.node.ledger.is_revoked(&jti);
            latencies.sample(system, &series, iters, lookup, not_revoked)
        });
    });
    // The same lookup for a grant under which A has logged many retrievals.
    let busy = sizes.busy_grant_entries;
    let (_, busy_grant) = network.grant(b, &patient, LABS, None);
    system.block_on(log_retrievals(a, b, &busy_grant, &pointers, busy));
    group.bench_function(BenchmarkId::new("revocation_lookup", busy), |bench| {
        bench.iter_custom(|iters| {
            let series = format!("ledger/{name}/revocation_lookup/{busy}");
            let lookup = || a.node.ledger.is_revoked(&busy_grant.jti);
            latencies.sample(system, &series, iters, lookup, not_revoked)
        });
    });
    group.finish();

    latencies.note(refusals.summary(&format!("publish/{name}")));
    system.block_on(network.stop());
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let system = System::new();
    let latencies = Latencies::default();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        record_path(&mut criterion, &system, backend, &latencies);
    }
    criterion.final_summary();
    latencies.report();
}

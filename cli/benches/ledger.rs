//! Ledger throughput and proof cost.
//!
//! `cargo bench -p locus-cli --bench ledger` (beside `locus bench`, whose fixture it
//! shares)
//!
//! - `append/<backend>/sequencer/<batch>`: signed entries submitted together,
//!   through signature check, group commit and subtree hashes, until every
//!   receipt is back (entries per second).
//! - `append/<backend>/plain_insert/<batch>`: the same rows written by a plain
//!   INSERT in one transaction, no ledger work; the ratio is what we track.
//! - `inclusion_proof/<store>/1000000`: one proof at 10^6 leaves.
//!
//! PostgreSQL comes from `LOCUS_TEST_POSTGRES_URL` (default 127.0.0.1:5432).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use locus_cli::bench::{plain_row, BenchMember};
use locus_ledger::merkle::{inclusion_proof, rfc9162_leaf_hash, CompactRange, MemoryTree};
use locus_ledger::metrics::LedgerMetrics;
use locus_ledger::note::NoteSigner;
use locus_ledger::sequencer::{Sequencer, SequencerConfig};
use locus_ledger::store::{EntryRow, LedgerStore};
use locus_platform::db::{self, DatabaseUrl};
use locus_tests::{Backend, TestDb};

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn open(db: &TestDb) -> LedgerStore {
    let url = DatabaseUrl::parse(db.url()).unwrap();
    LedgerStore::open(db::connect(&url, 8).unwrap()).unwrap()
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fixture = BenchMember::new("hospital-a".parse().unwrap());
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let mut group = c.benchmark_group(format!("append/{name}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(if bench_mode() { 5 } else { 1 }));
        for batch in [1u64, 16, 256] {
            group.throughput(Throughput::Elements(batch));

            let ledger_db = TestDb::new(backend);
            let store = open(&ledger_db);
            let mut config = SequencerConfig::new("bench.locus.localhost/ledger");
            config.max_batch = batch as usize;
            let (sequencer, _thread) = Sequencer::start(
                store,
                NoteSigner::generate("bench.locus.localhost/ledger").unwrap(),
                fixture.directory(),
                LedgerMetrics::register(&prometheus::Registry::new()).unwrap(),
                config,
            )
            .unwrap();
            group.bench_function(BenchmarkId::new("sequencer", batch), |b| {
                b.iter_custom(|iters| {
                    let bodies: Vec<Vec<Vec<u8>>> = (0..iters)
                        .map(|i| {
                            (0..batch)
                                .map(|j| fixture.entry(i * batch + j).unwrap())
                                .collect()
                        })
                        .collect();
                    let start = Instant::now();
                    runtime.block_on(async {
                        for round in &bodies {
                            let submits = round.iter().map(|body| sequencer.submit(body));
                            for receipt in futures::future::join_all(submits).await {
                                receipt.unwrap();
                            }
                        }
                    });
                    start.elapsed()
                });
            });

            let plain_db = TestDb::new(backend);
            let plain = open(&plain_db);
            let mut next_idx = 0i64;
            group.bench_function(BenchmarkId::new("plain_insert", batch), |b| {
                b.iter_custom(|iters| {
                    let rounds: Vec<Vec<EntryRow>> = (0..iters)
                        .map(|i| {
                            (0..batch)
                                .map(|j| {
                                    next_idx += 1;
                                    plain_row(&fixture.entry(i * batch + j).unwrap(), next_idx)
                                })
                                .collect()
                        })
                        .collect();
                    let mut conn = plain.conn().unwrap();
                    let start = Instant::now();
                    for rows in &rounds {
                        // The same rows, one transaction, no subtree hashes,
                        // no signature check, no queue.
                        plain.append(&mut conn, rows, &[]).unwrap();
                    }
                    start.elapsed()
                });
            });
        }
        group.finish();
    }
}

fn proofs(c: &mut Criterion) {
    let leaves: u64 = if bench_mode() { 1_000_000 } else { 10_000 };
    let mut tree = MemoryTree::new();
    let mut range = CompactRange::new();
    let mut nodes = Vec::with_capacity(leaves as usize * 2);
    for i in 0..leaves {
        let leaf = rfc9162_leaf_hash(&i.to_be_bytes());
        tree.push_leaf_hash(leaf);
        nodes.extend(range.append(leaf));
    }
    let db = TestDb::sqlite();
    let store = open(&db);
    store
        .append(&mut store.conn().unwrap(), &[], &nodes)
        .unwrap();

    let mut group = c.benchmark_group("inclusion_proof");
    let mut i = 0u64;
    group.bench_function(BenchmarkId::new("memory", leaves), |b| {
        b.iter(|| {
            i = (i + 7919) % leaves;
            inclusion_proof(&tree, i, leaves).unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("sqlite", leaves), |b| {
        b.iter(|| {
            i = (i + 7919) % leaves;
            inclusion_proof(&store, i, leaves).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, appends, proofs);
criterion_main!(benches);

//! Several members submit a few thousand entries at once; then, through HTTP
//! only, a client rebuilds the tree from the tlog-tiles, matches the signed
//! checkpoint, and checks inclusion and consistency proofs from the API.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;

use futures::StreamExt as _;
use locus_ledger::merkle::{rfc9162_leaf_hash, tree_root, NodeId, NodeReader as _};
use locus_ledger::wire::Receipt;
use locus_tests::index::{decode_hash, test_config, InProcess, TestMember};
use locus_tests::{both_backends, TestDb};

mod common;
use common::{admit_submitters, hospitals};

const SUBMITTERS: usize = 4;
const PER_SUBMITTER: usize = 750;
const IN_FLIGHT: usize = 32;

both_backends!(concurrent_submitters_then_verify_over_http);

async fn concurrent_submitters_then_verify_over_http(db: TestDb) {
    let members = hospitals(SUBMITTERS);
    let authority = TestMember::authority();
    let config = test_config(&db, &authority);
    let service = InProcess::start(&config).await;
    let (admitted, client) = admit_submitters(&service.client, &authority, &members).await;

    // Every member submits concurrently, many requests in flight each.
    let mut submitted: Vec<(Vec<u8>, Receipt)> = Vec::new();
    let mut midway = None;
    let streams = members.iter().map(|member| {
        let client = Arc::clone(&client);
        futures::stream::iter(0..PER_SUBMITTER)
            .map(move |_| {
                let client = Arc::clone(&client);
                let body = member.retrieval();
                async move {
                    let receipt = client.submit_ok(body.clone()).await;
                    (body, receipt)
                }
            })
            .buffer_unordered(IN_FLIGHT)
    });
    let mut all = futures::stream::select_all(streams);
    while let Some(pair) = all.next().await {
        submitted.push(pair);
        if submitted.len() == SUBMITTERS * PER_SUBMITTER / 2 && midway.is_none() {
            midway = Some(client.checkpoint().await);
        }
    }
    assert_eq!(submitted.len(), SUBMITTERS * PER_SUBMITTER);
    let total = submitted.len() as u64 + admitted;

    // Receipts are distinct leaves, and each leaf hash is the entry's.
    let mut indexes: Vec<u64> = submitted.iter().map(|(_, r)| r.index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (admitted..total).collect::<Vec<_>>());
    for (body, receipt) in &submitted {
        assert_eq!(decode_hash(&receipt.leaf_hash), rfc9162_leaf_hash(body));
    }

    let checkpoint = client.checkpoint_at_least(total).await;
    assert_eq!(checkpoint.size, total);
    assert_eq!(checkpoint.origin, config.ledger_origin);

    // Rebuild the whole tree from the entry bundles alone.
    let log = client
        .ledger
        .download_log(&checkpoint)
        .await
        .expect("tiles rebuild the checkpoint's tree");
    let tree = &log.tree;
    let leaves_by_index = &log.entries;
    assert_eq!(leaves_by_index.len() as u64, total);

    // Every submitted entry is at its receipt's index, byte for byte.
    for (body, receipt) in &submitted {
        assert_eq!(&leaves_by_index[receipt.index as usize], body);
    }

    // Hash tiles agree with the rebuilt tree, at level 0 and level 1.
    for (level, count) in [(0u8, total), (1u8, total >> 8)] {
        let mut n = 0;
        while n * 256 < count {
            let width = (count - n * 256).min(256);
            let path = if width == 256 {
                format!("/ledger/tile/{level}/{}", tile_index(n))
            } else {
                format!("/ledger/tile/{level}/{}.p/{width}", tile_index(n))
            };
            let tile = client.get_bytes(&path).await;
            assert_eq!(tile.len() as u64, width * 32);
            let ids: Vec<NodeId> = (0..width)
                .map(|k| NodeId {
                    level: level * 8,
                    index: n * 256 + k,
                })
                .collect();
            let expected = tree.read_nodes(&ids).expect("nodes").concat();
            assert_eq!(tile, expected, "hash tile {path}");
            n += 1;
        }
    }

    // Inclusion proofs from the API, for a spread of leaves.
    for index in (0..total).step_by(97).chain([total - 1]) {
        let leaf = rfc9162_leaf_hash(&leaves_by_index[index as usize]);
        client
            .ledger
            .prove_inclusion(&leaf, index, &checkpoint)
            .await
            .expect("inclusion");
    }

    // Consistency from the checkpoint seen midway, and from small sizes.
    let midway = midway.expect("a midway checkpoint");
    assert!(midway.size <= total);
    client
        .ledger
        .prove_consistency(&midway, &checkpoint)
        .await
        .expect("midway is a prefix");
    for first in [1, 2, 255, 256, 257, 1000] {
        let old = locus_ledger::checkpoint::Checkpoint {
            size: first,
            root: tree_root(tree, first).expect("root"),
            ..checkpoint.clone()
        };
        client
            .ledger
            .prove_consistency(&old, &checkpoint)
            .await
            .expect("consistency");
    }

    // A proof for a tampered old root fails.
    let forged = locus_ledger::checkpoint::Checkpoint {
        root: [7; 32],
        ..midway.clone()
    };
    assert!(client
        .ledger
        .prove_consistency(&forged, &checkpoint)
        .await
        .is_err());

    // The query API finds entries by submitter, in log order.
    let page = client
        .get_json(&format!(
            "/ledger/entries?submitter={}&limit=1000",
            members[0].id
        ))
        .await;
    let entries = page["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), PER_SUBMITTER);
    assert!(entries
        .windows(2)
        .all(|w| w[0]["index"].as_u64() < w[1]["index"].as_u64()));
    assert!(page["next"].is_null());

    service.stop().await;
}

fn tile_index(n: u64) -> String {
    locus_ledger::tiles::encode_tile_index(n)
}

//! Hospitals witness the ledger: each cosigns a checkpoint only after checking
//! it extends the last one it cosigned; the ledger serves the cosignatures
//! with the checkpoint and its history, and refuses any it cannot verify.

use locus_hospital_connector::schema::witnessed_checkpoint;
use locus_hospital_connector::witness::{WitnessError, Witnessed};
use locus_ledger::cosignature::{CosignatureSigner, CosignatureVerifier};
use locus_ledger::note::Note;
use locus_protocol::signing::SigningKey;
use locus_tests::index::random_retrieval;
use locus_tests::network::{TestHospital, TestNetwork};
use locus_tests::{both_backends, TestDb};

both_backends!(witnesses_cosign_only_what_extends_what_they_saw);

/// Logs one more entry and waits for a checkpoint that covers it.
async fn grow(network: &TestNetwork, by: &TestHospital) -> u64 {
    let receipt = by
        .node
        .log(random_retrieval(&by.node.member))
        .await
        .expect("logged");
    network
        .admin
        .checkpoint_at_least(receipt.index + 1)
        .await
        .size
}

fn verifier(hospital: &TestHospital) -> CosignatureVerifier {
    CosignatureVerifier::from_public_key(
        hospital.node.member.as_str(),
        hospital.node.key.verifying_key().as_bytes(),
    )
    .expect("witness key")
}

/// The newest checkpoint as served, with the witnesses whose cosignature verifies.
async fn served(network: &TestNetwork, witnesses: &[&TestHospital]) -> (String, Vec<String>) {
    let text =
        String::from_utf8(network.admin.get_bytes("/ledger/checkpoint").await).expect("text");
    let note = Note::parse(&text).expect("a signed note");
    let names = witnesses
        .iter()
        .map(|w| verifier(w))
        .filter(|v| note.signatures.iter().any(|s| s.name == v.name()))
        .map(|v| {
            note.verify(&[&v]).expect("a present cosignature verifies");
            v.name().to_owned()
        })
        .collect();
    (text, names)
}

async fn post_cosignature(
    network: &TestNetwork,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = network
        .admin
        .http
        .post(network.admin.url("/ledger/cosignatures"))
        .json(&body)
        .send()
        .await
        .expect("ledger answers");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

async fn witnesses_cosign_only_what_extends_what_they_saw(db: TestDb) {
    let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
    let (a, b) = network.hospitals_a_b();

    // An honest round: a cosigns the newest checkpoint once.
    let size = grow(&network, a).await;
    assert_eq!(
        a.node.witness_once().await.expect("cosigned"),
        Witnessed::Cosigned(size)
    );
    assert_eq!(
        a.node.witness_once().await.expect("seen"),
        Witnessed::AlreadyCosigned(size)
    );
    let (note, cosigners) = served(&network, &[a, b]).await;
    assert_eq!(cosigners, ["hospital-a"], "{note}");

    // It grows; a checks consistency from what it cosigned and cosigns again,
    // and the history keeps the cosignature of the older checkpoint.
    let grown = grow(&network, a).await;
    assert!(grown > size);
    assert_eq!(
        a.node.witness_once().await.expect("cosigned"),
        Witnessed::Cosigned(grown)
    );
    let history = network
        .admin
        .get_json(&format!("/ledger/checkpoints?from={size}&limit=1"))
        .await;
    let old = Note::parse(history["checkpoints"][0]["note"].as_str().expect("a note"))
        .expect("a signed note");
    assert_eq!(history["checkpoints"][0]["tree_size"], size);
    old.verify(&[&verifier(a)])
        .expect("the old checkpoint keeps a's cosignature");
    assert!(
        history["next"].as_u64().is_some_and(|next| next > size),
        "{history}"
    );

    // The ledger refuses what it cannot verify, and stores nothing of it.
    let (before, _) = served(&network, &[a, b]).await;
    let checkpoint_text = Note::parse(&before).expect("note").text;
    let stranger = CosignatureSigner::from_signing_key(
        "hospital-z",
        SigningKey::generate().as_dalek().clone(),
    )
    .expect("signer");
    let impostor = CosignatureSigner::from_signing_key(
        "hospital-b",
        SigningKey::generate().as_dalek().clone(),
    )
    .expect("signer");
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("time");
    let other_tree =
        checkpoint_text.replacen(&format!("\n{grown}\n"), &format!("\n{}\n", grown + 1), 1);
    let genuine_elsewhere =
        CosignatureSigner::from_signing_key("hospital-b", b.node.key.as_dalek().clone())
            .expect("signer")
            .cosign(&other_tree, now)
            .expect("cosign");
    let cases = [
        (
            serde_json::json!({"tree_size": grown, "cosignature": "no signature line"}),
            400,
            "bad_request",
        ),
        (serde_json::json!({"tree_size": grown}), 400, "bad_request"),
        (
            serde_json::json!({"tree_size": grown, "cosignature": stranger.cosign(&checkpoint_text, now).expect("cosign").to_string()}),
            403,
            "not_a_witness",
        ),
        (
            serde_json::json!({"tree_size": grown, "cosignature": impostor.cosign(&checkpoint_text, now).expect("cosign").to_string()}),
            403,
            "bad_cosignature",
        ),
        (
            serde_json::json!({"tree_size": grown, "cosignature": genuine_elsewhere.to_string()}),
            403,
            "bad_cosignature",
        ),
        (
            serde_json::json!({"tree_size": grown + 1000, "cosignature": genuine_elsewhere.to_string()}),
            404,
            "not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = post_cosignature(&network, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body} → {answer}"
        );
    }
    assert_eq!(
        served(&network, &[a, b]).await.0,
        before,
        "a refused cosignature changed the served checkpoint"
    );

    // The ledger shows a tree that does not extend what a cosigned (here:
    // a's memory of it is not what the ledger serves, as after a fork). a
    // refuses, keeps the evidence, and stops; b, honest and unforked, cosigns.
    {
        use diesel::{ExpressionMethods as _, RunQueryDsl as _};
        let mut conn = a.node.store.pool().get().expect("connection");
        locus_platform::on_backend!(&mut *conn, |c| {
            diesel::update(witnessed_checkpoint::table)
                .set(witnessed_checkpoint::root.eq(vec![9u8; 32]))
                .execute(c)
                .expect("update")
        });
    }
    let forked = grow(&network, b).await;
    match a.node.witness_once().await {
        Err(WitnessError::Conflict { witnessed, size }) => {
            assert_eq!((witnessed, size), (grown, forked))
        }
        other => panic!("a cosigned a checkpoint that does not extend its own view: {other:?}"),
    }
    assert!(matches!(
        a.node.witness_once().await,
        Err(WitnessError::Stopped)
    ));
    assert_eq!(
        b.node.witness_once().await.expect("cosigned"),
        Witnessed::Cosigned(forked)
    );
    let (note, cosigners) = served(&network, &[a, b]).await;
    assert_eq!(cosigners, ["hospital-b"], "{note}");

    network.stop().await;
}

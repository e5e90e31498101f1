//! The whole network as a user runs it: `locus demo` end to end, and the
//! regulator's `locus audit verify` on an honest ledger and on ledger
//! databases where an entry was altered, a checkpoint forged, an entry deleted.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use diesel::connection::SimpleConnection as _;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl as _};
use locus_cli::consortium::{DropOnExit, Network, Options, Storage};
use locus_cli::network::NETWORK_FILE;
use locus_ledger::checkpoint::{sign_checkpoint, Checkpoint};
use locus_ledger::note::{Note, NoteSigner};
use locus_platform::db::{self, DatabaseUrl};
use locus_tests::command::code_and_text;
use locus_tests::{postgres_admin_url, Backend};

mod common;
use common::path_arg;

/// Runs the `locus` binary without blocking the runtime the network serves on.
async fn locus(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(args)
        .env("LOCUS_LOG", "warn")
        .output()
        .await
        .expect("run locus");
    code_and_text(&output)
}

fn storage(backend: Backend) -> Storage {
    match backend {
        Backend::Sqlite => Storage::Sqlite,
        Backend::Postgres => Storage::from_url(Some(&postgres_admin_url()))
            .unwrap()
            .throwaway("test"),
    }
}

mod demo {
    use super::*;

    async fn demo_succeeds(extra: &[&str]) {
        let mut args = vec!["demo"];
        args.extend_from_slice(extra);
        let (code, out) = locus(&args).await;
        assert_eq!(code, 0, "{out}");
        for told in [
            "The patient agrees, but to less than was asked",
            "refuse",
            "EMERGENCY ACCESS",
            "discoveries and retrievals happened under a grant valid at that moment and not revoked",
            "The demo finished: every step behaved as it should.",
        ] {
            assert!(out.contains(told), "the demo did not tell {told:?}:\n{out}");
        }
    }

    #[actix_web::test]
    async fn sqlite() {
        demo_succeeds(&[]).await;
    }

    #[actix_web::test]
    async fn postgres() {
        let url = postgres_admin_url();
        demo_succeeds(&["--database-url", &url]).await;
    }
}

mod audit {
    use super::*;

    #[actix_web::test]
    async fn sqlite() {
        audit_names_what_was_tampered_with(Backend::Sqlite).await;
    }

    #[actix_web::test]
    async fn postgres() {
        audit_names_what_was_tampered_with(Backend::Postgres).await;
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    text: String,
}

/// The ledger's own database, as someone with access to it would open it.
struct LedgerDb(db::Pool);

impl LedgerDb {
    fn text(&self, query: &str) -> String {
        let mut conn = self.0.get().unwrap();
        let row: Row = locus_platform::on_backend!(&mut *conn, |c| diesel::sql_query(query)
            .get_result(c)
            .unwrap());
        row.text
    }

    fn execute(&self, statement: &str) {
        self.0.get().unwrap().batch_execute(statement).unwrap();
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

async fn audit_names_what_was_tampered_with(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.storage = storage(backend);
    let _cleanup = DropOnExit(options.storage.clone());
    options.patients = 3;
    let network = Network::start(&options, &|_| {}).await.unwrap();
    let file = path_arg(dir.path().join(NETWORK_FILE));
    let verify = ["audit", "verify", "--network", &file];

    let (code, out) = locus(&verify).await;
    assert_eq!(code, 0, "an honest ledger must pass:\n{out}");
    assert!(out.contains("audit holds"), "{out}");
    assert!(
        out.contains("cosigned by 2 of 3 witnesses (hospital-a, hospital-b), quorum 2"),
        "{out}"
    );

    // The regulator witnesses too: it cosigns once, and its view is kept.
    let state = path_arg(dir.path().join("regulator-witness.json"));
    let watch = [
        "audit",
        "watch",
        "--network",
        &file,
        "--state",
        &state,
        "--once",
    ];
    let (code, out) = locus(&watch).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cosigned the checkpoint of size"), "{out}");
    let (code, out) = locus(&verify).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cosigned by 3 of 3 witnesses (hospital-a, hospital-b, regulator)"),
        "{out}"
    );
    let (code, out) = locus(&watch).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("cosigned"),
        "cosigned the same checkpoint twice: {out}"
    );

    let index_url = options.storage.url_for(&network.dir, "index").unwrap();
    let ledger = LedgerDb(db::connect(&DatabaseUrl::parse(&index_url).unwrap(), 1).unwrap());

    // An entry altered in place: its bytes no longer hash to the signed leaf.
    let original = ledger.text("SELECT body AS text FROM ledger_entries WHERE idx = 3");
    let altered = original.replacen("\"v\":1", "\"v\":2", 1);
    assert_ne!(altered, original, "entry 3 has no version field to alter");
    ledger.execute(&format!(
        "UPDATE ledger_entries SET body = {} WHERE idx = 3",
        quote(&altered)
    ));
    let (code, out) = locus(&verify).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("PROBLEM: entry 3 was altered"), "{out}");
    ledger.execute(&format!(
        "UPDATE ledger_entries SET body = {} WHERE idx = 3",
        quote(&original)
    ));
    let (code, out) = locus(&verify).await;
    assert_eq!(code, 0, "restored, the ledger must pass again:\n{out}");

    // A checkpoint of the history replaced by one signed with another key
    // under the ledger's name, claiming another tree.
    let size = ledger.text(
        "SELECT CAST(tree_size AS TEXT) AS text FROM ledger_checkpoints WHERE tree_size > 0 ORDER BY tree_size LIMIT 1",
    );
    let genuine = ledger.text(&format!(
        "SELECT note AS text FROM ledger_checkpoints WHERE tree_size = {size}"
    ));
    let mut checkpoint = Checkpoint::parse(&Note::parse(&genuine).unwrap().text).unwrap();
    checkpoint.root = [7; 32];
    let forger = NoteSigner::generate(&checkpoint.origin).unwrap();
    let forged = sign_checkpoint(&checkpoint, &forger).unwrap().to_string();
    ledger.execute(&format!(
        "UPDATE ledger_checkpoints SET note = {} WHERE tree_size = {size}",
        quote(&forged)
    ));
    let (code, out) = locus(&verify).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "(size {size}) is not signed by the ledger's key: forged or altered"
        )),
        "{out}"
    );
    ledger.execute(&format!(
        "UPDATE ledger_checkpoints SET note = {} WHERE tree_size = {size}",
        quote(&genuine)
    ));
    let (code, out) = locus(&verify).await;
    assert_eq!(code, 0, "restored, the ledger must pass again:\n{out}");

    // The regulator remembers another tree of the same size than the ledger
    // now serves (as after a fork): it refuses, keeps the evidence, and stays
    // stopped.
    let mut view: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    view["root"] = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into();
    std::fs::write(&state, view.to_string()).unwrap();
    let (code, out) = locus(&watch).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("CONFLICT: the ledger serves a checkpoint of size"),
        "{out}"
    );
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(
        kept["conflict"]
            .as_str()
            .is_some_and(|note| note.contains("— locus.localhost/dev-ledger ")),
        "{kept}"
    );
    let (code, out) = locus(&watch).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("CONFLICT: stopped earlier"), "{out}");

    // An entry deleted: the log has a hole where a signed leaf was.
    ledger.execute("DELETE FROM ledger_entries WHERE idx = 2");
    let (code, out) = locus(&verify).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("PROBLEM: entry 2 is missing"), "{out}");

    network.stop().await;
}

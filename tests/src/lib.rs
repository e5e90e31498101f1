#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod command;
mod db;
pub mod fhir;
pub mod hostile;
pub mod http;
pub mod index;
pub mod logs;
pub mod network;
pub mod phone;
pub mod rules;
pub mod synthea;

pub use db::{postgres_admin_url, Backend, TestDb};

/// A folder of the read-only `shared/` data that sits beside the project
/// (test vectors, the Synthea sample). A test that needs it fails when it is
/// absent: quietly returning would report a check that never ran as passed.
pub fn shared_path(relative: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(relative);
    assert!(
        dir.is_dir(),
        "{} is missing: this test needs the read-only `shared/` folder beside the checkout",
        dir.display()
    );
    dir
}

/// Runs an async test scenario once on SQLite and once on PostgreSQL.
///
/// `both_backends!(scenario);` with `async fn scenario(db: TestDb)` defines the
/// tests `scenario::sqlite` and `scenario::postgres`, each on a fresh database.
#[macro_export]
macro_rules! both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[actix_web::test]
                async fn sqlite() {
                    super::$scenario($crate::TestDb::sqlite()).await
                }

                #[actix_web::test]
                async fn postgres() {
                    super::$scenario($crate::TestDb::postgres()).await
                }
            }
        )+
    };
}

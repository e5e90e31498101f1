#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod db;
pub mod fhir;
pub mod hostile;
pub mod index;
pub mod logs;
pub mod network;
pub mod phone;
pub mod synthea;

pub use db::{postgres_admin_url, Backend, TestDb};

/// A folder of the read-only `shared/` data that sits beside the project
/// (test vectors, the Synthea sample). `None`, with a notice, when it is absent
/// outside CI; in CI (`CI` set) its absence fails the test.
pub fn shared_path(relative: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(relative);
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing (CI is set, so this fails)",
        dir.display()
    );
    eprintln!("notice: {} not found; skipping", dir.display());
    None
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

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod db;
pub mod index;
pub mod network;

pub use db::{Backend, TestDb, postgres_admin_url};

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

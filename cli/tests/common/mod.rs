//! What more than one of the command's test files needs.

// Each test file uses some of these.
#![allow(dead_code)]

use std::path::PathBuf;

use locus_tests::postgres_admin_url;

/// `path` as a command-line argument of `locus` (test paths are UTF-8).
pub fn path_arg(path: PathBuf) -> String {
    path.into_os_string().into_string().unwrap()
}

/// A URL naming a fresh database, `locus_<label>_<random>`, on the test
/// PostgreSQL server: a `locus` run under it makes its own databases there.
pub fn throwaway_postgres_url(label: &str) -> String {
    let admin = postgres_admin_url();
    let (server, _) = admin.rsplit_once('/').unwrap();
    format!(
        "{server}/locus_{label}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

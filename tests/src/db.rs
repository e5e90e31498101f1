//! A fresh database per test: a SQLite file in a temporary folder, or a new
//! PostgreSQL database on the server named by `LOCUS_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
//!
//! A PostgreSQL test never skips: if no server answers it fails and says how to
//! get one (`.ci/run` starts a throwaway cluster when none answers).

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

pub fn postgres_admin_url() -> String {
    std::env::var("LOCUS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self::Sqlite { dir, url }
    }

    pub fn postgres() -> Self {
        let admin_url = postgres_admin_url();
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for this test and did not answer at {admin_url}: {e}. \
                 Start one (bash .ci/run does) or set LOCUS_TEST_POSTGRES_URL."
            )
        });
        let name = format!("locus_test_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create a test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Self::Postgres {
            admin_url,
            name,
            url,
        }
    }

    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres(),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A folder that lives as long as this database (keys, directory files).
    pub fn scratch_dir(&self) -> std::path::PathBuf {
        match self {
            Self::Sqlite { dir, .. } => dir.path().to_owned(),
            Self::Postgres { name, .. } => {
                let dir = std::env::temp_dir().join(name);
                std::fs::create_dir_all(&dir).expect("scratch folder");
                dir
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
        {
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&*name));
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

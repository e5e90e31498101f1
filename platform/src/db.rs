//! One connection type over SQLite and PostgreSQL, chosen by the database URL.
//!
//! Every Locus service stores its state through this module: SQLite (one file per
//! service, WAL, synchronous commits) by default, PostgreSQL in production.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

/// A connection to either backend; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

// The protocol's stored types as columns of either backend.
locus_protocol::multi_backend_sql_types!(MultiBackend);

pub type Pool = r2d2::Pool<DbManager>;
pub type PooledConnection = r2d2::PooledConnection<DbManager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (expected sqlite://PATH, a path ending in .db, or postgres://...)")]
    UnsupportedUrl,
    #[error("database connection failed: {0}")]
    Connection(#[from] ConnectionError),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `store_error!(StoreError, Corrupt)`: the conversions a store's error needs
/// from diesel and its pool, written once. A stored value that does not parse
/// as its type becomes the `$corrupt` variant, naming its column; anything
/// else is the database's own error, in a `Db(DbError)` variant.
///
/// `store_error! { pub enum StoreError { ...its own variants... } }` declares
/// the error as well, with those two variants first (`Db`, `Corrupt`), so a
/// store writes only what is its own.
#[macro_export]
macro_rules! store_error {
    ($(#[$meta:meta])* pub enum $error:ident { $($variants:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, ::thiserror::Error)]
        pub enum $error {
            #[error(transparent)]
            Db(#[from] $crate::db::DbError),
            #[error(transparent)]
            Corrupt(::locus_protocol::sql::Corrupt),
            $($variants)*
        }

        $crate::store_error!($error, Corrupt);
    };
    ($error:ty, $corrupt:ident) => {
        impl From<::diesel::result::Error> for $error {
            fn from(e: ::diesel::result::Error) -> Self {
                match ::locus_protocol::sql::Corrupt::of(&e) {
                    Some(corrupt) => Self::$corrupt(corrupt),
                    None => Self::Db($crate::db::DbError::Query(e)),
                }
            }
        }

        impl From<::diesel::r2d2::PoolError> for $error {
            fn from(e: ::diesel::r2d2::PoolError) -> Self {
                Self::Db($crate::db::DbError::Pool(e))
            }
        }
    };
}

/// Where a service's database lives. Parsing decides the backend so that a
/// PostgreSQL URL that fails to connect never falls back to creating a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbError::UnsupportedUrl);
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.ends_with(".db") || url.ends_with(".sqlite") {
            Ok(Self::Sqlite(PathBuf::from(url)))
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

// A URL may carry a password: show only the backend and, for SQLite, the file.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// r2d2 manager that opens the right backend and sets SQLite up for a
/// concurrent, durable service: WAL, FULL sync (a commit survives power loss),
/// a busy timeout instead of immediate SQLITE_BUSY.
#[derive(Debug, Clone)]
pub struct DbManager {
    url: DatabaseUrl,
}

// The busy timeout comes first: switching a new file to WAL takes a lock that
// another connection of the pool may hold for a moment.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON;";

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Opens a pool on `url`, creating the SQLite file's folder if needed.
pub fn connect(url: &DatabaseUrl, max_size: u32) -> Result<Pool, DbError> {
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::Folder {
                path: dir.to_owned(),
                source,
            })?;
        }
    }
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(DbManager { url: url.clone() })?;
    Ok(pool)
}

/// The migrations of one service, one set per dialect.
pub struct Migrations {
    pub sqlite: EmbeddedMigrations,
    pub postgres: EmbeddedMigrations,
}

/// Brings the schema up to date with the dialect's own migrations.
pub fn run_migrations(conn: &mut DbConnection, migrations: Migrations) -> Result<(), DbError> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(migrations.sqlite).map(drop),
        DbConnection::Postgres(c) => c.run_pending_migrations(migrations.postgres).map(drop),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// Runs `f` in one transaction that holds the write lock from its start: for
/// work that reads and then writes, and must not interleave with another
/// writer. On SQLite, `BEGIN IMMEDIATE` takes the write lock up front (a
/// deferred transaction that reads and then writes can fail with SQLITE_BUSY,
/// which no busy timeout cures); on PostgreSQL, the transaction-scoped advisory
/// lock `lock` serializes the writers that take it.
pub fn write_transaction<T, E: From<diesel::result::Error>>(
    conn: &mut DbConnection,
    lock: i64,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgres(_) => {
            <DbConnection as Connection>::TransactionManager::begin_transaction(conn)?
        }
    }
    let result = match conn {
        DbConnection::Postgres(c) => c
            .batch_execute(&format!("SELECT pg_advisory_xact_lock({lock})"))
            .map_err(E::from),
        DbConnection::Sqlite(_) => Ok(()),
    }
    .and_then(|()| f(conn));
    match result {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            // The original error is the one worth reporting. A failed rollback
            // leaves diesel's transaction manager broken, so the connection fails
            // the pool's check-out test and is replaced.
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(e)
        }
    }
}

impl fmt::Debug for Migrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Migrations")
    }
}

/// `stored_enum! { pub enum Status { Active = "active", ... } }`: an enum
/// stored as text, as [`locus_protocol::text_enum!`] declares it, for columns
/// of either backend of [`DbConnection`].
#[macro_export]
macro_rules! stored_enum {
    ($($enums:tt)+) => {
        ::locus_protocol::text_enum! { in $crate::db::MultiBackend; $($enums)+ }
    };
}

/// The first row `query` selects as `R`, if any, read from `pool`: the
/// one-row lookup (by key, or the newest) that every store makes.
pub fn first_row<'q, R, Q, E>(pool: &Pool, query: Q) -> Result<Option<R>, E>
where
    R: Selectable<MultiBackend>,
    R::SelectExpression: diesel::query_builder::QueryId,
    Q: diesel::query_dsl::methods::SelectDsl<diesel::dsl::AsSelect<R, MultiBackend>>,
    Q::Output: diesel::query_dsl::methods::LimitDsl + RunQueryDsl<DbConnection>,
    diesel::dsl::Limit<Q::Output>: diesel::query_dsl::LoadQuery<'q, DbConnection, R>,
    E: From<diesel::result::Error> + From<r2d2::PoolError>,
{
    let mut conn = pool.get()?;
    Ok(query.select(R::as_select()).first(&mut conn).optional()?)
}

/// Runs `$body` with `$conn` bound to the concrete connection of either backend.
/// For the few statements the shared backend cannot express, such as
/// multi-row inserts.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($inner) => $body,
            $crate::db::DbConnection::Postgres($inner) => $body,
        }
    };
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("DbConnection::Postgres"),
            Self::Sqlite(_) => f.write_str("DbConnection::Sqlite"),
        }
    }
}

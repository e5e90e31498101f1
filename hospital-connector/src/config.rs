//! The connector's configuration: a TOML file (optional), then `LOCUS_*`
//! environment variables, which win. Listed in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use locus_platform::config::ConfigError;
use locus_platform::tls::TlsFiles;

use crate::fhir::US_SSN_SYSTEM;

locus_platform::settings! {
    pub struct Config {
        /// `LOCUS_LISTEN`: address to serve retrievals on (mutual TLS).
        pub listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7400)) => "LOCUS_LISTEN",
        /// `LOCUS_DATABASE_URL`: the hospital's own store, `sqlite://PATH` or `postgres://...`.
        pub database_url: String = "sqlite://locus-data/hospital.db".into()
            => "LOCUS_DATABASE_URL",
        /// `LOCUS_MEMBER_ID`: this hospital's member id. Required.
        pub member_id: Option<String> = None => "LOCUS_MEMBER_ID",
        /// `LOCUS_MEMBER_KEY_FILE`: Ed25519 key (PKCS#8 PEM) signing its entries
        /// and provenance; created on first start.
        pub member_key_file: PathBuf = "locus-data/hospital-member.pem".into()
            => "LOCUS_MEMBER_KEY_FILE",
        /// `LOCUS_X25519_KEY_FILE`: the key pointers and records are sealed to;
        /// created on first start.
        pub x25519_key_file: PathBuf = "locus-data/hospital-x25519.key".into()
            => "LOCUS_X25519_KEY_FILE",
        /// `LOCUS_LINKAGE_KEY_FILE`: the consortium linkage key (never created here).
        pub linkage_key_file: PathBuf = "locus-data/linkage.key".into() => "LOCUS_LINKAGE_KEY_FILE",
        /// `LOCUS_IDENTIFIER_SYSTEM`: the patient identifier used for linkage.
        pub identifier_system: String = US_SSN_SYSTEM.into() => "LOCUS_IDENTIFIER_SYSTEM",
        /// `LOCUS_INDEX_URL`: the index service (which also hosts the ledger). Required.
        pub index_url: Option<String> = None => "LOCUS_INDEX_URL",
        /// `LOCUS_LEDGER_VKEY`: the ledger's C2SP verifier key, pinned. Required.
        pub ledger_vkey: Option<String> = None => "LOCUS_LEDGER_VKEY",
        /// `LOCUS_AUTHORITY_KEY`: the consortium authority's Ed25519 public key
        /// (base64url), against which the directory is checked. Required.
        pub authority_key: Option<String> = None => "LOCUS_AUTHORITY_KEY",
        /// `LOCUS_PUBLISH_INTERVAL_MS`: how often unpublished records are published.
        pub publish_interval_ms: u64 = 2000 => "LOCUS_PUBLISH_INTERVAL_MS",
        /// `LOCUS_DIRECTORY_REFRESH_MS`: how often the directory is re-read from the ledger.
        pub directory_refresh_ms: u64 = 500 => "LOCUS_DIRECTORY_REFRESH_MS",
        /// `LOCUS_WITNESS_INTERVAL_MS`: how often the connector checks the ledger's
        /// newest checkpoint against the last it cosigned, and cosigns it.
        pub witness_interval_ms: u64 = 1000 => "LOCUS_WITNESS_INTERVAL_MS",
        /// `LOCUS_DB_POOL_SIZE`
        pub db_pool_size: u32 = 8 => "LOCUS_DB_POOL_SIZE",
    }
}

impl Config {
    pub fn tls(&self) -> Result<TlsFiles, ConfigError> {
        self.tls_files()?.ok_or(ConfigError::Missing(
            "a connector needs LOCUS_TLS_CA_CERT, LOCUS_TLS_CERT and LOCUS_TLS_KEY",
        ))
    }

    pub fn publish_interval(&self) -> Duration {
        Duration::from_millis(self.publish_interval_ms.max(100))
    }

    pub fn witness_interval(&self) -> Duration {
        Duration::from_millis(self.witness_interval_ms.max(100))
    }

    pub fn directory_refresh(&self) -> Duration {
        Duration::from_millis(self.directory_refresh_ms.max(50))
    }
}

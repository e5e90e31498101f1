//! The connector's configuration: a TOML file (optional), then `LOCUS_*`
//! environment variables, which win. Listed in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use locus_platform::clock::Clock;
use locus_platform::config::{from_file, tls_files, ConfigError};
use locus_platform::override_from_env;
use locus_platform::telemetry::LogFormat;
use locus_platform::tls::TlsFiles;
use serde::Deserialize;

use crate::fhir::US_SSN_SYSTEM;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `LOCUS_LISTEN`: address to serve retrievals on (mutual TLS).
    pub listen: SocketAddr,
    /// `LOCUS_DATABASE_URL`: the hospital's own store, `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// `LOCUS_MEMBER_ID`: this hospital's member id. Required.
    pub member_id: Option<String>,
    /// `LOCUS_MEMBER_KEY_FILE`: Ed25519 key (PKCS#8 PEM) signing its entries
    /// and provenance; created on first start.
    pub member_key_file: PathBuf,
    /// `LOCUS_X25519_KEY_FILE`: the key pointers and records are sealed to;
    /// created on first start.
    pub x25519_key_file: PathBuf,
    /// `LOCUS_LINKAGE_KEY_FILE`: the consortium linkage key (never created here).
    pub linkage_key_file: PathBuf,
    /// `LOCUS_IDENTIFIER_SYSTEM`: the patient identifier used for linkage.
    pub identifier_system: String,
    /// `LOCUS_INDEX_URL`: the index service (which also hosts the ledger). Required.
    pub index_url: Option<String>,
    /// `LOCUS_LEDGER_VKEY`: the ledger's C2SP verifier key, pinned. Required.
    pub ledger_vkey: Option<String>,
    /// `LOCUS_AUTHORITY_KEY`: the consortium authority's Ed25519 public key
    /// (base64url), against which the directory is checked. Required.
    pub authority_key: Option<String>,
    /// `LOCUS_TLS_CA_CERT`, `LOCUS_TLS_CERT`, `LOCUS_TLS_KEY`: required; a
    /// connector talks to nothing without mutual TLS.
    pub tls_ca_cert: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `LOCUS_PUBLISH_INTERVAL_MS`: how often unpublished records are published.
    pub publish_interval_ms: u64,
    /// `LOCUS_DIRECTORY_REFRESH_MS`: how often the directory is re-read from the ledger.
    pub directory_refresh_ms: u64,
    /// `LOCUS_WITNESS_INTERVAL_MS`: how often the connector checks the ledger's
    /// newest checkpoint against the last it cosigned, and cosigns it.
    pub witness_interval_ms: u64,
    /// `LOCUS_DB_POOL_SIZE`
    pub db_pool_size: u32,
    /// `LOCUS_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// What the service takes the time to be: the system's; tests set their own.
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            database_url: "sqlite://locus-data/hospital.db".into(),
            member_id: None,
            member_key_file: "locus-data/hospital-member.pem".into(),
            x25519_key_file: "locus-data/hospital-x25519.key".into(),
            linkage_key_file: "locus-data/linkage.key".into(),
            identifier_system: US_SSN_SYSTEM.into(),
            index_url: None,
            ledger_vkey: None,
            authority_key: None,
            tls_ca_cert: None,
            tls_cert: None,
            tls_key: None,
            publish_interval_ms: 2000,
            directory_refresh_ms: 500,
            witness_interval_ms: 1000,
            db_pool_size: 8,
            log_format: LogFormat::Text,
            clock: Clock::system(),
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: Config = from_file(file)?;
        override_from_env!(config,
            listen => "LOCUS_LISTEN",
            database_url => "LOCUS_DATABASE_URL",
            member_key_file => "LOCUS_MEMBER_KEY_FILE",
            x25519_key_file => "LOCUS_X25519_KEY_FILE",
            linkage_key_file => "LOCUS_LINKAGE_KEY_FILE",
            identifier_system => "LOCUS_IDENTIFIER_SYSTEM",
            publish_interval_ms => "LOCUS_PUBLISH_INTERVAL_MS",
            directory_refresh_ms => "LOCUS_DIRECTORY_REFRESH_MS",
            witness_interval_ms => "LOCUS_WITNESS_INTERVAL_MS",
            db_pool_size => "LOCUS_DB_POOL_SIZE",
            log_format => "LOCUS_LOG_FORMAT",
        );
        override_from_env!(config,
            ?member_id => "LOCUS_MEMBER_ID",
            ?index_url => "LOCUS_INDEX_URL",
            ?ledger_vkey => "LOCUS_LEDGER_VKEY",
            ?authority_key => "LOCUS_AUTHORITY_KEY",
            ?tls_ca_cert => "LOCUS_TLS_CA_CERT",
            ?tls_cert => "LOCUS_TLS_CERT",
            ?tls_key => "LOCUS_TLS_KEY",
        );
        Ok(config)
    }

    pub fn tls(&self) -> Result<TlsFiles, ConfigError> {
        tls_files(&self.tls_ca_cert, &self.tls_cert, &self.tls_key)?.ok_or(ConfigError::Missing(
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

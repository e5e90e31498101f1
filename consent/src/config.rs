//! The consent service's configuration: a TOML file (optional), then `LOCUS_*`
//! environment variables, which win. Listed in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use locus_platform::clock::Clock;
use locus_platform::config::{from_file, tls_files, ConfigError};
use locus_platform::override_from_env;
use locus_platform::telemetry::LogFormat;
use locus_platform::tls::TlsFiles;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `LOCUS_LISTEN`: the API for consortium members (mutual TLS).
    pub listen: SocketAddr,
    /// `LOCUS_PATIENT_LISTEN`: the API and web app for patients' devices
    /// (server-authenticated TLS; patients sign in with their device key).
    pub patient_listen: SocketAddr,
    /// `LOCUS_DATABASE_URL`
    pub database_url: String,
    /// `LOCUS_MEMBER_ID`: this service's member id.
    pub member_id: String,
    /// `LOCUS_MEMBER_KEY_FILE`: the Ed25519 key that signs grants and this
    /// service's ledger entries; created on first start.
    pub member_key_file: PathBuf,
    /// `LOCUS_LINKAGE_KEY_FILE`: the consortium linkage key, for scope tags.
    pub linkage_key_file: PathBuf,
    /// `LOCUS_INDEX_URL`: the index service hosting the ledger. Required.
    pub index_url: Option<String>,
    /// `LOCUS_LEDGER_VKEY`: the ledger's C2SP verifier key, pinned. Required.
    pub ledger_vkey: Option<String>,
    /// `LOCUS_AUTHORITY_KEY`: the consortium authority's public key. Required.
    pub authority_key: Option<String>,
    /// `LOCUS_TLS_CA_CERT`, `LOCUS_TLS_CERT`, `LOCUS_TLS_KEY`: required.
    pub tls_ca_cert: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `LOCUS_ENROLMENT_CODE_SECS`: how long an enrolment code stays valid.
    pub enrolment_code_secs: i64,
    /// `LOCUS_MAX_GRANT_SECS`: the longest grant a patient can approve.
    pub max_grant_secs: i64,
    /// `LOCUS_MAX_EMERGENCY_SECS`: the longest emergency grant.
    pub max_emergency_secs: i64,
    /// `LOCUS_DB_POOL_SIZE`, `LOCUS_LOG_FORMAT`
    pub db_pool_size: u32,
    pub log_format: LogFormat,
    /// What the service takes the time to be: the system's; tests set their own.
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7500)),
            patient_listen: SocketAddr::from(([127, 0, 0, 1], 7501)),
            database_url: "sqlite://locus-data/consent.db".into(),
            member_id: "consent".into(),
            member_key_file: "locus-data/consent-member.pem".into(),
            linkage_key_file: "locus-data/linkage.key".into(),
            index_url: None,
            ledger_vkey: None,
            authority_key: None,
            tls_ca_cert: None,
            tls_cert: None,
            tls_key: None,
            enrolment_code_secs: 15 * 60,
            max_grant_secs: 30 * 24 * 3600,
            max_emergency_secs: 8 * 3600,
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
            patient_listen => "LOCUS_PATIENT_LISTEN",
            database_url => "LOCUS_DATABASE_URL",
            member_id => "LOCUS_MEMBER_ID",
            member_key_file => "LOCUS_MEMBER_KEY_FILE",
            linkage_key_file => "LOCUS_LINKAGE_KEY_FILE",
            enrolment_code_secs => "LOCUS_ENROLMENT_CODE_SECS",
            max_grant_secs => "LOCUS_MAX_GRANT_SECS",
            max_emergency_secs => "LOCUS_MAX_EMERGENCY_SECS",
            db_pool_size => "LOCUS_DB_POOL_SIZE",
            log_format => "LOCUS_LOG_FORMAT",
        );
        override_from_env!(config,
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
            "the consent service needs LOCUS_TLS_CA_CERT, LOCUS_TLS_CERT and LOCUS_TLS_KEY",
        ))
    }
}

//! Typed configuration: a TOML file (optional), then `LOCUS_*` environment
//! variables, which win. Every setting and its variable is listed in
//! `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use locus_platform::clock::Clock;
use locus_platform::config::{from_file, tls_files, ConfigError};
use locus_platform::override_from_env;
use locus_platform::telemetry::LogFormat;
use locus_platform::tls::TlsFiles;
use locus_protocol::grant::Confirmation;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `LOCUS_LISTEN`: address to serve on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `LOCUS_DATABASE_URL`: `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// `LOCUS_LEDGER_ORIGIN`: the log's name, first line of every checkpoint.
    pub ledger_origin: String,
    /// `LOCUS_LEDGER_KEY_FILE`: the log's signing key (C2SP note key form);
    /// created on first start if missing.
    pub ledger_key_file: PathBuf,
    /// `LOCUS_AUTHORITY_KEY`: the consortium authority's Ed25519 public key
    /// (base64url); only it admits, suspends and withdraws members. Required.
    pub authority_key: Option<String>,
    /// `LOCUS_AUTHORITY_CERTIFICATE`: the `x5t#S256` thumbprint of the
    /// authority's TLS client certificate (`locus pki issue` prints it). Over
    /// TLS every route admits only active directory members, and this
    /// certificate: the authority is no member, yet admits them.
    pub authority_certificate: Option<String>,
    /// `LOCUS_MEMBER_ID`: this index's member id in the directory.
    pub member_id: String,
    /// `LOCUS_MEMBER_KEY_FILE`: this index's Ed25519 key (PKCS#8 PEM) that signs
    /// its own entries (discoveries, refusals); created on first start if missing.
    pub member_key_file: PathBuf,
    /// `LOCUS_TLS_CA_CERT`, `LOCUS_TLS_CERT`, `LOCUS_TLS_KEY`: the consortium CA
    /// and this node's certificate and key (PEM). With all three, the service
    /// serves HTTPS and requires a consortium client certificate; without them,
    /// plain HTTP on loopback for development.
    pub tls_ca_cert: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `LOCUS_CHECKPOINT_INTERVAL_MS`: longest delay before new entries are
    /// covered by a signed checkpoint.
    pub checkpoint_interval_ms: u64,
    /// `LOCUS_MAX_BATCH`: most entries committed in one transaction.
    pub max_batch: usize,
    /// `LOCUS_DB_POOL_SIZE`: database connections.
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
            listen: SocketAddr::from(([127, 0, 0, 1], 7300)),
            database_url: "sqlite://locus-data/index.db".into(),
            ledger_origin: "locus.localhost/ledger".into(),
            ledger_key_file: "locus-data/ledger.key".into(),
            authority_key: None,
            authority_certificate: None,
            member_id: "index".into(),
            member_key_file: "locus-data/index-member.pem".into(),
            tls_ca_cert: None,
            tls_cert: None,
            tls_key: None,
            checkpoint_interval_ms: 500,
            max_batch: 4096,
            db_pool_size: 16,
            log_format: LogFormat::Text,
            clock: Clock::system(),
        }
    }
}

impl Config {
    /// Reads `file` (if any), then applies the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: Config = from_file(file)?;
        override_from_env!(config,
            listen => "LOCUS_LISTEN",
            database_url => "LOCUS_DATABASE_URL",
            ledger_origin => "LOCUS_LEDGER_ORIGIN",
            ledger_key_file => "LOCUS_LEDGER_KEY_FILE",
            member_id => "LOCUS_MEMBER_ID",
            member_key_file => "LOCUS_MEMBER_KEY_FILE",
            checkpoint_interval_ms => "LOCUS_CHECKPOINT_INTERVAL_MS",
            max_batch => "LOCUS_MAX_BATCH",
            db_pool_size => "LOCUS_DB_POOL_SIZE",
            log_format => "LOCUS_LOG_FORMAT",
        );
        override_from_env!(config,
            ?authority_key => "LOCUS_AUTHORITY_KEY",
            ?authority_certificate => "LOCUS_AUTHORITY_CERTIFICATE",
            ?tls_ca_cert => "LOCUS_TLS_CA_CERT",
            ?tls_cert => "LOCUS_TLS_CERT",
            ?tls_key => "LOCUS_TLS_KEY",
        );
        Ok(config)
    }

    /// The authority's pinned certificate thumbprint, if set.
    pub fn authority_certificate(&self) -> Result<Option<Confirmation>, ConfigError> {
        self.authority_certificate
            .as_deref()
            .map(|thumbprint| {
                Confirmation::new(thumbprint).map_err(|e| ConfigError::Env {
                    name: "LOCUS_AUTHORITY_CERTIFICATE",
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// The TLS files, when all three are set.
    pub fn tls(&self) -> Result<Option<TlsFiles>, ConfigError> {
        tls_files(&self.tls_ca_cert, &self.tls_cert, &self.tls_key)
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }
}

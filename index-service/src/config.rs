//! Typed configuration: a TOML file (optional), then `LOCUS_*` environment
//! variables, which win. Every setting and its variable is listed in
//! `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use locus_platform::config::ConfigError;
use locus_protocol::grant::Confirmation;

locus_platform::settings! {
    /// With the three TLS files the service serves HTTPS and requires a consortium
    /// client certificate; without them, plain HTTP on loopback for development.
    pub struct Config {
        /// `LOCUS_LISTEN`: address to serve on; port 0 picks a free port.
        pub listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7300)) => "LOCUS_LISTEN",
        /// `LOCUS_DATABASE_URL`: `sqlite://PATH` or `postgres://...`.
        pub database_url: String = "sqlite://locus-data/index.db".into() => "LOCUS_DATABASE_URL",
        /// `LOCUS_LEDGER_ORIGIN`: the log's name, first line of every checkpoint.
        pub ledger_origin: String = "locus.localhost/ledger".into() => "LOCUS_LEDGER_ORIGIN",
        /// `LOCUS_LEDGER_KEY_FILE`: the log's signing key (C2SP note key form);
        /// created on first start if missing.
        pub ledger_key_file: PathBuf = "locus-data/ledger.key".into() => "LOCUS_LEDGER_KEY_FILE",
        /// `LOCUS_AUTHORITY_KEY`: the consortium authority's Ed25519 public key
        /// (base64url); only it admits, suspends and withdraws members. Required.
        pub authority_key: Option<String> = None => "LOCUS_AUTHORITY_KEY",
        /// `LOCUS_AUTHORITY_CERTIFICATE`: the `x5t#S256` thumbprint of the
        /// authority's TLS client certificate (`locus pki issue` prints it). Over
        /// TLS every route admits only active directory members, and this
        /// certificate: the authority is no member, yet admits them.
        pub authority_certificate: Option<String> = None => "LOCUS_AUTHORITY_CERTIFICATE",
        /// `LOCUS_MEMBER_ID`: this index's member id in the directory.
        pub member_id: String = "index".into() => "LOCUS_MEMBER_ID",
        /// `LOCUS_MEMBER_KEY_FILE`: this index's Ed25519 key (PKCS#8 PEM) that signs
        /// its own entries (discoveries, refusals); created on first start if missing.
        pub member_key_file: PathBuf = "locus-data/index-member.pem".into()
            => "LOCUS_MEMBER_KEY_FILE",
        /// `LOCUS_CHECKPOINT_INTERVAL_MS`: longest delay before new entries are
        /// covered by a signed checkpoint.
        pub checkpoint_interval_ms: u64 = 500 => "LOCUS_CHECKPOINT_INTERVAL_MS",
        /// `LOCUS_MAX_BATCH`: most entries committed in one transaction.
        pub max_batch: usize = 4096 => "LOCUS_MAX_BATCH",
        /// `LOCUS_DB_POOL_SIZE`: database connections.
        pub db_pool_size: u32 = 16 => "LOCUS_DB_POOL_SIZE",
    }
}

impl Config {
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

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }
}

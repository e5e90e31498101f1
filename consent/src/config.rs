//! The consent service's configuration: a TOML file (optional), then `LOCUS_*`
//! environment variables, which win. Listed in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use locus_platform::config::ConfigError;
use locus_platform::tls::TlsFiles;

locus_platform::settings! {
    pub struct Config {
        /// `LOCUS_LISTEN`: the API for consortium members (mutual TLS).
        pub listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7500)) => "LOCUS_LISTEN",
        /// `LOCUS_PATIENT_LISTEN`: the API and web app for patients' devices
        /// (server-authenticated TLS; patients sign in with their device key).
        pub patient_listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7501))
            => "LOCUS_PATIENT_LISTEN",
        /// `LOCUS_DATABASE_URL`
        pub database_url: String = "sqlite://locus-data/consent.db".into() => "LOCUS_DATABASE_URL",
        /// `LOCUS_MEMBER_ID`: this service's member id.
        pub member_id: String = "consent".into() => "LOCUS_MEMBER_ID",
        /// `LOCUS_MEMBER_KEY_FILE`: the Ed25519 key that signs grants and this
        /// service's ledger entries; created on first start.
        pub member_key_file: PathBuf = "locus-data/consent-member.pem".into()
            => "LOCUS_MEMBER_KEY_FILE",
        /// `LOCUS_LINKAGE_KEY_FILE`: the consortium linkage key, for scope tags.
        pub linkage_key_file: PathBuf = "locus-data/linkage.key".into() => "LOCUS_LINKAGE_KEY_FILE",
        /// `LOCUS_INDEX_URL`: the index service hosting the ledger. Required.
        pub index_url: Option<String> = None => "LOCUS_INDEX_URL",
        /// `LOCUS_LEDGER_VKEY`: the ledger's C2SP verifier key, pinned. Required.
        pub ledger_vkey: Option<String> = None => "LOCUS_LEDGER_VKEY",
        /// `LOCUS_AUTHORITY_KEY`: the consortium authority's public key. Required.
        pub authority_key: Option<String> = None => "LOCUS_AUTHORITY_KEY",
        /// `LOCUS_ENROLMENT_CODE_SECS`: how long an enrolment code stays valid.
        pub enrolment_code_secs: i64 = 15 * 60 => "LOCUS_ENROLMENT_CODE_SECS",
        /// `LOCUS_MAX_GRANT_SECS`: the longest grant a patient can approve.
        pub max_grant_secs: i64 = 30 * 24 * 3600 => "LOCUS_MAX_GRANT_SECS",
        /// `LOCUS_MAX_EMERGENCY_SECS`: the longest emergency grant.
        pub max_emergency_secs: i64 = 8 * 3600 => "LOCUS_MAX_EMERGENCY_SECS",
        /// `LOCUS_DB_POOL_SIZE`
        pub db_pool_size: u32 = 8 => "LOCUS_DB_POOL_SIZE",
    }
}

impl Config {
    pub fn tls(&self) -> Result<TlsFiles, ConfigError> {
        self.tls_files()?.ok_or(ConfigError::Missing(
            "the consent service needs LOCUS_TLS_CA_CERT, LOCUS_TLS_CERT and LOCUS_TLS_KEY",
        ))
    }
}

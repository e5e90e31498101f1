//! What a service that follows the ledger (the consent service, a hospital
//! connector) opens at startup: its store, and the ledger it reaches over
//! mutual TLS, checked against the pinned log key and authority key.

use std::time::Duration;

use locus_platform::clock::Clock;
use locus_platform::config::{authority_key, required, ConfigError};
use locus_platform::db::{self, DatabaseUrl, Pool};
use locus_platform::launch::StartupError;
use locus_platform::tls::{http_client, TlsFiles};

use crate::client::{DirectoryFollower, LedgerClient};
use crate::note::NoteVerifier;

/// A follower's settings, as its configuration holds them.
#[derive(Debug)]
pub struct FollowerSettings<'a> {
    /// `LOCUS_INDEX_URL`
    pub index_url: &'a Option<String>,
    /// `LOCUS_LEDGER_VKEY`
    pub ledger_vkey: &'a Option<String>,
    /// `LOCUS_AUTHORITY_KEY`
    pub authority_key: &'a Option<String>,
    /// The TLS files, which a follower requires.
    pub tls: Result<TlsFiles, ConfigError>,
    /// `LOCUS_DATABASE_URL`
    pub database_url: &'a str,
    /// `LOCUS_DB_POOL_SIZE`
    pub db_pool_size: u32,
    /// The service's clock, which its ledger client reads too.
    pub clock: Clock,
}

/// `follower_settings!(config)`: the [`FollowerSettings`] of a follower's
/// configuration, whose settings carry these names (and `tls()`).
#[macro_export]
macro_rules! follower_settings {
    ($config:expr) => {
        $crate::startup::FollowerSettings {
            index_url: &$config.index_url,
            ledger_vkey: &$config.ledger_vkey,
            authority_key: &$config.authority_key,
            tls: $config.tls(),
            database_url: &$config.database_url,
            db_pool_size: $config.db_pool_size,
            clock: $config.clock.clone(),
        }
    };
}

/// What [`follow`] opened.
#[derive(Debug)]
pub struct Follower<S> {
    pub index_url: String,
    pub tls: TlsFiles,
    pub store: S,
    pub http: reqwest::Client,
    pub ledger: LedgerClient,
    pub directory: DirectoryFollower,
}

/// Checks the settings (in the order they are listed) and opens the store
/// with `open`, then a client of the ledger.
pub fn follow<S, E>(
    settings: FollowerSettings<'_>,
    open: impl FnOnce(Pool) -> Result<S, E>,
) -> Result<Follower<S>, StartupError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let index_url = required(settings.index_url, "LOCUS_INDEX_URL is required")?;
    let vkey = required(settings.ledger_vkey, "LOCUS_LEDGER_VKEY is required")?;
    let verifier = NoteVerifier::from_vkey(vkey.trim())
        .map_err(|_| StartupError::Invalid("LOCUS_LEDGER_VKEY is not a C2SP verifier key"))?;
    let authority = authority_key(settings.authority_key)?;
    let tls = settings.tls?;
    let url = DatabaseUrl::parse(settings.database_url)?;
    let store = open(db::connect(&url, settings.db_pool_size)?).map_err(StartupError::store)?;
    let http = http_client(&tls, Duration::from_secs(15))?;
    let ledger = LedgerClient::new(index_url, verifier, http.clone()).with_clock(settings.clock);
    Ok(Follower {
        index_url: index_url.to_owned(),
        tls,
        store,
        http,
        directory: DirectoryFollower::new(ledger.clone(), authority),
        ledger,
    })
}

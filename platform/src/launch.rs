//! The one way a service's binary starts: parse `--config`, load the
//! settings, start logging, build the service, print one ready line (JSON) on
//! stdout for scripts and tests, and serve until stopped.

use std::future::Future;
use std::path::PathBuf;

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::config::{ConfigError, Settings};
use crate::db::DbError;
use crate::files::KeyFileError;
use crate::tls::TlsError;
use locus_protocol::ids::MemberId;

/// A service a binary runs.
pub trait Launch: Sized {
    /// Its name in the ready line and in a failure to start.
    const SERVICE: &'static str;

    type Config: Settings;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Builds and binds the service; nothing is served yet.
    fn build(config: &Self::Config) -> Result<Self, Self::Error>;

    /// What the ready line says besides the service's name: an object, with
    /// at least `url`.
    fn ready(&self) -> serde_json::Value;

    /// Serves until stopped.
    fn run(self, config: &Self::Config) -> impl Future<Output = std::io::Result<()>>;
}

/// What `--help` and `--version` say.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    pub version: &'static str,
    pub about: &'static str,
}

/// `main!(Service, "what it is")`: a binary's `main`, which [`launch`]es
/// `Service` under the calling package's name and version.
#[macro_export]
macro_rules! main {
    ($service:ty, $about:literal) => {
        fn main() -> ::anyhow::Result<()> {
            $crate::launch::launch::<$service>($crate::launch::Program {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
                about: $about,
            })?;
            Ok(())
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{service} cannot start")]
    Build {
        service: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Run(#[from] std::io::Error),
}

/// Why a service cannot start: its settings, storage, keys, certificates
/// or listeners.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The service's own store refused to open (see [`StartupError::store`]).
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

impl StartupError {
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Store(Box::new(e))
    }
}

/// The member a service acts as, from its `LOCUS_MEMBER_ID` setting: every
/// member service reads it alike and refuses to start on anything else.
pub fn member_id(setting: &str) -> Result<MemberId, StartupError> {
    setting
        .parse()
        .map_err(|_| StartupError::Invalid("LOCUS_MEMBER_ID is not a member id"))
}

#[derive(Debug, clap::Parser)]
struct Args {
    /// TOML configuration file; `LOCUS_*` environment variables override it.
    #[arg(long, env = "LOCUS_CONFIG")]
    config: Option<PathBuf>,
}

/// Runs service `S` as `program` (an actix system on this thread), until
/// SIGINT or SIGTERM.
pub fn launch<S: Launch>(program: Program) -> Result<(), LaunchError> {
    let matches = Args::command()
        .name(program.name)
        .version(program.version)
        .about(program.about)
        .get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config = S::Config::load(args.config.as_deref())?;
    crate::telemetry::init(config.log_format());
    actix_web::rt::System::new().block_on(async move {
        let service = S::build(&config).map_err(|e| LaunchError::Build {
            service: S::SERVICE,
            source: Box::new(e),
        })?;
        let mut ready = serde_json::Map::new();
        ready.insert("service".into(), S::SERVICE.into());
        if let serde_json::Value::Object(fields) = service.ready() {
            ready.extend(fields);
        }
        #[allow(clippy::print_stdout)]
        {
            println!("{}", serde_json::Value::Object(ready));
        }
        service.run(&config).await?;
        Ok(())
    })
}

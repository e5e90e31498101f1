//! Typed configuration for every service: an optional TOML file, then `LOCUS_*`
//! environment variables, which win. Each service lists its settings in
//! `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::telemetry::LogFormat;
use crate::tls::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{name} is not valid: {message}")]
    Env { name: &'static str, message: String },
    #[error("{0}")]
    Missing(&'static str),
}

/// A service's settings, as [`crate::launch`] loads them.
pub trait Settings: Sized {
    /// Reads `file` (if any), then applies the environment.
    fn load(file: Option<&Path>) -> Result<Self, ConfigError>;

    fn log_format(&self) -> LogFormat;
}

/// The settings in `file`, or the defaults when there is none.
pub fn from_file<T: DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    let Some(path) = file else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The value of environment variable `name`, parsed; `None` when unset or empty.
pub fn env_var<T: FromStr>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => v.parse().map(Some).map_err(|e: T::Err| ConfigError::Env {
            name,
            message: e.to_string(),
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(ConfigError::Env {
            name,
            message: e.to_string(),
        }),
    }
}

/// A setting that an environment variable, when set and not empty,
/// overrides: parsed for a plain one, `Some(parsed)` for an optional one.
pub trait Setting {
    fn set_from_env(&mut self, name: &'static str) -> Result<(), ConfigError>;
}

macro_rules! parsed_settings {
    ($($ty:ty),+) => {
        $(
            impl Setting for $ty {
                fn set_from_env(&mut self, name: &'static str) -> Result<(), ConfigError> {
                    if let Some(value) = env_var(name)? {
                        *self = value;
                    }
                    Ok(())
                }
            }

            impl Setting for Option<$ty> {
                fn set_from_env(&mut self, name: &'static str) -> Result<(), ConfigError> {
                    if let Some(value) = env_var(name)? {
                        *self = Some(value);
                    }
                    Ok(())
                }
            }
        )+
    };
}

parsed_settings!(String, PathBuf, SocketAddr, u32, u64, i64, usize, LogFormat);

/// Declares a service's settings once, each with its default and the
/// `LOCUS_*` variable that overrides it:
///
/// ```ignore
/// locus_platform::settings! {
///     pub struct Config {
///         /// `LOCUS_LISTEN`: where to serve.
///         pub listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7300)) => "LOCUS_LISTEN",
///     }
/// }
/// ```
///
/// gives the struct (read from TOML by field name, unknown keys refused), its
/// `Default`, and [`Settings`]: the file, then the environment. Every service
/// also gets the settings all services share: the three TLS files
/// (`LOCUS_TLS_CA_CERT`, `LOCUS_TLS_CERT`, `LOCUS_TLS_KEY`, checked together by
/// `tls_files()`), `log_format` (`LOCUS_LOG_FORMAT`) and the in-code `clock`.
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty = $default:expr => $var:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )+
            /// `LOCUS_TLS_CA_CERT`, `LOCUS_TLS_CERT`, `LOCUS_TLS_KEY`: the consortium CA
            /// and this node's certificate and key (PEM), all three or none; a
            /// service that serves only over TLS requires them (its `tls()`).
            pub tls_ca_cert: Option<::std::path::PathBuf>,
            pub tls_cert: Option<::std::path::PathBuf>,
            pub tls_key: Option<::std::path::PathBuf>,
            /// `LOCUS_LOG_FORMAT`: `text` or `json`.
            pub log_format: $crate::telemetry::LogFormat,
            /// What the service takes the time to be: the system's; tests set their
            /// own. Set by the code that starts the service, never by a file or the
            /// environment.
            #[serde(skip)]
            pub clock: $crate::clock::Clock,
        }

        impl $name {
            /// The TLS files, when all three are set; an error when only some are.
            pub fn tls_files(
                &self,
            ) -> Result<Option<$crate::tls::TlsFiles>, $crate::config::ConfigError> {
                $crate::config::tls_files(&self.tls_ca_cert, &self.tls_cert, &self.tls_key)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $default, )+
                    tls_ca_cert: None,
                    tls_cert: None,
                    tls_key: None,
                    log_format: $crate::telemetry::LogFormat::Text,
                    clock: $crate::clock::Clock::system(),
                }
            }
        }

        impl $crate::config::Settings for $name {
            fn load(
                file: Option<&::std::path::Path>,
            ) -> Result<Self, $crate::config::ConfigError> {
                let mut config: Self = $crate::config::from_file(file)?;
                $( $crate::config::Setting::set_from_env(&mut config.$field, $var)?; )+
                $crate::config::Setting::set_from_env(&mut config.tls_ca_cert, "LOCUS_TLS_CA_CERT")?;
                $crate::config::Setting::set_from_env(&mut config.tls_cert, "LOCUS_TLS_CERT")?;
                $crate::config::Setting::set_from_env(&mut config.tls_key, "LOCUS_TLS_KEY")?;
                $crate::config::Setting::set_from_env(&mut config.log_format, "LOCUS_LOG_FORMAT")?;
                Ok(config)
            }

            fn log_format(&self) -> $crate::telemetry::LogFormat {
                self.log_format
            }
        }
    };
}

/// A required setting, or an error naming its variable.
pub fn required<'a>(
    value: &'a Option<String>,
    missing: &'static str,
) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or(ConfigError::Missing(missing))
}

/// The consortium authority's public key (`LOCUS_AUTHORITY_KEY`, base64url),
/// which every service pins to check the directory.
pub fn authority_key(
    value: &Option<String>,
) -> Result<locus_protocol::signing::VerifyingKey, ConfigError> {
    let encoded = required(
        value,
        "LOCUS_AUTHORITY_KEY (the consortium authority's public key) is required",
    )?;
    serde_json::from_value(serde_json::Value::String(encoded.trim().to_owned())).map_err(|_| {
        ConfigError::Missing("LOCUS_AUTHORITY_KEY is not a base64url Ed25519 public key")
    })
}

/// The three TLS files, when all are set (`LOCUS_TLS_CA_CERT`, `LOCUS_TLS_CERT`,
/// `LOCUS_TLS_KEY`); an error when only some are.
pub fn tls_files(
    ca_cert: &Option<PathBuf>,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (ca_cert, cert, key) {
        (Some(ca_cert), Some(cert), Some(key)) => Ok(Some(TlsFiles {
            ca_cert: ca_cert.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })),
        (None, None, None) => Ok(None),
        _ => Err(ConfigError::Missing(
            "LOCUS_TLS_CA_CERT, LOCUS_TLS_CERT and LOCUS_TLS_KEY go together: set all three or none",
        )),
    }
}

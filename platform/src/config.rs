//! Typed configuration for every service: an optional TOML file, then `LOCUS_*`
//! environment variables, which win. Each service lists its settings in
//! `docs/configuration.md`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;

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

/// `override_from_env!(config, field => "LOCUS_FIELD", ...)` sets each field
/// whose variable is set; `override_from_env!(config, ?field => ...)` does the
/// same for an `Option` field.
#[macro_export]
macro_rules! override_from_env {
    ($config:ident, $($field:ident => $name:literal),+ $(,)?) => {
        $( if let Some(v) = $crate::config::env_var($name)? { $config.$field = v; } )+
    };
    ($config:ident, $(? $field:ident => $name:literal),+ $(,)?) => {
        $( if let Some(v) = $crate::config::env_var($name)? { $config.$field = Some(v); } )+
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

//! Logs on stderr, as text or JSON, filtered by `LOCUS_LOG`. What services log
//! are counts, member ids and pseudonymous keys: never names, identifiers,
//! codes or record contents.

use std::str::FromStr;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected text or json".into()),
        }
    }
}

/// Installs the global subscriber (once per process).
pub fn init(format: LogFormat) {
    init_with(format, "info");
}

/// Like [`init`], with another filter when `LOCUS_LOG` is unset: a program
/// that prints its own story (`locus up`, `locus demo`) keeps services quiet.
pub fn init_with(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOCUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

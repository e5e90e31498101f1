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

/// `Debug` showing only the named fields, for types that hold keys, clients or
/// health data no log may show; after `;`, one more entry shows a length in
/// place of content: `debug_fields!(Row: id, version; content_bytes = content.len());`.
#[macro_export]
macro_rules! debug_fields {
    (
        $name:ident $(<$param:ident>)?: $($field:ident $(.$method:ident())?),*
        $(; $label:ident = $value:ident.$measure:ident())?
    ) => {
        impl$(<$param: ::std::fmt::Debug>)? ::std::fmt::Debug for $name$(<$param>)? {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$field$(.$method())?))*
                    $(.field(stringify!($label), &self.$value.$measure()))?
                    .finish_non_exhaustive()
            }
        }
    };
}

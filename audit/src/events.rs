//! Ledger entries by filter, through the ledger's indexed query API, and one
//! line of words for each.

use locus_ledger::client::LedgerClient;
use locus_ledger::wire::LoggedEntry;
use serde_json::Value;

use crate::AuditError;

/// Filters on the ledger's indexed columns.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Filter {
    /// Entry type, e.g. `record.retrieved`, `grant.issued`.
    #[cfg_attr(feature = "clap", arg(long = "type"))]
    pub entry_type: Option<String>,
    /// Submitting member, e.g. `hospital-b`.
    #[cfg_attr(feature = "clap", arg(long))]
    pub submitter: Option<String>,
    /// Patient pseudonym (64 hex characters).
    #[cfg_attr(feature = "clap", arg(long))]
    pub subject: Option<String>,
    /// Grant id.
    #[cfg_attr(feature = "clap", arg(long))]
    pub grant: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[cfg_attr(feature = "clap", arg(long))]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[cfg_attr(feature = "clap", arg(long))]
    pub until: Option<String>,
}

/// Every entry matching `filter`, a page at a time.
pub async fn events(
    ledger: &LedgerClient,
    filter: &Filter,
) -> Result<Vec<LoggedEntry>, AuditError> {
    let mut params: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("type", &filter.entry_type),
        ("submitter", &filter.submitter),
        ("subject", &filter.subject),
        ("grant", &filter.grant),
        ("from", &filter.from),
        ("until", &filter.until),
    ] {
        if let Some(value) = value {
            params.push((name, value));
        }
    }
    let base: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}&", urlencode(v)))
        .collect();
    let mut out = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page = ledger
            .entries(&format!("{base}limit=1000{cursor}"))
            .await
            .map_err(AuditError::Query)?;
        out.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value at `path` inside a logged entry's JSON.
pub(crate) fn field<'a>(entry: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(entry, |v, k| v.get(k))
}

/// The string at `path`, or an empty one.
pub(crate) fn text(entry: &Value, path: &[&str]) -> String {
    field(entry, path)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The entry's own time (RFC 3339, milliseconds), or an empty string.
pub(crate) fn time_of(logged: &LoggedEntry) -> String {
    field(&logged.entry, &["entry", "time_ms"])
        .and_then(Value::as_i64)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(String::new, |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
}

/// One line: index, time, type, submitter and who/what it concerns.
pub fn describe(logged: &LoggedEntry) -> String {
    let e = &logged.entry;
    let kind = text(e, &["entry", "event", "type"]);
    let mut details = Vec::new();
    for key in [
        "requester",
        "custodian",
        "grant",
        "member",
        "status",
        "reason",
        "results",
    ] {
        if let Some(value) = field(e, &["entry", "event", key]) {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            details.push(format!("{key}={value}"));
        }
    }
    format!(
        "{:>6}  {}  {:<18} {:<12} {}",
        logged.index,
        time_of(logged),
        kind,
        text(e, &["entry", "submitter"]),
        details.join(" ")
    )
}

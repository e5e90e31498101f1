//! Read-only SMART App Launch v2 style scopes:
//! `patient/<ResourceType>.<perms>[?<param>=<value>]`.
//!
//! Only what Locus needs is accepted: the `patient/` context, named resource types,
//! the read (`r`) and search (`s`) permissions, and at most one `category=` or
//! `code=` filter. Everything else is refused with an error that names the problem,
//! rather than being ignored, because a grant must mean exactly what it says.
//!
//! Scopes also define the blinded scope tags the index matches on: a grant names
//! [`ScopeSet::tag_inputs`], a publisher tags each pointer with
//! [`record_tag_inputs`], and both pass those strings to
//! [`crate::linkage::scope_tag`]. A scope covers a record exactly when the record's
//! tag inputs contain the scope's (tested below).

use core::fmt;
use core::str::FromStr;

/// Longest single scope string, in bytes.
pub const MAX_SCOPE_LEN: usize = 256;
/// Most scopes in one [`ScopeSet`].
pub const MAX_SCOPES: usize = 32;

/// Resource types a scope can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// FHIR `Observation` (lab results, vital signs, ...).
    Observation,
    /// FHIR `DiagnosticReport`.
    DiagnosticReport,
}

impl ResourceType {
    /// Every supported type.
    pub const ALL: &'static [ResourceType] = &[Self::Observation, Self::DiagnosticReport];

    /// The FHIR resource type name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Observation => "Observation",
            Self::DiagnosticReport => "DiagnosticReport",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ScopeError::UnknownResource(s.to_owned()))
    }
}

string_form!(ResourceType);

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Longer than [`MAX_SCOPE_LEN`].
    #[error("scope is longer than {MAX_SCOPE_LEN} bytes")]
    TooLong,
    /// Does not start with a `<context>/` prefix Locus knows.
    #[error("scope must start with \"patient/\"")]
    MissingContext,
    /// A `user/` or `system/` scope.
    #[error("only patient/ scopes are supported, not {0}/")]
    UnsupportedContext(&'static str),
    /// `*` as resource type or permissions.
    #[error("the '*' wildcard is not allowed: name the resource type and permissions")]
    Wildcard,
    /// A resource type Locus does not carry.
    #[error("unknown resource type {0:?} (supported: Observation, DiagnosticReport)")]
    UnknownResource(String),
    /// `.read`, `.write` (SMART v1).
    #[error(
        "SMART v1 permissions (.read, .write) are not supported: use v2 permissions such as .rs"
    )]
    V1Syntax,
    /// No `.<perms>` after the resource type.
    #[error("missing permissions after the resource type (for example \".rs\")")]
    MissingPermissions,
    /// `c`, `u` or `d`.
    #[error("only read (r) and search (s) permissions are allowed: Locus is read-only")]
    NotReadOnly,
    /// Permissions out of order, repeated, or unknown letters.
    #[error("permissions must be \"r\", \"s\" or \"rs\" (v2 letters, in order, each once)")]
    InvalidPermissions,
    /// A `?` with nothing after it.
    #[error("missing parameter after '?'")]
    MissingParameter,
    /// More than one `&`-separated parameter.
    #[error("only one parameter is allowed per scope")]
    MultipleParameters,
    /// A parameter other than `category` or `code`.
    #[error("unknown parameter {0:?} (supported: category, code)")]
    UnknownParameter(String),
    /// `param` without `=value`.
    #[error("parameter {0} has no value")]
    MissingValue(&'static str),
    /// `param=` with nothing after it.
    #[error("parameter {0} has an empty value")]
    EmptyValue(&'static str),
    /// `code=` without a `system|` part.
    #[error("the code parameter needs both a system and a code: code=<system>|<code>")]
    CodeWithoutSystem,
    /// The system is not an absolute URI as required.
    #[error(
        "code system must be an absolute URI (http://, https:// or urn:) of printable \
         ASCII without whitespace, '|', '&', '?' or '='"
    )]
    InvalidSystem,
    /// The code is empty or contains forbidden characters.
    #[error("code must be non-empty printable ASCII without whitespace, '|', '&', '?' or '='")]
    InvalidCode,
}

/// Why a space-separated scope list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeSetError {
    /// No scopes.
    #[error("scope list is empty")]
    Empty,
    /// More than [`MAX_SCOPES`].
    #[error("more than {MAX_SCOPES} scopes")]
    TooMany,
    /// Leading, trailing or repeated spaces (RFC 6749 §3.3).
    #[error("scopes must be separated by single spaces")]
    Spacing,
    /// The same scope twice.
    #[error("duplicate scope {0}")]
    Duplicate(String),
    /// One scope is invalid; `position` counts from 0.
    #[error("scope {position}: {source}")]
    Invalid {
        /// Index of the offending scope.
        position: usize,
        /// What is wrong with it.
        source: ScopeError,
    },
}

/// Characters that would be ambiguous inside a scope parameter.
fn is_plain(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '|' | '&' | '?' | '=')
}

fn check_system(system: &str) -> Result<(), ScopeError> {
    let rest = ["http://", "https://", "urn:"]
        .iter()
        .find_map(|p| system.strip_prefix(p))
        .ok_or(ScopeError::InvalidSystem)?;
    if rest.is_empty() || !system.chars().all(is_plain) {
        return Err(ScopeError::InvalidSystem);
    }
    Ok(())
}

fn check_code(code: &str) -> Result<(), ScopeError> {
    if code.is_empty() || !code.chars().all(is_plain) {
        return Err(ScopeError::InvalidCode);
    }
    Ok(())
}

/// A FHIR token: a bare `code`, or `system|code`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    system: Option<String>,
    code: String,
}

impl Token {
    /// A validated token.
    pub fn new(system: Option<&str>, code: &str) -> Result<Self, ScopeError> {
        if let Some(system) = system {
            check_system(system)?;
        }
        check_code(code)?;
        Ok(Self {
            system: system.map(str::to_owned),
            code: code.to_owned(),
        })
    }

    /// The code system, if given.
    pub fn system(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether a record carrying `other` has this token: a bare token matches any
    /// system's code, a `system|code` token must match both.
    fn matches(&self, other: &Token) -> bool {
        self.code == other.code && (self.system.is_none() || self.system == other.system)
    }
}

impl FromStr for Token {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        match s.split_once('|') {
            Some((system, code)) => Self::new(Some(system), code),
            None => Self::new(None, s),
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.system {
            Some(system) => write!(f, "{system}|{}", self.code),
            None => f.write_str(&self.code),
        }
    }
}

string_form!(Token);

/// A `system|code` pair (both required).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coding {
    system: String,
    code: String,
}

impl Coding {
    /// A validated coding.
    pub fn new(system: &str, code: &str) -> Result<Self, ScopeError> {
        check_system(system)?;
        check_code(code)?;
        Ok(Self {
            system: system.to_owned(),
            code: code.to_owned(),
        })
    }

    /// The code system.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

impl FromStr for Coding {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        let (system, code) = s.split_once('|').ok_or(ScopeError::CodeWithoutSystem)?;
        Self::new(system, code)
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.system, self.code)
    }
}

string_form!(Coding);

/// Read-only SMART v2 permissions: `r`, `s` or `rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permissions {
    read: bool,
    search: bool,
}

impl Permissions {
    /// `r`
    pub const READ: Self = Self {
        read: true,
        search: false,
    };
    /// `s`
    pub const SEARCH: Self = Self {
        read: false,
        search: true,
    };
    /// `rs`
    pub const READ_SEARCH: Self = Self {
        read: true,
        search: true,
    };

    /// Includes read (`r`).
    pub const fn read(self) -> bool {
        self.read
    }

    /// Includes search (`s`).
    pub const fn search(self) -> bool {
        self.search
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.read, self.search) {
            (true, true) => "rs",
            (true, false) => "r",
            // The constructors never make the empty set.
            (false, _) => "s",
        })
    }
}

impl FromStr for Permissions {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        match s {
            "" => return Err(ScopeError::MissingPermissions),
            "*" => return Err(ScopeError::Wildcard),
            "read" | "write" => return Err(ScopeError::V1Syntax),
            _ => {}
        }
        // v2 letters must appear in the order c r u d s, each at most once.
        const ORDER: &str = "cruds";
        let mut last = None;
        for c in s.chars() {
            let i = ORDER.find(c).ok_or(ScopeError::InvalidPermissions)?;
            if last.is_some_and(|l| i <= l) {
                return Err(ScopeError::InvalidPermissions);
            }
            last = Some(i);
        }
        if s.contains(['c', 'u', 'd']) {
            return Err(ScopeError::NotReadOnly);
        }
        Ok(Self {
            read: s.contains('r'),
            search: s.contains('s'),
        })
    }
}

/// The one optional parameter of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopeFilter {
    /// `category=<code>` or `category=<system>|<code>`.
    Category(Token),
    /// `code=<system>|<code>`.
    Code(Coding),
}

impl fmt::Display for ScopeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Category(t) => write!(f, "category={t}"),
            Self::Code(c) => write!(f, "code={c}"),
        }
    }
}

impl FromStr for ScopeFilter {
    type Err = ScopeError;
    fn from_str(query: &str) -> Result<Self, ScopeError> {
        if query.is_empty() {
            return Err(ScopeError::MissingParameter);
        }
        if query.contains('&') {
            return Err(ScopeError::MultipleParameters);
        }
        let (name, value) = match query.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (query, None),
        };
        let name: &'static str = match name {
            "category" => "category",
            "code" => "code",
            other => return Err(ScopeError::UnknownParameter(other.to_owned())),
        };
        let value = value.ok_or(ScopeError::MissingValue(name))?;
        if value.is_empty() {
            return Err(ScopeError::EmptyValue(name));
        }
        if name == "category" {
            value.parse().map(Self::Category)
        } else {
            value.parse().map(Self::Code)
        }
    }
}

/// One scope, e.g. `patient/Observation.rs?category=laboratory`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The resource type.
    pub resource: ResourceType,
    /// What may be done.
    pub permissions: Permissions,
    /// Restriction to a category or code; `None` covers the whole resource type.
    pub filter: Option<ScopeFilter>,
}

/// A record as scopes see it: its type, categories and codes, which every check of
/// a scope against a record takes together.
#[derive(Debug, Clone, Copy)]
pub struct RecordFacets<'a> {
    /// The record's resource type.
    pub resource: ResourceType,
    /// Its categories, each `code` or `system|code`.
    pub categories: &'a [&'a str],
    /// Its codes, as `(system, code)`.
    pub codes: &'a [(&'a str, &'a str)],
}

impl Scope {
    /// Whether this scope lets its holder read `record`.
    ///
    /// Needs the read permission. Without a filter it covers every record of the
    /// type; a category filter needs a matching category (a bare filter matches the
    /// code under any system, `system|code` must match both); a code filter needs a
    /// record code with the same system and code. Record values that no scope could
    /// name (e.g. containing spaces) never match a filter.
    pub fn covers(&self, record: &RecordFacets<'_>) -> bool {
        if !self.permissions.read() || self.resource != record.resource {
            return false;
        }
        match &self.filter {
            None => true,
            Some(ScopeFilter::Category(want)) => record
                .categories
                .iter()
                .filter_map(|c| c.parse::<Token>().ok())
                .any(|have| want.matches(&have)),
            Some(ScopeFilter::Code(want)) => record
                .codes
                .iter()
                .any(|(system, code)| want.system == *system && want.code == *code),
        }
    }

    /// Whether everything this scope allows, `broader` allows too: the same resource
    /// type, no permission `broader` lacks, and a filter at least as narrow. No filter
    /// is broader than any filter; a bare category (`laboratory`, any system) is
    /// broader than the same code with a system; otherwise the filters must be equal
    /// (a code and a category are never comparable: a code need not be in a category).
    pub fn is_within(&self, broader: &Scope) -> bool {
        let permissions = (!self.permissions.read || broader.permissions.read)
            && (!self.permissions.search || broader.permissions.search);
        let filter = match (&self.filter, &broader.filter) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(ScopeFilter::Category(narrow)), Some(ScopeFilter::Category(wide))) => {
                narrow == wide || (wide.system.is_none() && wide.code == narrow.code)
            }
            (Some(narrow), Some(wide)) => narrow == wide,
        };
        self.resource == broader.resource && permissions && filter
    }

    /// The category or code token this scope names, if any
    /// (`laboratory`, `http://loinc.org|2339-0`).
    pub fn filter_token(&self) -> Option<String> {
        match &self.filter {
            None => None,
            Some(ScopeFilter::Category(t)) => Some(t.to_string()),
            Some(ScopeFilter::Code(c)) => Some(c.to_string()),
        }
    }

    /// The string this scope contributes to scope tags: the scope without its
    /// context and permissions, e.g. `Observation`, `Observation?category=laboratory`,
    /// `Observation?code=http://loinc.org|2339-0`. Qualifying by resource type keeps
    /// an Observation grant from matching DiagnosticReports of the same category,
    /// and gives unfiltered scopes a tag too.
    pub fn tag_input(&self) -> String {
        match &self.filter {
            None => self.resource.to_string(),
            Some(filter) => format!("{}?{filter}", self.resource),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "patient/{}.{}", self.resource, self.permissions)?;
        if let Some(filter) = &self.filter {
            write!(f, "?{filter}")?;
        }
        Ok(())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let rest = match s.split_once('/') {
            Some(("patient", rest)) => rest,
            Some(("user", _)) => return Err(ScopeError::UnsupportedContext("user")),
            Some(("system", _)) => return Err(ScopeError::UnsupportedContext("system")),
            _ => return Err(ScopeError::MissingContext),
        };
        let (head, query) = match rest.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None => (rest, None),
        };
        let (resource, perms) = head.split_once('.').ok_or_else(|| {
            if head == "*" {
                ScopeError::Wildcard
            } else {
                ScopeError::MissingPermissions
            }
        })?;
        if resource == "*" {
            return Err(ScopeError::Wildcard);
        }
        Ok(Self {
            resource: resource.parse()?,
            permissions: perms.parse()?,
            filter: query.map(str::parse).transpose()?,
        })
    }
}

string_form!(Scope);

/// The scopes of a grant: 1 to 32 distinct scopes, written space-separated as in
/// the OAuth `scope` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// A checked set (non-empty, at most [`MAX_SCOPES`], no duplicates).
    pub fn new(scopes: Vec<Scope>) -> Result<Self, ScopeSetError> {
        if scopes.is_empty() {
            return Err(ScopeSetError::Empty);
        }
        if scopes.len() > MAX_SCOPES {
            return Err(ScopeSetError::TooMany);
        }
        for (i, scope) in scopes.iter().enumerate() {
            if scopes[..i].contains(scope) {
                return Err(ScopeSetError::Duplicate(scope.to_string()));
            }
        }
        Ok(Self(scopes))
    }

    /// The scopes, in order.
    pub fn scopes(&self) -> &[Scope] {
        &self.0
    }

    /// Whether any scope covers the record (see [`Scope::covers`]).
    pub fn covers(&self, record: &RecordFacets<'_>) -> bool {
        self.0.iter().any(|s| s.covers(record))
    }

    /// The first scope of this set that no scope of `broader` has within it
    /// ([`Scope::is_within`]), if any.
    pub fn first_outside(&self, broader: &ScopeSet) -> Option<&Scope> {
        self.0
            .iter()
            .find(|scope| !broader.0.iter().any(|wide| scope.is_within(wide)))
    }

    /// Whether every scope of this set is within some scope of `broader`.
    pub fn is_within(&self, broader: &ScopeSet) -> bool {
        self.first_outside(broader).is_none()
    }

    /// The distinct [`Scope::tag_input`]s, sorted: what the grant's `scope_tags`
    /// are computed from.
    pub fn tag_inputs(&self) -> Vec<String> {
        let mut inputs: Vec<String> = self.0.iter().map(Scope::tag_input).collect();
        inputs.sort();
        inputs.dedup();
        inputs
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{scope}")?;
        }
        Ok(())
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeSetError;
    fn from_str(s: &str) -> Result<Self, ScopeSetError> {
        if s.is_empty() {
            return Err(ScopeSetError::Empty);
        }
        let mut scopes = Vec::new();
        for (position, part) in s.split(' ').enumerate() {
            if part.is_empty() {
                return Err(ScopeSetError::Spacing);
            }
            if position == MAX_SCOPES {
                return Err(ScopeSetError::TooMany);
            }
            scopes.push(
                part.parse()
                    .map_err(|source| ScopeSetError::Invalid { position, source })?,
            );
        }
        Self::new(scopes)
    }
}

string_form!(ScopeSet);

/// A tag input restricted to one month (`YYYY-MM`): what a grant with a data
/// period is matched by.
pub fn dated_tag_input(input: &str, month: &str) -> String {
    format!("{input}@{month}")
}

/// Every tag input a record can be found under: its resource type, each category
/// (a `system|code` category also under its bare code, since a bare filter matches
/// it) and each code; and, when the record has a clinical date (`YYYY-MM-DD`),
/// each of those again for its month, so grants limited to a period find it.
/// Sorted, without duplicates. Values that no scope could name are left out.
/// Pass each to [`crate::linkage::scope_tag`] when publishing.
pub fn record_tag_inputs(
    resource: ResourceType,
    categories: &[&str],
    codes: &[(&str, &str)],
    effective: Option<&str>,
) -> Vec<String> {
    let mut inputs = vec![resource.to_string()];
    for token in categories.iter().filter_map(|c| c.parse::<Token>().ok()) {
        if token.system.is_some() {
            inputs.push(format!("{resource}?category={token}"));
        }
        inputs.push(format!("{resource}?category={}", token.code));
    }
    for coding in codes.iter().filter_map(|(s, c)| Coding::new(s, c).ok()) {
        inputs.push(format!("{resource}?code={coding}"));
    }
    if let Some(month) = effective.and_then(|d| d.get(..7)) {
        let dated: Vec<String> = inputs.iter().map(|i| dated_tag_input(i, month)).collect();
        inputs.extend(dated);
    }
    inputs.sort();
    inputs.dedup();
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LAB_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

    #[test]
    fn accepted_forms_round_trip() {
        for s in [
            "patient/Observation.r",
            "patient/Observation.s",
            "patient/Observation.rs",
            "patient/DiagnosticReport.rs",
            "patient/Observation.rs?category=laboratory",
            "patient/Observation.rs?category=vital-signs",
            "patient/Observation.r?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            "patient/Observation.rs?code=http://loinc.org|2339-0",
            "patient/DiagnosticReport.rs?category=urn:oid:2.16.840.1.113883.18.36|LAB",
        ] {
            let scope: Scope = s.parse().unwrap();
            assert_eq!(scope.to_string(), s);
            assert_eq!(serde_json::to_string(&scope).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn rejection_table() {
        use ScopeError::*;
        let cases: &[(&str, ScopeError)] = &[
            ("user/Observation.rs", UnsupportedContext("user")),
            ("system/Observation.rs", UnsupportedContext("system")),
            ("Observation.rs", MissingContext),
            ("openid", MissingContext),
            ("launch/patient", MissingContext),
            ("Patient/Observation.rs", MissingContext),
            ("patient/*.rs", Wildcard),
            ("patient/*.*", Wildcard),
            ("patient/*", Wildcard),
            ("patient/Observation.*", Wildcard),
            ("patient/Observation.read", V1Syntax),
            ("patient/Observation.write", V1Syntax),
            ("patient/Observation", MissingPermissions),
            ("patient/Observation.", MissingPermissions),
            ("patient/Observation.cruds", NotReadOnly),
            ("patient/Observation.c", NotReadOnly),
            ("patient/Observation.u", NotReadOnly),
            ("patient/Observation.d", NotReadOnly),
            ("patient/Observation.rd", NotReadOnly),
            ("patient/Observation.sr", InvalidPermissions),
            ("patient/Observation.rr", InvalidPermissions),
            ("patient/Observation.rx", InvalidPermissions),
            ("patient/Observation.RS", InvalidPermissions),
            ("patient/Observation.rs.r", InvalidPermissions),
            ("patient/Patient.rs", UnknownResource("Patient".into())),
            (
                "patient/observation.rs",
                UnknownResource("observation".into()),
            ),
            ("patient/.rs", UnknownResource(String::new())),
            ("patient/Observation.rs?", MissingParameter),
            ("patient/Observation.rs?category", MissingValue("category")),
            ("patient/Observation.rs?category=", EmptyValue("category")),
            ("patient/Observation.rs?code=", EmptyValue("code")),
            (
                "patient/Observation.rs?status=final",
                UnknownParameter("status".into()),
            ),
            ("patient/Observation.rs?=x", UnknownParameter(String::new())),
            (
                "patient/Observation.rs?category=laboratory&category=imaging",
                MultipleParameters,
            ),
            (
                "patient/Observation.rs?category=laboratory&",
                MultipleParameters,
            ),
            ("patient/Observation.rs?code=2339-0", CodeWithoutSystem),
            ("patient/Observation.rs?code=|2339-0", InvalidSystem),
            (
                "patient/Observation.rs?category=ftp://x.org|lab",
                InvalidSystem,
            ),
            ("patient/Observation.rs?category=http://|lab", InvalidSystem),
            (
                "patient/Observation.rs?category=loinc.org|lab",
                InvalidSystem,
            ),
            (
                "patient/Observation.rs?category=http://x.org?a|lab",
                InvalidSystem,
            ),
            (
                "patient/Observation.rs?category=http://loinc.org|",
                InvalidCode,
            ),
            (
                "patient/Observation.rs?category=http://loinc.org|a|b",
                InvalidCode,
            ),
            ("patient/Observation.rs?category=lab=x", InvalidCode),
            ("patient/Observation.rs?category=la b", InvalidCode),
            ("patient/Observation.rs?category=lab\t", InvalidCode),
            ("patient/Observation.rs?category=labé", InvalidCode),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Scope>().as_ref(), Err(want), "{s}");
        }
        assert_eq!(
            format!("patient/Observation.rs?category={}", "a".repeat(250)).parse::<Scope>(),
            Err(TooLong)
        );
        assert!(serde_json::from_str::<Scope>("\"user/Observation.rs\"").is_err());
        // Messages name the problem.
        assert_eq!(
            "patient/Observation.cruds"
                .parse::<Scope>()
                .unwrap_err()
                .to_string(),
            "only read (r) and search (s) permissions are allowed: Locus is read-only"
        );
    }

    #[test]
    fn scope_sets() {
        let s = "patient/Observation.rs?category=laboratory patient/DiagnosticReport.r";
        let set: ScopeSet = s.parse().unwrap();
        assert_eq!(set.scopes().len(), 2);
        assert_eq!(set.to_string(), s);
        assert_eq!(
            serde_json::from_str::<ScopeSet>(&format!("\"{s}\"")).unwrap(),
            set
        );

        assert_eq!("".parse::<ScopeSet>(), Err(ScopeSetError::Empty));
        for bad in [
            " patient/Observation.r",
            "patient/Observation.r ",
            "patient/Observation.r  patient/Observation.s",
        ] {
            assert_eq!(
                bad.parse::<ScopeSet>(),
                Err(ScopeSetError::Spacing),
                "{bad:?}"
            );
        }
        assert_eq!(
            "patient/Observation.r patient/Observation.r".parse::<ScopeSet>(),
            Err(ScopeSetError::Duplicate("patient/Observation.r".into()))
        );
        assert_eq!(
            "patient/Observation.r user/Observation.r".parse::<ScopeSet>(),
            Err(ScopeSetError::Invalid {
                position: 1,
                source: ScopeError::UnsupportedContext("user")
            })
        );
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("patient/Observation.r?category=c{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(many(MAX_SCOPES).parse::<ScopeSet>().is_ok());
        assert_eq!(
            many(MAX_SCOPES + 1).parse::<ScopeSet>(),
            Err(ScopeSetError::TooMany)
        );
        assert_eq!(ScopeSet::new(vec![]), Err(ScopeSetError::Empty));
    }

    /// The record of `resource` with these categories and codes.
    fn record<'a>(
        resource: ResourceType,
        categories: &'a [&'a str],
        codes: &'a [(&'a str, &'a str)],
    ) -> RecordFacets<'a> {
        RecordFacets {
            resource,
            categories,
            codes,
        }
    }

    #[test]
    fn covers_rules() {
        let lab: Scope = "patient/Observation.rs?category=laboratory"
            .parse()
            .unwrap();
        let lab_sys: Scope = format!("patient/Observation.rs?category={LAB_SYSTEM}|laboratory")
            .parse()
            .unwrap();
        let glucose: Scope = "patient/Observation.rs?code=http://loinc.org|2339-0"
            .parse()
            .unwrap();
        let all_obs: Scope = "patient/Observation.r".parse().unwrap();
        let search_only: Scope = "patient/Observation.s".parse().unwrap();
        let obs = ResourceType::Observation;
        let rep = ResourceType::DiagnosticReport;
        let qualified = format!("{LAB_SYSTEM}|laboratory");

        assert!(lab.covers(&record(obs, &["laboratory"], &[])));
        assert!(lab.covers(&record(obs, &["vital-signs", &qualified], &[])));
        assert!(!lab.covers(&record(obs, &["vital-signs"], &[])));
        assert!(!lab.covers(&record(rep, &["laboratory"], &[])));
        assert!(!lab.covers(&record(obs, &[], &[("http://loinc.org", "laboratory")])));

        assert!(lab_sys.covers(&record(obs, &[&qualified], &[])));
        assert!(!lab_sys.covers(&record(obs, &["laboratory"], &[])));
        assert!(!lab_sys.covers(&record(obs, &["http://other.org|laboratory"], &[])));

        assert!(glucose.covers(&record(obs, &[], &[("http://loinc.org", "2339-0")])));
        assert!(!glucose.covers(&record(obs, &[], &[("http://snomed.info/sct", "2339-0")])));
        assert!(!glucose.covers(&record(obs, &["2339-0"], &[])));

        assert!(all_obs.covers(&record(obs, &[], &[])));
        assert!(!all_obs.covers(&record(rep, &[], &[])));
        assert!(!search_only.covers(&record(obs, &[], &[])));

        let set = ScopeSet::new(vec![lab.clone(), glucose.clone()]).unwrap();
        assert!(set.covers(&record(obs, &["laboratory"], &[])));
        assert!(set.covers(&record(obs, &[], &[("http://loinc.org", "2339-0")])));
        assert!(!set.covers(&record(obs, &["imaging"], &[])));
        assert_eq!(
            set.tag_inputs(),
            vec![
                "Observation?category=laboratory".to_string(),
                "Observation?code=http://loinc.org|2339-0".to_string(),
            ]
        );
        assert_eq!(lab.filter_token().as_deref(), Some("laboratory"));
        assert_eq!(
            glucose.filter_token().as_deref(),
            Some("http://loinc.org|2339-0")
        );
        assert_eq!(all_obs.filter_token(), None);
        assert_eq!(all_obs.tag_input(), "Observation");
    }

    #[test]
    fn within_table() {
        let s = |s: &str| s.parse::<Scope>().unwrap();
        let qualified = format!("patient/Observation.rs?category={LAB_SYSTEM}|laboratory");
        let within = [
            (
                "patient/Observation.rs?category=laboratory",
                "patient/Observation.rs",
            ),
            ("patient/Observation.r", "patient/Observation.rs"),
            (
                "patient/Observation.s?category=laboratory",
                "patient/Observation.rs?category=laboratory",
            ),
            ("patient/Observation.rs", "patient/Observation.rs"),
            (
                "patient/Observation.rs?code=http://loinc.org|2339-0",
                "patient/Observation.rs",
            ),
            (&qualified, "patient/Observation.rs?category=laboratory"),
        ];
        for (narrow, wide) in within {
            assert!(s(narrow).is_within(&s(wide)), "{narrow} within {wide}");
        }
        let not_within = [
            (
                "patient/Observation.rs",
                "patient/Observation.rs?category=laboratory",
            ),
            ("patient/Observation.rs", "patient/Observation.r"),
            ("patient/Observation.r", "patient/DiagnosticReport.r"),
            (
                "patient/Observation.r?category=imaging",
                "patient/Observation.r?category=laboratory",
            ),
            (
                "patient/Observation.r?code=http://loinc.org|2339-0",
                "patient/Observation.r?category=laboratory",
            ),
            ("patient/Observation.r?category=laboratory", &qualified),
        ];
        for (narrow, wide) in not_within {
            assert!(!s(narrow).is_within(&s(wide)), "{narrow} not within {wide}");
        }
        let wide: ScopeSet =
            "patient/Observation.rs?category=laboratory patient/DiagnosticReport.r"
                .parse()
                .unwrap();
        let narrow: ScopeSet =
            "patient/DiagnosticReport.r patient/Observation.r?category=laboratory"
                .parse()
                .unwrap();
        assert!(narrow.is_within(&wide));
        let wider: ScopeSet = "patient/DiagnosticReport.r patient/Observation.r"
            .parse()
            .unwrap();
        assert_eq!(
            wider
                .first_outside(&wide)
                .map(ToString::to_string)
                .as_deref(),
            Some("patient/Observation.r")
        );
    }

    #[test]
    fn record_tags() {
        let qualified = format!("{LAB_SYSTEM}|laboratory");
        assert_eq!(
            record_tag_inputs(
                ResourceType::Observation,
                &[&qualified, "laboratory", "bad value"],
                &[("http://loinc.org", "2339-0"), ("no-system", "x")],
                None
            ),
            vec![
                "Observation".to_string(),
                format!("Observation?category={qualified}"),
                "Observation?category=laboratory".to_string(),
                "Observation?code=http://loinc.org|2339-0".to_string(),
            ]
        );
    }

    fn code_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._:/#%+-]{0,15}"
    }

    fn system_strategy() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("http://"), Just("https://"), Just("urn:")],
            "[a-z0-9][a-z0-9./:#-]{0,30}",
        )
            .prop_map(|(p, rest)| format!("{p}{rest}"))
    }

    fn scope_strategy() -> impl Strategy<Value = Scope> {
        let filter = prop_oneof![
            Just(None),
            code_strategy()
                .prop_map(|c| Some(ScopeFilter::Category(Token::new(None, &c).unwrap()))),
            (system_strategy(), code_strategy())
                .prop_map(|(s, c)| Some(ScopeFilter::Category(Token::new(Some(&s), &c).unwrap()))),
            (system_strategy(), code_strategy())
                .prop_map(|(s, c)| Some(ScopeFilter::Code(Coding::new(&s, &c).unwrap()))),
        ];
        (
            prop::sample::select(ResourceType::ALL),
            prop::sample::select(vec![
                Permissions::READ,
                Permissions::SEARCH,
                Permissions::READ_SEARCH,
            ]),
            filter,
        )
            .prop_map(|(resource, permissions, filter)| Scope {
                resource,
                permissions,
                filter,
            })
    }

    /// A record drawn from a small vocabulary so that matches actually happen.
    fn record_strategy() -> impl Strategy<Value = (ResourceType, Vec<String>, Vec<(String, String)>)>
    {
        let system = prop::sample::select(vec!["http://a.org", "urn:b"]);
        let code = prop::sample::select(vec!["x", "y"]);
        let category = prop_oneof![
            code.clone().prop_map(str::to_owned),
            (system.clone(), code.clone()).prop_map(|(s, c)| format!("{s}|{c}")),
        ];
        (
            prop::sample::select(ResourceType::ALL),
            prop::collection::vec(category, 0..3),
            prop::collection::vec(
                (system, code).prop_map(|(s, c)| (s.to_owned(), c.to_owned())),
                0..3,
            ),
        )
    }

    fn small_scope_strategy() -> impl Strategy<Value = Scope> {
        let system = prop::sample::select(vec!["http://a.org", "urn:b"]);
        let code = prop::sample::select(vec!["x", "y"]);
        let filter = prop_oneof![
            Just(None),
            code.clone()
                .prop_map(|c| Some(ScopeFilter::Category(Token::new(None, c).unwrap()))),
            (system.clone(), code.clone())
                .prop_map(|(s, c)| Some(ScopeFilter::Category(Token::new(Some(s), c).unwrap()))),
            (system, code).prop_map(|(s, c)| Some(ScopeFilter::Code(Coding::new(s, c).unwrap()))),
        ];
        (
            prop::sample::select(ResourceType::ALL),
            prop::sample::select(vec![Permissions::READ, Permissions::READ_SEARCH]),
            filter,
        )
            .prop_map(|(resource, permissions, filter)| Scope {
                resource,
                permissions,
                filter,
            })
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(scope in scope_strategy()) {
            let s = scope.to_string();
            prop_assert_eq!(s.parse::<Scope>().unwrap(), scope.clone());
            prop_assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }

        #[test]
        fn set_round_trip(scopes in prop::collection::vec(scope_strategy(), 1..6)) {
            let mut unique: Vec<Scope> = Vec::new();
            for s in scopes {
                if !unique.contains(&s) {
                    unique.push(s);
                }
            }
            let set = ScopeSet::new(unique).unwrap();
            prop_assert_eq!(set.to_string().parse::<ScopeSet>().unwrap(), set);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<Scope>();
            let _ = s.parse::<ScopeSet>();
        }

        #[test]
        fn within_never_widens(
            narrow in small_scope_strategy(),
            wide in small_scope_strategy(),
            record in record_strategy(),
        ) {
            let (resource, categories, codes) = record;
            let cats: Vec<&str> = categories.iter().map(String::as_str).collect();
            let codes: Vec<(&str, &str)> = codes.iter().map(|(s, c)| (s.as_str(), c.as_str())).collect();
            let record = RecordFacets { resource, categories: &cats, codes: &codes };
            if narrow.is_within(&wide) && narrow.covers(&record) {
                prop_assert!(wide.covers(&record));
            }
            prop_assert!(narrow.is_within(&narrow));
        }

        #[test]
        fn covers_iff_tag_matches(scope in small_scope_strategy(), record in record_strategy()) {
            let (resource, categories, codes) = record;
            let cats: Vec<&str> = categories.iter().map(String::as_str).collect();
            let codes: Vec<(&str, &str)> = codes.iter().map(|(s, c)| (s.as_str(), c.as_str())).collect();
            let tags = record_tag_inputs(resource, &cats, &codes, None);
            prop_assert_eq!(
                scope.covers(&RecordFacets { resource, categories: &cats, codes: &codes }),
                tags.contains(&scope.tag_input())
            );
        }
    }
}

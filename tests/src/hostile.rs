//! Hostile input against running services, case by case: each case is one
//! request (or one raw HTTP exchange) and what must come of it: a status, the
//! JSON error body `{"error": code, "message": text}`, the ledger entries it
//! appended (only the documented refusal entry, if any) and no other change to
//! any table of any service's database.
//!
//! [`Suite`] runs cases one after the other against one network, snapshots the
//! ledger and the row count of every table before and after each, and collects
//! every failure instead of stopping at the first, so one run shows all that
//! does not hold.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection as _, PgConnection, QueryableByName, RunQueryDsl as _, SqliteConnection};

/// Tables that change in the background while a network runs: the ledger's
/// Merkle nodes and checkpoints follow its entries, which are compared
/// themselves.
const BACKGROUND_TABLES: &[&str] = &["ledger_nodes", "ledger_checkpoints", "ledger_entries"];

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct TableCount {
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct LoggedRow {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = Text)]
    entry_type: String,
    #[diesel(sql_type = Text)]
    submitter: String,
    #[diesel(sql_type = Text)]
    body: String,
}

enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Conn {
    fn open(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(PgConnection::establish(url).expect("connect to a service database"))
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut conn = SqliteConnection::establish(path).expect("open a service database");
            diesel::sql_query("PRAGMA busy_timeout = 10000")
                .execute(&mut conn)
                .expect("busy timeout");
            Self::Sqlite(conn)
        }
    }

    fn load<T>(&mut self, sql: &str) -> Vec<T>
    where
        T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
    {
        let result = match self {
            Self::Sqlite(c) => diesel::sql_query(sql).load::<T>(c),
            Self::Postgres(c) => diesel::sql_query(sql).load::<T>(c),
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

struct Store {
    name: String,
    conn: Conn,
    tables: Vec<String>,
    has_ledger: bool,
}

/// Every database of a running network, read directly.
pub struct Stores {
    stores: Mutex<Vec<Store>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores(..)")
    }
}

/// One entry the ledger appended.
#[derive(Debug, Clone)]
pub struct Appended {
    pub index: i64,
    pub kind: String,
    pub submitter: String,
    pub body: String,
}

/// The state a case must leave alone: the ledger's size and the row count of
/// every table of every service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub ledger_size: i64,
    pub rows: BTreeMap<String, i64>,
}

impl Stores {
    /// `databases`: a name for each service and its database URL; the one
    /// holding `ledger_entries` is the ledger.
    pub fn open(databases: &[(&str, &str)]) -> Self {
        let mut stores = Vec::new();
        for (name, url) in databases {
            let mut conn = Conn::open(url);
            let listing = match conn {
                Conn::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT LIKE '%diesel%'",
                Conn::Postgres(_) => "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '%diesel%'",
            };
            let all: Vec<String> = conn
                .load::<TableName>(listing)
                .into_iter()
                .map(|t| t.name)
                .collect();
            assert!(!all.is_empty(), "{name} has no tables");
            let has_ledger = all.iter().any(|t| t == "ledger_entries");
            let mut tables: Vec<String> = all
                .into_iter()
                .filter(|t| !BACKGROUND_TABLES.contains(&t.as_str()))
                .collect();
            tables.sort();
            stores.push(Store {
                name: (*name).to_owned(),
                conn,
                tables,
                has_ledger,
            });
        }
        assert_eq!(
            stores.iter().filter(|s| s.has_ledger).count(),
            1,
            "exactly one database holds the ledger"
        );
        Self {
            stores: Mutex::new(stores),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Store>> {
        self.stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The names of every table compared (`service.table`).
    pub fn tables(&self) -> Vec<String> {
        self.lock()
            .iter()
            .flat_map(|s| s.tables.iter().map(move |t| format!("{}.{t}", s.name)))
            .collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut rows = BTreeMap::new();
        let mut ledger_size = 0;
        for store in self.lock().iter_mut() {
            let mut parts: Vec<String> = store
                .tables
                .iter()
                .map(|t| format!("SELECT '{t}' AS t, COUNT(*) AS n FROM {t}"))
                .collect();
            if store.has_ledger {
                parts.push("SELECT '#ledger' AS t, COUNT(*) AS n FROM ledger_entries".into());
            }
            for count in store.conn.load::<TableCount>(&parts.join(" UNION ALL ")) {
                if count.t == "#ledger" {
                    ledger_size = count.n;
                } else {
                    rows.insert(format!("{}.{}", store.name, count.t), count.n);
                }
            }
        }
        Snapshot { ledger_size, rows }
    }

    /// The entries logged at `from` and after, in log order.
    pub fn appended(&self, from: i64) -> Vec<Appended> {
        let mut stores = self.lock();
        let store = stores
            .iter_mut()
            .find(|s| s.has_ledger)
            .expect("the ledger's database");
        store
            .conn
            .load::<LoggedRow>(&format!(
                "SELECT idx, entry_type, submitter, body FROM ledger_entries WHERE idx >= {from} ORDER BY idx"
            ))
            .into_iter()
            .map(|r| Appended { index: r.idx, kind: r.entry_type, submitter: r.submitter, body: r.body })
            .collect()
    }

    /// The first logged entry of each type, as stored (canonical JSON).
    pub fn first_of_each_type(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for entry in self.appended(0) {
            out.entry(entry.kind).or_insert(entry.body);
        }
        out
    }
}

/// How a case's status must come out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Is(u16),
    /// Any of these (where the issue leaves the choice to the service, e.g. a
    /// duplicate answered with the first result or with 409).
    OneOf(Vec<u16>),
    /// The TLS handshake itself is refused: no HTTP exchange at all.
    Handshake,
}

impl Status {
    fn matches(&self, status: Option<u16>) -> bool {
        match (self, status) {
            (Self::Is(want), Some(got)) => *want == got,
            (Self::OneOf(want), Some(got)) => want.contains(&got),
            (Self::Handshake, None) => true,
            _ => false,
        }
    }
}

/// One acceptable outcome of a case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// The JSON error code, when the case pins it (any non-empty code otherwise).
    pub code: Option<&'static str>,
    /// The types of the entries the ledger must append, in order.
    pub logs: Vec<&'static str>,
    /// Row-count changes allowed, by `service.table`.
    pub rows: Vec<(&'static str, i64)>,
}

/// What a case must come to: one of its outcomes.
#[derive(Debug, Clone)]
pub struct Expect {
    pub outcomes: Vec<Outcome>,
}

impl Expect {
    /// A refusal with `status` and this error code; nothing logged, nothing stored.
    pub fn refused(status: u16, code: &'static str) -> Self {
        Self::outcome(Status::Is(status), Some(code))
    }

    /// A refusal with `status` and any error code.
    pub fn status(status: u16) -> Self {
        Self::outcome(Status::Is(status), None)
    }

    /// Any of these statuses, any code.
    pub fn one_of(statuses: &[u16]) -> Self {
        Self::outcome(Status::OneOf(statuses.to_vec()), None)
    }

    /// The TLS handshake is refused.
    pub fn handshake() -> Self {
        Self::outcome(Status::Handshake, None)
    }

    fn outcome(status: Status, code: Option<&'static str>) -> Self {
        Self {
            outcomes: vec![Outcome {
                status,
                code,
                logs: Vec::new(),
                rows: Vec::new(),
            }],
        }
    }

    /// The ledger appends exactly these entry types (every outcome so far).
    pub fn logs(mut self, types: &[&'static str]) -> Self {
        for o in &mut self.outcomes {
            o.logs = types.to_vec();
        }
        self
    }

    /// A table of a service may change by `delta` rows (every outcome so far).
    pub fn rows(mut self, table: &'static str, delta: i64) -> Self {
        for o in &mut self.outcomes {
            o.rows.push((table, delta));
        }
        self
    }

    /// Another acceptable outcome.
    pub fn or(mut self, other: Expect) -> Self {
        self.outcomes.extend(other.outcomes);
        self
    }

    fn describe(&self) -> String {
        self.outcomes
            .iter()
            .map(|o| {
                let status = match &o.status {
                    Status::Is(s) => s.to_string(),
                    Status::OneOf(s) => format!("{s:?}"),
                    Status::Handshake => "a refused handshake".into(),
                };
                format!(
                    "{status} {} logging {:?}",
                    o.code.unwrap_or("(any code)"),
                    o.logs
                )
            })
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// What came back: the status and body, or no HTTP exchange at all.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: Option<u16>,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Why there was no exchange.
    pub failure: Option<String>,
}

impl Response {
    pub async fn from_reqwest(result: reqwest::Result<reqwest::Response>) -> Self {
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                match response.bytes().await {
                    Ok(body) => Self {
                        status: Some(status),
                        content_type,
                        body: body.to_vec(),
                        failure: None,
                    },
                    Err(e) => Self {
                        status: Some(status),
                        content_type,
                        body: Vec::new(),
                        failure: Some(e.to_string()),
                    },
                }
            }
            Err(e) => Self {
                status: None,
                content_type: String::new(),
                body: Vec::new(),
                failure: Some(format!("{e:?}")),
            },
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn summary(&self) -> String {
        match self.status {
            Some(status) => {
                let text = String::from_utf8_lossy(&self.body);
                let text: String = text.chars().take(300).collect();
                format!("{status} {text}")
            }
            None => format!("no response ({})", self.failure.as_deref().unwrap_or("?")),
        }
    }
}

/// Checks the one error shape: a JSON object of exactly `error` and
/// `message`, both non-empty strings.
pub fn error_shape(response: &Response) -> Result<String, String> {
    if !response.content_type.starts_with("application/json") {
        return Err(format!(
            "the error is not JSON (Content-Type {:?})",
            response.content_type
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|_| "the error body is not JSON".to_owned())?;
    let object = value
        .as_object()
        .ok_or("the error body is not a JSON object")?;
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    if keys != BTreeSet::from(["error", "message"]) {
        return Err(format!(
            "the error body has keys {keys:?}, not exactly error and message"
        ));
    }
    let code = object["error"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("error is not a non-empty string")?;
    object["message"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("message is not a non-empty string")?;
    Ok(code.to_owned())
}

/// A failed case.
#[derive(Debug, Clone)]
pub struct Failure {
    pub group: String,
    pub case: String,
    pub reason: String,
}

/// Runs cases against one network and keeps score.
#[derive(Debug)]
pub struct Suite {
    pub stores: Stores,
    group: String,
    names: BTreeSet<String>,
    passed: usize,
    failures: Vec<Failure>,
    per_group: BTreeMap<String, (usize, usize)>,
    /// The state after the last case, to catch a write that lands late.
    last: Option<(String, Snapshot)>,
    started: Instant,
}

impl Suite {
    pub fn new(stores: Stores) -> Self {
        Self {
            stores,
            group: String::new(),
            names: BTreeSet::new(),
            passed: 0,
            failures: Vec::new(),
            per_group: BTreeMap::new(),
            last: None,
            started: Instant::now(),
        }
    }

    /// Cases from here on belong to `group` (authentication, replay, ...).
    pub fn group(&mut self, group: &str) {
        self.group = group.to_owned();
    }

    /// Setup changed the state on purpose: the next case starts afresh.
    pub fn settled(&mut self) {
        self.last = None;
    }

    /// The state now, checked against the state after the last case: a
    /// difference is a write that case made after it was answered.
    pub fn before(&mut self) -> Snapshot {
        let now = self.stores.snapshot();
        if let Some((case, after)) = self.last.take() {
            if after != now {
                let reason = format!(
                    "changed state after it was answered: ledger {} -> {} entries; {}",
                    after.ledger_size,
                    now.ledger_size,
                    diff(&after, &now, &[])
                );
                self.fail_named(&case, reason);
            }
        }
        now
    }

    /// Sends one request and checks it.
    pub async fn probe(
        &mut self,
        case: &str,
        request: reqwest::RequestBuilder,
        expect: Expect,
    ) -> Response {
        let before = self.before();
        let response = Response::from_reqwest(request.send().await).await;
        self.judge(case, &before, &response, &expect);
        response
    }

    /// Sends each `(case, request)` in turn and checks it against one expectation.
    pub async fn probe_each<C: AsRef<str>>(
        &mut self,
        cases: impl IntoIterator<Item = (C, reqwest::RequestBuilder)>,
        expect: &Expect,
    ) {
        for (case, request) in cases {
            self.probe(case.as_ref(), request, expect.clone()).await;
        }
    }

    /// GETs each of `paths` under `base` as `client`, each a case `GET {path}`
    /// checked against one expectation.
    pub async fn get_each(
        &mut self,
        client: &reqwest::Client,
        base: &str,
        paths: &[&str],
        expect: &Expect,
    ) {
        let cases = paths
            .iter()
            .map(|path| (format!("GET {path}"), client.get(format!("{base}{path}"))));
        self.probe_each(cases, expect).await;
    }

    /// Writes `bytes` on a fresh TLS connection to `target` and checks the answer.
    pub async fn raw(
        &mut self,
        case: &str,
        target: &RawTarget,
        bytes: Vec<u8>,
        expect: Expect,
    ) -> Response {
        let before = self.before();
        let target = target.clone();
        let response = tokio::task::spawn_blocking(move || target.exchange(&bytes))
            .await
            .unwrap_or_else(|e| Response {
                status: None,
                content_type: String::new(),
                body: Vec::new(),
                failure: Some(e.to_string()),
            });
        self.judge(case, &before, &response, &expect);
        response
    }

    /// Checks a response and the state against what was expected.
    pub fn judge(&mut self, case: &str, before: &Snapshot, response: &Response, expect: &Expect) {
        let after = self.stores.snapshot();
        let appended = self.stores.appended(before.ledger_size);
        let mut reasons = Vec::new();
        for outcome in &expect.outcomes {
            match check_outcome(outcome, before, &after, &appended, response) {
                Ok(()) => {
                    self.last = Some((case.to_owned(), after));
                    self.pass(case);
                    return;
                }
                Err(reason) => reasons.push(reason),
            }
        }
        self.last = Some((case.to_owned(), after));
        let reason = format!(
            "expected {}; got {}: {}",
            expect.describe(),
            response.summary(),
            reasons.join(" | ")
        );
        self.fail_named(case, reason);
    }

    /// Records a case checked by hand (concurrency, bursts).
    pub fn record(&mut self, case: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.pass(case),
            Err(reason) => self.fail_named(case, reason),
        }
    }

    /// Records a case checked by hand that holds if `passed`; `failure` says
    /// what was seen otherwise.
    pub fn check(&mut self, case: &str, passed: bool, failure: impl FnOnce() -> String) {
        self.record(case, if passed { Ok(()) } else { Err(failure()) });
    }

    fn name(&mut self, case: &str) {
        let full = format!("{}/{case}", self.group);
        assert!(
            self.names.insert(full.clone()),
            "two cases are named {full}"
        );
    }

    fn pass(&mut self, case: &str) {
        self.name(case);
        self.passed += 1;
        self.per_group.entry(self.group.clone()).or_default().0 += 1;
    }

    fn fail_named(&mut self, case: &str, reason: String) {
        if !self.names.contains(&format!("{}/{case}", self.group)) {
            self.name(case);
            self.per_group.entry(self.group.clone()).or_default().1 += 1;
        }
        eprintln!("FAIL {}/{case}: {reason}", self.group);
        self.failures.push(Failure {
            group: self.group.clone(),
            case: case.to_owned(),
            reason,
        });
    }

    pub fn cases(&self) -> usize {
        self.names.len()
    }

    /// Prints the score and fails the test if any case failed or there were
    /// fewer than `at_least` cases.
    pub fn finish(mut self, at_least: usize) {
        let _ = self.before();
        let elapsed = self.started.elapsed();
        eprintln!(
            "hostile-input suite: {} cases in {elapsed:.1?}",
            self.names.len()
        );
        for (group, (passed, failed)) in &self.per_group {
            eprintln!("  {group:<16} {passed:>4} held, {failed:>3} did not");
        }
        let failed: BTreeSet<String> = self
            .failures
            .iter()
            .map(|f| format!("{}/{}", f.group, f.case))
            .collect();
        if !self.failures.is_empty() {
            eprintln!("failed cases:");
            for failure in &self.failures {
                eprintln!("  {}/{}: {}", failure.group, failure.case, failure.reason);
            }
        }
        assert!(
            self.names.len() >= at_least,
            "only {} cases; at least {at_least} are required",
            self.names.len()
        );
        assert!(
            failed.is_empty(),
            "{} of {} hostile-input cases failed: {failed:#?}",
            failed.len(),
            self.names.len()
        );
    }
}

fn check_outcome(
    outcome: &Outcome,
    before: &Snapshot,
    after: &Snapshot,
    appended: &[Appended],
    response: &Response,
) -> Result<(), String> {
    if !outcome.status.matches(response.status) {
        return Err("another status".into());
    }
    if let Some(status) = response.status {
        if status >= 400 {
            let code = error_shape(response)?;
            if let Some(want) = outcome.code {
                if code != want {
                    return Err(format!("error code {code:?}, not {want:?}"));
                }
            }
        }
    }
    let kinds: Vec<&str> = appended.iter().map(|a| a.kind.as_str()).collect();
    if kinds != outcome.logs {
        return Err(format!(
            "the ledger appended {kinds:?}, not {:?}",
            outcome.logs
        ));
    }
    let changed = diff(before, after, &outcome.rows);
    if !changed.is_empty() {
        return Err(format!("stores changed: {changed}"));
    }
    Ok(())
}

/// The row-count changes from `before` to `after` other than `allowed` (the
/// ledger's entries are compared by type, elsewhere).
pub fn diff(before: &Snapshot, after: &Snapshot, allowed: &[(&str, i64)]) -> String {
    let mut out = Vec::new();
    let tables: BTreeSet<&String> = before.rows.keys().chain(after.rows.keys()).collect();
    for table in tables {
        let (b, a) = (
            before.rows.get(table).copied().unwrap_or(0),
            after.rows.get(table).copied().unwrap_or(0),
        );
        let allowed = allowed
            .iter()
            .find(|(t, _)| t == table)
            .map_or(0, |(_, d)| *d);
        if a - b != allowed {
            out.push(format!("{table} {b} -> {a}"));
        }
    }
    out.join(", ")
}

/// Where a raw exchange goes, and the client certificate it presents.
#[derive(Debug, Clone)]
pub struct RawTarget {
    pub addr: String,
    pub ca: PathBuf,
    /// Certificate and key, PEM; `None` for the patients' listener.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl RawTarget {
    /// `url` is the listener's `https://host:port`.
    pub fn new(url: &str, ca: PathBuf, identity: Option<(PathBuf, PathBuf)>) -> Self {
        let addr = url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        Self { addr, ca, identity }
    }

    /// One request on its own connection; reads the answer until the server
    /// closes or a response is complete.
    pub fn exchange(&self, bytes: &[u8]) -> Response {
        match self.try_exchange(bytes) {
            Ok(response) => response,
            Err(e) => Response {
                status: None,
                content_type: String::new(),
                body: Vec::new(),
                failure: Some(e),
            },
        }
    }

    fn try_exchange(&self, bytes: &[u8]) -> Result<Response, String> {
        use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
        let mut builder = SslConnector::builder(SslMethod::tls()).map_err(|e| e.to_string())?;
        builder.set_ca_file(&self.ca).map_err(|e| e.to_string())?;
        if let Some((cert, key)) = &self.identity {
            builder
                .set_certificate_chain_file(cert)
                .map_err(|e| e.to_string())?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| e.to_string())?;
        }
        builder.set_verify(SslVerifyMode::PEER);
        let connector = builder.build();
        let tcp = std::net::TcpStream::connect(&self.addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let host = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(h, _)| h);
        let mut config = connector.configure().map_err(|e| e.to_string())?;
        config.set_verify_hostname(false);
        let mut stream = config
            .connect(host, tcp)
            .map_err(|e| format!("handshake: {e}"))?;
        // A server may answer and close before the whole request is written.
        let _ = stream.write_all(bytes);
        let _ = stream.flush();
        let mut received = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    if response_complete(&received) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        parse_response(&received)
    }
}

fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&bytes[..at], &bytes[at + 4..]))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn response_complete(bytes: &[u8]) -> bool {
    let Some((head, body)) = split_head(bytes) else {
        return false;
    };
    let head = String::from_utf8_lossy(head);
    if let Some(length) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= length;
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    if bytes.is_empty() {
        return Err("the server closed the connection without an answer".into());
    }
    let (head, body) = split_head(bytes).ok_or("the answer has no complete head")?;
    let head = String::from_utf8_lossy(head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the answer has no status line")?;
    let content_type = header(&head, "content-type").unwrap_or_default().to_owned();
    let body =
        if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            dechunk(body)
        } else {
            let length = header(&head, "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(body.len());
            body[..length.min(body.len())].to_vec()
        };
    Ok(Response {
        status: Some(status),
        content_type,
        body,
        failure: None,
    })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(at) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..at]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = at + 2;
        let end = (start + size).min(body.len());
        out.extend_from_slice(&body[start..end]);
        body = body.get(end + 2..).unwrap_or_default();
    }
    out
}

/// A JSON body of about `bytes` bytes: an object with one long string.
pub fn padded_json(field: &str, bytes: usize) -> Vec<u8> {
    format!("{{\"{field}\":\"{}\"}}", "A".repeat(bytes)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_answers_parse_with_length_or_chunks() {
        let plain = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 34\r\n\r\n{\"error\":\"x\",\"message\":\"y\"}       ";
        assert!(response_complete(plain));
        let response = parse_response(plain).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status, Some(400));
        assert_eq!(error_shape(&response).as_deref(), Ok("x"));
        let chunked = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n5\r\n{\"err\r\n0\r\n\r\n";
        assert!(response_complete(chunked));
        assert_eq!(
            parse_response(chunked).map(|r| r.body).ok(),
            Some(b"{\"err".to_vec())
        );
    }

    #[test]
    fn the_error_shape_is_exactly_error_and_message() {
        let response = |body: &str, content_type: &str| Response {
            status: Some(400),
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
            failure: None,
        };
        assert!(error_shape(&response(
            r#"{"error":"a","message":"b"}"#,
            "application/json"
        ))
        .is_ok());
        assert!(error_shape(&response(
            r#"{"error":"a","message":""}"#,
            "application/json"
        ))
        .is_err());
        assert!(error_shape(&response(r#"{"error":"a"}"#, "application/json")).is_err());
        assert!(error_shape(&response(
            r#"{"error":"a","message":"b","x":1}"#,
            "application/json"
        ))
        .is_err());
        assert!(error_shape(&response(r#"{"error":"a","message":"b"}"#, "text/plain")).is_err());
        assert!(error_shape(&response("[]", "application/json")).is_err());
    }
}

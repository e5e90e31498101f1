//! An index-service for tests: members with keys, the service on a free port
//! over a fresh database (in-process or as the real binary), and a client that
//! checks what the ledger serves.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestDb;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use locus_index_service::config::Config;
use locus_index_service::startup::Application;
use locus_ledger::checkpoint::Checkpoint;
use locus_ledger::client::LedgerClient;
use locus_ledger::merkle::Hash;
use locus_ledger::note::NoteVerifier;
use locus_ledger::wire::Receipt;
use locus_platform::launch::Launch as _;
use locus_protocol::directory::{MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{
    Commitment, Entry, Event, MemberUpdated, RecordRetrieved, SignedEntry,
};
use locus_protocol::grant::Confirmation;
use locus_protocol::ids::{GrantId, HospitalId, MemberId, PatientKey, PointerId};
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::SigningKey;

/// A consortium member with fresh keys. The consortium authority is one too,
/// under the id `consortium`.
#[derive(Debug)]
pub struct TestMember {
    pub id: MemberId,
    pub key: SigningKey,
    pub x25519: X25519SecretKey,
    /// Thumbprint of the member's TLS certificate (random unless set).
    pub certificate: Confirmation,
}

impl TestMember {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.parse().expect("member id"),
            key: SigningKey::generate(),
            x25519: X25519SecretKey::generate(),
            certificate: Confirmation::for_certificate_der(&random_bytes32()),
        }
    }

    pub fn authority() -> Self {
        Self::new(AUTHORITY_MEMBER)
    }

    /// The authority's public key as configuration wants it.
    pub fn public_key_config(&self) -> String {
        serde_json::to_value(self.key.verifying_key())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("base64url key")
    }

    /// The directory record the authority logs for this member.
    pub fn update(
        &self,
        role: MemberRole,
        status: MemberStatus,
        endpoint: Option<String>,
    ) -> Event {
        Event::MemberUpdated(MemberUpdated {
            member: self.id.clone(),
            role,
            display_name: format!("Test {}", self.id),
            ed25519: self.key.verifying_key(),
            x25519: self.x25519.public_key(),
            certificate: self.certificate.clone(),
            endpoint,
            status,
        })
    }

    /// Canonical bytes of `event`, signed by this member now.
    pub fn signed(&self, event: Event) -> Vec<u8> {
        self.entry_at(event, now_ms()).to_canonical_bytes()
    }

    pub fn entry_at(&self, event: Event, time_ms: i64) -> SignedEntry {
        let entry = Entry::new(self.id.clone(), self.key.key_id(), time_ms, event);
        SignedEntry::sign(entry, &self.key).expect("sign entry")
    }

    /// A signed `record.retrieved` entry with fresh random ids, as canonical bytes.
    pub fn retrieval(&self) -> Vec<u8> {
        self.entry_at(random_retrieval(&self.id), now_ms())
            .to_canonical_bytes()
    }
}

/// The system's time in Unix milliseconds, as a member or a phone dates what it signs.
pub fn now_ms() -> i64 {
    locus_platform::clock::Clock::system().now_ms()
}

pub fn random_bytes32() -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

/// A release by `custodian` (which must be the entry's submitter) to a random
/// requester.
pub fn random_retrieval(custodian: &MemberId) -> Event {
    Event::RecordRetrieved(RecordRetrieved {
        requester: "hospital-z".parse().expect("member id"),
        custodian: custodian
            .as_str()
            .parse::<HospitalId>()
            .expect("hospital id"),
        grant: GrantId::new_random(),
        subject: PatientKey::from_bytes(random_bytes32()),
        pointer: PointerId::new_random(),
        commitment: Commitment::from_bytes(random_bytes32()),
    })
}

/// The authority admits `members` as active hospitals; returns how many
/// entries that logged.
pub async fn admit(client: &TestClient, authority: &TestMember, members: &[&TestMember]) -> u64 {
    for member in members {
        let event = member.update(MemberRole::Hospital, MemberStatus::Active, None);
        client.submit_ok(authority.signed(event)).await;
    }
    members.len() as u64
}

pub fn test_config(db: &TestDb, authority: &TestMember) -> Config {
    let dir = db.scratch_dir();
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: db.url().to_owned(),
        ledger_origin: "test.locus.localhost/ledger".into(),
        ledger_key_file: dir.join("ledger.key"),
        member_key_file: dir.join("index-member.pem"),
        authority_key: Some(authority.public_key_config()),
        checkpoint_interval_ms: 100,
        ..Config::default()
    }
}

/// Raw HTTP to one running index-service (for what a well-behaved client
/// would never send), plus the library client that verifies what it gets.
#[derive(Debug)]
pub struct TestClient {
    pub base: String,
    pub http: reqwest::Client,
    pub ledger: LedgerClient,
}

impl TestClient {
    pub fn new(base: String, vkey: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(locus_platform::tls::CLIENT_POOL_IDLE)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self::with_http(base, vkey, http)
    }

    /// A client that talks through `http` (e.g. with a client certificate).
    pub fn with_http(base: String, vkey: &str, http: reqwest::Client) -> Self {
        let verifier = NoteVerifier::from_vkey(vkey).expect("vkey");
        Self {
            ledger: LedgerClient::new(&base, verifier, http.clone()),
            base,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn submit(&self, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(self.url("/ledger/entries"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("submit")
    }

    pub async fn submit_ok(&self, body: Vec<u8>) -> Receipt {
        let response = self.submit(body).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.json().await.expect("receipt")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("get")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.bytes().await.expect("bytes").to_vec()
    }

    /// The newest checkpoint, its signature checked against the pinned key.
    pub async fn checkpoint(&self) -> Checkpoint {
        self.ledger
            .checkpoint()
            .await
            .expect("verified checkpoint")
            .0
    }

    /// Waits until a signed checkpoint covers at least `size` entries.
    pub async fn checkpoint_at_least(&self, size: u64) -> Checkpoint {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let checkpoint = self.checkpoint().await;
            if checkpoint.size >= size {
                return checkpoint;
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint reached size {size}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn decode_hash(b64: &str) -> Hash {
    BASE64
        .decode(b64)
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

/// An index-service running inside the test process.
#[allow(missing_debug_implementations)]
pub struct InProcess {
    pub client: TestClient,
    handle: actix_web::dev::ServerHandle,
}

impl InProcess {
    pub async fn start(config: &Config) -> Self {
        let app = Application::build(config).expect("index-service starts");
        let client = TestClient::new(app.url().to_owned(), app.vkey());
        let handle = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        Self { client, handle }
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// An index-service running as its own process (the real binary), so a test
/// can kill it.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    pub client: TestClient,
}

/// The real `index-service` binary with `config` in its environment. `binary`
/// is `env!("CARGO_BIN_EXE_index-service")` in that package's tests.
pub fn process_command(binary: &Path, config: &Config) -> Command {
    let mut command = Command::new(binary);
    command
        .env("LOCUS_LISTEN", config.listen.to_string())
        .env("LOCUS_DATABASE_URL", &config.database_url)
        .env("LOCUS_LEDGER_ORIGIN", &config.ledger_origin)
        .env("LOCUS_LEDGER_KEY_FILE", &config.ledger_key_file)
        .env("LOCUS_MEMBER_KEY_FILE", &config.member_key_file)
        .env(
            "LOCUS_AUTHORITY_KEY",
            config.authority_key.as_deref().unwrap_or_default(),
        )
        .env(
            "LOCUS_CHECKPOINT_INTERVAL_MS",
            config.checkpoint_interval_ms.to_string(),
        )
        .env("LOCUS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(config));
    command
}

/// The process's log, beside its key, so a full pipe never stalls it.
pub fn log_path(config: &Config) -> PathBuf {
    config
        .ledger_key_file
        .parent()
        .expect("key folder")
        .join("index-service.log")
}

fn log_file(config: &Config) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(config))
        .expect("log file")
}

impl Process {
    pub fn start(binary: &Path, config: &Config) -> Self {
        let mut child = process_command(binary, config)
            .spawn()
            .expect("spawn index-service");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        if line.is_empty() {
            let _ = child.wait();
            panic!(
                "index-service exited before it was ready: {}",
                std::fs::read_to_string(log_path(config)).unwrap_or_default()
            );
        }
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        let client = TestClient::new(
            ready["url"].as_str().expect("url").to_owned(),
            ready["ledger_vkey"].as_str().expect("vkey"),
        );
        Self { child, client }
    }

    /// SIGKILL: no shutdown hooks, no last checkpoint.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The hostile-input suite: outsiders, patients, hospitals beyond their
//! grants, a thief with a removed phone and a network attacker replaying
//! messages, against the running index and ledger, the connectors' peer API
//! and the consent service's members' and patients' APIs, on one network per
//! backend.
//!
//! Every case states the status, the JSON error code and the ledger entries it
//! may append (only the documented refusal entry); the suite checks them and
//! that no table of any service's database changed otherwise. Cases are
//! grouped: authentication, authorization, replay (concurrent duplicates
//! included), tampering, limits and malformed input. All cases run; the
//! failures are listed together at the end.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

/// A group's `run`: names the group, then runs its parts in order.
macro_rules! group {
    ($name:literal: $($part:ident),+ $(,)?) => {
        pub async fn run(f: &$crate::Fixture, s: &mut locus_tests::hostile::Suite) {
            s.group($name);
            $($part(f, s).await;)+
        }
    };
}

mod auth;
mod authz;
mod limits;
mod malformed;
mod replay;
mod tamper;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_hospital_connector::fhir::US_SSN_SYSTEM;
use locus_hospital_connector::import::import_bundle;
use locus_hospital_connector::retrieve::RetrieveRequest;
use locus_index_service::api::DiscoveredPointer;
use locus_platform::pki::{certificate_der, CertificateAuthority};
use locus_platform::tls::{http_client, TlsFiles};
use locus_protocol::consent::{Approval, Decision, RequestTerms, RuleAudience, StandingRule};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::directory::{MemberRole, MemberStatus};
use locus_protocol::entry::{Entry, Event, MemberUpdated, SignedEntry};
use locus_protocol::grant::{Confirmation, PurposeOfUse};
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId};
use locus_protocol::signing::SigningKey;
use locus_tests::fhir::{lab_bundle, three_lab_results, LabObservation};
use locus_tests::hostile::{RawTarget, Stores, Suite};
use locus_tests::http::{get_json, get_text, post_ok};
use locus_tests::index::TestMember;
use locus_tests::network::{TestHospital, TestNetwork};
use locus_tests::rules::standing_rule;
use locus_tests::{both_backends, TestDb};
use serde_json::{json, Value};

pub const LABS: &str = "patient/Observation.rs?category=laboratory";
/// The fewest cases the suite must hold.
const AT_LEAST: usize = 250;

both_backends!(hostile_input);

async fn hostile_input(db: TestDb) {
    let started = Instant::now();
    let f = Fixture::start(&db).await;
    eprintln!(
        "hostile-input network ready after {:.1?}",
        started.elapsed()
    );
    let stores = Stores::open(&[
        ("index", f.network.index_db.url()),
        ("consent", f.network.consent_service.database_url()),
        (
            "hospital-a",
            &f.network.hospital("hospital-a").config.database_url,
        ),
        (
            "hospital-b",
            &f.network.hospital("hospital-b").config.database_url,
        ),
    ]);
    eprintln!(
        "comparing {} tables: {:?}",
        stores.tables().len(),
        stores.tables()
    );
    let mut suite = Suite::new(stores);
    auth::run(&f, &mut suite).await;
    authz::run(&f, &mut suite).await;
    tamper::run(&f, &mut suite).await;
    malformed::run(&f, &mut suite).await;
    limits::run(&f, &mut suite).await;
    // Last: these change the state on purpose (first acts, then their replays).
    replay::run(&f, &mut suite).await;
    limits::bursts(&f, &mut suite).await;
    audit(&f, &mut suite).await;
    eprintln!(
        "hostile-input suite on {:?} took {:.1?} in all",
        db.backend(),
        started.elapsed()
    );
    suite.finish(AT_LEAST);
    f.network.stop().await;
}

/// The regulator's audit of all the suite left on the ledger: every grant is
/// backed and every access made under a grant, whatever was refused on the
/// way; and an approval, for hospital-a, from a phone hospital-a's own desk
/// enrolled is flagged for review.
async fn audit(f: &Fixture, s: &mut Suite) {
    s.group("audit");
    let phone = &f.phone1;
    let terms = phone.terms(f.a_request).await;
    let (status, decided) = phone
        .post(
            "/patient/decisions",
            &phone.decision(&phone.approval(&terms)),
        )
        .await;
    s.settled();
    let grant: Option<GrantId> = decided["grant"].as_str().and_then(|g| g.parse().ok());
    let size = u64::try_from(s.stores.snapshot().ledger_size).unwrap();
    let audit = f.network.grant_audit(size).await;
    s.check(
        "the regulator's audit of the ledger holds",
        audit.findings.is_empty(),
        || format!("{:?}", audit.findings),
    );
    let flagged = audit
        .desk_enrolled
        .iter()
        .any(|d| Some(d.grant) == grant && d.hospital.as_str() == "hospital-a");
    s.check(
        "an approval for the hospital whose desk enrolled the phone is flagged",
        status == 200 && flagged,
        || {
            format!(
                "approval {status} {decided}; flagged for review: {:?}",
                audit.desk_enrolled
            )
        },
    );
}

/// A TLS client identity: its client and its PEM files.
pub(crate) struct Identity {
    pub id: String,
    pub client: reqwest::Client,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Its directory key (ledger entries, cosignatures).
    pub signing: Option<SigningKey>,
}

impl Identity {
    fn new(id: &str, files: &TlsFiles, signing: Option<SigningKey>) -> Self {
        Self {
            id: id.to_owned(),
            client: http_client(files, Duration::from_secs(30)).expect("client"),
            cert: files.cert.clone(),
            key: files.key.clone(),
            signing,
        }
    }

    /// A signed entry by this identity's key, submitted as `submitter`, now.
    pub fn entry(&self, submitter: &str, event: Event) -> Vec<u8> {
        self.entry_at(submitter, event, now_ms())
    }

    pub fn entry_at(&self, submitter: &str, event: Event, time_ms: i64) -> Vec<u8> {
        let key = self.signing.as_ref().expect("a signing key");
        let entry = Entry::new(submitter.parse().unwrap(), key.key_id(), time_ms, event);
        SignedEntry::sign(entry, key).unwrap().to_canonical_bytes()
    }
}

/// A patient's phone (the shared test phone), with the bodies and raw
/// requests the cases send and alter.
pub(crate) struct Phone(locus_tests::phone::Phone);

impl std::ops::Deref for Phone {
    type Target = locus_tests::phone::Phone;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Phone {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn sign(&self, bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.signer.sign(bytes))
    }

    /// `{"decision": ..., "signature": ...}`, signed by this device.
    pub fn decision(&self, decision: &Decision) -> Value {
        json!({ "decision": decision, "signature": self.sign(&decision.signing_bytes().unwrap()) })
    }

    pub fn approval(&self, terms: &RequestTerms) -> Decision {
        Decision::Approve(Approval::of(terms, self.device(), now_ms()))
    }

    /// A standing rule for hospital-a's care management (so it decides none
    /// of hospital-b's treatment requests).
    pub fn rule(&self) -> StandingRule {
        StandingRule {
            who: RuleAudience::Member("hospital-a".parse().unwrap()),
            purposes: vec![PurposeOfUse::CareManagement],
            ..standing_rule(self.subject, self.device(), LABS)
        }
    }

    /// A POST of `body` to `path` under this phone's session.
    pub fn request(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.session)
            .json(body)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.request(path, body).send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// The patient's pending request `request`, with its exact terms.
    pub async fn terms(&self, request: RequestId) -> RequestTerms {
        let pending = self.get("/patient/requests").await;
        let found = pending
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["request"] == json!(request))
            .unwrap_or_else(|| panic!("request {request} is not pending: {pending}"));
        serde_json::from_value(found["terms"].clone()).unwrap()
    }
}

/// A grant hospital-b holds.
pub(crate) struct Granted {
    pub request: RequestId,
    pub grant: GrantId,
    pub token: String,
    pub discovery: String,
    pub pointers: Vec<DiscoveredPointer>,
}

impl Granted {
    /// The body of a retrieval of its first pointer.
    pub fn retrieval(&self) -> Value {
        json!({ "grant": self.token, "pointer_id": self.pointers[0].pointer_id, "sealed": self.pointers[0].sealed })
    }
}

pub(crate) struct Fixture {
    pub network: TestNetwork,
    pub index: String,
    pub members: String,
    pub patients: String,
    pub connector_a: String,
    pub ca: PathBuf,
    pub a: Identity,
    pub b: Identity,
    pub consent: Identity,
    pub index_member: Identity,
    pub authority: Identity,
    pub regulator: Identity,
    /// An admitted hospital, since suspended.
    pub suspended: Identity,
    /// A certificate the consortium CA signed for no member.
    pub stranger: Identity,
    /// A certificate of another CA.
    pub foreign: Identity,
    /// Trusts the consortium CA, presents no certificate (a phone, an outsider).
    pub anonymous: reqwest::Client,
    pub p1: PatientKey,
    pub p2: PatientKey,
    pub phone1: Phone,
    /// P1's second phone, removed by the first after it signed in.
    pub removed: Phone,
    /// P1's third phone, a target for attempts to remove a device.
    pub spare: Phone,
    pub phone2: Phone,
    /// Hospital-b's grant on P1's laboratory results, live.
    pub live: Granted,
    /// Another, revoked.
    pub revoked: Granted,
    /// Hospital-b's grant on P2's laboratory results.
    pub p2_live: Granted,
    /// A grant of P1's that cases try to revoke without right.
    pub target: GrantId,
    /// Hospital-b's pending requests about P1.
    pub pending: Vec<RequestId>,
    /// Hospital-a's request about P1.
    pub a_request: RequestId,
    /// P1's standing rule.
    pub rule: StandingRule,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Fixture {
    pub fn hospital_a(&self) -> &TestHospital {
        self.network.hospital("hospital-a")
    }

    pub fn hospital_b(&self) -> &TestHospital {
        self.network.hospital("hospital-b")
    }

    /// A raw-HTTP target: a listener and who speaks to it.
    pub fn raw(&self, base: &str, who: Option<&Identity>) -> RawTarget {
        RawTarget::new(
            base,
            self.ca.clone(),
            who.map(|i| (i.cert.clone(), i.key.clone())),
        )
    }

    /// The ledger's newest checkpoint note, as the regulator reads it, and
    /// its tree size: what witnesses cosign.
    pub async fn checkpoint(&self) -> (locus_ledger::note::Note, u64) {
        let url = format!("{}/ledger/checkpoint", self.index);
        let text = get_text(&self.regulator.client, url).await;
        let note = locus_ledger::note::Note::parse(&text).unwrap();
        let size = note.text.lines().nth(1).unwrap().parse().unwrap();
        (note, size)
    }

    /// A request body hospital-b may file about P1.
    pub fn request_body(&self, subject: &PatientKey) -> Value {
        json!({ "subject": subject, "purpose": "TREAT", "scope": LABS, "duration_secs": 7 * 86_400 })
    }

    async fn start(db: &TestDb) -> Self {
        let network = TestNetwork::start(db.backend(), &["hospital-a", "hospital-b"]).await;
        let dir = network.dir.path().to_owned();
        let ca = ca_path(&dir);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let issue =
            |ca: &CertificateAuthority, id: &str, prefix: &str| -> (TlsFiles, Confirmation) {
                let issued = ca.issue(id, &["localhost", "127.0.0.1"]).unwrap();
                let files = TlsFiles {
                    ca_cert: ca_path(&dir),
                    cert: write(&format!("{prefix}{id}.pem"), &issued.cert_pem),
                    key: write(&format!("{prefix}{id}-key.pem"), &issued.key_pem),
                };
                (
                    files,
                    Confirmation::for_certificate_der(&certificate_der(&issued.cert_pem).unwrap()),
                )
            };
        // Where the consortium's bootstrap keeps each member's certificate.
        let files_of = |id: &str| TlsFiles {
            ca_cert: ca.clone(),
            cert: dir.join("pki").join(format!("{id}.pem")),
            key: dir.join("pki").join(format!("{id}-key.pem")),
        };

        // Members beyond the network's own: a regulator, a hospital to be
        // suspended, a certificate for no member and one of another CA.
        let mut regulator = TestMember::new("regulator");
        let (regulator_tls, regulator_cert) = issue(&network.ca, "regulator", "");
        regulator.certificate = regulator_cert;
        let mut suspended = TestMember::new("hospital-s");
        let (suspended_tls, suspended_cert) = issue(&network.ca, "hospital-s", "");
        suspended.certificate = suspended_cert;
        let (stranger_tls, _) = issue(&network.ca, "hospital-x", "");
        let foreign_ca = CertificateAuthority::create("Another consortium CA").unwrap();
        let (foreign_tls, _) = issue(&foreign_ca, "hospital-a", "foreign-");
        let admissions = [
            regulator.update(MemberRole::Regulator, MemberStatus::Active, None),
            suspended.update(MemberRole::Hospital, MemberStatus::Active, None),
            suspended.update(MemberRole::Hospital, MemberStatus::Suspended, None),
        ];
        let mut last = 0;
        for event in admissions {
            last = network
                .admin
                .submit_ok(network.authority.signed(event))
                .await
                .index;
        }
        network.admin.checkpoint_at_least(last + 1).await;
        for hospital in &network.hospitals {
            network.wait_for_directory(hospital, 6).await;
        }
        for _ in 0..200 {
            network.consent_service.state.directory.refresh().await.ok();
            let directory = network.consent_service.state.directory.directory();
            let seen = directory
                .read()
                .get(&"hospital-s".parse::<MemberId>().unwrap())
                .map(|m| m.status);
            if seen == Some(MemberStatus::Suspended) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let (a_node, b_node) = network.hospitals_a_b();
        let index_key = locus_platform::files::load_or_create_signing_key(
            &network.dir.path().join("index").join("member.pem"),
        )
        .unwrap();
        let a = Identity {
            client: a_node.node.http.clone(),
            ..Identity::new("hospital-a", &a_node.tls, Some(copy(&a_node.node.key)))
        };
        let b = Identity {
            client: b_node.node.http.clone(),
            ..Identity::new("hospital-b", &b_node.tls, Some(copy(&b_node.node.key)))
        };
        let consent = Identity::new(
            "consent",
            &files_of("consent"),
            Some(copy(&network.consent.key)),
        );
        let index_member = Identity::new("index", &files_of("index"), Some(index_key));
        let authority = Identity::new(
            "consortium",
            &files_of("consortium"),
            Some(copy(&network.authority.key)),
        );
        let regulator = Identity::new("regulator", &regulator_tls, Some(copy(&regulator.key)));
        let suspended = Identity::new("hospital-s", &suspended_tls, Some(copy(&suspended.key)));
        let stranger = Identity::new("hospital-x", &stranger_tls, Some(SigningKey::generate()));
        let foreign = {
            // Trusts our CA (so the failure is the server's refusal of the
            // client certificate, not the client's of the server's).
            let files = TlsFiles {
                ca_cert: ca.clone(),
                ..foreign_tls
            };
            Identity::new("hospital-a", &files, None)
        };
        let anonymous = network.phone();

        // Records: three laboratory results of P1's and one of P2's at hospital-a.
        let (p1, p2) = (
            network.patient_key("999-71-0001"),
            network.patient_key("999-71-0002"),
        );
        let p1_bundle = three_lab_results("6d1d2e3f", "999-71-0001");
        let p2_bundle = lab_bundle(
            "6d1d2e3f-0000-4000-8000-0000000000bb",
            "999-71-0002",
            &[LabObservation::new(
                "6d1d2e3f-0000-4000-8000-000000000004",
                "2339-0",
                101.0,
                "2024-04-01",
            )],
        );
        for bundle in [p1_bundle, p2_bundle] {
            import_bundle(&a_node.node.store, &network.linkage, US_SSN_SYSTEM, &bundle).unwrap();
        }
        a_node.node.publish_pending().await.unwrap();

        let members = network.consent_service.member_url.clone();
        let patients = network.consent_service.patient_url.clone();
        let phone1 = enrol(&network, a_node, p1).await;
        let removed = enrol(&network, a_node, p1).await;
        let spare = enrol(&network, a_node, p1).await;
        let phone2 = enrol(&network, a_node, p2).await;

        // Hospital-b's grants: approved by the patients' phones.
        let index = b_node.node.index.clone();
        let file = |subject| file_request(&b.client, &members, subject);
        let grant = |phone, request| approve(&b.client, &members, &index, phone, request);
        let live = grant(&phone1, file(p1).await).await;
        assert_eq!(live.pointers.len(), 3, "P1's three results");
        // A release, and a refusal by each refuser, for the ledger to hold.
        let retrieve = |grant: Option<String>| RetrieveRequest {
            grant,
            pointer_id: live.pointers[0].pointer_id,
            sealed: live.pointers[0].sealed.clone(),
        };
        b_node
            .node
            .request_retrieval(&a_node.url, &retrieve(Some(live.token.clone())))
            .await
            .unwrap();
        assert!(b_node
            .node
            .request_retrieval(&a_node.url, &retrieve(None))
            .await
            .is_err());
        assert!(b_node.node.index.discover("").await.is_err());
        let revoked = grant(&phone1, file(p1).await).await;
        let (status, body) = phone1
            .post("/patient/revocations", &phone1.revocation(revoked.grant))
            .await;
        assert_eq!(status, 200, "{body}");
        let p2_live = grant(&phone2, file(p2).await).await;
        let target = grant(&phone1, file(p1).await).await.grant;
        let mut pending = Vec::new();
        for _ in 0..8 {
            pending.push(file(p1).await);
        }
        let a_request = {
            let filed = post_ok(
                &a.client,
                format!("{members}/consent/requests"),
                json!({
                    "subject": p1, "purpose": "TREAT", "scope": LABS, "duration_secs": 86_400
                }),
            )
            .await;
            serde_json::from_value(filed["request"].clone()).unwrap()
        };
        let rule = phone1.rule();
        let (status, body) = phone1
            .post("/patient/rules", &phone1.rule_body(&rule))
            .await;
        assert_eq!(status, 200, "{body}");
        // The second phone is removed while signed in: the thief's phone.
        let response = phone1
            .client
            .delete(phone1.url(&format!("/patient/devices/{}", removed.device())))
            .bearer_auth(&phone1.session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // Whatever the fixture logged is durable and checkpointed before the cases.
        let size = network.admin.ledger.checkpoint().await.unwrap().0.size;
        network.admin.checkpoint_at_least(size).await;

        Self {
            index: network.index_url.clone(),
            connector_a: a_node.url.clone(),
            members,
            patients,
            ca,
            a,
            b,
            consent,
            index_member,
            authority,
            regulator,
            suspended,
            stranger,
            foreign,
            anonymous,
            p1,
            p2,
            phone1,
            removed,
            spare,
            phone2,
            live,
            revoked,
            p2_live,
            target,
            pending,
            a_request,
            rule,
            network,
        }
    }
}

pub fn copy(key: &SigningKey) -> SigningKey {
    SigningKey::from_seed(*key.to_seed())
}

fn ca_path(dir: &std::path::Path) -> PathBuf {
    dir.join("pki").join("ca.pem")
}

/// Hospital-b files a request about `subject`: a week of laboratory results.
async fn file_request(client: &reqwest::Client, members: &str, subject: PatientKey) -> RequestId {
    let body = json!({ "subject": subject, "purpose": "TREAT", "scope": LABS, "duration_secs": 7 * 86_400 });
    let filed = post_ok(client, format!("{members}/consent/requests"), body).await;
    assert_eq!(filed["status"], "pending", "{filed}");
    serde_json::from_value(filed["request"].clone()).unwrap()
}

/// The phone approves `request` as filed; hospital-b collects the grant and
/// discovers its pointers.
async fn approve(
    client: &reqwest::Client,
    members: &str,
    index: &locus_index_service::client::IndexClient,
    phone: &Phone,
    request: RequestId,
) -> Granted {
    let terms = phone.terms(request).await;
    let decision = phone.approval(&terms);
    let (status, decided) = phone
        .post("/patient/decisions", &phone.decision(&decision))
        .await;
    assert_eq!(status, 200, "{decided}");
    let status = get_json(client, format!("{members}/consent/requests/{request}")).await;
    let (token, discovery) = (
        status["grant"].as_str().unwrap().to_owned(),
        status["discovery"].as_str().unwrap().to_owned(),
    );
    let pointers = index.discover(&discovery).await.unwrap().pointers;
    Granted {
        request,
        grant: decided["grant"].as_str().unwrap().parse().unwrap(),
        token,
        discovery,
        pointers,
    }
}

/// Enrols a phone for `subject` with a code from `desk`, and signs it in.
async fn enrol(network: &TestNetwork, desk: &TestHospital, subject: PatientKey) -> Phone {
    Phone(locus_tests::phone::Phone::enrol(network, desk, subject).await)
}

/// A fresh enrolment code for `subject`, from hospital-a's desk.
pub(crate) async fn enrolment_code(f: &Fixture, subject: &PatientKey) -> String {
    let code = post_ok(
        &f.a.client,
        format!("{}/consent/enrolment-codes", f.members),
        json!({ "subject": subject }),
    )
    .await;
    code["code"].as_str().unwrap().to_owned()
}

/// A fresh sign-in challenge for `device` (panics unless 200).
pub(crate) async fn challenge(f: &Fixture, device: &DeviceKeyId) -> String {
    let body = post_ok(
        &f.anonymous,
        format!("{}/patient/challenge", f.patients),
        json!({ "device": device }),
    )
    .await;
    body["challenge"].as_str().unwrap().to_owned()
}

/// The first entry of `kind` that `submitter` logged, as an event to re-sign.
pub fn logged_event_by(suite: &Suite, kind: &str, submitter: &str) -> Option<Event> {
    let logged = suite
        .stores
        .appended(0)
        .into_iter()
        .find(|e| e.kind == kind && e.submitter == submitter)?;
    let signed = SignedEntry::parse(logged.body.as_bytes()).unwrap();
    Some(signed.entry().event.clone())
}

/// `MemberUpdated` for `member` as it stands, with `status`.
pub fn member_update(
    member: &str,
    role: MemberRole,
    key: &SigningKey,
    certificate: Confirmation,
    status: MemberStatus,
) -> Event {
    Event::MemberUpdated(MemberUpdated {
        member: member.parse().unwrap(),
        role,
        display_name: format!("Test {member}"),
        ed25519: key.verifying_key(),
        x25519: locus_protocol::seal::X25519SecretKey::generate().public_key(),
        certificate,
        endpoint: None,
        status,
    })
}

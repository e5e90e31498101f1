//! A whole consortium on loopback for tests, bootstrapped as `locus up`
//! bootstraps it (`locus_cli::consortium`): a CA, the authority, the
//! index-service (with the ledger), the consent service and hospital
//! connectors, each on its own fresh database, all over mutual TLS, in this
//! process; and grants minted with the consent service's own issuing step.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_cli::consortium::{
    wait_for_directory, Member, Network, Options, Storage, CONSENT, INDEX,
};
use locus_consent::acts::{issue_grant, GrantTerms};
use locus_hospital_connector::node::Node;
use locus_hospital_connector::requester::ResultError;
use locus_index_service::client::ServiceRefusal;
use locus_platform::clock::TestClock;
use locus_platform::pki::CertificateAuthority;
use locus_platform::tls::{http_client, TlsFiles};
use locus_protocol::directory::{MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::Event;
use locus_protocol::grant::{Confirmation, DataPeriod, GrantBasis, GrantClaims, PurposeOfUse};
use locus_protocol::ids::{HospitalId, PatientKey, RequestId};
use locus_protocol::linkage::{normalize_identifier, patient_key, LinkageKey};

use crate::index::{TestClient, TestMember};
use crate::{Backend, TestDb};

/// Asserts that a retrieval was refused with `status` and `code` and an
/// error message, rather than failing otherwise or releasing the record.
pub fn assert_refused<T>(result: Result<T, ResultError>, status: u16, code: &str, case: &str) {
    match result {
        Err(ResultError::Refused(ServiceRefusal {
            status: s,
            code: c,
            message,
        })) => {
            assert_eq!((s, c.as_str()), (status, code), "{case}: {message}");
            assert!(!message.is_empty(), "{case}: the error has a message");
        }
        Err(other) => panic!("{case}: expected {status} {code}, got {other}"),
        Ok(_) => panic!("{case}: expected {status} {code}, but the record was released"),
    }
}

/// One hospital's connector in the network.
pub struct TestHospital {
    pub id: HospitalId,
    pub url: String,
    pub node: Arc<Node>,
    pub tls: TlsFiles,
    pub certificate: Confirmation,
    pub config: locus_hospital_connector::config::Config,
    _db: TestDb,
}

impl std::fmt::Debug for TestHospital {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHospital")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The consent service in the network.
#[allow(missing_debug_implementations)]
pub struct TestConsent {
    /// Its API for members (mutual TLS).
    pub member_url: String,
    /// Its API for patients' devices.
    pub patient_url: String,
    pub state: Arc<locus_consent::acts::Consent>,
    _db: TestDb,
}

impl TestConsent {
    /// Its database, for tests that read the stored state directly.
    pub fn database_url(&self) -> &str {
        self._db.url()
    }
}

#[allow(missing_debug_implementations)]
pub struct TestNetwork {
    pub dir: tempfile::TempDir,
    pub ca: CertificateAuthority,
    pub authority: TestMember,
    pub consent: TestMember,
    /// The running consent service (its key is `consent.key`).
    pub consent_service: TestConsent,
    pub linkage: LinkageKey,
    pub index_url: String,
    pub index_db: TestDb,
    /// The authority's mutual-TLS client of the index (and its ledger).
    pub admin: TestClient,
    pub hospitals: Vec<TestHospital>,
    /// Every service's clock: a test moves it on instead of waiting.
    pub clock: TestClock,
    network: Network,
}

/// A member of the consortium in `dir`, with the keys the network gave it.
fn member(dir: &Path, id: &str) -> (TestMember, TlsFiles) {
    let member = Member::load(dir, id).expect("a member of the test network");
    let test = TestMember {
        id: member.id,
        key: member.key,
        x25519: member.x25519,
        certificate: member.certificate,
    };
    (test, member.tls)
}

impl TestNetwork {
    /// Starts the consortium as `locus up` does, with a fresh database per
    /// service, no regulator and one connector per id; returns once every
    /// member sees the whole directory.
    pub async fn start(backend: Backend, hospitals: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = TestClock::new();
        let index_db = TestDb::new(backend);
        let consent_db = TestDb::new(backend);
        let hospital_dbs: Vec<TestDb> = hospitals.iter().map(|_| TestDb::new(backend)).collect();
        let mut urls: BTreeMap<String, String> = hospitals
            .iter()
            .zip(&hospital_dbs)
            .map(|(id, db)| ((*id).to_owned(), db.url().to_owned()))
            .collect();
        urls.insert(INDEX.to_owned(), index_db.url().to_owned());
        urls.insert(CONSENT.to_owned(), consent_db.url().to_owned());
        let mut options = Options::new(dir.path());
        options.storage = Storage::Given {
            backend: match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            },
            urls,
        };
        options.patients = 0;
        options.hospitals = hospitals.iter().map(|id| (*id).to_owned()).collect();
        options.display_name = |id| format!("Test {id}");
        // Tests that need one admit a regulator of their own.
        options.admit_regulator = false;
        options.checkpoint_interval = Duration::from_millis(100);
        options.poll_interval = Duration::from_millis(100);
        // Tests publish and witness when they choose to
        // (`Node::publish_pending`, `Node::witness_once`).
        options.publish_interval = Duration::from_secs(3600);
        options.witness_interval = Duration::from_secs(3600);
        options.clock = clock.clock();
        let network = Network::start(&options, &|_| {})
            .await
            .expect("the test network starts");

        let (authority, authority_tls) = member(dir.path(), AUTHORITY_MEMBER);
        let (consent, _) = member(dir.path(), CONSENT);
        let index_url = network.info.index.url.clone();
        let admin = TestClient::with_http(
            index_url.clone(),
            &network.info.ledger.vkey,
            http_client(&authority_tls, Duration::from_secs(30)).expect("client"),
        );
        let consent_service = TestConsent {
            member_url: network.info.consent.member_url.clone(),
            patient_url: network.info.consent.patient_url.clone(),
            state: Arc::clone(&network.consent),
            _db: consent_db,
        };
        let hospitals = network
            .hospitals
            .iter()
            .zip(hospital_dbs)
            .map(|(hospital, db)| TestHospital {
                id: hospital.node.hospital.clone(),
                url: hospital.url.clone(),
                node: Arc::clone(&hospital.node),
                tls: hospital.tls.clone(),
                certificate: hospital.certificate.clone(),
                config: hospital.config.clone(),
                _db: db,
            })
            .collect();
        Self {
            linkage: locus_platform::files::load_linkage_key(&dir.path().join("linkage.key"))
                .expect("the linkage key"),
            ca: locus_cli::pki::load_ca(&dir.path().join("pki")).expect("the CA"),
            dir,
            authority,
            consent,
            consent_service,
            index_url,
            index_db,
            admin,
            hospitals,
            clock,
            network,
        }
    }

    pub fn hospital(&self, id: &str) -> &TestHospital {
        self.hospitals
            .iter()
            .find(|h| h.id.as_str() == id)
            .expect("hospital")
    }

    /// Hospital-a and hospital-b: most tests' custodian and requester.
    pub fn hospitals_a_b(&self) -> (&TestHospital, &TestHospital) {
        (self.hospital("hospital-a"), self.hospital("hospital-b"))
    }

    /// Waits until `hospital`'s view of the directory holds `members` members.
    pub async fn wait_for_directory(&self, hospital: &TestHospital, members: usize) {
        let follower = &hospital.node.directory;
        if let Err(e) = wait_for_directory(follower, members, hospital.id.as_str()).await {
            panic!("{e}");
        }
    }

    /// The authority changes a hospital's status; returns once every connector
    /// has seen it.
    pub async fn set_status(&self, hospital: &TestHospital, status: MemberStatus) {
        let node = &hospital.node;
        let event = Event::MemberUpdated(locus_protocol::entry::MemberUpdated {
            member: node.member.clone(),
            role: MemberRole::Hospital,
            display_name: format!("Test {}", node.member),
            ed25519: node.key.verifying_key(),
            x25519: node.x25519.public_key(),
            certificate: hospital.certificate.clone(),
            endpoint: Some(hospital.url.clone()),
            status,
        });
        let receipt = self.admin.submit_ok(self.authority.signed(event)).await;
        self.admin.checkpoint_at_least(receipt.index + 1).await;
        for other in &self.hospitals {
            // A member that is no longer active may no longer read the ledger.
            if other.id == hospital.id && status != MemberStatus::Active {
                continue;
            }
            other
                .node
                .directory
                .refresh()
                .await
                .expect("directory refresh");
        }
    }

    /// A grant as the consent service issues it: signed by the consent key,
    /// for `to`, bound to its certificate, over `scope` and `period`.
    pub fn grant(
        &self,
        to: &TestHospital,
        patient: &PatientKey,
        scope: &str,
        period: Option<(&str, &str)>,
    ) -> (String, GrantClaims) {
        self.grant_with(to, patient, scope, period, |_| {})
    }

    /// The patient key the network's linkage derives from a US SSN.
    pub fn patient_key(&self, ssn: &str) -> PatientKey {
        let ssn = normalize_identifier(ssn).expect("an SSN");
        patient_key(&self.linkage, &ssn)
    }

    /// `header.payload` with an HS256 MAC keyed by the consent key's public
    /// bytes: the algorithm-confusion forgery a verifier must refuse.
    pub fn hs256_forgery(&self, header: &str, payload: &str) -> String {
        use hmac::Mac as _;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(self.consent.key.verifying_key().as_bytes())
                .expect("any key length");
        mac.update(format!("{header}.{payload}").as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{signature}")
    }

    /// The discovery token of a grant: what the index is shown.
    pub fn discovery(&self, claims: &GrantClaims) -> String {
        locus_protocol::grant_token::encode_discovery(claims, &self.consent.key)
            .expect("discovery token")
    }

    /// As [`TestNetwork::grant`], with the claims adjusted before signing.
    pub fn grant_with(
        &self,
        to: &TestHospital,
        patient: &PatientKey,
        scope: &str,
        period: Option<(&str, &str)>,
        adjust: impl FnOnce(&mut GrantClaims),
    ) -> (String, GrantClaims) {
        let mut claims = GrantTerms {
            subject: *patient,
            requester: to.node.member.clone(),
            cnf: to.certificate.clone(),
            purpose: PurposeOfUse::Treatment,
            scope: scope.parse().expect("scope"),
            data_period: period.map(|(start, end)| DataPeriod::new(start, end).expect("period")),
            duration_secs: 3600,
            basis: GrantBasis::PatientApproval {
                request: RequestId::new_random(),
            },
        }
        .claims(
            &self.consent.id,
            &self.linkage,
            self.clock.clock().now_secs(),
        );
        adjust(&mut claims);
        (
            issue_grant(&claims, &self.consent.key).expect("grant"),
            claims,
        )
    }

    /// The regulator's grant audit of the whole log, as of a checkpoint of at
    /// least `size` entries (0: the newest).
    pub async fn grant_audit(&self, size: u64) -> locus_audit::rules::GrantAudit {
        let checkpoint = self.admin.checkpoint_at_least(size).await;
        let log = self
            .admin
            .ledger
            .download_log(&checkpoint)
            .await
            .expect("the log downloads and verifies");
        let entries =
            locus_audit::replay::parse_entries(&log.entries).expect("every leaf is an entry");
        locus_audit::rules::check_grants(&entries, &self.authority.key.verifying_key())
    }

    /// The ledger's entries that `query` selects (`type=…&grant=…`), as the
    /// authority reads them.
    pub async fn ledger_entries(&self, query: &str) -> locus_ledger::wire::EntryPage {
        self.admin
            .ledger
            .entries(query)
            .await
            .expect("the ledger answers")
    }

    /// Stops the index-service, and with it the ledger.
    pub async fn stop_index(&self) {
        self.network.stop_index().await;
    }

    /// A patient's phone: a client of the consent service's patient API,
    /// trusting the consortium CA, with no client certificate.
    pub fn phone(&self) -> reqwest::Client {
        self.network.phone().expect("client")
    }

    pub async fn stop(self) {
        self.network.stop().await;
    }
}

//! A whole consortium on loopback for tests: a CA, the authority, the
//! index-service (with the ledger) and hospital connectors, each on its own
//! fresh database, all over mutual TLS; and a consent key that mints grants
//! the way the consent service does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use locus_consent::acts::{issue_grant, GrantTerms};
use locus_hospital_connector::node::Node;
use locus_hospital_connector::startup::Application as Connector;
use locus_index_service::startup::Application as IndexService;
use locus_platform::clock::TestClock;
use locus_platform::files::{load_or_create_signing_key, write_linkage_key};
use locus_platform::pki::{certificate_der, CertificateAuthority};
use locus_platform::tls::{http_client, TlsFiles};
use locus_protocol::directory::{MemberRole, MemberStatus};
use locus_protocol::entry::Event;
use locus_protocol::grant::{Confirmation, DataPeriod, GrantBasis, GrantClaims, PurposeOfUse};
use locus_protocol::ids::{HospitalId, PatientKey, RequestId};
use locus_protocol::linkage::LinkageKey;

use crate::index::{test_config, TestClient, TestMember};
use crate::{Backend, TestDb};

/// One hospital's connector in the network.
pub struct TestHospital {
    pub id: HospitalId,
    pub url: String,
    pub node: Arc<Node>,
    pub tls: TlsFiles,
    pub certificate: Confirmation,
    handle: actix_web::dev::ServerHandle,
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
    handles: [actix_web::dev::ServerHandle; 2],
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
    index_handle: actix_web::dev::ServerHandle,
}

fn write(path: &std::path::Path, contents: &[u8]) -> PathBuf {
    std::fs::write(path, contents).expect("write test file");
    path.to_owned()
}

impl TestNetwork {
    /// Starts the index and one connector per id, admits them all, and waits
    /// until every connector sees the whole directory.
    pub async fn start(backend: Backend, hospitals: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = TestClock::new();
        let ca = CertificateAuthority::create("Locus test consortium CA").expect("CA");
        let ca_path = write(
            &dir.path().join("ca.pem"),
            ca.cert_pem().expect("pem").as_bytes(),
        );
        let issue = |member: &str| -> (TlsFiles, Confirmation) {
            let issued = ca
                .issue(member, &["localhost", "127.0.0.1"])
                .expect("certificate");
            let files = TlsFiles {
                ca_cert: ca_path.clone(),
                cert: write(
                    &dir.path().join(format!("{member}.pem")),
                    issued.cert_pem.as_bytes(),
                ),
                key: write(
                    &dir.path().join(format!("{member}-key.pem")),
                    issued.key_pem.as_bytes(),
                ),
            };
            let thumbprint =
                Confirmation::for_certificate_der(&certificate_der(&issued.cert_pem).expect("der"));
            (files, thumbprint)
        };

        let mut authority = TestMember::authority();
        let (authority_tls, authority_cert) = issue("consortium");
        authority.certificate = authority_cert;
        let mut consent = TestMember::new("consent");
        let (consent_tls, consent_cert) = issue("consent");
        consent.certificate = consent_cert;
        let linkage = LinkageKey::generate("k1").expect("linkage key");
        let linkage_path = dir.path().join("linkage.key");
        write_linkage_key(&linkage_path, &linkage).expect("linkage file");

        // The index and its ledger.
        let index_db = TestDb::new(backend);
        let (index_tls, index_cert) = issue("index");
        let mut config = test_config(&index_db, &authority);
        config.authority_certificate = Some(authority.certificate.x5t_s256.clone());
        config.tls_ca_cert = Some(index_tls.ca_cert.clone());
        config.tls_cert = Some(index_tls.cert.clone());
        config.tls_key = Some(index_tls.key.clone());
        config.clock = clock.clock();
        let index = IndexService::build(&config).expect("index-service starts");
        let index_url = index.url().to_owned();
        let admin_http = http_client(&authority_tls, Duration::from_secs(30)).expect("client");
        let admin = TestClient::with_http(index_url.clone(), index.vkey(), admin_http);
        let index_handle = index.handle();
        actix_web::rt::spawn(index.run_until_stopped());
        let index_key = load_or_create_signing_key(&config.member_key_file).expect("index key");

        // The consent service, signing with the consent member's key.
        let consent_db = TestDb::new(backend);
        let consent_key_file = dir.path().join("consent-member.pem");
        locus_platform::files::write_secret_file(
            &consent_key_file,
            consent.key.to_pkcs8_pem().expect("pem").as_bytes(),
        )
        .expect("consent key");
        let consent_config = locus_consent::config::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            patient_listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: consent_db.url().to_owned(),
            member_key_file: consent_key_file,
            linkage_key_file: linkage_path.clone(),
            index_url: Some(index_url.clone()),
            ledger_vkey: Some(admin.ledger.verifier().to_vkey()),
            authority_key: Some(authority.public_key_config()),
            tls_ca_cert: Some(consent_tls.ca_cert.clone()),
            tls_cert: Some(consent_tls.cert.clone()),
            tls_key: Some(consent_tls.key.clone()),
            clock: clock.clock(),
            ..Default::default()
        };
        let consent_app =
            locus_consent::startup::Application::build(&consent_config).expect("consent starts");
        let consent_service = TestConsent {
            member_url: consent_app.member_url.clone(),
            patient_url: consent_app.patient_url.clone(),
            state: consent_app.consent(),
            handles: consent_app.handles(),
            _db: consent_db,
        };
        actix_web::rt::spawn(consent_app.run_until_stopped(Duration::from_millis(100)));

        // The connectors, bound first so their endpoints can be listed.
        let mut started = Vec::new();
        for id in hospitals {
            let db = TestDb::new(backend);
            let (tls, certificate) = issue(id);
            let keys = dir.path().join(id);
            let config = locus_hospital_connector::config::Config {
                listen: "127.0.0.1:0".parse().expect("addr"),
                database_url: db.url().to_owned(),
                member_id: Some((*id).to_owned()),
                member_key_file: keys.join("member.pem"),
                x25519_key_file: keys.join("x25519.key"),
                linkage_key_file: linkage_path.clone(),
                index_url: Some(index_url.clone()),
                ledger_vkey: Some(admin.ledger.verifier().to_vkey()),
                authority_key: Some(authority.public_key_config()),
                tls_ca_cert: Some(tls.ca_cert.clone()),
                tls_cert: Some(tls.cert.clone()),
                tls_key: Some(tls.key.clone()),
                publish_interval_ms: 3_600_000,
                // Tests witness when they choose to (`Node::witness_once`).
                witness_interval_ms: 3_600_000,
                directory_refresh_ms: 100,
                clock: clock.clock(),
                ..Default::default()
            };
            let app = Connector::build(&config).expect("connector starts");
            started.push((app, config, db, tls, certificate));
        }

        // The authority admits everyone, with their real keys and certificates.
        let mut admissions = vec![
            consent.update(
                MemberRole::Consent,
                MemberStatus::Active,
                Some(consent_service.member_url.clone()),
            ),
            Event::MemberUpdated(locus_protocol::entry::MemberUpdated {
                member: config.member_id.parse().expect("index id"),
                role: MemberRole::Index,
                display_name: "Test index".into(),
                ed25519: index_key.verifying_key(),
                x25519: locus_protocol::seal::X25519SecretKey::generate().public_key(),
                certificate: index_cert,
                endpoint: Some(index_url.clone()),
                status: MemberStatus::Active,
            }),
        ];
        for (app, _, _, _, certificate) in &started {
            let node = app.node();
            admissions.push(Event::MemberUpdated(locus_protocol::entry::MemberUpdated {
                member: node.member.clone(),
                role: MemberRole::Hospital,
                display_name: format!("Test {}", node.member),
                ed25519: node.key.verifying_key(),
                x25519: node.x25519.public_key(),
                certificate: certificate.clone(),
                endpoint: Some(app.url().to_owned()),
                status: MemberStatus::Active,
            }));
        }
        for event in admissions {
            admin.submit_ok(authority.signed(event)).await;
        }

        let mut hospitals_out = Vec::new();
        for (app, config, db, tls, certificate) in started {
            let node = app.node();
            let url = app.url().to_owned();
            let handle = app.handle();
            let run_config = config.clone();
            actix_web::rt::spawn(async move { app.run_until_stopped(&run_config).await });
            hospitals_out.push(TestHospital {
                id: node.hospital.clone(),
                url,
                node,
                tls,
                certificate,
                handle,
                config,
                _db: db,
            });
        }
        let network = Self {
            dir,
            ca,
            authority,
            consent,
            consent_service,
            linkage,
            index_url,
            index_db,
            admin,
            hospitals: hospitals_out,
            clock,
            index_handle,
        };
        let expected = hospitals.len() + 2;
        for hospital in &network.hospitals {
            network.wait_for_directory(hospital, expected).await;
        }
        for _ in 0..200 {
            network.consent_service.state.directory.refresh().await.ok();
            if network
                .consent_service
                .state
                .directory
                .directory()
                .read()
                .members()
                .count()
                >= expected
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        network
    }

    pub fn hospital(&self, id: &str) -> &TestHospital {
        self.hospitals
            .iter()
            .find(|h| h.id.as_str() == id)
            .expect("hospital")
    }

    /// Waits until `hospital`'s view of the directory holds `members` members.
    pub async fn wait_for_directory(&self, hospital: &TestHospital, members: usize) {
        for _ in 0..200 {
            hospital.node.directory.refresh().await.ok();
            if hospital.node.directory.directory().read().members().count() >= members {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never saw the whole directory", hospital.id);
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
    pub async fn grant_audit(&self, size: u64) -> locus_consent::audit::GrantAudit {
        let checkpoint = self.admin.checkpoint_at_least(size).await;
        let log = self
            .admin
            .ledger
            .download_log(&checkpoint)
            .await
            .expect("the log downloads and verifies");
        let entries =
            locus_consent::audit::parse_entries(&log.entries).expect("every leaf is an entry");
        locus_consent::audit::check_grants(&entries, &self.authority.key.verifying_key())
    }

    /// Stops the index-service, and with it the ledger.
    pub async fn stop_index(&self) {
        self.index_handle.stop(true).await;
    }

    /// A patient's phone: a client of the consent service's patient API,
    /// trusting the consortium CA, with no client certificate.
    pub fn phone(&self) -> reqwest::Client {
        let ca = std::fs::read(self.dir.path().join("ca.pem")).expect("ca");
        reqwest::Client::builder()
            .pool_idle_timeout(locus_platform::tls::CLIENT_POOL_IDLE)
            .use_native_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca"))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub async fn stop(self) {
        for handle in &self.consent_service.handles {
            handle.stop(true).await;
        }
        for hospital in &self.hospitals {
            hospital.handle.stop(true).await;
        }
        self.index_handle.stop(true).await;
    }
}

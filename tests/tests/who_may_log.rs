//! Who may log what, and who may reach the ledger at all: the sequencer refuses
//! an entry from any role but the one the table names, for every kind of entry;
//! a refusal speaks only of its submitter's own act; the regulator's audit names
//! an entry a sequencer should have refused; and over mutual TLS, a certificate
//! the consortium CA signed but no active member holds reads and writes nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use locus_audit::replay::parse_entries;
use locus_audit::rules::check_grants;
use locus_index_service::config::Config;
use locus_ledger::merkle::{rfc9162_leaf_hash, CompactRange, NodeReader as _};
use locus_ledger::store::{EntryRow, LedgerStore};
use locus_platform::db::{self, DatabaseUrl};
use locus_platform::files::load_or_create_signing_key;
use locus_platform::launch::Launch as _;
use locus_platform::pki::{certificate_der, CertificateAuthority};
use locus_platform::tls::{http_client, TlsFiles};
use locus_protocol::consent::{Decision, Refusal, RequestTerms, RuleAudience, StandingRule};
use locus_protocol::device::DeviceSigner;
use locus_protocol::directory::{MemberRole, MemberStatus};
use locus_protocol::entry::{
    AccessDecided, AccessRefused, AccessRequested, DeviceEnrolled, DeviceRemoved, Event, EventKind,
    GrantIssued, GrantRevoked, IndexQueried, MerkleRoot, PointersPublished, RefusalReason,
    RuleCreated, RuleRevoked, SignedEntry,
};
use locus_protocol::grant::{Confirmation, GrantBasis, PurposeOfUse};
use locus_protocol::ids::{GrantId, PatientKey, RequestId, RuleId};
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::Signature64;
use locus_tests::index::{
    now_ms, random_bytes32, random_retrieval, test_config, InProcess, TestClient, TestMember,
};
use locus_tests::{both_backends, TestDb};

both_backends!(
    each_kind_only_from_its_logger,
    refusals_speak_only_of_own_acts,
    audit_names_entries_a_sequencer_should_have_refused,
    only_active_members_reach_the_ledger_and_index,
    a_suspension_holds_from_its_place_in_the_log,
);

/// One member of every role, and a second hospital.
struct Consortium {
    authority: TestMember,
    index: TestMember,
    consent: TestMember,
    st_mary: TestMember,
    city_er: TestMember,
    regulator: TestMember,
}

impl Consortium {
    fn new() -> Self {
        Self {
            authority: TestMember::authority(),
            // Not the service's own member id: this one is only a submitter here.
            index: TestMember::new("index-b"),
            consent: TestMember::new("consent"),
            st_mary: TestMember::new("st-mary"),
            city_er: TestMember::new("city-er"),
            regulator: TestMember::new("regulator"),
        }
    }

    /// Everyone but the authority, with their roles.
    fn members(&self) -> [(&TestMember, MemberRole); 5] {
        [
            (&self.index, MemberRole::Index),
            (&self.consent, MemberRole::Consent),
            (&self.st_mary, MemberRole::Hospital),
            (&self.city_er, MemberRole::Hospital),
            (&self.regulator, MemberRole::Regulator),
        ]
    }

    /// Every possible submitter.
    fn everyone(&self) -> [&TestMember; 6] {
        [
            &self.authority,
            &self.index,
            &self.consent,
            &self.st_mary,
            &self.city_er,
            &self.regulator,
        ]
    }

    async fn admit_all(&self, client: &TestClient) {
        for (member, role) in self.members() {
            client
                .submit_ok(
                    self.authority
                        .signed(member.update(role, MemberStatus::Active, None)),
                )
                .await;
        }
    }
}

fn patient() -> PatientKey {
    PatientKey::from_bytes(random_bytes32())
}

fn sig() -> Signature64 {
    Signature64::from_bytes([7; 64])
}

/// City ER refused by `custodian` (`None`: by the index).
fn refusal(c: &Consortium, custodian: Option<&TestMember>) -> Event {
    Event::AccessRefused(AccessRefused {
        requester: c.city_er.id.clone(),
        custodian: custodian.map(|m| m.id.as_str().parse().unwrap()),
        grant: Some(GrantId::new_random()),
        subject: Some(patient()),
        reason: RefusalReason::OutOfScope,
    })
}

/// A well-formed entry of `kind` with fresh ids, and who alone may log it.
/// The match names every kind, so a new one does not compile without a case.
fn sample(kind: EventKind, c: &Consortium) -> (Event, &TestMember) {
    let phone = DeviceSigner::generate_p256();
    let subject = patient();
    let terms = RequestTerms {
        request: RequestId::new_random(),
        requester: c.city_er.id.clone(),
        subject,
        purpose: PurposeOfUse::Treatment,
        scope: "patient/Observation.rs?category=laboratory"
            .parse()
            .unwrap(),
        data_period: None,
        duration_secs: 3600,
    };
    let now = now_ms() / 1000;
    match kind {
        EventKind::PointersPublished => (
            Event::PointersPublished(PointersPublished {
                custodian: c.st_mary.id.as_str().parse().unwrap(),
                count: 1,
                batch_root: MerkleRoot::from_bytes(random_bytes32()),
            }),
            &c.st_mary,
        ),
        EventKind::IndexQueried => (
            Event::IndexQueried(IndexQueried {
                requester: c.city_er.id.clone(),
                grant: GrantId::new_random(),
                subject,
                results: 0,
            }),
            &c.index,
        ),
        EventKind::RecordRetrieved => (random_retrieval(&c.st_mary.id), &c.st_mary),
        EventKind::AccessRefused => (refusal(c, None), &c.index),
        EventKind::MemberUpdated => (
            TestMember::new("newcomer").update(MemberRole::Hospital, MemberStatus::Active, None),
            &c.authority,
        ),
        EventKind::GrantRevoked => (
            Event::GrantRevoked(GrantRevoked {
                grant: GrantId::new_random(),
                subject,
                by_device: None,
            }),
            &c.consent,
        ),
        EventKind::DeviceEnrolled => (
            Event::DeviceEnrolled(DeviceEnrolled {
                subject,
                device: phone.device_id(),
                key: phone.public_jwk(),
                code_issuer: c.st_mary.id.clone(),
            }),
            &c.consent,
        ),
        EventKind::DeviceRemoved => (
            Event::DeviceRemoved(DeviceRemoved {
                subject,
                device: phone.device_id(),
            }),
            &c.consent,
        ),
        EventKind::AccessRequested => (
            Event::AccessRequested(AccessRequested { terms }),
            &c.consent,
        ),
        EventKind::AccessDecided => (
            Event::AccessDecided(AccessDecided {
                decision: Decision::Refuse(Refusal {
                    request: terms.request,
                    subject,
                    device: phone.device_id(),
                    signed_at_ms: now_ms(),
                }),
                signature: sig(),
            }),
            &c.consent,
        ),
        EventKind::GrantIssued => (
            Event::GrantIssued(GrantIssued {
                grant: GrantId::new_random(),
                subject,
                requester: c.city_er.id.clone(),
                scope: terms.scope.clone(),
                data_period: None,
                purpose: PurposeOfUse::Treatment,
                not_before: now,
                expires: now + 3600,
                basis: GrantBasis::PatientApproval {
                    request: terms.request,
                },
                cnf: Confirmation::for_certificate_der(b"city-er"),
            }),
            &c.consent,
        ),
        EventKind::RuleCreated => (
            Event::RuleCreated(RuleCreated {
                rule: StandingRule {
                    rule: RuleId::new_random(),
                    subject,
                    who: RuleAudience::AnyHospital,
                    scope: terms.scope.clone(),
                    data_window_days: None,
                    grant_duration_secs: 3600,
                    purposes: vec![PurposeOfUse::Treatment],
                    device: phone.device_id(),
                    signed_at_ms: now_ms(),
                },
                signature: sig(),
            }),
            &c.consent,
        ),
        EventKind::RuleRevoked => (
            Event::RuleRevoked(RuleRevoked {
                rule: RuleId::new_random(),
                subject,
                device: phone.device_id(),
                signed_at_ms: now_ms(),
                signature: sig(),
            }),
            &c.consent,
        ),
    }
}

async fn expect_error(response: reqwest::Response, status: u16, code: &str, what: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{what}: {body}");
    body["message"].as_str().unwrap().to_owned()
}

/// A consortium, the ledger's settings on `db`, and the ledger running with
/// every member admitted.
async fn admitted(db: &TestDb) -> (Consortium, Config, InProcess) {
    let c = Consortium::new();
    let config = test_config(db, &c.authority);
    let service = InProcess::start(&config).await;
    c.admit_all(&service.client).await;
    (c, config, service)
}

/// The log's entries, as of a checkpoint of at least `size` entries, downloaded
/// and verified as an auditor does.
async fn logged_entries(client: &TestClient, size: u64) -> Vec<(u64, SignedEntry)> {
    let checkpoint = client.checkpoint_at_least(size).await;
    let log = client.ledger.download_log(&checkpoint).await.unwrap();
    parse_entries(&log.entries).unwrap()
}

/// The number of entries the ledger holds, once everything sent has landed.
async fn settled_size(client: &TestClient) -> u64 {
    // Past the checkpoint interval, so anything wrongly accepted would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.checkpoint().await.size
}

async fn each_kind_only_from_its_logger(db: TestDb) {
    let (c, _, service) = admitted(&db).await;
    let client = &service.client;

    for kind in EventKind::ALL {
        let (event, logger) = sample(kind, &c);
        assert_eq!(event.event_kind(), kind);
        let before = settled_size(client).await;
        for submitter in c.everyone().into_iter().filter(|m| m.id != logger.id) {
            let what = format!("{kind} by {}", submitter.id);
            let message = expect_error(
                client.submit(submitter.signed(event.clone())).await,
                403,
                "not_permitted",
                &what,
            )
            .await;
            assert!(
                message.starts_with(&format!("{kind} is logged only by ")),
                "{what}: {message}"
            );
        }
        assert_eq!(
            settled_size(client).await,
            before,
            "{kind}: a refused entry was logged"
        );
        // The one the table names may.
        let receipt = client.submit_ok(logger.signed(event)).await;
        assert_eq!(receipt.index, before, "{kind}");
    }
    service.stop().await;
}

async fn refusals_speak_only_of_own_acts(db: TestDb) {
    let (c, _, service) = admitted(&db).await;
    let client = &service.client;
    let before = settled_size(client).await;

    // St Mary logs that City ER was refused, about City ER's own grant: as
    // City ER's refusal, as the index's, or with no custodian named at all
    // (what every refusal looked like before refusals named their custodian).
    for (custodian, logger) in [
        (Some(&c.city_er), "the custodian it names (city-er)"),
        (None, "the index"),
    ] {
        let forged = c.st_mary.signed(refusal(&c, custodian));
        let message = expect_error(client.submit(forged).await, 403, "not_permitted", logger).await;
        assert_eq!(
            message,
            format!(
                "access.refused is logged only by {logger}, not by st-mary, which is a hospital"
            )
        );
    }
    // The index cannot speak for a custodian either, nor the consent service
    // or a regulator for anyone.
    expect_error(
        client
            .submit(c.index.signed(refusal(&c, Some(&c.st_mary))))
            .await,
        403,
        "not_permitted",
        "index",
    )
    .await;
    for member in [&c.consent, &c.regulator] {
        for custodian in [None, Some(&c.st_mary)] {
            let refused = client.submit(member.signed(refusal(&c, custodian))).await;
            expect_error(refused, 403, "not_permitted", member.id.as_str()).await;
        }
    }
    assert_eq!(
        settled_size(client).await,
        before,
        "a refused refusal was logged"
    );

    // Each refusing party logs its own refusals.
    client
        .submit_ok(c.st_mary.signed(refusal(&c, Some(&c.st_mary))))
        .await;
    client
        .submit_ok(c.city_er.signed(refusal(&c, Some(&c.city_er))))
        .await;
    client.submit_ok(c.index.signed(refusal(&c, None))).await;
    assert_eq!(settled_size(client).await, before + 3);
    service.stop().await;
}

/// Entries checked on arrival, while the member was active, still land after
/// its suspension if they queued behind it: the sequencer checks the submitter
/// again where each entry lands, so the log never holds an entry by a member
/// after its suspension (which the audit would name).
async fn a_suspension_holds_from_its_place_in_the_log(db: TestDb) {
    let (c, _, service) = admitted(&db).await;
    let client = &service.client;

    let publications: Vec<Vec<u8>> = (0..400)
        .map(|_| c.st_mary.signed(sample(EventKind::PointersPublished, &c).0))
        .collect();
    let suspension = c.authority.signed(c.st_mary.update(
        MemberRole::Hospital,
        MemberStatus::Suspended,
        None,
    ));
    let (sent, suspended) = tokio::join!(
        futures::future::join_all(publications.into_iter().map(|body| client.submit(body))),
        async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            client.submit_ok(suspension).await
        }
    );
    let mut refused = 0;
    for response in sent {
        match response.status().as_u16() {
            200 => {}
            403 => {
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["error"], "inactive_submitter", "{body}");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // How many queued behind the suspension depends on timing; none of them
    // may land after it.
    eprintln!("{refused} of 400 publications refused after the suspension");

    let entries = logged_entries(client, suspended.index + 1).await;
    let late: Vec<u64> = entries
        .iter()
        .filter(|(index, e)| *index > suspended.index && e.entry().submitter == c.st_mary.id)
        .map(|(index, _)| *index)
        .collect();
    assert_eq!(
        late,
        Vec::<u64>::new(),
        "entries by st-mary after its suspension"
    );
    let audit = check_grants(&entries, &c.authority.key.verifying_key());
    assert!(audit.is_clean(), "{:#?}", audit.findings);
    service.stop().await;
}

/// Appends `entry` to the ledger's storage behind the sequencer's back, as a
/// sequencer that skipped its checks would: leaf, subtree hashes and index
/// row, so the log stays a consistent tree that the next checkpoint covers.
fn append_unchecked(store: &LedgerStore, entry: &SignedEntry) -> u64 {
    let size = store.tree_size().unwrap();
    let peaks = store.read_nodes(&CompactRange::peak_ids(size)).unwrap();
    let mut range = CompactRange::from_peaks(size, peaks).unwrap();
    let bytes = entry.canonical_bytes();
    let leaf_hash = rfc9162_leaf_hash(bytes);
    let nodes = range.append(leaf_hash);
    let row = EntryRow::new(i64::try_from(size).unwrap(), entry, &leaf_hash, now_ms());
    let mut conn = store.conn().unwrap();
    store.append(&mut conn, &[row], &nodes).unwrap();
    size
}

async fn audit_names_entries_a_sequencer_should_have_refused(db: TestDb) {
    let (c, config, service) = admitted(&db).await;
    // An honest part: a publication, and refusals by their refusing parties.
    let (published, _) = sample(EventKind::PointersPublished, &c);
    service.client.submit_ok(c.st_mary.signed(published)).await;
    service
        .client
        .submit_ok(c.st_mary.signed(refusal(&c, Some(&c.st_mary))))
        .await;
    let last = service
        .client
        .submit_ok(c.index.signed(refusal(&c, None)))
        .await;
    service.client.checkpoint_at_least(last.index + 1).await;
    service.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A sequencer that skipped the table: a hospital's discovery, pointers
    // published by the consent service in a hospital's name, a hospital's
    // refusal in another custodian's name, and one by a regulator.
    let (queried, _) = sample(EventKind::IndexQueried, &c);
    let (foreign, _) = sample(EventKind::PointersPublished, &c);
    let wrong = [
        (c.st_mary.entry_at(queried, now_ms()), "index.queried is logged only by the index, not by st-mary, which is a hospital"),
        (
            c.consent.entry_at(foreign, now_ms()),
            "pointers.published is logged only by the custodian it names (st-mary), not by consent, which is the consent service",
        ),
        (
            c.st_mary.entry_at(refusal(&c, Some(&c.city_er)), now_ms()),
            "access.refused is logged only by the custodian it names (city-er), not by st-mary, which is a hospital",
        ),
        (c.regulator.entry_at(refusal(&c, None), now_ms()), "access.refused is logged only by the index, not by regulator, which is a regulator"),
    ];
    let store =
        LedgerStore::open(db::connect(&DatabaseUrl::parse(db.url()).unwrap(), 1).unwrap()).unwrap();
    let at: Vec<u64> = wrong
        .iter()
        .map(|(entry, _)| append_unchecked(&store, entry))
        .collect();
    drop(store);

    // On restart the sequencer signs a checkpoint over what storage holds.
    let service = InProcess::start(&config).await;
    let client = &service.client;
    let audit = check_grants(
        &logged_entries(client, at[3] + 1).await,
        &c.authority.key.verifying_key(),
    );
    let named: Vec<(u64, &str)> = audit
        .findings
        .iter()
        .map(|f| (f.index, f.problem.as_str()))
        .collect();
    let expected: Vec<(u64, &str)> = at
        .iter()
        .copied()
        .zip(wrong.iter().map(|(_, says)| *says))
        .collect();
    assert_eq!(named, expected, "{:#?}", audit.findings);
    service.stop().await;
}

/// A CA, and mutual-TLS material for whoever needs it, in one folder.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateAuthority,
    ca_path: std::path::PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::create("Locus test consortium CA").unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert_pem().unwrap()).unwrap();
        Self { dir, ca, ca_path }
    }

    /// A certificate the consortium CA signs for `name`, and its thumbprint.
    fn issue(&self, name: &str) -> (TlsFiles, Confirmation) {
        let issued = self.ca.issue(name, &["localhost", "127.0.0.1"]).unwrap();
        let cert = self.dir.path().join(format!("{name}.pem"));
        let key = self.dir.path().join(format!("{name}-key.pem"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, issued.key_pem.as_bytes()).unwrap();
        let thumbprint =
            Confirmation::for_certificate_der(&certificate_der(&issued.cert_pem).unwrap());
        (
            TlsFiles {
                ca_cert: self.ca_path.clone(),
                cert,
                key,
            },
            thumbprint,
        )
    }

    fn client(files: &TlsFiles) -> reqwest::Client {
        http_client(files, Duration::from_secs(30)).unwrap()
    }
}

/// Every route of the index-service's listener, as a request builder.
fn every_route(
    http: &reqwest::Client,
    base: &str,
    entry: Vec<u8>,
) -> Vec<(String, reqwest::RequestBuilder)> {
    let mut routes: Vec<(String, reqwest::RequestBuilder)> = [
        "/ledger/checkpoint",
        "/ledger/checkpoints",
        "/ledger/vkey",
        "/ledger/entries?limit=10",
        "/ledger/entries/0",
        "/ledger/proof/inclusion?index=0&size=1",
        "/ledger/proof/consistency?first=1&second=2",
        "/ledger/tile/0/000.p/2",
        "/ledger/tile/entries/000.p/2",
        "/openapi.json",
        "/metrics",
        "/readyz",
        "/healthz",
    ]
    .into_iter()
    .map(|path| (format!("GET {path}"), http.get(format!("{base}{path}"))))
    .collect();
    routes.push((
        "POST /ledger/entries".into(),
        http.post(format!("{base}/ledger/entries"))
            .header("content-type", "application/json")
            .body(entry),
    ));
    let cosignature = serde_json::json!({"tree_size": 1, "cosignature": "— stranger AAAA\n"});
    routes.push((
        "POST /ledger/cosignatures".into(),
        http.post(format!("{base}/ledger/cosignatures"))
            .json(&cosignature),
    ));
    routes.push((
        "POST /index/discover".into(),
        http.post(format!("{base}/index/discover"))
            .json(&serde_json::json!({})),
    ));
    routes.push((
        "POST /index/pointers".into(),
        http.post(format!("{base}/index/pointers"))
            .json(&serde_json::json!({"pointers": []})),
    ));
    routes.push((
        "POST /index/pointers/withdraw".into(),
        http.post(format!("{base}/index/pointers/withdraw"))
            .json(&serde_json::json!({"pointer_ids": []})),
    ));
    routes
}

/// Every route refuses `http`'s certificate with 403. The index's own routes
/// map the peer themselves (and log what they refuse a known member); every
/// other route is refused before it runs.
async fn refused_everywhere(who: &str, http: &reqwest::Client, base: &str, entry: Vec<u8>) {
    for (route, request) in every_route(http, base, entry) {
        let what = format!("{who}: {route}");
        let response = request.send().await.unwrap();
        if route.starts_with("POST /index/") {
            assert_eq!(response.status().as_u16(), 403, "{what}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(
                body["error"].is_string() && body["message"].is_string(),
                "{what}: {body}"
            );
        } else {
            let message = expect_error(response, 403, "not_a_member", &what).await;
            assert_eq!(
                message, "the client certificate belongs to no active member of the consortium",
                "{what}"
            );
        }
    }
}

async fn only_active_members_reach_the_ledger_and_index(db: TestDb) {
    let pki = Pki::new();
    let mut c = Consortium::new();
    let (authority_tls, authority_cert) = pki.issue("consortium");
    c.authority.certificate = authority_cert;
    let (st_mary_tls, st_mary_cert) = pki.issue("st-mary");
    c.st_mary.certificate = st_mary_cert;
    let (regulator_tls, regulator_cert) = pki.issue("regulator");
    c.regulator.certificate = regulator_cert;
    let (suspended_tls, suspended_cert) = pki.issue("city-er");
    c.city_er.certificate = suspended_cert;
    // Signed by the consortium CA, held by no member.
    let (stranger_tls, _) = pki.issue("hospital-z");
    let stranger = TestMember::new("hospital-z");

    let (index_tls, index_cert) = pki.issue("index");
    let mut config = test_config(&db, &c.authority);
    config.authority_certificate = Some(c.authority.certificate.x5t_s256.clone());
    config.tls_ca_cert = Some(index_tls.ca_cert.clone());
    config.tls_cert = Some(index_tls.cert.clone());
    config.tls_key = Some(index_tls.key.clone());
    let app = locus_index_service::startup::Application::build(&config).unwrap();
    let base = app.url().to_owned();
    let vkey = app.vkey().to_owned();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());

    // The authority, pinned by its certificate, admits the members, and the
    // index itself, so that it can log its refusals.
    let admin = TestClient::with_http(base.clone(), &vkey, Pki::client(&authority_tls));
    c.admit_all(&admin).await;
    let index = TestMember {
        id: config.member_id.parse().unwrap(),
        key: load_or_create_signing_key(&config.member_key_file).unwrap(),
        x25519: X25519SecretKey::generate(),
        certificate: index_cert,
    };
    admin
        .submit_ok(
            c.authority
                .signed(index.update(MemberRole::Index, MemberStatus::Active, None)),
        )
        .await;
    let receipt = admin
        .submit_ok(c.st_mary.signed(random_retrieval(&c.st_mary.id)))
        .await;
    admin.checkpoint_at_least(receipt.index + 1).await;

    // Active members read: a hospital and the regulator.
    for (who, files) in [
        ("st-mary", &st_mary_tls),
        ("regulator", &regulator_tls),
        ("city-er", &suspended_tls),
    ] {
        let member = TestClient::with_http(base.clone(), &vkey, Pki::client(files));
        let checkpoint = member.checkpoint().await;
        assert!(checkpoint.size > receipt.index, "{who}");
        member.ledger.download_log(&checkpoint).await.unwrap();
    }
    let before = admin.checkpoint().await;

    // A certificate the consortium CA signed but no member holds: nothing,
    // on any route, and nothing logged (there is no one to attribute it to).
    let stranger_http = Pki::client(&stranger_tls);
    refused_everywhere("stranger", &stranger_http, &base, stranger.retrieval()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(admin.checkpoint().await.size, before.size);

    // A suspended member's certificate: nothing either, until reinstated.
    let suspension = c
        .city_er
        .update(MemberRole::Hospital, MemberStatus::Suspended, None);
    let suspended_at = admin.submit_ok(c.authority.signed(suspension)).await;
    let suspended_http = Pki::client(&suspended_tls);
    refused_everywhere(
        "suspended city-er",
        &suspended_http,
        &base,
        c.city_er.retrieval(),
    )
    .await;
    let reinstatement = c
        .city_er
        .update(MemberRole::Hospital, MemberStatus::Active, None);
    let reinstated_at = admin.submit_ok(c.authority.signed(reinstatement)).await;
    let reinstated = TestClient::with_http(base.clone(), &vkey, suspended_http);
    assert!(
        reinstated
            .checkpoint_at_least(reinstated_at.index + 1)
            .await
            .size
            > suspended_at.index
    );

    // The refused requests changed nothing but the index's entry of the
    // suspended member's refused discovery, between the two directory entries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(admin.checkpoint().await.size, before.size + 3);
    let refusals = admin.get_json("/ledger/entries?type=access.refused").await;
    let refusals = refusals["entries"].as_array().unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let refused = &refusals[0]["entry"]["entry"];
    assert_eq!(refused["submitter"], "index");
    assert_eq!(refused["event"]["requester"], "city-er");
    assert_eq!(refused["event"]["reason"], "member_suspended");
    assert!(refused["event"].get("custodian").is_none());
    handle.stop(true).await;
}

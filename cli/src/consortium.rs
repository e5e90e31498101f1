//! A development consortium on one machine, in one process: the CA and every
//! member's keys and certificates, the index-service with the ledger, the
//! consent service, two hospital connectors and a regulator, all over mutual
//! TLS on loopback. `locus up` serves it until Ctrl-C; `locus demo` and the
//! tests start a throwaway one.
//!
//! Everything is created on the first start in the data folder and reused
//! afterwards; the authority re-logs a member's directory record only when it
//! changed (a new port, say).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use diesel::{Connection as _, PgConnection, RunQueryDsl as _};
use locus_hospital_connector::import::import_bundle;
use locus_hospital_connector::node::Node;
use locus_ledger::client::{DirectoryFollower, LedgerClient};
use locus_ledger::cosignature::CosignatureVerifier;
use locus_ledger::note::NoteVerifier;
use locus_ledger::store::LedgerStore;
use locus_platform::clock::Clock;
use locus_platform::db::{self, DatabaseUrl};
use locus_platform::files::{
    load_or_create_signing_key, load_or_create_x25519_key, write_linkage_key,
};
use locus_platform::launch::Launch as _;
use locus_platform::pki::{certificate_der, CertificateAuthority};
use locus_platform::tls::{http_client, TlsFiles};
use locus_protocol::directory::{MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{Event, MemberUpdated};
use locus_protocol::grant::Confirmation;
use locus_protocol::ids::MemberId;
use locus_protocol::linkage::LinkageKey;
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::SigningKey;
use serde::{Deserialize, Serialize};

use crate::network::{
    ConsentInfo, HospitalInfo, LedgerInfo, NetworkInfo, Pem, RegulatorInfo, ServiceInfo,
    WitnessPolicy, NETWORK_FILE,
};
use crate::{pki, synthetic};

pub const INDEX: &str = "index";
pub const CONSENT: &str = "consent";
pub const REGULATOR: &str = "regulator";
/// The two hospitals: member id and the name patients see.
pub const HOSPITALS: [(&str, &str); 2] = [
    ("hospital-a", "Northbridge General Hospital"),
    ("hospital-b", "Riverside Medical Centre"),
];
const LEDGER_ORIGIN: &str = "locus.localhost/dev-ledger";
const SEEDED_FILE: &str = "seeded.json";

/// Where every service keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// One SQLite file per service in the data folder.
    Sqlite,
    /// One database per service, `<prefix>_<service>`, on the server the URL
    /// names; `<prefix>` is the URL's database name (`locus` if it names
    /// `postgres` or none). They are created, if missing, from `admin_url`,
    /// the server's `postgres` database.
    Postgres { admin_url: String, prefix: String },
    /// A database URL for each service, by member id, made elsewhere (the
    /// tests' fresh databases); `backend` names their kind.
    Given {
        backend: &'static str,
        urls: std::collections::BTreeMap<String, String>,
    },
}

/// `url` with its database name replaced by `database` (query kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

impl Storage {
    /// PostgreSQL if `url` is a `postgres://` URL, databases named after its database.
    pub fn from_url(url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            None => Ok(Self::Sqlite),
            Some(url) if url.starts_with("sqlite://") => Ok(Self::Sqlite),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let path = url.split('?').next().unwrap_or(url);
                let prefix = path
                    .get(path.find("://").map_or(0, |i| i + 3)..)
                    .and_then(|rest| rest.split_once('/'))
                    .map(|(_, db)| db)
                    .filter(|db| !db.is_empty() && *db != "postgres")
                    .unwrap_or("locus");
                if !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    bail!("the database name in the PostgreSQL URL may hold only letters, digits and _");
                }
                Ok(Self::Postgres {
                    admin_url: with_database(url, "postgres"),
                    prefix: prefix.to_owned(),
                })
            }
            Some(_) => bail!("the database URL must start with sqlite:// or postgres://"),
        }
    }

    /// The same server with databases of their own, for a network that is
    /// dropped afterwards (`locus demo`, `locus bench`).
    pub fn throwaway(self, label: &str) -> Self {
        match self {
            Self::Postgres { admin_url, .. } => Self::Postgres {
                admin_url,
                prefix: format!(
                    "locus_{label}_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
            },
            sqlite => sqlite,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
            Self::Given { backend, .. } => backend,
        }
    }

    /// The database URL of one service, creating its PostgreSQL database if needed.
    pub fn url_for(&self, dir: &Path, service: &str) -> anyhow::Result<String> {
        match self {
            Self::Sqlite => Ok(format!(
                "sqlite://{}",
                dir.join(format!("{service}.db")).display()
            )),
            Self::Postgres { admin_url, prefix } => {
                let name = format!("{prefix}_{}", service.replace('-', "_"));
                let mut admin = PgConnection::establish(admin_url).with_context(|| {
                    format!("connecting to PostgreSQL at {}", redact(admin_url))
                })?;
                let exists: i64 = diesel::sql_query(format!(
                    "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
                ))
                .get_result::<Count>(&mut admin)?
                .n;
                if exists == 0 {
                    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
                }
                Ok(with_database(admin_url, &name))
            }
            Self::Given { urls, .. } => urls
                .get(service)
                .cloned()
                .with_context(|| format!("no database URL for {service}")),
        }
    }

    /// Drops every database named `<prefix>_…` (PostgreSQL only): what a
    /// throwaway network made, benchmark tables included.
    pub fn drop_all(&self) -> anyhow::Result<()> {
        if let Self::Postgres { admin_url, prefix } = self {
            let mut admin = PgConnection::establish(admin_url)?;
            // `_` is a LIKE wildcard; the prefix holds only letters, digits and `_`.
            let pattern = format!("{}\\_%", prefix.replace('_', "\\_"));
            let names: Vec<DatabaseName> =
                diesel::sql_query("SELECT datname AS name FROM pg_database WHERE datname LIKE $1")
                    .bind::<diesel::sql_types::Text, _>(pattern)
                    .load(&mut admin)?;
            for DatabaseName { name } in names {
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)?;
            }
        }
        Ok(())
    }
}

#[derive(diesel::QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Drops a throwaway network's PostgreSQL databases when it goes out of
/// scope, also after an error or a failed test.
#[derive(Debug)]
pub struct DropOnExit(pub Storage);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        if let Err(e) = self.0.drop_all() {
            eprintln!("warning: the throwaway PostgreSQL databases were not all dropped: {e:#}");
        }
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Which ports the services listen on.
#[derive(Debug, Clone, Copy)]
pub enum Ports {
    /// `base` for the index, then +10 consent (+11 its patient API), +20, +30 the hospitals.
    Fixed(u16),
    /// Free ports picked by the system (tests, the demo).
    Ephemeral,
}

impl Ports {
    fn addr(self, offset: u16) -> std::net::SocketAddr {
        let port = match self {
            Self::Fixed(base) => base.saturating_add(offset),
            Self::Ephemeral => 0,
        };
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub storage: Storage,
    pub ports: Ports,
    /// Synthetic patients made on the first start.
    pub patients: usize,
    /// How often connectors witness the ledger; short in tests and the demo.
    pub witness_interval: Duration,
    /// The hospitals, by member id.
    pub hospitals: Vec<String>,
    /// The name the directory gives each member, by member id.
    pub display_name: fn(&str) -> String,
    /// Whether the authority admits the regulator (tests admit their own).
    pub admit_regulator: bool,
    /// How often the index signs a checkpoint over new entries.
    pub checkpoint_interval: Duration,
    /// How often the members re-read the directory, and the consent service
    /// finishes acts the ledger could not take at once.
    pub poll_interval: Duration,
    /// How often connectors publish what they imported.
    pub publish_interval: Duration,
    /// Every service's clock.
    pub clock: Clock,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            storage: Storage::Sqlite,
            ports: Ports::Ephemeral,
            patients: 12,
            witness_interval: Duration::from_millis(500),
            hospitals: HOSPITALS.iter().map(|(id, _)| (*id).to_owned()).collect(),
            display_name: development_name,
            admit_regulator: true,
            checkpoint_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(500),
            publish_interval: Duration::from_secs(2),
            clock: Clock::system(),
        }
    }
}

/// The development consortium's names: the index, the consent service, the
/// regulator and [`HOSPITALS`]; any other member is named by its id.
fn development_name(id: &str) -> String {
    match id {
        INDEX => "Locus index".into(),
        CONSENT => "Locus consent service".into(),
        REGULATOR => "Health data regulator".into(),
        _ => HOSPITALS
            .iter()
            .find(|(hospital, _)| *hospital == id)
            .map_or_else(|| id.to_owned(), |(_, name)| (*name).to_owned()),
    }
}

fn millis(interval: Duration) -> u64 {
    u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)
}

/// A member's secrets and certificate, in the data folder.
#[derive(Debug)]
pub struct Member {
    pub id: MemberId,
    pub tls: TlsFiles,
    pub certificate: Confirmation,
    pub key: SigningKey,
    pub x25519: X25519SecretKey,
}

impl Member {
    /// Member `id` of the consortium in `dir`, as [`Network::start`] made it.
    pub fn load(dir: &Path, id: &str) -> anyhow::Result<Self> {
        let pki_dir = dir.join("pki");
        provision(dir, &pki_dir, &pki::load_ca(&pki_dir)?, id)
    }
}

/// What the first start made: synthetic patients and their records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seeded {
    pub patients: usize,
    pub records: Vec<(String, usize)>,
    /// The synthetic patients' identifiers and names (demo data, no real people).
    pub cohort: Vec<synthetic::PatientSummary>,
}

/// One running hospital connector.
pub struct Hospital {
    pub id: String,
    pub name: String,
    pub url: String,
    pub node: Arc<Node>,
    pub tls: TlsFiles,
    pub certificate: Confirmation,
    pub config: locus_hospital_connector::config::Config,
    handle: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for Hospital {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hospital")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The running consortium.
pub struct Network {
    pub info: NetworkInfo,
    pub dir: PathBuf,
    pub hospitals: Vec<Hospital>,
    pub linkage: LinkageKey,
    pub seeded: Seeded,
    /// The consent service's patient API trusts this CA; phones pin it.
    pub ca_pem: String,
    /// Every service's clock.
    pub clock: Clock,
    /// The consent service's state, in this process.
    pub consent: Arc<locus_consent::acts::Consent>,
    consent_handles: [actix_web::dev::ServerHandle; 2],
    index_handle: actix_web::dev::ServerHandle,
    index_task: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    /// The consent service's and the connectors' servers and loops
    /// (directory, publishing, witness): they end before the ledger stops.
    service_tasks: Vec<actix_web::rt::task::JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// Creates what is missing in `options.dir`, starts every service, admits
    /// the members, seeds records on the first start and writes `network.json`.
    /// Must run inside an actix system (servers are spawned on it).
    pub async fn start(options: &Options, progress: &dyn Fn(&str)) -> anyhow::Result<Self> {
        let dir = std::path::absolute(&options.dir).context("the data folder")?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki_dir = dir.join("pki");
        let ca = load_or_create_ca(&pki_dir)?;
        let member = |id: &str| provision(&dir, &pki_dir, &ca, id);
        let authority = member(AUTHORITY_MEMBER)?;
        let index = member(INDEX)?;
        let consent = member(CONSENT)?;
        let regulator = member(REGULATOR)?;
        let hospitals = options
            .hospitals
            .iter()
            .map(|id| member(id))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let linkage_path = dir.join("linkage.key");
        if !linkage_path.exists() {
            write_linkage_key(&linkage_path, &LinkageKey::generate("dev-1")?)?;
        }
        let linkage = locus_platform::files::load_linkage_key(&linkage_path)?;
        let authority_key = authority_key_config(&authority.key)?;

        // The index-service and its ledger.
        let index_config = locus_index_service::config::Config {
            listen: options.ports.addr(0),
            database_url: options.storage.url_for(&dir, INDEX)?,
            ledger_origin: LEDGER_ORIGIN.into(),
            ledger_key_file: dir.join(INDEX).join("ledger.key"),
            authority_key: Some(authority_key.clone()),
            authority_certificate: Some(authority.certificate.x5t_s256.clone()),
            member_id: INDEX.into(),
            member_key_file: dir.join(INDEX).join("member.pem"),
            tls_ca_cert: Some(index.tls.ca_cert.clone()),
            tls_cert: Some(index.tls.cert.clone()),
            tls_key: Some(index.tls.key.clone()),
            checkpoint_interval_ms: millis(options.checkpoint_interval),
            clock: options.clock.clone(),
            ..Default::default()
        };
        let index_app = locus_index_service::startup::Application::build(&index_config)
            .context("the index-service")?;
        let index_url = index_app.url().to_owned();
        let vkey = index_app.vkey().to_owned();
        let index_handle = index_app.handle();
        let index_task = actix_web::rt::spawn(index_app.run_until_stopped());
        let verifier = NoteVerifier::from_vkey(&vkey)?;
        let admin = LedgerClient::new(
            &index_url,
            verifier,
            http_client(&authority.tls, Duration::from_secs(30))?,
        )
        .with_clock(options.clock.clone());
        progress(&format!("index-service and ledger on {index_url}"));

        // The config of the consent service or a connector: its own fields, then
        // what they are all given alike (the linkage key, the index and its
        // ledger's key, the authority, their TLS files and the clock).
        macro_rules! member_config {
            ($($config:ident)::+, $tls:expr, { $($field:ident: $value:expr,)* }) => {
                $($config)::+ {
                    $($field: $value,)*
                    linkage_key_file: linkage_path.clone(),
                    index_url: Some(index_url.clone()),
                    ledger_vkey: Some(vkey.clone()),
                    authority_key: Some(authority_key.clone()),
                    tls_ca_cert: Some($tls.ca_cert.clone()),
                    tls_cert: Some($tls.cert.clone()),
                    tls_key: Some($tls.key.clone()),
                    clock: options.clock.clone(),
                    ..Default::default()
                }
            };
        }

        // The consent service.
        let consent_config = member_config!(locus_consent::config::Config, consent.tls, {
            listen: options.ports.addr(10),
            patient_listen: options.ports.addr(11),
            database_url: options.storage.url_for(&dir, CONSENT)?,
            member_id: CONSENT.into(),
            member_key_file: dir.join(CONSENT).join("member.pem"),
        });
        let consent_app = locus_consent::startup::Application::build(&consent_config)
            .context("the consent service")?;
        let (member_url, patient_url) = (
            consent_app.member_url.clone(),
            consent_app.patient_url.clone(),
        );
        let consent_state = consent_app.consent();
        let consent_handles = consent_app.handles();

        // The connectors, bound first so the directory can list their endpoints.
        let mut connectors = Vec::new();
        for (offset, (id, keys)) in (20u16..)
            .step_by(10)
            .zip(options.hospitals.iter().zip(hospitals))
        {
            let config = member_config!(locus_hospital_connector::config::Config, keys.tls, {
                listen: options.ports.addr(offset),
                database_url: options.storage.url_for(&dir, id)?,
                member_id: Some(id.clone()),
                member_key_file: dir.join(id).join("member.pem"),
                x25519_key_file: dir.join(id).join("x25519.key"),
                publish_interval_ms: millis(options.publish_interval),
                directory_refresh_ms: millis(options.poll_interval),
                witness_interval_ms: millis(options.witness_interval),
            });
            let app = locus_hospital_connector::startup::Application::build(&config)
                .with_context(|| format!("the connector of {id}"))?;
            connectors.push((keys, app, config));
        }

        // The authority admits everyone with their real keys and endpoints.
        let name = options.display_name;
        let mut wanted = vec![
            record(&index, MemberRole::Index, name, Some(index_url.clone())),
            record(
                &consent,
                MemberRole::Consent,
                name,
                Some(member_url.clone()),
            ),
        ];
        if options.admit_regulator {
            wanted.push(record(&regulator, MemberRole::Regulator, name, None));
        }
        for (keys, app, _) in &connectors {
            wanted.push(record(
                keys,
                MemberRole::Hospital,
                name,
                Some(app.url().to_owned()),
            ));
        }
        let members = wanted.len();
        let admitted = admit(&admin, &authority, wanted).await?;
        if admitted > 0 {
            progress(&format!(
                "the authority logged {admitted} directory record(s)"
            ));
        }

        let consent_task =
            actix_web::rt::spawn(consent_app.run_until_stopped(options.poll_interval));
        let mut running = Vec::new();
        let mut apps = Vec::new();
        for (keys, app, config) in connectors {
            let id = keys.id.to_string();
            running.push(Hospital {
                name: name(&id),
                id,
                url: app.url().to_owned(),
                node: app.node(),
                tls: keys.tls,
                certificate: keys.certificate,
                config: config.clone(),
                handle: app.handle(),
            });
            apps.push((app, config));
        }
        // Seeded before the connectors' own publishers start, so one publishes.
        let today = options.clock.now().date_naive();
        let seeded = seed(&dir, &running, options.patients, today, progress).await?;
        let mut service_tasks = vec![consent_task];
        service_tasks.extend(apps.into_iter().map(|(app, config)| {
            actix_web::rt::spawn(async move { app.run_until_stopped(&config).await })
        }));
        for hospital in &running {
            wait_for_directory(&hospital.node.directory, members, &hospital.id).await?;
        }
        wait_for_directory(&consent_state.directory, members, CONSENT).await?;
        wait_for_checkpoint(&admin, &options.storage.url_for(&dir, INDEX)?).await?;

        // The hospitals make the quorum; the regulator's cosignatures, when it
        // watches, count as well.
        let quorum = running.len() / 2 + 1;
        let witnesses = running
            .iter()
            .map(|h| (h.id.as_str(), h.node.key.verifying_key()))
            .chain([(REGULATOR, regulator.key.verifying_key())])
            .map(|(id, key)| {
                CosignatureVerifier::from_public_key(id, key.as_bytes()).map(|v| v.to_vkey())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ca_cert = Pem::read(&pki_dir.join("ca.pem"))?;
        let info = NetworkInfo {
            database: options.storage.name().into(),
            ca_cert: ca_cert.clone(),
            authority_key,
            ledger: LedgerInfo {
                tlog_base_url: format!("{index_url}/ledger"),
                origin: LEDGER_ORIGIN.into(),
                vkey,
            },
            index: ServiceInfo {
                openapi: format!("{index_url}/openapi.json"),
                url: index_url,
            },
            consent: ConsentInfo {
                member_url,
                patient_url,
            },
            hospitals: running
                .iter()
                .map(|h| HospitalInfo {
                    id: h.id.clone(),
                    name: h.name.clone(),
                    openapi: format!("{}/openapi.json", h.url),
                    url: h.url.clone(),
                    database: database_label(&options.storage, &dir, &h.id),
                })
                .collect(),
            regulator: RegulatorInfo {
                id: REGULATOR.into(),
                cert: Pem::read(&regulator.tls.cert)?,
                key: Pem::read(&regulator.tls.key)?,
                signing_key: Pem::read(&dir.join(REGULATOR).join("member.pem"))?,
            },
            witnesses: WitnessPolicy {
                quorum,
                vkeys: witnesses,
            },
        };
        info.write(&dir.join(NETWORK_FILE))?;
        Ok(Self {
            info,
            dir,
            hospitals: running,
            linkage,
            seeded,
            ca_pem: ca_cert.pem,
            clock: options.clock.clone(),
            consent: consent_state,
            consent_handles,
            index_handle,
            index_task,
            service_tasks,
        })
    }

    pub fn hospital(&self, id: &str) -> anyhow::Result<&Hospital> {
        self.hospitals
            .iter()
            .find(|h| h.id == id)
            .with_context(|| format!("no hospital {id}"))
    }

    /// A patient's phone: trusts the consortium CA, has no client certificate.
    pub fn phone(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .pool_idle_timeout(locus_platform::tls::CLIENT_POOL_IDLE)
            .use_native_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?)
            .timeout(Duration::from_secs(30))
            .build()?)
    }

    /// Stops the index-service, and with it the ledger, leaving the members running.
    pub async fn stop_index(&self) {
        self.index_handle.stop(true).await;
    }

    /// Stops the members first, then the index, which signs a last checkpoint
    /// over everything it committed.
    pub async fn stop(self) {
        for handle in &self.consent_handles {
            handle.stop(true).await;
        }
        for hospital in &self.hospitals {
            hospital.handle.stop(true).await;
        }
        // Their loops end with their servers; only then does the ledger go.
        for task in self.service_tasks {
            let _ = task.await;
        }
        self.index_handle.stop(true).await;
        let _ = self.index_task.await;
    }
}

fn database_label(storage: &Storage, dir: &Path, service: &str) -> String {
    match storage {
        Storage::Sqlite => dir.join(format!("{service}.db")).display().to_string(),
        Storage::Postgres { prefix, .. } => format!("{prefix}_{}", service.replace('-', "_")),
        Storage::Given { urls, .. } => urls.get(service).cloned().unwrap_or_default(),
    }
}

fn load_or_create_ca(dir: &Path) -> anyhow::Result<CertificateAuthority> {
    if !dir.join("ca.pem").exists() {
        pki::init_ca(dir, "Locus development consortium CA")?;
    }
    pki::load_ca(dir)
}

/// A member's certificate (issued as `locus pki issue` does) and keys.
fn provision(
    dir: &Path,
    pki_dir: &Path,
    ca: &CertificateAuthority,
    id: &str,
) -> anyhow::Result<Member> {
    let member: MemberId = id
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a member id"))?;
    let (cert, key) = (
        pki_dir.join(format!("{id}.pem")),
        pki_dir.join(format!("{id}-key.pem")),
    );
    if !cert.exists() {
        pki::issue(pki_dir, ca, &member, &["localhost", "127.0.0.1"])?;
    }
    let cert_pem = std::fs::read_to_string(&cert)?;
    let keys = dir.join(id);
    Ok(Member {
        id: member,
        certificate: Confirmation::for_certificate_der(&certificate_der(&cert_pem)?),
        tls: TlsFiles {
            ca_cert: pki_dir.join("ca.pem"),
            cert,
            key,
        },
        key: load_or_create_signing_key(&keys.join("member.pem"))?,
        x25519: load_or_create_x25519_key(&keys.join("x25519.key"))?,
    })
}

fn authority_key_config(key: &SigningKey) -> anyhow::Result<String> {
    serde_json::to_value(key.verifying_key())?
        .as_str()
        .map(str::to_owned)
        .context("the authority key does not encode as a string")
}

fn record(
    member: &Member,
    role: MemberRole,
    name: fn(&str) -> String,
    endpoint: Option<String>,
) -> MemberUpdated {
    MemberUpdated {
        member: member.id.clone(),
        role,
        display_name: name(member.id.as_str()),
        ed25519: member.key.verifying_key(),
        x25519: member.x25519.public_key(),
        certificate: member.certificate.clone(),
        endpoint,
        status: MemberStatus::Active,
    }
}

/// Logs the directory records that differ from what the ledger holds; returns
/// how many it logged.
async fn admit(
    admin: &LedgerClient,
    authority: &Member,
    wanted: Vec<MemberUpdated>,
) -> anyhow::Result<usize> {
    let follower = DirectoryFollower::new(admin.clone(), authority.key.verifying_key());
    // A fresh ledger has no checkpoint until its first entry.
    if admin.checkpoint().await.is_ok() {
        follower.refresh().await.context("reading the directory")?;
    }
    let mut logged = 0;
    for update in wanted {
        if follower.directory().read().get(&update.member) == Some(&update) {
            continue;
        }
        admin
            .log(&authority.id, &authority.key, Event::MemberUpdated(update))
            .await
            .context("logging a directory record")?;
        logged += 1;
    }
    Ok(logged)
}

/// Until a signed checkpoint covers every entry stored so far, so that what
/// the first start logged is served (entries are served once checkpointed).
async fn wait_for_checkpoint(ledger: &LedgerClient, index_database: &str) -> anyhow::Result<()> {
    let store = LedgerStore::open(db::connect(&DatabaseUrl::parse(index_database)?, 1)?)?;
    let stored = store.tree_size()?;
    for _ in 0..200 {
        if ledger
            .checkpoint()
            .await
            .is_ok_and(|(checkpoint, _)| checkpoint.size >= stored)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the ledger signed no checkpoint covering its {stored} entries")
}

/// Until `follower` sees at least `members` members of the directory.
pub async fn wait_for_directory(
    follower: &DirectoryFollower,
    members: usize,
    who: &str,
) -> anyhow::Result<()> {
    for _ in 0..200 {
        follower.refresh().await.ok();
        if follower.directory().read().members().count() >= members {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{who} never saw the whole directory")
}

/// On the first start: synthetic patients with laboratory panels, split across
/// the hospitals, imported and published. Later starts read what was made.
async fn seed(
    dir: &Path,
    hospitals: &[Hospital],
    patients: usize,
    today: chrono::NaiveDate,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Seeded> {
    let marker = dir.join(SEEDED_FILE);
    if let Ok(text) = std::fs::read_to_string(&marker) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged", marker.display()));
    }
    progress(&format!(
        "making {patients} synthetic patients with laboratory panels"
    ));
    let cohort = synthetic::cohort(0x10c5, patients);
    let mut records = Vec::new();
    for (n, hospital) in hospitals.iter().enumerate() {
        let mut imported = 0;
        for bundle in synthetic::hospital_bundles(&cohort, n, hospitals.len(), today) {
            let bytes = serde_json::to_vec(&bundle)?;
            let node = &hospital.node;
            imported += import_bundle(&node.store, &node.linkage, &node.identifier_system, &bytes)
                .with_context(|| format!("importing into {}", hospital.id))?
                .inserted;
        }
        let published = hospital
            .node
            .publish_pending()
            .await
            .with_context(|| format!("publishing at {}", hospital.id))?;
        progress(&format!(
            "{}: imported {imported} records, published {published} pointers",
            hospital.id
        ));
        records.push((hospital.id.to_owned(), imported));
    }
    let seeded = Seeded {
        patients,
        records,
        cohort: cohort.summaries(),
    };
    std::fs::write(&marker, serde_json::to_string_pretty(&seeded)?)?;
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_name_the_prefix_and_the_admin_database() {
        let storage = Storage::from_url(Some(
            "postgres://u:p@db.example:5433/hospital_net?sslmode=require",
        ))
        .unwrap();
        let Storage::Postgres { admin_url, prefix } = &storage else {
            panic!("not PostgreSQL")
        };
        assert_eq!(prefix, "hospital_net");
        assert_eq!(
            admin_url,
            "postgres://u:p@db.example:5433/postgres?sslmode=require"
        );
        let Storage::Postgres { prefix, .. } =
            Storage::from_url(Some("postgres://127.0.0.1:5432/postgres")).unwrap()
        else {
            panic!("not PostgreSQL")
        };
        assert_eq!(prefix, "locus");
        let Storage::Postgres { admin_url, prefix } =
            Storage::from_url(Some("postgresql://127.0.0.1")).unwrap()
        else {
            panic!("not PostgreSQL")
        };
        assert_eq!(
            (admin_url.as_str(), prefix.as_str()),
            ("postgresql://127.0.0.1/postgres", "locus")
        );
        assert!(Storage::from_url(Some("postgres://127.0.0.1/bad-name")).is_err());
        assert!(Storage::from_url(Some("mysql://127.0.0.1/x")).is_err());
        assert!(matches!(Storage::from_url(None).unwrap(), Storage::Sqlite));
    }
}

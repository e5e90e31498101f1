//! Builds the consent service from its configuration and serves it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse};
use locus_ledger::client::{DirectoryFollower, LedgerClient};
use locus_ledger::note::NoteVerifier;
use locus_platform::access::{members_only, PeerGate};
use locus_platform::config::{authority_key, required, ConfigError};
use locus_platform::db::{self, DatabaseUrl};
use locus_platform::files::{load_linkage_key, load_or_create_signing_key};
use locus_platform::http::{json_extractors, not_found, HttpEdges};
use locus_platform::server::serve;
use locus_platform::tls::{http_client, public_acceptor, record_peer_certificate, server_acceptor};
use locus_protocol::directory::MemberStatus;
use utoipa::OpenApi as _;

use crate::acts::{Consent, InFlight, Limits};
use crate::api::{ConsentMemberApiDoc, ConsentPatientApiDoc};
use crate::config::Config;
use crate::session::SessionKeys;
use crate::store::ConsentStore;
use crate::throttle::Throttles;

const BODY_LIMIT: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    KeyFile(#[from] locus_platform::files::KeyFileError),
    #[error(transparent)]
    Tls(#[from] locus_platform::tls::TlsError),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// The consent service, bound and ready: one server for members (mutual
/// TLS), one for patients' devices.
pub struct Application {
    members: Server,
    patients: Server,
    pub member_url: String,
    pub patient_url: String,
    consent: Arc<Consent>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("member_url", &self.member_url)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub fn build(config: &Config) -> Result<Self, StartupError> {
        let member = config
            .member_id
            .parse()
            .map_err(|_| StartupError::Invalid("LOCUS_MEMBER_ID is not a member id"))?;
        let index_url = required(&config.index_url, "LOCUS_INDEX_URL is required")?;
        let verifier = NoteVerifier::from_vkey(
            required(&config.ledger_vkey, "LOCUS_LEDGER_VKEY is required")?.trim(),
        )
        .map_err(|_| StartupError::Invalid("LOCUS_LEDGER_VKEY is not a C2SP verifier key"))?;
        let authority = authority_key(&config.authority_key)?;
        let tls = config.tls()?;
        let url = DatabaseUrl::parse(&config.database_url)?;
        let store = ConsentStore::open(db::connect(&url, config.db_pool_size)?)?;
        let http = http_client(&tls, Duration::from_secs(15))?;
        let ledger = LedgerClient::new(index_url, verifier, http).with_clock(config.clock.clone());
        let consent = Arc::new(Consent {
            member,
            key: load_or_create_signing_key(&config.member_key_file)?,
            linkage: load_linkage_key(&config.linkage_key_file)?,
            store,
            directory: DirectoryFollower::new(ledger.clone(), authority),
            ledger,
            sessions: SessionKeys::generate(),
            throttles: Throttles::default(),
            in_flight: InFlight::default(),
            limits: Limits {
                enrolment_code_secs: config.enrolment_code_secs,
                max_grant_secs: config.max_grant_secs,
                max_emergency_secs: config.max_emergency_secs,
            },
            clock: config.clock.clone(),
        });

        let data = web::Data::new(Arc::clone(&consent));
        let members_listener = TcpListener::bind(config.listen)?;
        let member_port = members_listener.local_addr()?.port();
        let d = data.clone();
        // Signed by the consortium CA is not membership: every route of the
        // members' listener is for active members only.
        let gate = PeerGate::new({
            let consent = Arc::clone(&consent);
            move |peer| {
                consent
                    .directory
                    .directory()
                    .read()
                    .by_certificate(peer)
                    .is_some_and(|m| m.status == MemberStatus::Active)
            }
        });
        let members_app = move || {
            App::new()
                .wrap(from_fn(members_only))
                .app_data(gate.clone())
                .app_data(d.clone())
                .service(web::resource("/healthz").route(web::get().to(healthz)))
                .service(web::resource("/openapi.json").route(web::get().to(member_openapi)))
                .configure(|cfg| json_extractors(cfg, BODY_LIMIT))
                .configure(crate::api::configure_members)
                .default_service(web::to(not_found))
                .wrap(HttpEdges)
        };
        let members = serve(
            members_app,
            members_listener,
            Some(server_acceptor(&tls)?),
            Some(record_peer_certificate),
        )?;

        let patients_listener = TcpListener::bind(config.patient_listen)?;
        let patient_port = patients_listener.local_addr()?.port();
        let patients_app = move || {
            App::new()
                .app_data(data.clone())
                .service(web::resource("/healthz").route(web::get().to(healthz)))
                .service(web::resource("/openapi.json").route(web::get().to(patient_openapi)))
                .configure(|cfg| json_extractors(cfg, BODY_LIMIT))
                .configure(crate::api::configure_patients)
                .default_service(web::to(not_found))
                .wrap(HttpEdges)
        };
        // Patients' devices present no certificate: nothing to record.
        let patients = serve(
            patients_app,
            patients_listener,
            Some(public_acceptor(&tls)?),
            None,
        )?;
        Ok(Self {
            members,
            patients,
            member_url: format!("https://{}:{member_port}", config.listen.ip()),
            patient_url: format!("https://{}:{patient_port}", config.patient_listen.ip()),
            consent,
        })
    }

    pub fn consent(&self) -> Arc<Consent> {
        Arc::clone(&self.consent)
    }

    pub fn handles(&self) -> [actix_web::dev::ServerHandle; 2] {
        [self.members.handle(), self.patients.handle()]
    }

    /// Serves both APIs, follows the directory and finishes acts left over
    /// (by a restart, or while the ledger was away) until stopped.
    pub async fn run_until_stopped(self, refresh: Duration) -> std::io::Result<()> {
        let follower = Arc::clone(&self.consent);
        let directory = actix_web::rt::spawn(async move {
            loop {
                if let Err(e) = follower.directory.refresh().await {
                    tracing::warn!(error = %e, "directory not refreshed");
                }
                actix_web::rt::time::sleep(refresh).await;
            }
        });
        let finisher = Arc::clone(&self.consent);
        let acts = actix_web::rt::spawn(async move {
            loop {
                match finisher.finish_pending().await {
                    Ok(0) => {}
                    Ok(left) => tracing::warn!(left, "acts wait for the ledger"),
                    Err(e) => tracing::warn!(error = %e, "acts left over not finished"),
                }
                actix_web::rt::time::sleep(ACT_RETRY).await;
            }
        });
        let result = futures::future::try_join(self.members, self.patients)
            .await
            .map(drop);
        directory.abort();
        acts.abort();
        result
    }
}

/// How often acts left over are tried again.
const ACT_RETRY: Duration = Duration::from_secs(2);

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The members' listener documents only the members' API.
async fn member_openapi() -> HttpResponse {
    let mut doc = ConsentMemberApiDoc::openapi();
    doc.info.title = "Locus consent service: members' API".into();
    doc.info.description = Some(
        "Hospitals, over mutual TLS: enrolment codes for patients' phones, access requests and their grants, emergency access, grants as FHIR Consent.".into(),
    );
    HttpResponse::Ok().json(doc)
}

/// The patients' listener documents only the patients' API.
async fn patient_openapi() -> HttpResponse {
    let mut doc = ConsentPatientApiDoc::openapi();
    doc.info.title = "Locus consent service: patients' API".into();
    doc.info.description = Some(
        "Patients' devices: enrol with a code, sign in with the device key, then decide requests, revoke grants, sign standing rules and read grants and history.".into(),
    );
    HttpResponse::Ok().json(doc)
}

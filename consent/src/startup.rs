//! Builds the consent service from its configuration and serves it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse};
use locus_ledger::follower_settings;
use locus_ledger::startup::follow;
use locus_platform::access::{members_only, PeerGate};
use locus_platform::files::{load_linkage_key, load_or_create_signing_key};
use locus_platform::http::{healthz, json_extractors, not_found, HttpEdges};
use locus_platform::launch::{member_id, Launch, StartupError};
use locus_platform::openapi::document;
use locus_platform::server::{serve, Serving};
use locus_platform::tls::{public_acceptor, record_peer_certificate, server_acceptor};
use locus_protocol::directory::MemberStatus;
use serde_json::{json, Value};
use utoipa::OpenApi as _;

use crate::acts::{Consent, InFlight, Limits};
use crate::api::{
    configure_members, configure_patients, ConsentMemberApiDoc, ConsentPatientApiDoc,
};
use crate::config::Config;
use crate::session::SessionKeys;
use crate::store::ConsentStore;
use crate::throttle::Throttles;

const BODY_LIMIT: usize = 16 * 1024;

/// The consent service, bound and ready: one server for members (mutual
/// TLS), one for patients' devices.
#[derive(Debug)]
pub struct Application {
    members: Serving,
    patients: Serving,
    pub member_url: String,
    pub patient_url: String,
    consent: Arc<Consent>,
}

impl Launch for Application {
    const SERVICE: &'static str = "consent";
    type Config = Config;
    type Error = StartupError;

    fn build(config: &Config) -> Result<Self, StartupError> {
        let member = member_id(&config.member_id)?;
        let followed = follow(follower_settings!(config), ConsentStore::open)?;
        let tls = followed.tls;
        let consent = Arc::new(Consent {
            member,
            key: load_or_create_signing_key(&config.member_key_file)?,
            linkage: load_linkage_key(&config.linkage_key_file)?,
            store: followed.store,
            directory: followed.directory,
            ledger: followed.ledger,
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
        let members = serve(
            move || {
                App::new()
                    .wrap(from_fn(members_only))
                    .app_data(gate.clone())
                    .configure(listener_routes(
                        d.clone(),
                        member_openapi,
                        configure_members,
                    ))
                    .wrap(HttpEdges)
            },
            members_listener,
            Some(server_acceptor(&tls)?),
            Some(record_peer_certificate),
        )?;

        let patients_listener = TcpListener::bind(config.patient_listen)?;
        let patient_port = patients_listener.local_addr()?.port();
        // Patients' devices present no certificate: nothing to record.
        let patients = serve(
            move || {
                App::new()
                    .configure(listener_routes(
                        data.clone(),
                        patient_openapi,
                        configure_patients,
                    ))
                    .wrap(HttpEdges)
            },
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

    fn ready(&self) -> Value {
        json!({ "url": self.member_url, "patient_url": self.patient_url })
    }

    async fn run(self, _: &Config) -> std::io::Result<()> {
        self.run_until_stopped(DIRECTORY_REFRESH).await
    }
}

impl Application {
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

/// How often the running service re-reads the directory from the ledger.
const DIRECTORY_REFRESH: Duration = Duration::from_millis(500);

/// How often acts left over are tried again.
const ACT_RETRY: Duration = Duration::from_secs(2);

/// What both listeners serve around their own API: the service's state,
/// health, the API's document, JSON extractor errors, and 404 or 405 for
/// anything else.
fn listener_routes<H>(
    consent: web::Data<Arc<Consent>>,
    openapi: H,
    api: fn(&mut web::ServiceConfig),
) -> impl FnOnce(&mut web::ServiceConfig)
where
    H: actix_web::Handler<()>,
    H::Output: actix_web::Responder + 'static,
{
    move |cfg| {
        cfg.app_data(consent)
            .service(web::resource("/healthz").route(web::get().to(healthz)))
            .service(web::resource("/openapi.json").route(web::get().to(openapi)));
        json_extractors(cfg, BODY_LIMIT);
        api(cfg);
        cfg.default_service(web::to(not_found));
    }
}

/// The members' listener documents only the members' API.
async fn member_openapi() -> HttpResponse {
    document(
        ConsentMemberApiDoc::openapi(),
        "Locus consent service: members' API",
        Some("Hospitals, over mutual TLS: enrolment codes for patients' phones, access requests and their grants, emergency access, grants as FHIR Consent."),
    )
}

/// The patients' listener documents only the patients' API.
async fn patient_openapi() -> HttpResponse {
    document(
        ConsentPatientApiDoc::openapi(),
        "Locus consent service: patients' API",
        Some("Patients' devices: enrol with a code, sign in with the device key, then decide requests, revoke grants, sign standing rules and read grants and history."),
    )
}

//! Builds the service from its configuration and serves it.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::{from_fn, Condition, Next};
use actix_web::{web, App, HttpResponse};
use locus_ledger::api::{LedgerApiDoc, LedgerState};
use locus_ledger::directory::LedgerDirectory;
use locus_ledger::metrics::LedgerMetrics;
use locus_ledger::note::NoteSigner;
use locus_ledger::sequencer::{Sequencer, SequencerConfig, MAX_ENTRY_BYTES};
use locus_ledger::store::LedgerStore;
use locus_platform::access::{members_only, PeerGate};
use locus_platform::db::{self, DatabaseUrl};
use locus_platform::files::{load_or_create_signing_key, write_secret_file};
use locus_platform::http::{healthz, json_extractors, not_found, HttpEdges};
use locus_platform::launch::Launch;
use locus_platform::openapi::document;
use locus_platform::server::{serve, Serving};
use locus_platform::tls::{record_peer_certificate, server_acceptor};
use locus_protocol::ids::MemberId;
use prometheus::{Encoder as _, Registry, TextEncoder};
use serde_json::{json, Value};
use utoipa::OpenApi as _;

use crate::api::{IndexApiDoc, IndexState};
use crate::config::Config;
use crate::pointers::PointerStore;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Store(#[from] locus_ledger::store::StoreError),
    #[error(transparent)]
    Pointers(#[from] crate::pointers::PointerError),
    #[error("the ledger refuses to start: {0}")]
    Guard(#[from] locus_ledger::sequencer::GuardError),
    #[error(transparent)]
    KeyFile(#[from] locus_platform::files::KeyFileError),
    #[error("the key file {path}: {message}")]
    Key { path: String, message: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] locus_platform::tls::TlsError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// A built, bound, not yet running service.
#[derive(Debug)]
pub struct Application {
    server: Serving,
    port: u16,
    url: String,
    vkey: String,
    sequencer_thread: JoinHandle<()>,
}

impl Launch for Application {
    const SERVICE: &'static str = "index-service";
    type Config = Config;
    type Error = StartupError;

    fn build(config: &Config) -> Result<Self, StartupError> {
        let url = DatabaseUrl::parse(&config.database_url)?;
        let pool = db::connect(&url, config.db_pool_size)?;
        let store = LedgerStore::open(pool.clone())?;
        let pointers = PointerStore::open(pool)?;
        tracing::info!(database = %url, "storage ready");

        let signer = load_or_create_signer(&config.ledger_key_file, &config.ledger_origin)?;
        let vkey = signer.verifier().to_vkey();
        let authority = locus_platform::config::authority_key(&config.authority_key)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let authority_certificate = config
            .authority_certificate()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let directory = Arc::new(
            LedgerDirectory::new(authority).with_authority_certificate(authority_certificate),
        );
        // Over TLS, every route is for the consortium: signed by its CA is not
        // enough, the certificate must be an active member's or the authority's.
        let gate = PeerGate::new({
            let directory = Arc::clone(&directory);
            move |peer| directory.peer(peer).is_some()
        });
        let member: MemberId = config
            .member_id
            .parse()
            .map_err(|_| StartupError::Config("LOCUS_MEMBER_ID is not a member id".into()))?;
        let member_key = load_or_create_signing_key(&config.member_key_file)?;

        let registry = Registry::new();
        let metrics = LedgerMetrics::register(&registry)?;
        let mut sequencer_config = SequencerConfig::new(config.ledger_origin.clone());
        sequencer_config.checkpoint_interval = config.checkpoint_interval();
        sequencer_config.max_batch = config.max_batch.max(1);
        sequencer_config.clock = config.clock.clone();
        let (sequencer, sequencer_thread) = Sequencer::start(
            store.clone(),
            signer,
            Arc::clone(&directory),
            metrics,
            sequencer_config,
        )?;

        let ledger_state = web::Data::new(LedgerState {
            store: store.clone(),
            sequencer: sequencer.clone(),
            vkey: vkey.clone(),
        });
        let index_state = web::Data::new(IndexState {
            pointers,
            ledger: store,
            sequencer,
            directory,
            member,
            key: Arc::new(member_key),
        });
        let registry = web::Data::new(registry);
        let tls = config
            .tls_files()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        if tls.is_some() && config.authority_certificate.is_none() {
            tracing::warn!(
                "LOCUS_AUTHORITY_CERTIFICATE is not set: the authority cannot reach the ledger over TLS"
            );
        }
        let members_only_gate = tls.is_some();
        let listener = TcpListener::bind(config.listen)?;
        let port = listener.local_addr()?.port();
        let app = move || {
            App::new()
                .wrap(Condition::new(
                    members_only_gate,
                    from_fn(members_only_but_the_index),
                ))
                .wrap(access_log())
                .app_data(gate.clone())
                .app_data(ledger_state.clone())
                .app_data(index_state.clone())
                .app_data(registry.clone())
                .service(web::resource("/healthz").route(web::get().to(healthz)))
                .service(web::resource("/readyz").route(web::get().to(readyz)))
                .service(web::resource("/metrics").route(web::get().to(metrics_text)))
                .service(web::resource("/openapi.json").route(web::get().to(openapi)))
                .configure(|cfg| json_extractors(cfg, MAX_ENTRY_BYTES))
                .configure(locus_ledger::api::configure)
                .configure(crate::api::configure)
                .default_service(web::to(not_found))
                // Outermost, so every error response it sees has the JSON body.
                .wrap(HttpEdges)
        };
        let (acceptor, scheme) = match &tls {
            Some(files) => (Some(server_acceptor(files)?), "https"),
            None => (None, "http"),
        };
        let server = serve(app, listener, acceptor, Some(record_peer_certificate))?;
        Ok(Self {
            server,
            port,
            url: format!("{scheme}://{}:{port}", config.listen.ip()),
            vkey,
            sequencer_thread,
        })
    }

    fn ready(&self) -> Value {
        json!({ "url": self.url, "ledger_vkey": self.vkey })
    }

    async fn run(self, _: &Config) -> std::io::Result<()> {
        self.run_until_stopped().await
    }
}

impl Application {
    /// Where the service answers, e.g. `https://127.0.0.1:7300`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ledger's verifier key (C2SP vkey).
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// Serves until SIGINT/SIGTERM (or the handle stops it), then lets the
    /// sequencer sign a last checkpoint over everything it committed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let thread = self.sequencer_thread;
        // Workers have dropped their sequencer handles; the writer is finishing.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        result
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Over TLS, every route but the index's answers only the authority and active
/// members ([`members_only`]). The index's routes map the peer to an active
/// member themselves (a hospital to publish, a grant holder to discover) and
/// refuse with 403 too, but log the refusals of members they know, so a
/// suspended hospital's discovery attempt is on the ledger.
async fn members_only_but_the_index<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let index_route = req
        .request()
        .match_pattern()
        .is_some_and(|route| route.starts_with("/index/"));
    if index_route {
        next.call(req)
            .await
            .map(ServiceResponse::map_into_left_body)
    } else {
        members_only(req, next).await
    }
}

fn access_log() -> actix_web::middleware::Logger {
    // Path and status only: query strings are kept out of logs.
    actix_web::middleware::Logger::new("%U %s %Dms").exclude("/healthz")
}

fn load_or_create_signer(path: &Path, origin: &str) -> Result<NoteSigner, StartupError> {
    let key_error = |message: String| StartupError::Key {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer =
                NoteSigner::from_skey(text.trim()).map_err(|e| key_error(e.to_string()))?;
            if signer.verifier().name() != origin {
                return Err(key_error(format!(
                    "the key is named {:?} but the ledger origin is {origin:?}",
                    signer.verifier().name()
                )));
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = NoteSigner::generate(origin).map_err(|e| key_error(e.to_string()))?;
            write_secret_file(path, format!("{}\n", signer.to_skey().as_str()).as_bytes())
                .map_err(|e| key_error(e.to_string()))?;
            tracing::info!(path = %path.display(), "created a new ledger signing key");
            Ok(signer)
        }
        Err(e) => Err(key_error(e.to_string())),
    }
}

/// Ready when the database answers and the sequencer is accepting entries.
async fn readyz(state: web::Data<LedgerState>) -> HttpResponse {
    if let Some(reason) = state.sequencer.halted() {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "halted", "reason": reason}));
    }
    let store = state.store.clone();
    let db_ok = web::block(move || store.tree_size().is_ok())
        .await
        .unwrap_or(false);
    if db_ok && state.sequencer.published().is_some() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "database unavailable"}))
    }
}

async fn metrics_text(registry: web::Data<Registry>) -> HttpResponse {
    let mut buffer = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        Ok(()) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4"))
            .body(buffer),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}

async fn openapi() -> HttpResponse {
    let mut doc = LedgerApiDoc::openapi();
    doc.merge(IndexApiDoc::openapi());
    document(
        doc,
        "Locus index service",
        Some("The hashed index of sealed pointers, and the Locus ledger: C2SP tlog-tiles reads, RFC 9162 proofs, signed entry submission and queries."),
    )
}

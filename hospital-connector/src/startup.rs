//! Builds a connector from its configuration and serves it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse};
use locus_index_service::client::IndexClient;
use locus_ledger::follower_settings;
use locus_ledger::startup::follow;
use locus_platform::config::required;
use locus_platform::files::{
    load_linkage_key, load_or_create_signing_key, load_or_create_x25519_key,
};
use locus_platform::http::{
    healthz, json_config, json_error, json_extractors, not_found, HttpEdges,
};
use locus_platform::launch::{member_id, Launch, StartupError};
use locus_platform::openapi::document;
use locus_platform::server::{serve, Serving};
use locus_platform::tls::{record_peer_certificate, server_acceptor};
use locus_protocol::ids::HospitalId;
use serde_json::{json, Value};
use utoipa::OpenApi as _;

use crate::config::Config;
use crate::node::Node;
use crate::records::RecordStore;

/// Bodies outside the routes that bound their own: none of them takes one.
const DEFAULT_BODY_LIMIT: usize = 0;

/// A connector, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    server: Serving,
    port: u16,
    url: String,
    node: Arc<Node>,
}

impl Launch for Application {
    const SERVICE: &'static str = "hospital-connector";
    type Config = Config;
    type Error = StartupError;

    fn build(config: &Config) -> Result<Self, StartupError> {
        let member = member_id(required(&config.member_id, "LOCUS_MEMBER_ID is required")?)?;
        let hospital: HospitalId = member
            .as_str()
            .parse()
            .map_err(|_| StartupError::Invalid("LOCUS_MEMBER_ID is not a hospital id"))?;
        let clock = config.clock.clone();
        let followed = follow(follower_settings!(config), |pool| {
            RecordStore::open(pool).map(|store| store.with_clock(clock))
        })?;
        let tls = followed.tls;
        let node = Arc::new(Node {
            hospital,
            member,
            key: load_or_create_signing_key(&config.member_key_file)?,
            x25519: load_or_create_x25519_key(&config.x25519_key_file)?,
            linkage: load_linkage_key(&config.linkage_key_file)?,
            identifier_system: config.identifier_system.clone(),
            store: followed.store,
            index: IndexClient::new(&followed.index_url, followed.http.clone()),
            directory: followed.directory,
            ledger: followed.ledger,
            http: followed.http,
            clock: config.clock.clone(),
        });

        let listener = TcpListener::bind(config.listen)?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(Arc::clone(&node));
        let app = move || {
            App::new()
                .app_data(data.clone())
                .configure(|cfg| json_extractors(cfg, DEFAULT_BODY_LIMIT))
                .service(
                    web::resource("/healthz")
                        .route(web::get().to(healthz))
                        .default_service(web::to(|| method_not_allowed("GET"))),
                )
                .service(
                    web::resource("/openapi.json")
                        .route(web::get().to(openapi))
                        .default_service(web::to(|| method_not_allowed("GET"))),
                )
                .service(
                    web::resource("/connector/retrieve")
                        .app_data(json_config(crate::retrieve::BODY_LIMIT))
                        .app_data(web::PayloadConfig::default().limit(crate::retrieve::BODY_LIMIT))
                        .route(web::post().to(crate::retrieve::retrieve))
                        .default_service(web::to(|| method_not_allowed("POST"))),
                )
                .default_service(web::to(not_found))
                // Outermost: limits on the request head, and a JSON body on
                // every error response, also those raised by actix itself.
                .wrap(HttpEdges)
        };
        let server = serve(
            app,
            listener,
            Some(server_acceptor(&tls)?),
            Some(record_peer_certificate),
        )?;
        Ok(Self {
            server,
            port,
            url: format!("https://{}:{port}", config.listen.ip()),
            node,
        })
    }

    fn ready(&self) -> Value {
        json!({ "url": self.url })
    }

    async fn run(self, config: &Config) -> std::io::Result<()> {
        self.run_until_stopped(config).await
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the connector answers retrievals.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn node(&self) -> Arc<Node> {
        Arc::clone(&self.node)
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves, follows the directory, publishes new records and witnesses the
    /// ledger, until stopped.
    pub async fn run_until_stopped(self, config: &Config) -> std::io::Result<()> {
        let directory = every(&self.node, config.directory_refresh(), |node| async move {
            if let Err(e) = node.directory.refresh().await {
                tracing::warn!(error = %e, "directory not refreshed");
            }
        });
        let publishing = every(&self.node, config.publish_interval(), |node| async move {
            match node.publish_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "published"),
                Err(e) => tracing::warn!(error = %e, "publishing will be retried"),
            }
        });
        let witnessing = every(&self.node, config.witness_interval(), |node| async move {
            match node.witness_once().await {
                Ok(crate::witness::Witnessed::Cosigned(size)) => {
                    tracing::debug!(size, "checkpoint cosigned")
                }
                Ok(crate::witness::Witnessed::AlreadyCosigned(_)) => {}
                Err(
                    e @ (crate::witness::WitnessError::Conflict { .. }
                    | crate::witness::WitnessError::Stopped),
                ) => {
                    tracing::error!(error = %e, "the ledger's history is not append-only");
                }
                Err(e) => tracing::warn!(error = %e, "witnessing will be retried"),
            }
        });
        let result = self.server.await;
        directory.abort();
        publishing.abort();
        witnessing.abort();
        result
    }
}

/// Runs `step` on the node every `interval`, in the background until aborted.
fn every<F, Fut>(
    node: &Arc<Node>,
    interval: std::time::Duration,
    step: F,
) -> actix_web::rt::task::JoinHandle<()>
where
    F: Fn(Arc<Node>) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let node = Arc::clone(node);
    actix_web::rt::spawn(async move {
        loop {
            step(Arc::clone(&node)).await;
            actix_web::rt::time::sleep(interval).await;
        }
    })
}

/// A known route asked with another method: 405, with the same JSON error as
/// every other refusal.
async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = json_error(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this route answers {allow} only"),
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}

async fn openapi() -> HttpResponse {
    document(ConnectorApiDoc::openapi(), "Locus hospital connector", None)
}

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(crate::retrieve::retrieve),
    components(schemas(crate::retrieve::RetrieveRequest, crate::retrieve::RetrieveResponse, locus_platform::http::ErrorBody)),
    tags((name = "connector", description = "Retrieval of this hospital's records under a grant (mutual TLS)"))
)]
pub struct ConnectorApiDoc;

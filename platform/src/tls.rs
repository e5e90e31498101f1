//! Mutual TLS between nodes: every connection presents a certificate from the
//! consortium CA, in both directions.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::{Extensions, Payload};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};
use locus_protocol::grant::Confirmation;
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509Name;
use serde::Deserialize;

use crate::http::JsonError;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS set-up failed: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS client set-up failed: {0}")]
    Client(#[from] reqwest::Error),
}

/// A node's TLS material, all PEM: the consortium CA, its certificate, its key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.clone(),
        source,
    })
}

/// Server side: TLS 1.2+ with a client certificate from the consortium CA
/// required on every connection.
pub fn server_acceptor(files: &TlsFiles) -> Result<SslAcceptorBuilder, TlsError> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_certificate_chain_file(&files.cert)?;
    builder.set_private_key_file(&files.key, SslFiletype::PEM)?;
    builder.check_private_key()?;
    builder.set_ca_file(&files.ca_cert)?;
    builder.set_client_ca_list(X509Name::load_client_ca_file(&files.ca_cert)?);
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    Ok(builder)
}

/// Server side for the public (patients' devices): TLS 1.2+ with this node's
/// certificate, no client certificate asked for.
pub fn public_acceptor(files: &TlsFiles) -> Result<SslAcceptorBuilder, TlsError> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_certificate_chain_file(&files.cert)?;
    builder.set_private_key_file(&files.key, SslFiletype::PEM)?;
    builder.check_private_key()?;
    Ok(builder)
}

/// Client side: trusts only the consortium CA and presents the node's own
/// certificate.
/// How long a client keeps an idle connection for reuse: below the servers'
/// 5-second keep-alive, so that a client never sends a request on a connection
/// the server is closing at that moment (which would fail it without an answer).
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(2);

pub fn http_client(files: &TlsFiles, timeout: Duration) -> Result<reqwest::Client, TlsError> {
    let ca = reqwest::Certificate::from_pem(&read(&files.ca_cert)?)?;
    let identity = reqwest::Identity::from_pkcs8_pem(&read(&files.cert)?, &read(&files.key)?)?;
    Ok(reqwest::Client::builder()
        .use_native_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(identity)
        .timeout(timeout)
        .pool_idle_timeout(CLIENT_POOL_IDLE)
        .build()?)
}

/// The certificate the peer presented on this request's connection, already
/// verified against the consortium CA by the TLS handshake.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    pub der: Vec<u8>,
    /// RFC 8705 `x5t#S256`: what grants are bound to and the directory pins.
    pub thumbprint: Confirmation,
}

/// `HttpServer::on_connect` hook that records the peer's certificate.
pub fn record_peer_certificate(conn: &dyn std::any::Any, ext: &mut Extensions) {
    type Stream = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(stream) = conn.downcast_ref::<Stream>() else {
        return;
    };
    if let Some(der) = stream
        .ssl()
        .peer_certificate()
        .and_then(|c| c.to_der().ok())
    {
        ext.insert(PeerCertificate {
            thumbprint: Confirmation::for_certificate_der(&der),
            der,
        });
    }
}

impl FromRequest for PeerCertificate {
    type Error = JsonError;
    type Future = std::future::Ready<Result<Self, JsonError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(req.conn_data::<PeerCertificate>().cloned().ok_or_else(|| {
            JsonError::new(
                StatusCode::UNAUTHORIZED,
                "client_certificate_required",
                "this endpoint requires mutual TLS with a consortium certificate",
            )
        }))
    }
}

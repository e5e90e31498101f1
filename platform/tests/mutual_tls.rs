//! A server behind `server_acceptor` serves only clients holding a certificate
//! from the same consortium CA, and handlers see which certificate it was.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use locus_platform::pki::CertificateAuthority;

mod common;
use common::{write, Consortium};
use locus_platform::tls::{
    http_client, record_peer_certificate, server_acceptor, PeerCertificate, TlsFiles,
};

async fn whoami(peer: PeerCertificate) -> HttpResponse {
    HttpResponse::Ok().body(peer.thumbprint.x5t_s256.clone())
}

#[actix_web::test]
async fn only_consortium_certificates_get_through() {
    let dir = tempfile::tempdir().unwrap();
    let consortium = Consortium::new(dir.path());
    let Consortium {
        server,
        client: client_files,
        ..
    } = &consortium;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = server_acceptor(server).unwrap();
    let http = HttpServer::new(|| App::new().route("/whoami", web::get().to(whoami)))
        .on_connect(record_peer_certificate)
        .listen_openssl(listener, acceptor)
        .unwrap()
        .run();
    let handle = http.handle();
    actix_web::rt::spawn(http);
    let url = format!("https://127.0.0.1:{port}/whoami");

    // A consortium member: the handler sees its certificate's thumbprint.
    consortium.assert_member_seen(&url).await;

    // No client certificate: the handshake fails.
    let ca_only = reqwest::Client::builder()
        .use_native_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&server.ca_cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    assert!(ca_only.get(&url).send().await.is_err());

    // A certificate from another CA: refused too.
    let rogue_ca = CertificateAuthority::create("Rogue CA").unwrap();
    let rogue = write(
        dir.path(),
        "rogue",
        &rogue_ca,
        &rogue_ca.issue("hospital-a", &["localhost"]).unwrap(),
    );
    let rogue_files = TlsFiles {
        ca_cert: client_files.ca_cert.clone(),
        ..rogue
    };
    let rogue_client = http_client(&rogue_files, Duration::from_secs(5)).unwrap();
    assert!(rogue_client.get(&url).send().await.is_err());

    // And the client refuses a server outside the consortium.
    let impostor = write(
        dir.path(),
        "impostor",
        &rogue_ca,
        &rogue_ca.issue("index", &["127.0.0.1"]).unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let impostor_port = listener.local_addr().unwrap().port();
    let impostor_files = TlsFiles {
        ca_cert: server.ca_cert.clone(),
        ..impostor
    };
    let fake = HttpServer::new(|| App::new().route("/whoami", web::get().to(whoami)))
        .listen_openssl(listener, server_acceptor(&impostor_files).unwrap())
        .unwrap()
        .run();
    let fake_handle = fake.handle();
    actix_web::rt::spawn(fake);
    let client = http_client(client_files, Duration::from_secs(5)).unwrap();
    assert!(client
        .get(format!("https://127.0.0.1:{impostor_port}/whoami"))
        .send()
        .await
        .is_err());

    handle.stop(true).await;
    fake_handle.stop(true).await;
}

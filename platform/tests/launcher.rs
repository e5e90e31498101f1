//! The launcher every listener is built with: the HTTP/1 codec's own
//! refusals (sent before any middleware runs) carry the JSON error body, on
//! plain HTTP and over mutual TLS, and handlers still see the peer's
//! certificate.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse};
use locus_platform::http::{not_found, HttpEdges};

mod common;
use common::Consortium;
use locus_platform::server::serve;
use locus_platform::tls::{record_peer_certificate, server_acceptor, PeerCertificate, TlsFiles};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use serde_json::Value;

async fn whoami(peer: Option<PeerCertificate>) -> HttpResponse {
    match peer {
        Some(peer) => HttpResponse::Ok().body(peer.thumbprint.x5t_s256.clone()),
        None => HttpResponse::Ok().body("nobody"),
    }
}

fn app() -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .service(web::resource("/whoami").route(web::get().to(whoami)))
        .default_service(web::to(not_found))
        .wrap(HttpEdges)
}

/// The three requests actix-http's codec refuses itself, with the status and
/// code each must come back with.
fn malformed(host: &str) -> Vec<(&'static str, String, u16, &'static str)> {
    let many = (0..200)
        .map(|n| format!("X-H{n}: {n}\r\n"))
        .collect::<String>();
    vec![
        (
            "200 header fields",
            format!("GET /whoami HTTP/1.1\r\nHost: {host}\r\n{many}Connection: close\r\n\r\n"),
            431,
            "headers_too_large",
        ),
        (
            "a control byte in a header",
            format!("GET /whoami HTTP/1.1\r\nHost: {host}\r\nX-Bad: a\u{1}b\r\n\r\n"),
            400,
            "bad_request",
        ),
        (
            "Content-Length with Transfer-Encoding",
            format!(
                "POST /whoami HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
            ),
            400,
            "bad_request",
        ),
    ]
}

/// Writes `request`, reads until the server closes (or stops answering).
fn exchange<S: Read + Write>(mut stream: S, request: &[u8]) -> Vec<u8> {
    let _ = stream.write_all(request);
    let _ = stream.flush();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    answer
}

/// Status, lower-cased headers and body of one HTTP/1.1 response.
fn parse(answer: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let text = String::from_utf8_lossy(answer);
    let at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {text:?}"));
    let head = std::str::from_utf8(&answer[..at]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    (status, headers, answer[at + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The answer is `status` with a JSON error body coded `code`, and a
/// `Content-Length` that is the body's.
fn assert_json_error(case: &str, answer: &[u8], status: u16, code: &str) {
    let (got, headers, body) = parse(answer);
    let text = String::from_utf8_lossy(answer);
    assert_eq!(got, status, "{case}: {text}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/json"),
        "{case}: {text}"
    );
    assert_eq!(
        header(&headers, "content-length"),
        Some(body.len().to_string().as_str()),
        "{case}: {text}"
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], code, "{case}: {body}");
    assert!(
        !body["message"].as_str().unwrap().is_empty(),
        "{case}: {body}"
    );
}

fn start(tls: Option<&TlsFiles>) -> (String, ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = serve(
        app,
        listener,
        tls.map(|files| server_acceptor(files).unwrap()),
        Some(record_peer_certificate),
    )
    .unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle)
}

#[actix_web::test]
async fn the_codecs_refusals_are_json_on_plain_http() {
    let (addr, handle) = start(None);
    let answers = {
        let addr = addr.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let tcp = |addr: &str| {
                let tcp = TcpStream::connect(addr).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                tcp
            };
            let refused: Vec<_> = malformed(&addr)
                .into_iter()
                .map(|(case, request, status, code)| {
                    (case, exchange(tcp(&addr), request.as_bytes()), status, code)
                })
                .collect();
            // What the app answers itself passes untouched: a success, a
            // JSON 404, and a HEAD's 404, whose body is left out.
            let ok = exchange(
                tcp(&addr),
                format!("GET /whoami HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let missing = exchange(
                tcp(&addr),
                format!("GET /nowhere HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let head = exchange(
                tcp(&addr),
                format!("HEAD /nowhere HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            (refused, ok, missing, head)
        })
        .await
        .unwrap()
    };
    let (refused, ok, missing, head) = answers;
    for (case, answer, status, code) in refused {
        assert_json_error(case, &answer, status, code);
    }
    let (status, _, body) = parse(&ok);
    assert_eq!((status, body.as_slice()), (200, &b"nobody"[..]));
    assert_json_error("an unknown path", &missing, 404, "not_found");
    let (status, headers, body) = parse(&head);
    assert_eq!(status, 404);
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&head));
    assert_ne!(header(&headers, "content-length"), Some("0"));
    handle.stop(true).await;
}

#[actix_web::test]
async fn over_mutual_tls_the_refusals_are_json_and_the_peer_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let consortium = Consortium::new(dir.path());
    let (addr, handle) = start(Some(&consortium.server));

    // The connection hook sees the TLS stream under the launcher's wrapper.
    consortium
        .assert_member_seen(&format!("https://{addr}/whoami"))
        .await;
    let client = consortium.client;

    let refused = actix_web::rt::task::spawn_blocking(move || {
        let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
        builder.set_ca_file(&client.ca_cert).unwrap();
        builder.set_certificate_chain_file(&client.cert).unwrap();
        builder
            .set_private_key_file(&client.key, SslFiletype::PEM)
            .unwrap();
        builder.set_verify(SslVerifyMode::PEER);
        let connector = builder.build();
        malformed(&addr)
            .into_iter()
            .map(|(case, request, status, code)| {
                let tcp = TcpStream::connect(&addr).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let tls = connector.connect("127.0.0.1", tcp).unwrap();
                (case, exchange(tls, request.as_bytes()), status, code)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (case, answer, status, code) in refused {
        assert_json_error(case, &answer, status, code);
    }
    handle.stop(true).await;
}

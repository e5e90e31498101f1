//! The edges of HTTP, as a raw client sees them: bytes written by hand to a
//! socket. Every error the service answers carries the JSON error body; a
//! wrong method is a 405 with `Allow`. What actix-http's codec answers
//! before the service runs (a 400 or 431, then the connection closed) has
//! it too, from the connection `locus_platform::server::serve` gives it.
//! Nothing refused reaches the ledger.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use locus_tests::index::TestMember;
use locus_tests::{both_backends, TestDb};

mod common;
use common::{cases, start_admitted, state};

both_backends!(http_errors_are_json_and_change_nothing);

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    /// Asserts the JSON error body `{"error": code, "message": ...}`.
    fn json_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{self:?}");
        let content_type = self
            .headers
            .get("content-type")
            .map(String::as_str)
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{code}: {self:?}"
        );
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(body["error"], code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
        self
    }
}

/// Writes `request` to the service and reads the whole answer; the request
/// asks for the connection to close, so the answer ends at EOF.
async fn raw(port: u16, request: Vec<u8>) -> Answer {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(&request).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        parse(&bytes)
    })
    .await
    .unwrap()
}

fn parse(bytes: &[u8]) -> Answer {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|te| te == "chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[line + 2..line + 2 + size]);
        rest = &rest[line + 4 + size..];
    }
}

/// `method target` with `headers` and `body`, closing the connection after.
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n")
        .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

async fn http_errors_are_json_and_change_nothing(db: TestDb) {
    let authority = TestMember::authority();
    let member = TestMember::new("hospital-a");
    let service = start_admitted(&db, &authority, &[&member]).await;
    let client = &service.client;
    let port: u16 = client.base.rsplit(':').next().unwrap().parse().unwrap();
    client.checkpoint_at_least(1).await;
    let before = state(client).await;
    let entry = member.retrieval();
    let json = [("content-type", "application/json")];

    // A wrong method on a known path: 405, the methods it takes, JSON.
    for [method, path, allow] in cases(include_str!("http_edges_cases/wrong_methods.txt")) {
        let answer = raw(port, request(method, path, &[], b"")).await;
        answer.json_error(405, "method_not_allowed");
        let allow_header = answer
            .headers
            .get("allow")
            .unwrap_or_else(|| panic!("no Allow for {method} {path}"));
        let mut allowed: Vec<&str> = allow_header.split(',').map(str::trim).collect();
        allowed.sort_unstable();
        let mut expected: Vec<&str> = allow.split(", ").collect();
        expected.sort_unstable();
        assert_eq!(allowed, expected, "{method} {path}");
    }

    // An unknown path, and a path parameter that names nothing.
    raw(port, request("GET", "/no/such/route", &[], b""))
        .await
        .json_error(404, "not_found");
    raw(port, request("DELETE", "/no/such/route", &[], b""))
        .await
        .json_error(404, "not_found");
    raw(port, request("GET", "/ledger/entries/-1", &[], b""))
        .await
        .json_error(404, "not_found");

    // A request target over 8 KiB: 414, before any handler.
    let long = format!("/ledger/entries?type={}", "a".repeat(9 * 1024));
    raw(port, request("GET", &long, &[], b""))
        .await
        .json_error(414, "uri_too_long");

    // More header fields than a request needs, or too many bytes of them.
    let many: Vec<(String, String)> = (0..70).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    raw(port, request("GET", "/ledger/checkpoint", &many, b""))
        .await
        .json_error(431, "headers_too_large");
    let big = "v".repeat(20 * 1024);
    raw(
        port,
        request("GET", "/ledger/checkpoint", &[("x-big", &big)], b""),
    )
    .await
    .json_error(431, "headers_too_large");

    // Malformed JSON bodies: not JSON, not an object, not application/json,
    // larger than the route takes (declared or sent).
    let cosign = |body: &[u8], headers: &[(&str, &str)]| {
        request("POST", "/ledger/cosignatures", headers, body)
    };
    raw(port, cosign(b"{not json", &json))
        .await
        .json_error(400, "bad_request");
    raw(port, cosign(b"[]", &json))
        .await
        .json_error(400, "bad_request");
    raw(port, cosign(br#"[1, "x"]"#, &json))
        .await
        .json_error(400, "bad_request");
    raw(
        port,
        cosign(
            br#"{"tree_size": 1, "cosignature": "x"}"#,
            &[("content-type", "text/plain")],
        ),
    )
    .await
    .json_error(415, "unsupported_media_type");
    let padded = format!(
        r#"{{"tree_size": 1, "cosignature": "{}"}}"#,
        "x".repeat(2048)
    );
    raw(port, cosign(padded.as_bytes(), &json))
        .await
        .json_error(413, "too_large");
    let declared = b"POST /ledger/cosignatures HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n".to_vec();
    raw(port, declared).await.json_error(413, "too_large");
    let declared = b"POST /ledger/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n".to_vec();
    raw(port, declared).await.json_error(413, "entry_too_large");
    raw(
        port,
        request("POST", "/ledger/entries", &json, &vec![b' '; 70 * 1024]),
    )
    .await
    .json_error(413, "entry_too_large");
    raw(port, request("POST", "/ledger/entries", &json, b"[]"))
        .await
        .json_error(400, "malformed_entry");

    // Query strings the extractor cannot read.
    raw(
        port,
        request("GET", "/ledger/checkpoints?limit=x", &[], b""),
    )
    .await
    .json_error(400, "bad_request");
    raw(
        port,
        request("GET", "/ledger/entries?limit=1&limit=2", &[], b""),
    )
    .await
    .json_error(400, "bad_request");

    // What actix-http's codec answers itself, before the service: a 400 for
    // a head it refuses to read (so a well-formed entry in the body is never
    // seen), a 431 for more than 96 header fields; JSON all the same.
    let mut smuggled = format!(
        "POST /ledger/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        entry.len(),
        entry.len()
    )
    .into_bytes();
    smuggled.extend_from_slice(&entry);
    smuggled.extend_from_slice(b"\r\n0\r\n\r\n");
    raw(port, smuggled).await.json_error(400, "bad_request");
    let mut twice = format!(
        "POST /ledger/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {0}\r\ncontent-length: {0}\r\n\r\n",
        entry.len()
    )
    .into_bytes();
    twice.extend_from_slice(&entry);
    raw(port, twice).await.json_error(400, "bad_request");
    let mut not_chunked = format!(
        "POST /ledger/entries HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n\
         transfer-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
        entry.len()
    )
    .into_bytes();
    not_chunked.extend_from_slice(&entry);
    raw(port, not_chunked).await.json_error(400, "bad_request");
    for control in [b"\x01".as_slice(), b"\x7f", b"\x00", b"\r"] {
        let mut bytes =
            b"GET /ledger/checkpoint HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-test: a"
                .to_vec();
        bytes.extend_from_slice(control);
        bytes.extend_from_slice(b"b\r\n\r\n");
        raw(port, bytes).await.json_error(400, "bad_request");
    }
    let mut crowded =
        b"GET /ledger/checkpoint HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".to_vec();
    for i in 0..100 {
        crowded.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    crowded.extend_from_slice(b"\r\n");
    raw(port, crowded)
        .await
        .json_error(431, "headers_too_large");

    // And a well-formed request still gets through, on a fresh connection.
    let ok = raw(port, request("GET", "/healthz", &[], b"")).await;
    assert_eq!(ok.status, 200, "{ok:?}");

    // Past the checkpoint interval, so anything wrongly accepted would show.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        state(client).await,
        before,
        "refused requests changed nothing"
    );
    service.stop().await;
}

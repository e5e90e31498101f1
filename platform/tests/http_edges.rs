//! The shared edges of HTTP on a small app built as every Locus service is
//! (`json_extractors`, `not_found`, `HttpEdges`), served on loopback: errors
//! raised outside any service's own error type still carry the JSON body.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::TcpListener;

use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use locus_platform::http::{json_config, json_extractors, not_found, HttpEdges, Json};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    token: Option<String>,
}

async fn strict(body: Json<Body>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "token": body.token }))
}

/// A plain `web::Json` with no JSON error handler of its own.
async fn plain(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn query(q: web::Query<std::collections::HashMap<String, u32>>) -> HttpResponse {
    HttpResponse::Ok().json(q.into_inner())
}

/// A middleware that refuses with an error that is not JSON.
async fn refuse_plain(
    req: actix_web::dev::ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.headers().contains_key("x-refuse") {
        return Err(actix_web::error::ErrorForbidden("plain text refusal"));
    }
    next.call(req).await
}

fn start() -> (String, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new()
            .wrap(from_fn(refuse_plain))
            // Registered once per method, as `App::route` does.
            .route("/by-route", web::get().to(HttpResponse::Ok))
            .route("/by-route", web::put().to(HttpResponse::Ok))
            .service(
                web::resource("/strict")
                    .app_data(json_config(64))
                    .route(web::post().to(strict)),
            )
            .service(
                web::resource("/plain")
                    .app_data(web::JsonConfig::default().limit(64))
                    .route(web::post().to(plain)),
            )
            .service(web::resource("/query").route(web::get().to(query)))
            .configure(|cfg| json_extractors(cfg, 1024))
            .default_service(web::to(not_found))
            .wrap(HttpEdges)
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (url, handle)
}

async fn json_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    let headers = response.headers().clone();
    assert_eq!(response.status().as_u16(), status, "{code}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{code}: {headers:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
    headers
}

#[actix_web::test]
async fn errors_outside_the_services_are_json() {
    let (url, handle) = start();
    let http = reqwest::Client::new();
    let post = |path: &str, body: &'static str| {
        http.post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(body)
    };
    let get = |path: &str| http.get(format!("{url}{path}"));

    // A wrong method: with `Allow` when the path is one resource.
    let response = http.delete(format!("{url}/strict")).send().await.unwrap();
    let headers = json_error(response, 405, "method_not_allowed").await;
    assert_eq!(headers["allow"], "POST");
    // A body within the limits is read.
    let ok = post("/strict", r#"{"token": "t"}"#).send().await.unwrap();
    assert_eq!(ok.json::<Value>().await.unwrap()["token"], "t");
    let large =
        r#"{"token": "0123456789012345678901234567890123456789012345678901234567890123456789"}"#;
    let mut many_fields = get("/by-route");
    for i in 0..70 {
        many_fields = many_fields.header(format!("x-h{i}"), "v");
    }
    let refusals = [
        // A 405 still when the path is registered once per method.
        (
            http.post(format!("{url}/by-route")),
            405,
            "method_not_allowed",
        ),
        (get("/nowhere"), 404, "not_found"),
        // Bodies: an array is not the object a struct is read from; a plain
        // `web::Json` without a JSON handler still answers JSON.
        (post("/strict", "[]"), 400, "bad_request"),
        (post("/strict", r#"["t"]"#), 400, "bad_request"),
        (post("/strict", large), 413, "too_large"),
        (post("/plain", "{not json"), 400, "bad_request"),
        (post("/plain", large), 413, "too_large"),
        // actix answers a missing content type 400 here, and through
        // `json_config` 415; both in JSON.
        (
            http.post(format!("{url}/plain")).body("{}"),
            400,
            "bad_request",
        ),
        (
            http.post(format!("{url}/strict")).body("{}"),
            415,
            "unsupported_media_type",
        ),
        (get("/query?n=4294967296"), 400, "bad_request"),
        // A middleware's own refusal, raised as an error in plain text.
        (get("/by-route").header("x-refuse", "1"), 403, "forbidden"),
        // The head: a long target, many header fields.
        (
            get(&format!("/by-route?{}", "a".repeat(9000))),
            414,
            "uri_too_long",
        ),
        (many_fields, 431, "headers_too_large"),
    ];
    for (request, status, code) in refusals {
        json_error(request.send().await.unwrap(), status, code).await;
    }
    assert_eq!(get("/by-route").send().await.unwrap().status(), 200);
    handle.stop(true).await;
}

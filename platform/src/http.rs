//! The one error shape of every Locus API, and the edges of HTTP every
//! service shares.
//!
//! An app is built as
//!
//! ```ignore
//! App::new()
//!     // ... its routes, each path one `web::resource` (so a wrong method is a 405 with `Allow`)
//!     .configure(|cfg| json_extractors(cfg, limit))
//!     .default_service(web::to(not_found))
//!     .wrap(HttpEdges) // last, so it sees every response
//! ```
//!
//! and takes JSON bodies as [`Json<T>`], each resource bounding its own body
//! with `.app_data(json_config(bytes))`; it is served by
//! [`crate::server::serve`].
//!
//! What `HttpEdges` cannot reach: actix-http's HTTP/1 codec answers some
//! requests itself, before any service runs, with an empty body and then
//! closes the connection (actix-http 3, `h1::dispatcher`); `serve`'s
//! connection type gives those answers the JSON body:
//! - 400: a request line or header it cannot parse, among them a control
//!   byte in a header, a `Content-Length` that is repeated, not a number, or
//!   sent with `Transfer-Encoding`, a `Transfer-Encoding` other than a final
//!   `chunked`, and a malformed chunked body;
//! - 431: a request head over 128 KiB, or with more than 96 header fields;
//! - 408: a request head not received within the client request timeout.
//!
//! Below those limits [`HttpEdges`] refuses a request target over
//! [`MAX_URI_BYTES`] (414) and a head with more than [`MAX_HEADER_FIELDS`]
//! fields or [`MAX_HEADER_BYTES`] of them (431), with the JSON body.

use std::borrow::Cow;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::strict::Object;

/// `{"error": code, "message": text}`: a stable machine-readable code and a
/// sentence for people. Never carries identifiers or record contents.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// An error that is only a status, a code and a message: for extractor
/// failures, unknown routes and other refusals outside a service's own enum.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JsonError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl JsonError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl ResponseError for JsonError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        json_error(self.status, self.code, &self.message)
    }
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: code.to_owned(),
        message: message.to_owned(),
    })
}

/// What kind of refusal or failure an error is; the kind alone decides the
/// HTTP status, so every service answers the same kind the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    /// Too many attempts; the client may try again after `retry_after` seconds.
    TooMany {
        retry_after: u64,
    },
    /// A fault of this node's own (its store, its clock), not of the request.
    Internal,
    Unavailable,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A service's error as its API answers it: a kind, a stable machine code,
/// and its `Display` as the message. [`response_error!`](crate::response_error)
/// makes it an actix `ResponseError` answered by [`error_response`].
pub trait ApiError: std::error::Error {
    /// What failed or was refused, for the log (e.g. `"index request"`).
    const SUBJECT: &'static str;

    fn kind(&self) -> ErrorKind;

    /// The `error` field of the body.
    fn code(&self) -> Cow<'static, str>;
}

/// The one answer to every service error: the kind's status, the JSON body,
/// `Retry-After` when the client should wait; logged as a failure when it is
/// the server's, else as a refusal by its code.
pub fn error_response<E: ApiError>(error: &E) -> HttpResponse {
    let kind = error.kind();
    let status = kind.status();
    let code = error.code();
    if status.is_server_error() {
        tracing::error!(error = ?error, "{} failed", E::SUBJECT);
    } else {
        tracing::info!(code = %code, "{} refused", E::SUBJECT);
    }
    let mut response = json_error(status, &code, &error.to_string());
    if let ErrorKind::TooMany { retry_after } = kind {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    }
    response
}

/// `response_error!(MyError)`: `MyError` (an [`ApiError`]) answers requests
/// through [`error_response`].
#[macro_export]
macro_rules! response_error {
    ($error:ty) => {
        impl ::actix_web::ResponseError for $error {
            fn status_code(&self) -> ::actix_web::http::StatusCode {
                $crate::http::ApiError::kind(self).status()
            }

            fn error_response(&self) -> ::actix_web::HttpResponse {
                $crate::http::error_response(self)
            }
        }
    };
}

/// Largest integer any Locus store holds (a signed 64-bit column). Sizes,
/// indexes, counters and times above it are refused at the edge, before they
/// reach a query that could only fail.
pub const MAX_STORED_INT: u64 = i64::MAX as u64;

/// `value` of the request field `field`, as storage holds it; a 400 naming
/// the field when it is out of range.
pub fn stored_int(field: &str, value: u64) -> Result<i64, JsonError> {
    i64::try_from(value)
        .map_err(|_| JsonError::bad_request(format!("{field} must be at most {MAX_STORED_INT}")))
}

/// Extractor settings that answer malformed requests with JSON errors and
/// bound request bodies at `body_limit` bytes (a resource that needs less
/// sets its own `json_config`).
pub fn json_extractors(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| JsonError::bad_request(format!("bad query: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| JsonError::not_found(format!("bad path: {e}")).into()),
    )
    .app_data(json_config(body_limit))
    .app_data(web::PayloadConfig::default().limit(body_limit));
}

/// The resource at `path` whose JSON bodies are of at most `limit` bytes
/// ([`json_config`]): each path one resource, so a wrong method is a 405.
pub fn json_resource(path: &str, limit: usize) -> actix_web::Resource {
    web::resource(path.to_owned()).app_data(json_config(limit))
}

/// JSON bodies of at most `limit` bytes, with JSON errors (413 when too
/// large, 415 when not `application/json`).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| {
            use actix_web::error::JsonPayloadError;
            let (status, code) = match &e {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
                }
                JsonPayloadError::ContentType => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                }
                _ => (StatusCode::BAD_REQUEST, "bad_request"),
            };
            JsonError::new(status, code, format!("bad JSON body: {e}")).into()
        })
}

/// A JSON request body whose structs are objects at every depth (see
/// [`crate::strict`]); otherwise as `web::Json`: `application/json` only,
/// bounded by the resource's `JsonConfig`, errors as JSON through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let extract = web::Json::<Object<T>>::from_request(req, payload);
        Box::pin(async move { Ok(Json(extract.await?.into_inner().0)) })
    }
}

/// The default service: a JSON 404 for an unknown path, a JSON 405 for a
/// known path under another method. (A path registered as one
/// `web::resource` answers a wrong method itself, with `Allow`; this is the
/// fallback for paths registered once per method.)
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, JsonError> {
    if req.resource_map().has_resource(req.path()) {
        return Err(JsonError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed here", req.method()),
        ));
    }
    Err(JsonError::not_found("no such resource"))
}

/// Longest request target (path and query) a Locus service reads.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields in one request.
pub const MAX_HEADER_FIELDS: usize = 64;
/// Most bytes of header names and values in one request.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Middleware for the edges of HTTP: refuses request heads over the limits
/// above, and gives every error response that is not JSON yet (a wrong
/// method, an extractor without a JSON handler, a middleware's refusal) the
/// `{"error", "message"}` body, keeping its status and headers (`Allow`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpEdges;

impl<S, B> Transform<S, ServiceRequest> for HttpEdges
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = HttpEdgesService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpEdgesService {
            service: Rc::new(service),
        }))
    }
}

#[derive(Debug)]
pub struct HttpEdgesService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for HttpEdgesService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, actix_web::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if let Err(refusal) = head_within_limits(&req) {
            tracing::info!(
                status = refusal.status.as_u16(),
                code = refusal.code,
                "request head refused"
            );
            let response = req
                .into_response(refusal.error_response())
                .map_into_right_body();
            return Box::pin(ready(Ok(response)));
        }
        let call = self.service.call(req);
        Box::pin(async move {
            // An error raised by a middleware further in reaches the
            // dispatcher as an error, not a response: its response is made
            // JSON and carried on.
            let response = call.await.map_err(|e| {
                let response = e.error_response();
                if is_json(&response) {
                    return e;
                }
                InternalError::from_response(e.to_string(), as_json_error(response)).into()
            })?;
            if response.status().as_u16() < 400 || is_json(response.response()) {
                return Ok(response.map_into_left_body());
            }
            let (request, response) = response.map_into_boxed_body().into_parts();
            Ok(ServiceResponse::new(request, as_json_error(response)).map_into_right_body())
        })
    }
}

fn head_within_limits(req: &ServiceRequest) -> Result<(), JsonError> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(JsonError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES {
        return Err(headers_too_large());
    }
    Ok(())
}

/// The 431 of a head over the limits, whether `HttpEdges` or the HTTP/1
/// codec (over 96 fields, see [`crate::server`]) finds it.
pub(crate) fn headers_too_large() -> JsonError {
    JsonError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        format!("a request carries at most {MAX_HEADER_FIELDS} header fields of at most {MAX_HEADER_BYTES} bytes in all"),
    )
}

fn is_json<B>(response: &HttpResponse<B>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"))
}

/// The JSON error body for a bare error response, status and other headers kept.
fn as_json_error(response: HttpResponse) -> HttpResponse {
    if is_json(&response) {
        return response;
    }
    let (code, message) = describe(response.status());
    let body = serde_json::to_vec(&ErrorBody {
        error: code,
        message: message.to_owned(),
    })
    .unwrap_or_default();
    let mut response = response.set_body(BoxBody::new(body));
    let headers = response.headers_mut();
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /healthz` of every listener: `{"status": "ok"}` while it serves.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The code and sentence of each status [`describe`] knows.
#[rustfmt::skip]
const DESCRIBED: [(StatusCode, &str, &str); 14] = [
    (StatusCode::BAD_REQUEST, "bad_request", "the request is malformed"),
    (StatusCode::UNAUTHORIZED, "unauthorized", "this resource requires authentication"),
    (StatusCode::FORBIDDEN, "forbidden", "this request is not allowed"),
    (StatusCode::NOT_FOUND, "not_found", "no such resource"),
    (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this resource does not take this method; the Allow header lists those it takes"),
    (StatusCode::NOT_ACCEPTABLE, "not_acceptable", "no representation of this resource is acceptable"),
    (StatusCode::REQUEST_TIMEOUT, "timeout", "the request was not received in time"),
    (StatusCode::LENGTH_REQUIRED, "length_required", "this request needs a Content-Length"),
    (StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is larger than this resource takes"),
    (StatusCode::URI_TOO_LONG, "uri_too_long", "the request target is too long"),
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "the request body must be application/json"),
    (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "the request's header fields are too large"),
    (StatusCode::INTERNAL_SERVER_ERROR, "internal", "the service failed to answer"),
    (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is unavailable"),
];

/// A code and a sentence for a status raised outside any service's own errors.
pub(crate) fn describe(status: StatusCode) -> (String, &'static str) {
    let known = DESCRIBED
        .iter()
        .find(|(described, _, _)| *described == status)
        .map(|&(_, code, message)| (code, message));
    match known {
        Some((code, message)) => (code.to_owned(), message),
        None => {
            let reason = status.canonical_reason().unwrap_or("error");
            let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
            let message = if status.is_server_error() {
                "the service failed to answer"
            } else {
                "the request was refused"
            };
            (code, message)
        }
    }
}

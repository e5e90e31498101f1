//! The one error shape of every Locus API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// Extractor settings that answer malformed requests with JSON errors and
/// bound request bodies at `body_limit` bytes.
pub fn json_extractors(cfg: &mut actix_web::web::ServiceConfig, body_limit: usize) {
    use actix_web::web;
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        JsonError::bad_request(format!("bad query: {e}")).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        JsonError::not_found(format!("bad path: {e}")).into()
    }))
    .app_data(json_config(body_limit))
    .app_data(web::PayloadConfig::default().limit(body_limit));
}

/// JSON bodies of at most `limit` bytes, with JSON errors (413 when too large).
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default().limit(limit).error_handler(|e, _| {
        let status = match &e {
            actix_web::error::JsonPayloadError::Overflow { .. }
            | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            actix_web::error::JsonPayloadError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "bad_request" };
        JsonError::new(status, code, format!("bad JSON body: {e}")).into()
    })
}

/// The default service: unknown routes get a JSON 404.
pub async fn not_found() -> Result<HttpResponse, JsonError> {
    Err(JsonError::not_found("no such resource"))
}

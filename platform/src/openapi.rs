//! The wire forms of the protocol's identifiers as OpenAPI schemas, so that
//! generated clients and fuzzers know each shape. Use them as
//! `#[schema(value_type = locus_platform::openapi::PatientKey)]` (or
//! `Vec<...>`, `Option<...>`) on fields of the protocol's types; they are
//! schema only, never (de)serialized. Also the error responses several
//! routes share, for `responses(...)` of `#[utoipa::path]`.

use actix_web::HttpResponse;
use utoipa::ToSchema;

/// Identifiers that are lowercase hyphenated UUIDs: one schema shape, several names.
macro_rules! uuid_schema {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, ToSchema)]
        #[schema(
            format = "uuid",
            pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            min_length = 36,
            max_length = 36
        )]
        pub struct $name(pub String);
    )*};
}

uuid_schema! {
    /// A pointer id: a lowercase hyphenated UUID.
    PointerId;
    /// A grant id: a lowercase hyphenated UUID.
    GrantId;
    /// A request id: a lowercase hyphenated UUID.
    RequestId;
    /// A standing rule's id: a lowercase hyphenated UUID.
    RuleId;
}

/// Identifiers that are strings of one pattern and length: one schema shape, several names.
macro_rules! pattern_schema {
    ($($(#[$doc:meta])* $name:ident = $pattern:tt, $min:tt..=$max:tt;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, ToSchema)]
        #[schema(pattern = $pattern, min_length = $min, max_length = $max)]
        pub struct $name(pub String);
    )*};
}

pattern_schema! {
    /// A patient's blinded key: 64 lowercase hexadecimal characters.
    PatientKey = "^[0-9a-f]{64}$", 64..=64;
    /// A blinded scope tag: 64 lowercase hexadecimal characters.
    ScopeTag = "^[0-9a-f]{64}$", 64..=64;
    /// A consortium member id: 1 to 64 characters of `a-z`, `0-9` and inner
    /// single hyphens, starting with a letter.
    MemberId = "^[a-z](-?[a-z0-9])*$", 1..=64;
    /// A 32-byte hash (SHA-256) in standard base64: 44 characters.
    HashBase64 = "^[A-Za-z0-9+/]{43}=$", 44..=44;
    /// A device: its key's RFC 7638 thumbprint (SHA-256) in base64url without
    /// padding, 43 characters.
    DeviceKeyId = "^[A-Za-z0-9_-]{43}$", 43..=43;
    /// A device's signature (64 bytes, ECDSA P-256 r||s or Ed25519) in base64url
    /// without padding, 86 characters.
    DeviceSignature = "^[A-Za-z0-9_-]{86}$", 86..=86;
}

/// Serves a listener's API document (`/openapi.json`) under its own title and,
/// when given, description.
pub fn document(
    mut doc: utoipa::openapi::OpenApi,
    title: &str,
    description: Option<&str>,
) -> HttpResponse {
    doc.info.title = title.into();
    if let Some(description) = description {
        doc.info.description = Some(description.into());
    }
    HttpResponse::Ok().json(doc)
}

/// Declares error responses for `responses(...)` of `#[utoipa::path]`, each a
/// status and a description with the JSON error body, so that routes sharing one
/// describe it once: `error_responses! { NotFound = 404, "No such thing"; }`.
#[macro_export]
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident = $status:tt, $description:tt;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, ::utoipa::IntoResponses)]
        #[response(status = $status, description = $description)]
        pub struct $name(pub $crate::http::ErrorBody);
    )*};
}

error_responses! {
    /// A body over the limit its route sets.
    BodyTooLarge = 413, "A body over the route's limit";
    /// A body that is not JSON, on a route that takes one.
    NotJson = 415, "The body is not application/json";
    /// A mutual TLS caller that is not an active hospital.
    NotActiveHospital = 403, "Not an active hospital";
    /// A mutual TLS request without a client certificate.
    NoClientCertificate = 401, "No client certificate";
    /// Storage that cannot be reached.
    StorageUnavailable = 503, "Storage unavailable";
}

//! The wire forms of the protocol's identifiers as OpenAPI schemas, so that
//! generated clients and fuzzers know each shape. Use them as
//! `#[schema(value_type = locus_platform::openapi::PatientKey)]` (or
//! `Vec<...>`, `Option<...>`) on fields of the protocol's types; they are
//! schema only, never (de)serialized.

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

/// A patient's blinded key: 64 lowercase hexadecimal characters.
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[0-9a-f]{64}$", min_length = 64, max_length = 64)]
pub struct PatientKey(pub String);

/// A blinded scope tag: 64 lowercase hexadecimal characters.
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[0-9a-f]{64}$", min_length = 64, max_length = 64)]
pub struct ScopeTag(pub String);

/// A consortium member id: 1 to 64 characters of `a-z`, `0-9` and inner
/// single hyphens, starting with a letter.
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[a-z](-?[a-z0-9])*$", min_length = 1, max_length = 64)]
pub struct MemberId(pub String);

/// A 32-byte hash (SHA-256) in standard base64: 44 characters.
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[A-Za-z0-9+/]{43}=$", min_length = 44, max_length = 44)]
pub struct HashBase64(pub String);

/// A device: its key's RFC 7638 thumbprint (SHA-256) in base64url without
/// padding, 43 characters.
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[A-Za-z0-9_-]{43}$", min_length = 43, max_length = 43)]
pub struct DeviceKeyId(pub String);

/// A device's signature (64 bytes, ECDSA P-256 r||s or Ed25519) in base64url
/// without padding, 86 characters.
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[A-Za-z0-9_-]{86}$", min_length = 86, max_length = 86)]
pub struct DeviceSignature(pub String);

//! Grant tokens: [`GrantClaims`] as an EdDSA-signed JWT (RFC 7519, JWS compact
//! serialization per RFC 7515, Ed25519 per RFC 8037), built on `jsonwebtoken`.
//!
//! Header: `{"typ":"JWT","alg":"EdDSA","kid":"<KeyId of the consent key>"}`.
//!
//! Decoding accepts far less than the JOSE specs allow, because a grant is only ever
//! issued by our consent service:
//! - the algorithm is fixed by us, never chosen by the token: anything but `EdDSA`
//!   (`none`, `HS256` keyed with the public key, RSA, ECDSA) is refused before any
//!   key is looked up;
//! - the header may hold only `alg`, `typ` (= `JWT`) and `kid`: no embedded or
//!   remote keys (`jwk`, `jku`, `x5u`, `x5c`) and no `crit` extensions, which
//!   `jsonwebtoken` would not enforce;
//! - the key comes only from the caller's resolver (kid → an active consent key).
//!
//! Signature check: `jsonwebtoken`'s RustCrypto backend uses ed25519-dalek `verify`,
//! not `verify_strict`. With canonical `S` (always checked) that is still strongly
//! unforgeable; what `verify_strict` adds is refusing small-order public keys, and
//! [`VerifyingKey`] already refuses those when it is built, so the result is the same.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::entry::RefusalReason;
use crate::grant::{Confirmation, GrantClaims, GrantError, MAX_CLOCK_SKEW_SECS};
use crate::ids::{KeyId, MemberId, ScopeTag};
use crate::signing::{SigningKey, VerifyingKey};

/// Longest token accepted (and issued), in bytes. Real grants are 1 to 3 KiB; the
/// bound keeps a hostile token from costing more than a few microseconds to refuse.
pub const MAX_GRANT_TOKEN_LEN: usize = 16 * 1024;
/// The JOSE `alg` of grant tokens.
pub const GRANT_TOKEN_ALG: &str = "EdDSA";
/// The JOSE `typ` of grant tokens.
pub const GRANT_TOKEN_TYP: &str = "JWT";

/// Why a grant token was refused (or could not be issued). Messages never include
/// any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantTokenError {
    /// Longer than [`MAX_GRANT_TOKEN_LEN`].
    #[error("grant token is longer than {MAX_GRANT_TOKEN_LEN} bytes")]
    TooLong,
    /// Not a compact JWS with the expected header and claims.
    #[error("grant token is not a well-formed grant JWT")]
    Malformed,
    /// `alg` is not `EdDSA`.
    #[error("grant token algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    /// No `kid`, or the resolver knows no key by that id.
    #[error("grant token is not signed by a known consent key")]
    UnknownKey,
    /// The signature does not verify under the key `kid` names.
    #[error("grant token signature is not valid")]
    BadSignature,
    /// `aud` is not the member presenting the token.
    #[error("grant token is for another audience")]
    WrongAudience,
    /// `exp` has passed.
    #[error("grant has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond clock skew).
    #[error("grant is not yet valid")]
    NotYetValid,
    /// The claims fail [`GrantClaims::validate`].
    #[error("grant claims are not acceptable: {0}")]
    Invalid(#[source] GrantError),
    /// Encoding or signing failed (issuing only).
    #[error("grant token could not be signed")]
    Signing,
}

impl From<GrantError> for GrantTokenError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::Expired => Self::Expired,
            GrantError::NotYetValid | GrantError::IssuedInFuture => Self::NotYetValid,
            other => Self::Invalid(other),
        }
    }
}

impl GrantTokenError {
    /// The reason to log in an `access.refused` entry: a grant outside its validity
    /// window is `expired` (as [`RefusalReason::Expired`] defines it), every other
    /// failure `invalid_grant`.
    pub fn refusal_reason(&self) -> RefusalReason {
        match self {
            Self::Expired | Self::NotYetValid => RefusalReason::Expired,
            _ => RefusalReason::InvalidGrant,
        }
    }
}

/// The only header we accept. `deny_unknown_fields` refuses `crit`, `jwk`, `jku`,
/// `x5u`, `x5c`, `b64`, ...; derived `Deserialize` refuses duplicate members, so a
/// second `alg` cannot hide behind the first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Signs `claims` as a grant token with the consent service's `key`.
///
/// Refuses claims that no verifier would accept whatever the clock
/// ([`GrantClaims::check_structure`], without a duration limit) and tokens over
/// [`MAX_GRANT_TOKEN_LEN`].
pub fn encode_grant(claims: &GrantClaims, key: &SigningKey) -> Result<String, GrantTokenError> {
    sign_jws(claims, GRANT_TOKEN_TYP, claims, key)
}

/// The JWS steps every token shares: refuse a grant no verifier would accept, sign
/// `payload` under a header of type `typ` and the key's id, and bound the size.
fn sign_jws<C: Serialize>(
    grant: &GrantClaims,
    typ: &str,
    payload: &C,
    key: &SigningKey,
) -> Result<String, GrantTokenError> {
    grant
        .check_structure(i64::MAX)
        .map_err(GrantTokenError::Invalid)?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.key_id().to_string());
    // jsonwebtoken takes Ed25519 private keys as PKCS#8 DER; both the document and
    // the EncodingKey copy are wiped on drop.
    let der = key
        .as_dalek()
        .to_pkcs8_der()
        .map_err(|_| GrantTokenError::Signing)?;
    let token = jsonwebtoken::encode(&header, payload, &EncodingKey::from_ed_der(der.as_bytes()))
        .map_err(|_| GrantTokenError::Signing)?;
    if token.len() > MAX_GRANT_TOKEN_LEN {
        return Err(GrantTokenError::TooLong);
    }
    Ok(token)
}

/// Verifies a grant token presented by `check.audience` and returns its claims.
///
/// Checks, in order: size, shape, `alg`, `typ`, `kid`,
/// signature, `aud`, `exp` (no leeway: an expired grant is not stretched),
/// `nbf` (with [`MAX_CLOCK_SKEW_SECS`]), then [`GrantClaims::validate`].
/// Revocation and the certificate binding (`cnf`) are the caller's to check.
pub fn decode_grant(token: &str, check: &TokenCheck<'_>) -> Result<GrantClaims, GrantTokenError> {
    let claims: GrantClaims = verify_jws(token, GRANT_TOKEN_TYP, check)?;
    claims.validate(check.now, check.max_duration_secs)?;
    Ok(claims)
}

/// What a token is checked against: the same for a grant and its discovery token.
#[derive(Clone, Copy)]
pub struct TokenCheck<'a> {
    /// Resolves the header's `kid` to a key; it must answer only with keys of
    /// active consent members (see [`crate::directory::Directory::active_key`]).
    pub keys: &'a dyn Fn(&KeyId) -> Option<VerifyingKey>,
    /// Who presents the token: its `aud` must be this member.
    pub audience: &'a MemberId,
    /// The time of the check, Unix seconds.
    pub now: i64,
    /// The longest validity (`exp - nbf`) accepted.
    pub max_duration_secs: i64,
}

impl std::fmt::Debug for TokenCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck")
            .field("audience", &self.audience)
            .field("now", &self.now)
            .field("max_duration_secs", &self.max_duration_secs)
            .finish_non_exhaustive()
    }
}

/// The claims every token carries that [`verify_jws`] checks.
trait TokenClaims: serde::de::DeserializeOwned {
    /// `(aud, nbf, exp)`.
    fn window(&self) -> (&MemberId, i64, i64);
}

impl TokenClaims for GrantClaims {
    fn window(&self) -> (&MemberId, i64, i64) {
        (&self.aud, self.nbf, self.exp)
    }
}

impl TokenClaims for DiscoveryClaims {
    fn window(&self) -> (&MemberId, i64, i64) {
        (&self.aud, self.nbf, self.exp)
    }
}

/// The checks every token shares: size, shape, `alg`, `typ`, `kid`, the
/// signature, `aud` (jsonwebtoken checks it; we state it again), `exp` (no
/// leeway) and `nbf` (with [`MAX_CLOCK_SKEW_SECS`]) against the caller's `now`.
fn verify_jws<C: TokenClaims>(
    token: &str,
    typ: &str,
    check: &TokenCheck<'_>,
) -> Result<C, GrantTokenError> {
    let TokenCheck {
        keys,
        audience,
        now,
        ..
    } = *check;
    if token.len() > MAX_GRANT_TOKEN_LEN {
        return Err(GrantTokenError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(GrantTokenError::Malformed);
    };
    let header: JoseHeader = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(GrantTokenError::Malformed)?;
    if header.alg != GRANT_TOKEN_ALG {
        return Err(GrantTokenError::UnsupportedAlgorithm);
    }
    if header.typ.as_deref() != Some(typ) {
        return Err(GrantTokenError::Malformed);
    }
    let kid: KeyId = header
        .kid
        .and_then(|kid| kid.parse().ok())
        .ok_or(GrantTokenError::UnknownKey)?;
    let key = keys(&kid).ok_or(GrantTokenError::UnknownKey)?;
    // jsonwebtoken's "DER" Ed25519 decoding key is the raw 32-byte public key.
    let decoding_key = DecodingKey::from_ed_der(key.as_bytes());
    let claims = jsonwebtoken::decode::<C>(token, &decoding_key, &validation(audience))
        .map_err(|e| map_jwt_error(&e))?
        .claims;
    let (aud, nbf, exp) = claims.window();
    if aud != audience {
        return Err(GrantTokenError::WrongAudience);
    }
    if now >= exp {
        return Err(GrantTokenError::Expired);
    }
    if nbf > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(GrantTokenError::NotYetValid);
    }
    Ok(claims)
}

/// The `typ` of a discovery token.
pub const DISCOVERY_TOKEN_TYP: &str = "locus-discovery+jwt";

token_claims! {
    /// What the index is shown of a grant: who may discover, for which patient,
    /// when, bound to which certificate, and the blinded scope tags, sorted by
    /// value. No scopes, codes, categories, dates or purpose: the index matches
    /// tags and learns nothing about what records are or when they were made.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DiscoveryClaims {
        pub scope_tags: Vec<ScopeTag>,
        pub cnf: Confirmation,
    }
}

impl DiscoveryClaims {
    /// The discovery part of a grant.
    pub fn from_grant(grant: &GrantClaims) -> Self {
        let mut scope_tags = grant.scope_tags.clone();
        // Sorted by value, so the order says nothing about which input a tag is.
        scope_tags.sort();
        Self {
            iss: grant.iss.clone(),
            sub: grant.sub,
            aud: grant.aud.clone(),
            jti: grant.jti,
            iat: grant.iat,
            nbf: grant.nbf,
            exp: grant.exp,
            scope_tags,
            cnf: grant.cnf.clone(),
        }
    }
}

/// Signs the discovery token of a grant with the consent service's `key`.
pub fn encode_discovery(grant: &GrantClaims, key: &SigningKey) -> Result<String, GrantTokenError> {
    sign_jws(
        grant,
        DISCOVERY_TOKEN_TYP,
        &DiscoveryClaims::from_grant(grant),
        key,
    )
}

/// Verifies a discovery token presented by `check.audience`: the same checks as a
/// grant's, a validity no longer than `check.max_duration_secs`, and at least one tag.
pub fn decode_discovery(
    token: &str,
    check: &TokenCheck<'_>,
) -> Result<DiscoveryClaims, GrantTokenError> {
    let claims: DiscoveryClaims = verify_jws(token, DISCOVERY_TOKEN_TYP, check)?;
    let too_long = claims.exp.saturating_sub(claims.nbf) > check.max_duration_secs;
    if too_long || claims.scope_tags.is_empty() {
        return Err(GrantTokenError::Malformed);
    }
    Ok(claims)
}

/// EdDSA only, `aud` required and checked. Time checks are off here because
/// jsonwebtoken reads the system clock (and panics if it is before 1970); we check
/// `exp`/`nbf` against the caller's `now` instead.
fn validation(audience: &MemberId) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    v.set_audience(&[audience.as_str()]);
    v.validate_exp = false;
    v.validate_nbf = false;
    v
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> GrantTokenError {
    match e.kind() {
        ErrorKind::InvalidSignature => GrantTokenError::BadSignature,
        ErrorKind::InvalidAudience => GrantTokenError::WrongAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => GrantTokenError::UnsupportedAlgorithm,
        _ => GrantTokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{scope_tags_for, Confirmation, DataPeriod, GrantBasis, PurposeOfUse};
    use crate::ids::{GrantId, PatientKey, RequestId};
    use crate::linkage::LinkageKey;
    use crate::scope::ScopeSet;
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;
    use sha2::Sha256;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_700_000_000;
    const MAX: i64 = 7 * DAY;

    fn consent_key() -> SigningKey {
        SigningKey::from_seed([21; 32])
    }

    fn audience() -> MemberId {
        "city-er".parse().unwrap()
    }

    fn claims() -> GrantClaims {
        let link = LinkageKey::new("k1", [5; 32]).unwrap();
        let sub = PatientKey::from_bytes([1; 32]);
        let scope: ScopeSet = "patient/Observation.rs?category=laboratory"
            .parse()
            .unwrap();
        GrantClaims {
            iss: "consent".parse().unwrap(),
            sub,
            aud: audience(),
            jti: GrantId::new_random(),
            iat: NOW,
            nbf: NOW,
            exp: NOW + DAY,
            scope_tags: scope_tags_for(
                &link,
                &sub,
                &scope,
                Some(&DataPeriod::new("2024-01-01", "2024-12-31").unwrap()),
            ),
            scope,
            purpose: PurposeOfUse::Treatment,
            data_period: Some(DataPeriod::new("2024-01-01", "2024-12-31").unwrap()),
            cnf: Confirmation::for_certificate_der(b"city-er certificate"),
            basis: GrantBasis::PatientApproval {
                request: RequestId::new_random(),
            },
        }
    }

    /// The check of a token shown by `audience` at `now`, valid at most `max` seconds.
    fn check<'a>(
        keys: &'a dyn Fn(&KeyId) -> Option<VerifyingKey>,
        audience: &'a MemberId,
        now: i64,
        max: i64,
    ) -> TokenCheck<'a> {
        TokenCheck {
            keys,
            audience,
            now,
            max_duration_secs: max,
        }
    }

    /// Resolves only the consent key.
    fn keys(kid: &KeyId) -> Option<VerifyingKey> {
        let vk = consent_key().verifying_key();
        (*kid == vk.key_id()).then_some(vk)
    }

    fn decode(token: &str) -> Result<GrantClaims, GrantTokenError> {
        decode_grant(token, &check(&keys, &audience(), NOW + 10, MAX))
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A compact JWS over arbitrary header and payload JSON, signed with Ed25519.
    fn ed25519_jws(header: &str, payload: &str, key: &SigningKey) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", b64(sig.as_bytes()))
    }

    fn header_json(alg: &str) -> String {
        format!(
            r#"{{"typ":"JWT","alg":"{alg}","kid":"{}"}}"#,
            consent_key().key_id()
        )
    }

    fn payload_json() -> String {
        serde_json::to_string(&claims()).unwrap()
    }

    #[test]
    fn round_trip() {
        let c = claims();
        let token = encode_grant(&c, &consent_key()).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(decode(&token).unwrap(), c);
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            serde_json::json!({
                "alg": "EdDSA", "typ": "JWT", "kid": consent_key().key_id().to_string()
            })
        );
        // A token built by hand per RFC 7515 (not by jsonwebtoken) verifies too.
        let by_hand = ed25519_jws(&header_json("EdDSA"), &payload_json(), &consent_key());
        assert!(decode(&by_hand).is_ok());
    }

    /// RFC 8037 appendix A.4: the Ed25519 JWS of "Example of Ed25519 signing" with
    /// the RFC 8032 test 1 key, checked through jsonwebtoken with our key conversion.
    #[test]
    fn rfc8037_a4_vector() {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let key = SigningKey::from_seed(seed.try_into().unwrap());
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let want = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        assert_eq!(b64(key.sign(input.as_bytes()).as_bytes()), want);
        let dk = DecodingKey::from_ed_der(key.verifying_key().as_bytes());
        assert!(
            jsonwebtoken::crypto::verify(want, input.as_bytes(), &dk, Algorithm::EdDSA).unwrap()
        );
    }

    #[test]
    fn alg_none_is_refused() {
        for alg in ["none", "None", "NONE", "eddsa", "EdDSA ", "Ed25519", ""] {
            let token = format!(
                "{}.{}.",
                b64(header_json(alg).as_bytes()),
                b64(payload_json().as_bytes())
            );
            assert_eq!(
                decode(&token),
                Err(GrantTokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    /// The classic confusion: HS256 "signed" with the verifier's public key as the
    /// HMAC secret, in each form a verifier might hold it.
    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        let vk = consent_key().verifying_key();
        let pem = vk.to_public_key_pem().unwrap();
        let raw = vk.to_bytes();
        let text = vk.to_string();
        for secret in [&raw[..], text.as_bytes(), pem.as_bytes()] {
            let input = format!(
                "{}.{}",
                b64(header_json("HS256").as_bytes()),
                b64(payload_json().as_bytes())
            );
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
            assert_eq!(decode(&token), Err(GrantTokenError::UnsupportedAlgorithm));
            // Second line of defence: jsonwebtoken with our settings refuses it too.
            let err = jsonwebtoken::decode::<GrantClaims>(
                &token,
                &DecodingKey::from_ed_der(vk.as_bytes()),
                &validation(&audience()),
            )
            .unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::InvalidAlgorithm), "{err:?}");
        }
        for alg in ["RS256", "ES256", "PS256", "HS512"] {
            let token = ed25519_jws(&header_json(alg), &payload_json(), &consent_key());
            assert_eq!(decode(&token), Err(GrantTokenError::UnsupportedAlgorithm));
        }
    }

    #[test]
    fn keys_the_resolver_does_not_know_are_refused() {
        let stranger = SigningKey::from_seed([22; 32]);
        let token = encode_grant(&claims(), &stranger).unwrap();
        assert_eq!(decode(&token), Err(GrantTokenError::UnknownKey));
        // The stranger claims the consent key's kid: the signature fails.
        let forged = ed25519_jws(&header_json("EdDSA"), &payload_json(), &stranger);
        assert_eq!(decode(&forged), Err(GrantTokenError::BadSignature));
        // No kid, or one that is not a key id.
        for header in [
            r#"{"typ":"JWT","alg":"EdDSA"}"#.to_owned(),
            r#"{"typ":"JWT","alg":"EdDSA","kid":"consent"}"#.to_owned(),
            format!(
                r#"{{"typ":"JWT","alg":"EdDSA","kid":"{}"}}"#,
                consent_key().key_id().to_string().to_uppercase()
            ),
        ] {
            let token = ed25519_jws(&header, &payload_json(), &consent_key());
            assert_eq!(decode(&token), Err(GrantTokenError::UnknownKey), "{header}");
        }
        // A resolver that knows nobody (e.g. the consent member is suspended).
        let token = encode_grant(&claims(), &consent_key()).unwrap();
        assert_eq!(
            decode_grant(&token, &check(&|_| None, &audience(), NOW, MAX)),
            Err(GrantTokenError::UnknownKey)
        );
    }

    #[test]
    fn another_audience_is_refused() {
        let token = encode_grant(&claims(), &consent_key()).unwrap();
        let other: MemberId = "st-mary".parse().unwrap();
        assert_eq!(
            decode_grant(&token, &check(&keys, &other, NOW, MAX)),
            Err(GrantTokenError::WrongAudience)
        );
    }

    #[test]
    fn time_window() {
        let c = claims();
        let token = encode_grant(&c, &consent_key()).unwrap();
        let at = |now| decode_grant(&token, &check(&keys, &audience(), now, MAX));
        assert!(at(c.exp - 1).is_ok());
        assert_eq!(at(c.exp), Err(GrantTokenError::Expired));
        assert_eq!(at(i64::MAX), Err(GrantTokenError::Expired));
        assert_eq!(
            at(c.exp).unwrap_err().refusal_reason(),
            RefusalReason::Expired
        );

        let mut later = claims();
        later.nbf = NOW + 3600;
        let token = encode_grant(&later, &consent_key()).unwrap();
        let at = |now| decode_grant(&token, &check(&keys, &audience(), now, MAX));
        assert_eq!(at(NOW), Err(GrantTokenError::NotYetValid));
        assert_eq!(at(i64::MIN), Err(GrantTokenError::NotYetValid));
        assert!(at(NOW + 3600 - MAX_CLOCK_SKEW_SECS).is_ok());
        assert_eq!(
            at(NOW).unwrap_err().refusal_reason(),
            RefusalReason::Expired
        );

        // iat in the future is caught by GrantClaims::validate.
        let token = encode_grant(&claims(), &consent_key()).unwrap();
        assert_eq!(
            decode_grant(&token, &check(&keys, &audience(), NOW - 3600, MAX)),
            Err(GrantTokenError::NotYetValid)
        );
        // Longer than this verifier allows.
        assert_eq!(
            decode_grant(&token, &check(&keys, &audience(), NOW, DAY - 1)),
            Err(GrantTokenError::Invalid(GrantError::TooLong {
                max_secs: DAY - 1
            }))
        );
        assert_eq!(
            GrantTokenError::Invalid(GrantError::DuplicateScopeTag).refusal_reason(),
            RefusalReason::InvalidGrant
        );
    }

    #[test]
    fn any_changed_character_is_refused() {
        let token = encode_grant(&claims(), &consent_key()).unwrap();
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            if bytes[i] == b'.' {
                continue;
            }
            let mut bad = bytes.to_vec();
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).unwrap();
            let err = decode(&bad).unwrap_err();
            // Only ever a refusal; never a panic, never a success.
            assert_ne!(err, GrantTokenError::TooLong, "position {i}");
        }
        let dot = token.find('.').unwrap();
        let sig_start = token.rfind('.').unwrap() + 1;
        let flip = |i: usize| {
            let mut b = token.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        assert_eq!(decode(&flip(dot + 5)), Err(GrantTokenError::BadSignature));
        assert_eq!(
            decode(&flip(sig_start + 5)),
            Err(GrantTokenError::BadSignature)
        );
        // Signed claims with an unknown field are malformed, not silently accepted.
        let mut v = serde_json::to_value(claims()).unwrap();
        v["admin"] = true.into();
        let token = ed25519_jws(&header_json("EdDSA"), &v.to_string(), &consent_key());
        assert_eq!(decode(&token), Err(GrantTokenError::Malformed));
    }

    #[test]
    fn header_is_strict() {
        let kid = consent_key().key_id();
        for header in [
            format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#),
            format!(r#"{{"typ":"at+jwt","alg":"EdDSA","kid":"{kid}"}}"#),
            format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}","crit":["exp"],"exp":1}}"#),
            format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}","jku":"https://evil.example"}}"#),
            format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}","jwk":{{"kty":"OKP"}}}}"#),
            format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}","b64":false}}"#),
            format!(r#"{{"typ":"JWT","alg":"EdDSA","alg":"none","kid":"{kid}"}}"#),
            "[]".to_owned(),
            "not json".to_owned(),
        ] {
            let token = ed25519_jws(&header, &payload_json(), &consent_key());
            assert_eq!(decode(&token), Err(GrantTokenError::Malformed), "{header}");
        }
        let token = encode_grant(&claims(), &consent_key()).unwrap();
        for bad in [
            String::new(),
            ".".to_owned(),
            "..".to_owned(),
            format!("{token}.x"),
            token.rsplit_once('.').unwrap().0.to_owned(),
            format!("{token}="),
            format!(" {token}"),
            token.replacen('.', "=.", 1),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn size_bound() {
        let huge = "a".repeat(MAX_GRANT_TOKEN_LEN + 1);
        assert_eq!(decode(&huge), Err(GrantTokenError::TooLong));
        let token = encode_grant(&claims(), &consent_key()).unwrap();
        let padded = format!("{token}{}", "A".repeat(MAX_GRANT_TOKEN_LEN));
        assert_eq!(decode(&padded), Err(GrantTokenError::TooLong));
        let big = format!(
            "{}.{}.{}",
            b64(header_json("EdDSA").as_bytes()),
            "e".repeat(1 << 20),
            "A".repeat(86)
        );
        assert_eq!(decode(&big), Err(GrantTokenError::TooLong));
        // The issuer refuses to mint what verifiers would refuse.
        let mut c = claims();
        c.basis = GrantBasis::StandingRule {
            rule: "\"".repeat(512),
        };
        let scopes: Vec<String> = (0..32)
            // '"' is a legal code character that JSON doubles.
            .map(|i| {
                format!(
                    "patient/Observation.rs?code=http://loinc.org|{i}{}",
                    "\"".repeat(190)
                )
            })
            .collect();
        c.scope = scopes.join(" ").parse().unwrap();
        let link = LinkageKey::new("k1", [5; 32]).unwrap();
        c.scope_tags = scope_tags_for(&link, &c.sub, &c.scope, c.data_period.as_ref());
        assert_eq!(
            encode_grant(&c, &consent_key()),
            Err(GrantTokenError::TooLong)
        );
    }

    #[test]
    fn issuing_checks_structure() {
        let mut c = claims();
        c.exp = c.nbf;
        assert_eq!(
            encode_grant(&c, &consent_key()),
            Err(GrantTokenError::Invalid(GrantError::EmptyValidity))
        );
    }

    #[test]
    fn messages_do_not_echo_tokens() {
        let secret_looking = "eyJzZWNyZXQiOiJwYXRpZW50In0";
        let token = format!("{secret_looking}.{secret_looking}.{secret_looking}");
        let err = decode(&token).unwrap_err();
        assert!(!err.to_string().contains(secret_looking));
        assert!(!format!("{err:?}").contains(secret_looking));
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,400}") {
            let _ = decode(&s);
        }

        #[test]
        fn decode_never_panics_on_jws_shapes(
            parts in proptest::collection::vec("[A-Za-z0-9_=+/-]{0,120}", 0..5)
        ) {
            let _ = decode(&parts.join("."));
        }

        #[test]
        fn decode_never_accepts_a_mutation(pos in 0usize..4000, byte in 0x20u8..0x7f) {
            let token = encode_grant(&claims(), &consent_key()).unwrap();
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(decode(&mutated).is_err());
        }
    }

    #[test]
    fn discovery_tokens_show_only_tags_and_are_not_grants() {
        let c = claims();
        let discovery = encode_discovery(&c, &consent_key()).unwrap();
        let shown =
            decode_discovery(&discovery, &check(&keys, &audience(), NOW + 10, MAX)).unwrap();
        assert_eq!((shown.sub, shown.jti, shown.exp), (c.sub, c.jti, c.exp));
        let mut sorted = c.scope_tags.clone();
        sorted.sort();
        assert_eq!(shown.scope_tags, sorted);
        // No scope, purpose, period or basis reaches the index.
        let payload = String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(discovery.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        for hidden in ["scope\"", "purpose", "data_period", "basis", "laboratory"] {
            assert!(!payload.contains(hidden), "{hidden} in {payload}");
        }
        // Neither token passes for the other.
        let grant = encode_grant(&c, &consent_key()).unwrap();
        assert!(decode_discovery(&grant, &check(&keys, &audience(), NOW + 10, MAX)).is_err());
        assert!(decode(&discovery).is_err());
        // The same audience, time and key rules hold.
        let other: MemberId = "another-er".parse().unwrap();
        assert_eq!(
            decode_discovery(&discovery, &check(&keys, &other, NOW + 10, MAX)),
            Err(GrantTokenError::WrongAudience)
        );
        assert_eq!(
            decode_discovery(&discovery, &check(&keys, &audience(), NOW + DAY, MAX)),
            Err(GrantTokenError::Expired)
        );
        assert_eq!(
            decode_discovery(&discovery, &check(&|_| None, &audience(), NOW + 10, MAX)),
            Err(GrantTokenError::UnknownKey)
        );
    }
}

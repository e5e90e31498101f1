//! Pointers and what binds them: the plaintext a custodian seals about one record,
//! the salted commitment to the record's content, the associated data that pins a
//! sealed pointer or record to its context, and the custodian's signed provenance.
//!
//! A pointer body is sealed by its custodian to its own X25519 key
//! ([`crate::seal::POINTER_INFO`], [`pointer_aad`]); the index stores it opaque. At
//! retrieval the custodian opens it, checks the record against the grant and the
//! commitment, and seals the record to the requester ([`crate::seal::RECORD_INFO`],
//! [`RecordRelease`]) with a [`SignedProvenance`].

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::entry::RefusalReason;
use crate::grant::{parse_date, GrantClaims};
use crate::ids::{
    Commitment, ContentDigest, FhirId, GrantId, HospitalId, MemberId, PatientKey, PointerId,
};
use crate::jcs::{self, CanonicalError};
use crate::scope::{record_tag_inputs, Coding, RecordFacets, ResourceType, Token, MAX_SCOPE_LEN};
use crate::seal::{
    rfc9180_open, rfc9180_seal, OpenError, SealError, X25519PublicKey, X25519SecretKey,
    POINTER_INFO, RECORD_INFO,
};
use crate::signing::{Signature64, SigningKey, VerifyError, VerifyingKey};

/// Domain-separation label of [`content_commitment`].
pub const COMMITMENT_LABEL: &[u8] = b"locus/commitment/v1";
/// Prepended to the canonical provenance before signing, so a provenance signature
/// can never pass for a ledger entry signature or the other way round.
pub const PROVENANCE_SIGNATURE_CONTEXT: &[u8] = b"locus/provenance/v1\n";
/// Most categories, and most codes, in one pointer body.
pub const MAX_POINTER_TOKENS: usize = 32;
/// Largest sealed pointer [`PointerBody::open`] will try to open, in bytes. A valid
/// body is at most about 20 KiB.
pub const MAX_SEALED_POINTER_LEN: usize = 64 * 1024;

/// Largest sealed pointer the index keeps and a custodian is shown back, in bytes.
pub const MAX_SEALED_BYTES: usize = 4096;

/// Why a sealed pointer sent in base64 is refused; each edge words its own answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedFault {
    /// Not standard base64.
    NotBase64,
    /// Empty, or over [`MAX_SEALED_BYTES`].
    OutOfBounds,
}

/// A sealed pointer from a request, decoded from base64 and held to 1 to
/// [`MAX_SEALED_BYTES`] bytes, as publication and retrieval both take it.
pub fn decode_sealed(sealed: &str) -> Result<Vec<u8>, SealedFault> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| SealedFault::NotBase64)?;
    if bytes.is_empty() || bytes.len() > MAX_SEALED_BYTES {
        return Err(SealedFault::OutOfBounds);
    }
    Ok(bytes)
}

/// `SHA-256(COMMITMENT_LABEL || salt || canonical_content)`. Label and salt have
/// fixed lengths, so the concatenation is unambiguous; the secret salt keeps anyone
/// who sees the commitment (it is on the ledger) from testing guesses of the content.
///
/// `canonical_content` is whatever fixed byte form the custodian stores and releases
/// (for FHIR JSON, the stored bytes: [`crate::jcs`] refuses decimals).
pub fn content_commitment(salt: &[u8; 32], canonical_content: &[u8]) -> Commitment {
    Commitment::from_bytes(
        Sha256::new()
            .chain_update(COMMITMENT_LABEL)
            .chain_update(salt)
            .chain_update(canonical_content)
            .finalize()
            .into(),
    )
}

/// Whether `commitment` commits to `canonical_content` under `salt` (constant-time).
pub fn verify_commitment(
    commitment: &Commitment,
    salt: &[u8; 32],
    canonical_content: &[u8],
) -> bool {
    content_commitment(salt, canonical_content)
        .as_bytes()
        .ct_eq(commitment.as_bytes())
        .into()
}

/// A fresh random salt for [`content_commitment`].
pub fn random_salt() -> Result<[u8; 32], PointerError> {
    let mut salt = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| PointerError::Rng)?;
    Ok(salt)
}

/// Plain `SHA-256(content)`.
pub fn content_digest(content: &[u8]) -> ContentDigest {
    ContentDigest::from_bytes(Sha256::digest(content).into())
}

/// The HPKE associated data of a sealed pointer: canonical JSON of
/// `{"custodian", "patient", "pointer"}`. A sealed body copied to another pointer
/// id, patient or custodian no longer opens.
pub fn pointer_aad(pointer: &PointerId, patient: &PatientKey, custodian: &HospitalId) -> Vec<u8> {
    // Keys in RFC 8785 order. Every value is [a-z0-9-] only, so nothing needs
    // escaping and this is exactly the canonical JSON (tested against `jcs`).
    format!(r#"{{"custodian":"{custodian}","patient":"{patient}","pointer":"{pointer}"}}"#)
        .into_bytes()
}

/// A record released to a requester: the pointer, the grant it was released under
/// and its recipient, which sealing and opening it both bind it to.
#[derive(Debug, Clone, Copy)]
pub struct RecordRelease<'a> {
    /// The pointer the record was found under.
    pub pointer: &'a PointerId,
    /// The grant it was released under.
    pub grant: &'a GrantId,
    /// Who receives it.
    pub requester: &'a MemberId,
}

impl RecordRelease<'_> {
    /// The HPKE associated data of the sealed record: canonical JSON of
    /// `{"grant", "pointer", "requester"}`, so a sealed record is bound to the grant
    /// it was released under and to its recipient.
    pub fn aad(&self) -> Vec<u8> {
        let Self {
            pointer,
            grant,
            requester,
        } = self;
        format!(r#"{{"grant":"{grant}","pointer":"{pointer}","requester":"{requester}"}}"#)
            .into_bytes()
    }

    /// Seals the released record (FHIR JSON, provenance, ...) to the requester.
    pub fn seal(&self, key: &X25519PublicKey, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        rfc9180_seal(key, RECORD_INFO, &self.aad(), plaintext)
    }

    /// Opens a record sealed by [`Self::seal`] for the same pointer, grant and
    /// requester.
    pub fn open(&self, key: &X25519SecretKey, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        rfc9180_open(key, RECORD_INFO, &self.aad(), sealed)
    }
}

/// Problems with a pointer body or sealed pointer.
#[derive(Debug, thiserror::Error)]
pub enum PointerError {
    /// More than [`MAX_POINTER_TOKENS`] categories or codes.
    #[error(
        "a pointer holds at most {MAX_POINTER_TOKENS} categories and {MAX_POINTER_TOKENS} codes"
    )]
    TooManyTokens,
    /// A category or code longer than a scope could name.
    #[error("a category or code is longer than {MAX_SCOPE_LEN} bytes")]
    TokenTooLong,
    /// The same category or code twice.
    #[error("a pointer lists each category and code once")]
    DuplicateToken,
    /// `effective` is not a valid `YYYY-MM-DD` date.
    #[error("effective date must be a valid YYYY-MM-DD date")]
    InvalidDate,
    /// The body could not be encoded.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The sealed pointer did not open or did not hold a valid body. Deliberately
    /// says no more (see [`OpenError`]); log it as `tampered_pointer`.
    #[error("sealed pointer could not be opened")]
    Open,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

/// What a custodian seals about one record. Holds health metadata, so its `Debug`
/// shows only the resource type and version.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PointerBodyWire")]
pub struct PointerBody {
    /// The FHIR resource type.
    pub resource_type: ResourceType,
    /// The FHIR resource id at the custodian.
    pub resource_id: FhirId,
    /// The FHIR version (`meta.versionId`) the commitment is to.
    pub version: u32,
    /// Categories (`code` or `system|code`), as the record's FHIR `category`.
    pub categories: Vec<Token>,
    /// Codes (`system|code`), as the record's FHIR `code`.
    pub codes: Vec<Coding>,
    /// The clinical date (`YYYY-MM-DD`), if the record has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
    /// [`content_commitment`] of the record's canonical content under `salt`.
    pub commitment: Commitment,
    /// The commitment salt; base64url without padding in JSON.
    #[serde(serialize_with = "salt_to_b64")]
    pub salt: [u8; 32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointerBodyWire {
    resource_type: ResourceType,
    resource_id: FhirId,
    version: u32,
    categories: Vec<Token>,
    codes: Vec<Coding>,
    #[serde(default)]
    effective: Option<String>,
    commitment: Commitment,
    #[serde(deserialize_with = "salt_from_b64")]
    salt: [u8; 32],
}

impl TryFrom<PointerBodyWire> for PointerBody {
    type Error = PointerError;
    fn try_from(w: PointerBodyWire) -> Result<Self, PointerError> {
        let body = Self {
            resource_type: w.resource_type,
            resource_id: w.resource_id,
            version: w.version,
            categories: w.categories,
            codes: w.codes,
            effective: w.effective,
            commitment: w.commitment,
            salt: w.salt,
        };
        body.check()?;
        Ok(body)
    }
}

fn salt_to_b64<S: Serializer>(salt: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&URL_SAFE_NO_PAD.encode(salt))
}

fn salt_from_b64<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(d)?;
    crate::signing::decode_b64_array::<32>(&URL_SAFE_NO_PAD, &text).ok_or_else(|| {
        serde::de::Error::custom("salt must be base64url (no padding) of exactly 32 bytes")
    })
}

impl fmt::Debug for PointerBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PointerBody")
            .field("resource_type", &self.resource_type)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn has_duplicates<T: Ord>(items: &[T]) -> bool {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort();
    sorted.windows(2).any(|w| w[0] == w[1])
}

impl PointerBody {
    /// Checks what the types alone do not: counts, lengths, duplicates, the date.
    pub fn check(&self) -> Result<(), PointerError> {
        if self.categories.len() > MAX_POINTER_TOKENS || self.codes.len() > MAX_POINTER_TOKENS {
            return Err(PointerError::TooManyTokens);
        }
        let too_long = self
            .categories
            .iter()
            .map(|t| t.system().map_or(0, str::len) + t.code().len())
            .chain(self.codes.iter().map(|c| c.system().len() + c.code().len()))
            .any(|len| len > MAX_SCOPE_LEN);
        if too_long {
            return Err(PointerError::TokenTooLong);
        }
        if has_duplicates(&self.categories) || has_duplicates(&self.codes) {
            return Err(PointerError::DuplicateToken);
        }
        if self
            .effective
            .as_deref()
            .is_some_and(|d| parse_date(d).is_none())
        {
            return Err(PointerError::InvalidDate);
        }
        Ok(())
    }

    /// The checked body as RFC 8785 canonical JSON: the plaintext that is sealed.
    pub fn to_canonical_vec(&self) -> Result<Vec<u8>, PointerError> {
        self.check()?;
        Ok(jcs::to_canonical_vec(self)?)
    }

    /// Seals the body to the custodian's own key, bound to its pointer id, patient
    /// and custodian.
    pub fn seal(
        &self,
        custodian_key: &X25519PublicKey,
        pointer: &PointerId,
        patient: &PatientKey,
        custodian: &HospitalId,
    ) -> Result<Vec<u8>, PointerError> {
        let plaintext = self.to_canonical_vec()?;
        let aad = pointer_aad(pointer, patient, custodian);
        Ok(rfc9180_seal(custodian_key, POINTER_INFO, &aad, &plaintext)?)
    }

    /// Opens a sealed pointer for the given pointer id, patient and custodian.
    /// Refuses (as [`PointerError::Open`]) anything that does not open under exactly
    /// that context or is not the canonical encoding of a valid body.
    pub fn open(
        custodian_secret: &X25519SecretKey,
        sealed: &[u8],
        pointer: &PointerId,
        patient: &PatientKey,
        custodian: &HospitalId,
    ) -> Result<Self, PointerError> {
        if sealed.len() > MAX_SEALED_POINTER_LEN {
            return Err(PointerError::Open);
        }
        let aad = pointer_aad(pointer, patient, custodian);
        let plaintext = rfc9180_open(custodian_secret, POINTER_INFO, &aad, sealed)
            .map_err(|_| PointerError::Open)?;
        jcs::from_canonical_slice(&plaintext).map_err(|_| PointerError::Open)
    }

    /// The scope-tag inputs the record is published under
    /// (see [`record_tag_inputs`]).
    pub fn tag_inputs(&self) -> Vec<String> {
        let categories: Vec<String> = self.categories.iter().map(Token::to_string).collect();
        let categories: Vec<&str> = categories.iter().map(String::as_str).collect();
        let codes: Vec<(&str, &str)> = self.codes.iter().map(|c| (c.system(), c.code())).collect();
        record_tag_inputs(
            self.resource_type,
            &categories,
            &codes,
            self.effective.as_deref(),
        )
    }

    /// Whether `grant` lets its holder read this record: a scope must cover it
    /// (else [`RefusalReason::OutOfScope`]) and, if the grant has a data period, the
    /// record must have an effective date inside it (else
    /// [`RefusalReason::OutOfDateRange`]; a record without a date is refused, not
    /// assumed to be in range). Who holds the grant, and when, is checked elsewhere.
    pub fn permitted_by(&self, grant: &GrantClaims) -> Result<(), RefusalReason> {
        let categories: Vec<String> = self.categories.iter().map(Token::to_string).collect();
        let categories: Vec<&str> = categories.iter().map(String::as_str).collect();
        let codes: Vec<(&str, &str)> = self.codes.iter().map(|c| (c.system(), c.code())).collect();
        let record = RecordFacets {
            resource: self.resource_type,
            categories: &categories,
            codes: &codes,
        };
        if !grant.scope.covers(&record) {
            return Err(RefusalReason::OutOfScope);
        }
        if let Some(period) = &grant.data_period {
            match &self.effective {
                Some(date) if period.contains(date) => {}
                _ => return Err(RefusalReason::OutOfDateRange),
            }
        }
        Ok(())
    }
}

/// The custodian's statement about a released record: which record and version,
/// what it committed to, the digest of the bytes it released, when, and where the
/// `record.retrieved` entry sits in the ledger. A receiving hospital that checks the
/// signature and the digest can rely on the result without repeating the test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The hospital that holds the record and signs this statement.
    pub custodian: HospitalId,
    /// The pointer the record was released through.
    pub pointer: PointerId,
    /// The FHIR resource type.
    pub resource_type: ResourceType,
    /// The FHIR resource id at the custodian.
    pub resource_id: FhirId,
    /// The FHIR version released.
    pub version: u32,
    /// The pointer's content commitment (as in the ledger entry).
    pub commitment: Commitment,
    /// `SHA-256` of the content as released.
    pub content_sha256: ContentDigest,
    /// When the custodian released it, Unix milliseconds; never negative.
    pub retrieved_at_ms: i64,
    /// Ledger index of the `record.retrieved` entry for this release.
    pub receipt_index: u64,
}

/// Problems signing provenance.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// `retrieved_at_ms` is negative.
    #[error("provenance time must not be negative")]
    NegativeTime,
    /// Not encodable as canonical JSON (e.g. `receipt_index` above 2^53 − 1).
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

fn provenance_message(provenance: &Provenance) -> Result<Vec<u8>, ProvenanceError> {
    if provenance.retrieved_at_ms < 0 {
        return Err(ProvenanceError::NegativeTime);
    }
    Ok(jcs::signed_message(
        PROVENANCE_SIGNATURE_CONTEXT,
        provenance,
    )?)
}

/// [`Provenance`] with the custodian's Ed25519 signature over
/// `PROVENANCE_SIGNATURE_CONTEXT || canonical(provenance)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedProvenance {
    /// The statement.
    pub provenance: Provenance,
    /// The custodian's signature.
    pub sig: Signature64,
}

impl SignedProvenance {
    /// Signs `provenance` with the custodian's key.
    pub fn sign(provenance: Provenance, key: &SigningKey) -> Result<Self, ProvenanceError> {
        let sig = key.sign(&provenance_message(&provenance)?);
        Ok(Self { provenance, sig })
    }

    /// Checks the signature with the custodian's key (`verify_strict`). The caller
    /// picks the key of `provenance.custodian` from the directory.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), VerifyError> {
        let message = provenance_message(&self.provenance).map_err(|_| VerifyError)?;
        key.verify(&message, &self.sig)
    }

    /// Whether `content` is the content the provenance describes (constant-time).
    pub fn describes(&self, content: &[u8]) -> bool {
        content_digest(content)
            .as_bytes()
            .ct_eq(self.provenance.content_sha256.as_bytes())
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{scope_tags_for, Confirmation, DataPeriod, GrantBasis, PurposeOfUse};
    use crate::ids::RequestId;
    use crate::linkage::LinkageKey;
    use crate::scope::ScopeSet;
    use crate::test_support::assert_each_edit_refused;

    const CONTENT: &[u8] = br#"{"id":"hb-1","resourceType":"Observation","status":"final"}"#;
    const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

    fn salt() -> [u8; 32] {
        [0x5a; 32]
    }

    fn body() -> PointerBody {
        PointerBody {
            resource_type: ResourceType::Observation,
            resource_id: "hb-1".parse().unwrap(),
            version: 3,
            categories: vec![LAB.parse().unwrap()],
            codes: vec![Coding::new("http://loinc.org", "718-7").unwrap()],
            effective: Some("2024-03-15".into()),
            commitment: content_commitment(&salt(), CONTENT),
            salt: salt(),
        }
    }

    fn ctx() -> (PointerId, PatientKey, HospitalId) {
        (
            "00000000-0000-4000-8000-000000000001".parse().unwrap(),
            PatientKey::from_bytes([1; 32]),
            "st-mary".parse().unwrap(),
        )
    }

    fn grant(scope: &str, period: Option<(&str, &str)>) -> GrantClaims {
        let scope: ScopeSet = scope.parse().unwrap();
        let sub = PatientKey::from_bytes([1; 32]);
        GrantClaims {
            iss: "consent".parse().unwrap(),
            sub,
            aud: "city-er".parse().unwrap(),
            jti: GrantId::new_random(),
            iat: 0,
            nbf: 0,
            exp: 1,
            scope_tags: scope_tags_for(
                &LinkageKey::new("k", [5; 32]).unwrap(),
                &sub,
                &scope,
                period.map(|(s, e)| DataPeriod::new(s, e).unwrap()).as_ref(),
            ),
            scope,
            purpose: PurposeOfUse::Treatment,
            data_period: period.map(|(s, e)| DataPeriod::new(s, e).unwrap()),
            cnf: Confirmation::for_certificate_der(b"c"),
            basis: GrantBasis::PatientApproval {
                request: RequestId::new_random(),
            },
        }
    }

    #[test]
    fn commitment_known_answer_and_checks() {
        // python3: hashlib.sha256(b"locus/commitment/v1" + b"\x5a"*32 + content).hexdigest()
        assert_eq!(
            content_commitment(&salt(), b"content").to_string(),
            "145ab1030e7ce3924788d067bcaba8037db0ab466701f1f2b08eaf179c338339"
        );
        let c = content_commitment(&salt(), CONTENT);
        assert!(verify_commitment(&c, &salt(), CONTENT));
        assert!(!verify_commitment(&c, &[0x5b; 32], CONTENT));
        assert!(!verify_commitment(&c, &salt(), &CONTENT[1..]));
        assert_ne!(
            content_commitment(&salt(), b""),
            content_commitment(&[0; 32], b"")
        );
        assert_ne!(random_salt().unwrap(), random_salt().unwrap());
        // python3: hashlib.sha256(b"content").hexdigest()
        assert_eq!(
            content_digest(b"content").to_string(),
            "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"
        );
    }

    #[test]
    fn aad_is_canonical_json() {
        let (p, k, c) = ctx();
        let want = jcs::canonicalize(&serde_json::json!({
            "pointer": p.to_string(), "patient": k.to_string(), "custodian": c.to_string()
        }))
        .unwrap();
        assert_eq!(pointer_aad(&p, &k, &c), want.into_bytes());
        let g: GrantId = "123e4567-e89b-42d3-a456-426614174000".parse().unwrap();
        let r: MemberId = "city-er".parse().unwrap();
        let want = jcs::canonicalize(&serde_json::json!({
            "requester": "city-er", "grant": g.to_string(), "pointer": p.to_string()
        }))
        .unwrap();
        let release = RecordRelease {
            pointer: &p,
            grant: &g,
            requester: &r,
        };
        assert_eq!(release.aad(), want.into_bytes());
    }

    #[test]
    fn body_round_trips() {
        let b = body();
        let bytes = b.to_canonical_vec().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"categories":[""#), "{text}");
        assert!(
            text.contains(r#""codes":["http://loinc.org|718-7"]"#),
            "{text}"
        );
        assert!(text.contains(&format!(r#""salt":"{}""#, URL_SAFE_NO_PAD.encode(salt()))));
        let back: PointerBody = jcs::from_canonical_slice(&bytes).unwrap();
        assert_eq!(back, b);
        assert!(verify_commitment(&back.commitment, &back.salt, CONTENT));
        assert!(!verify_commitment(&back.commitment, &back.salt, b"other"));
        // No effective date: left out, not null.
        let mut undated = body();
        undated.effective = None;
        let text = String::from_utf8(undated.to_canonical_vec().unwrap()).unwrap();
        assert!(!text.contains("effective") && !text.contains("null"));
        // Debug does not show codes, categories or the salt.
        let shown = format!("{b:?}");
        assert!(!shown.contains("718-7") && !shown.contains("laboratory"));
        assert!(!shown.contains("90"), "{shown}");
        assert_eq!(
            b.tag_inputs(),
            record_tag_inputs(
                ResourceType::Observation,
                &[LAB],
                &[("http://loinc.org", "718-7")],
                Some("2024-03-15")
            )
        );
    }

    #[test]
    fn body_validation() {
        let good = serde_json::to_value(body()).unwrap();
        assert_each_edit_refused::<PointerBody>(
            &good,
            [
                ("resource_id", serde_json::json!("a/b")),
                ("resource_id", serde_json::json!("")),
                ("resource_type", serde_json::json!("Patient")),
                ("version", serde_json::json!(-1)),
                ("categories", serde_json::json!(["has space"])),
                ("categories", serde_json::json!([LAB, LAB])),
                ("codes", serde_json::json!(["718-7"])),
                ("effective", serde_json::json!("2024-02-30")),
                ("effective", serde_json::json!("2024-03-15T10:00:00Z")),
                ("salt", serde_json::json!("AAAA")),
                ("salt", serde_json::json!(URL_SAFE_NO_PAD.encode([0u8; 33]))),
                ("commitment", serde_json::json!("00")),
                ("extra", serde_json::json!(1)),
            ],
        );
        let mut b = body();
        b.codes = (0..33)
            .map(|i| Coding::new("http://loinc.org", &i.to_string()).unwrap())
            .collect();
        assert!(matches!(b.check(), Err(PointerError::TooManyTokens)));
        let mut b = body();
        b.categories = vec![Token::new(None, &"x".repeat(257)).unwrap()];
        assert!(matches!(b.check(), Err(PointerError::TokenTooLong)));
        let mut b = body();
        b.effective = Some("yesterday".into());
        assert!(matches!(
            b.to_canonical_vec(),
            Err(PointerError::InvalidDate)
        ));
    }

    #[test]
    fn seal_and_open() {
        let sk = X25519SecretKey::from_bytes([9; 32]);
        let (p, k, c) = ctx();
        let sealed = body().seal(&sk.public_key(), &p, &k, &c).unwrap();
        assert_eq!(PointerBody::open(&sk, &sealed, &p, &k, &c).unwrap(), body());

        // Moved to another pointer, patient or custodian: it does not open.
        let p2: PointerId = "00000000-0000-4000-8000-000000000002".parse().unwrap();
        let k2 = PatientKey::from_bytes([2; 32]);
        let c2: HospitalId = "city-er".parse().unwrap();
        for (pp, kk, cc) in [(&p2, &k, &c), (&p, &k2, &c), (&p, &k, &c2)] {
            assert!(matches!(
                PointerBody::open(&sk, &sealed, pp, kk, cc),
                Err(PointerError::Open)
            ));
        }
        // Another key, a flipped byte, or the record label: it does not open.
        let other = X25519SecretKey::from_bytes([10; 32]);
        assert!(PointerBody::open(&other, &sealed, &p, &k, &c).is_err());
        for i in [0, 40, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                PointerBody::open(&sk, &bad, &p, &k, &c).is_err(),
                "byte {i}"
            );
        }
        let aad = pointer_aad(&p, &k, &c);
        assert!(rfc9180_open(&sk, RECORD_INFO, &aad, &sealed).is_err());
        // Oversized input is refused before any work.
        let huge = vec![0u8; MAX_SEALED_POINTER_LEN + 1];
        assert!(matches!(
            PointerBody::open(&sk, &huge, &p, &k, &c),
            Err(PointerError::Open)
        ));
        // Sealed bytes that open but are not a canonical body are refused too.
        let junk = rfc9180_seal(&sk.public_key(), POINTER_INFO, &aad, b"{\"a\":1}").unwrap();
        assert!(matches!(
            PointerBody::open(&sk, &junk, &p, &k, &c),
            Err(PointerError::Open)
        ));
        let pretty = serde_json::to_vec_pretty(&body()).unwrap();
        let pretty = rfc9180_seal(&sk.public_key(), POINTER_INFO, &aad, &pretty).unwrap();
        assert!(PointerBody::open(&sk, &pretty, &p, &k, &c).is_err());
    }

    #[test]
    fn records_are_bound_to_grant_and_requester() {
        let sk = X25519SecretKey::from_bytes([11; 32]);
        let (p, _, _) = ctx();
        let g = GrantId::new_random();
        let r: MemberId = "city-er".parse().unwrap();
        let release = |pointer, grant, requester| RecordRelease {
            pointer,
            grant,
            requester,
        };
        let sealed = release(&p, &g, &r).seal(&sk.public_key(), CONTENT).unwrap();
        assert_eq!(release(&p, &g, &r).open(&sk, &sealed).unwrap(), CONTENT);
        let p2: PointerId = "00000000-0000-4000-8000-000000000002".parse().unwrap();
        let g2 = GrantId::new_random();
        let r2: MemberId = "other-er".parse().unwrap();
        assert!(release(&p2, &g, &r).open(&sk, &sealed).is_err());
        assert!(release(&p, &g2, &r).open(&sk, &sealed).is_err());
        assert!(release(&p, &g, &r2).open(&sk, &sealed).is_err());
        // A record cannot be passed off as a pointer body or the other way round.
        let (_, k, c) = ctx();
        assert!(PointerBody::open(&sk, &sealed, &p, &k, &c).is_err());
        let pointer = body().seal(&sk.public_key(), &p, &k, &c).unwrap();
        assert!(release(&p, &g, &r).open(&sk, &pointer).is_err());
    }

    #[test]
    fn grant_scope_and_dates() {
        let b = body();
        let lab = "patient/Observation.rs?category=laboratory";
        assert_eq!(b.permitted_by(&grant(lab, None)), Ok(()));
        assert_eq!(
            b.permitted_by(&grant(lab, Some(("2024-01-01", "2024-12-31")))),
            Ok(())
        );
        assert_eq!(
            b.permitted_by(&grant(lab, Some(("2024-03-16", "2024-12-31")))),
            Err(RefusalReason::OutOfDateRange)
        );
        assert_eq!(
            b.permitted_by(&grant(
                "patient/Observation.rs?code=http://loinc.org|718-7",
                None
            )),
            Ok(())
        );
        for out in [
            "patient/Observation.rs?category=vital-signs",
            "patient/Observation.s",
            "patient/DiagnosticReport.rs",
            "patient/Observation.rs?code=http://loinc.org|2339-0",
        ] {
            assert_eq!(
                b.permitted_by(&grant(out, None)),
                Err(RefusalReason::OutOfScope),
                "{out}"
            );
        }
        let mut undated = body();
        undated.effective = None;
        assert_eq!(
            undated.permitted_by(&grant(lab, Some(("2024-01-01", "2024-12-31")))),
            Err(RefusalReason::OutOfDateRange)
        );
        assert_eq!(undated.permitted_by(&grant(lab, None)), Ok(()));
    }

    fn provenance() -> Provenance {
        let (p, _, c) = ctx();
        Provenance {
            custodian: c,
            pointer: p,
            resource_type: ResourceType::Observation,
            resource_id: "hb-1".parse().unwrap(),
            version: 3,
            commitment: content_commitment(&salt(), CONTENT),
            content_sha256: content_digest(CONTENT),
            retrieved_at_ms: 1_700_000_000_000,
            receipt_index: 42,
        }
    }

    #[test]
    fn provenance_signs_and_verifies() {
        let key = SigningKey::from_seed([31; 32]);
        let signed = SignedProvenance::sign(provenance(), &key).unwrap();
        signed.verify(&key.verifying_key()).unwrap();
        assert!(signed.describes(CONTENT));
        assert!(!signed.describes(b"other"));
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedProvenance = serde_json::from_str(&json).unwrap();
        assert_eq!(back, signed);
        back.verify(&key.verifying_key()).unwrap();

        let other = SigningKey::from_seed([32; 32]);
        assert_eq!(signed.verify(&other.verifying_key()), Err(VerifyError));
        // Each field is covered by the signature.
        let edits: Vec<fn(&mut Provenance)> = vec![
            |p| p.custodian = "city-er".parse().unwrap(),
            |p| p.pointer = "00000000-0000-4000-8000-000000000002".parse().unwrap(),
            |p| p.resource_type = ResourceType::DiagnosticReport,
            |p| p.resource_id = "hb-2".parse().unwrap(),
            |p| p.version = 4,
            |p| p.commitment = Commitment::from_bytes([0; 32]),
            |p| p.content_sha256 = content_digest(b"other"),
            |p| p.retrieved_at_ms += 1,
            |p| p.receipt_index += 1,
        ];
        for (i, edit) in edits.into_iter().enumerate() {
            let mut tampered = signed.clone();
            edit(&mut tampered.provenance);
            assert_eq!(
                tampered.verify(&key.verifying_key()),
                Err(VerifyError),
                "edit {i}"
            );
        }
        // The context label matters: a bare signature over the JSON does not verify.
        let bare = key.sign(&jcs::to_canonical_vec(&provenance()).unwrap());
        let no_ctx = SignedProvenance {
            provenance: provenance(),
            sig: bare,
        };
        assert_eq!(no_ctx.verify(&key.verifying_key()), Err(VerifyError));
        // Values canonical JSON cannot carry are refused, not signed differently.
        let mut p = provenance();
        p.receipt_index = 1 << 53;
        assert!(matches!(
            SignedProvenance::sign(p, &key),
            Err(ProvenanceError::Canonical(_))
        ));
        let mut p = provenance();
        p.retrieved_at_ms = -1;
        assert!(matches!(
            SignedProvenance::sign(p, &key),
            Err(ProvenanceError::NegativeTime)
        ));
        let mut v = serde_json::to_value(&signed).unwrap();
        v["provenance"]["note"] = "x".into();
        assert!(serde_json::from_value::<SignedProvenance>(v).is_err());
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(sealed in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let (p, k, c) = ctx();
            let sk = X25519SecretKey::from_bytes([9; 32]);
            proptest::prop_assert!(PointerBody::open(&sk, &sealed, &p, &k, &c).is_err());
        }
    }
}

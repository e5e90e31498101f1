//! Blinded keys: the consortium linkage key turns a patient's national identifier
//! into a pseudonymous [`PatientKey`], and a category into a [`ScopeTag`], so that
//! the index can match pointers without learning who or what they are about.

use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ids::{PatientKey, ScopeTag};

/// Domain-separation label for [`patient_key`].
pub const PATIENT_KEY_LABEL: &[u8] = b"locus/patient/v1";
/// Domain-separation label for [`scope_tag`].
pub const SCOPE_TAG_LABEL: &[u8] = b"locus/scope/v1";

/// Longest linkage key id, in characters.
pub const MAX_KID_LEN: usize = 32;
/// Longest normalized identifier, in characters.
pub const MAX_IDENTIFIER_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Problems with a linkage key or its key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkageKeyError {
    /// The key id does not match `[a-z0-9-]{1,32}`.
    #[error("linkage key id must be 1 to 32 characters of a-z, 0-9 and '-'")]
    InvalidKid,
    /// The key file does not hold base64 (standard alphabet) of exactly 32 bytes.
    #[error("linkage key must be standard base64 of exactly 32 bytes")]
    InvalidEncoding,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

/// The consortium linkage key `K_link`, versioned by `kid` so it can be rotated.
///
/// Deliberately neither `Serialize` nor `Clone`: the secret leaves only through
/// [`LinkageKey::to_base64`], for key files. Its `Debug` never shows the secret.
pub struct LinkageKey {
    kid: String,
    secret: Zeroizing<[u8; 32]>,
}

impl LinkageKey {
    /// A key from its id and secret bytes.
    pub fn new(kid: &str, secret: [u8; 32]) -> Result<Self, LinkageKeyError> {
        let mut secret = Zeroizing::new(secret);
        Self::from_parts(kid, &mut secret)
    }

    fn from_parts(kid: &str, secret: &mut Zeroizing<[u8; 32]>) -> Result<Self, LinkageKeyError> {
        let kid_ok = (1..=MAX_KID_LEN).contains(&kid.len())
            && kid
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
        if !kid_ok {
            return Err(LinkageKeyError::InvalidKid);
        }
        Ok(Self {
            kid: kid.to_owned(),
            secret: core::mem::take(secret),
        })
    }

    /// A fresh random key.
    pub fn generate(kid: &str) -> Result<Self, LinkageKeyError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(&mut secret[..])
            .map_err(|_| LinkageKeyError::Rng)?;
        Self::from_parts(kid, &mut secret)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The secret as standard base64 (with padding), for a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(&self.secret[..]))
    }

    /// Reads a secret written by [`LinkageKey::to_base64`]; surrounding whitespace
    /// (such as a key file's final newline) is ignored.
    pub fn from_base64(kid: &str, encoded: &str) -> Result<Self, LinkageKeyError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        let mut decoded = Zeroizing::new(Vec::with_capacity(33));
        STANDARD
            .decode_vec(encoded.trim(), &mut decoded)
            .map_err(|_| LinkageKeyError::InvalidEncoding)?;
        if decoded.len() != 32 {
            return Err(LinkageKeyError::InvalidEncoding);
        }
        secret.copy_from_slice(&decoded);
        Self::from_parts(kid, &mut secret)
    }

    fn mac(&self) -> HmacSha256 {
        // RFC 2104 zero-pads a key shorter than the hash block; doing it here uses
        // the fixed-size constructor, which cannot fail, and gives the same MAC.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(&self.secret[..]);
        <HmacSha256 as KeyInit>::new(Key::<HmacSha256>::from_slice(&block[..]))
    }
}

redacted_debug!(LinkageKey, "kid", |k| k.kid);

/// Why a raw identifier could not be normalized. The input is never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Nothing is left after trimming and removing separators.
    #[error("identifier is empty")]
    Empty,
    /// More than 64 characters after normalization.
    #[error("identifier is longer than 64 characters")]
    TooLong,
    /// A character other than ASCII letters, digits and the separators ` -./`.
    #[error(
        "identifier may only contain ASCII letters, digits and the separators ' ', '-', '.', '/'"
    )]
    InvalidCharacter,
}

/// A patient identifier (national or insurance number) in normal form:
/// 1 to 64 characters of `[A-Z0-9]`. A direct identifier, so its `Debug` is
/// redacted and its memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct NormalizedIdentifier(Zeroizing<String>);

impl NormalizedIdentifier {
    /// The normalized form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NormalizedIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NormalizedIdentifier(<redacted>)")
    }
}

/// Normalizes a raw identifier: trims surrounding whitespace, upper-cases ASCII
/// letters and removes the separators space, `-`, `.` and `/`. Anything else that is
/// not an ASCII letter or digit is an error rather than silently dropped, so that
/// two different identifiers can never normalize to the same key.
pub fn normalize_identifier(raw: &str) -> Result<NormalizedIdentifier, IdentifierError> {
    // Capacity fixed up front so pushing never reallocates and leaves an unwiped copy.
    let mut out = Zeroizing::new(String::with_capacity(MAX_IDENTIFIER_LEN));
    for c in raw.trim().chars() {
        match c {
            ' ' | '-' | '.' | '/' => {}
            'A'..='Z' | 'a'..='z' | '0'..='9' => {
                if out.len() == MAX_IDENTIFIER_LEN {
                    return Err(IdentifierError::TooLong);
                }
                out.push(c.to_ascii_uppercase());
            }
            _ => return Err(IdentifierError::InvalidCharacter),
        }
    }
    if out.is_empty() {
        return Err(IdentifierError::Empty);
    }
    Ok(NormalizedIdentifier(out))
}

/// `HMAC-SHA256(K_link, PATIENT_KEY_LABEL || identifier)`.
pub fn patient_key(key: &LinkageKey, id: &NormalizedIdentifier) -> PatientKey {
    let mut mac = key.mac();
    mac.update(PATIENT_KEY_LABEL);
    mac.update(id.as_str().as_bytes());
    PatientKey::from_bytes(mac.finalize().into_bytes().into())
}

/// `HMAC-SHA256(K_link, SCOPE_TAG_LABEL || patient_key || category)`.
///
/// `category` must be the canonical tag input that both the publisher and the
/// grant issuer derive, i.e. the strings produced by
/// [`crate::scope::ScopeSet::tag_inputs`] and [`crate::scope::record_tag_inputs`]
/// (such as `Observation?category=laboratory`): any other spelling yields a tag
/// that silently never matches. The patient key is fixed-length, so the
/// concatenation is unambiguous.
pub fn scope_tag(key: &LinkageKey, patient: &PatientKey, category: &str) -> ScopeTag {
    let mut mac = key.mac();
    mac.update(SCOPE_TAG_LABEL);
    mac.update(patient.as_bytes());
    mac.update(category.as_bytes());
    ScopeTag::from_bytes(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> LinkageKey {
        let mut secret = [0u8; 32];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = i as u8;
        }
        LinkageKey::new("k1", secret).unwrap()
    }

    #[test]
    fn known_answers() {
        // Computed independently with python3:
        //   k = bytes(range(32))
        //   pk = hmac.new(k, b"locus/patient/v1" + b"123456789", sha256).digest()
        //   hmac.new(k, b"locus/scope/v1" + pk + b"laboratory", sha256).hexdigest()
        let key = test_key();
        let id = normalize_identifier(" 123-45-6789 ").unwrap();
        let pk = patient_key(&key, &id);
        assert_eq!(
            pk.to_string(),
            "1553afd87589661bffe7f636c024232c40cc9380f60c26b0070d34c25ae50bf6"
        );
        assert_eq!(
            scope_tag(&key, &pk, "laboratory").to_string(),
            "27e1dbcf55675425759c8c13d2f0d34ec896ae85ae6ee6382955f9d547e24d52"
        );
        assert_eq!(
            scope_tag(&key, &pk, "Observation?category=laboratory").to_string(),
            "8eb8f47b94815c08d9984f4c7adf95b947d7a5c58f7836b90b7ac9eab3ae34fc"
        );
    }

    #[test]
    fn normalization() {
        for (raw, want) in [
            ("123-45-6789", "123456789"),
            ("  123 45 6789\n", "123456789"),
            ("ab.12/cd", "AB12CD"),
            ("X", "X"),
        ] {
            assert_eq!(normalize_identifier(raw).unwrap().as_str(), want, "{raw:?}");
        }
        assert_eq!(normalize_identifier(""), Err(IdentifierError::Empty));
        assert_eq!(normalize_identifier(" - . / "), Err(IdentifierError::Empty));
        assert_eq!(
            normalize_identifier(&"9".repeat(65)),
            Err(IdentifierError::TooLong)
        );
        assert!(normalize_identifier(&format!("{}--", "9".repeat(64))).is_ok());
        for bad in ["123_456", "12\t34", "ß123", "１２３", "12+3", "a:b"] {
            assert_eq!(
                normalize_identifier(bad),
                Err(IdentifierError::InvalidCharacter),
                "{bad:?}"
            );
        }
        // Different spellings of one identifier give one key.
        let key = test_key();
        assert_eq!(
            patient_key(&key, &normalize_identifier("ab-12").unwrap()),
            patient_key(&key, &normalize_identifier("AB 12").unwrap())
        );
    }

    #[test]
    fn keys_separate_outputs() {
        let id = normalize_identifier("123456789").unwrap();
        let a = test_key();
        let b = LinkageKey::new("k2", [7; 32]).unwrap();
        let pa = patient_key(&a, &id);
        let pb = patient_key(&b, &id);
        assert_ne!(pa, pb);
        assert_ne!(
            scope_tag(&a, &pa, "laboratory"),
            scope_tag(&b, &pa, "laboratory")
        );
        assert_ne!(
            scope_tag(&a, &pa, "laboratory"),
            scope_tag(&a, &pb, "laboratory")
        );
        assert_ne!(
            scope_tag(&a, &pa, "laboratory"),
            scope_tag(&a, &pa, "imaging")
        );
        // A scope tag is never equal to the patient key under the same input.
        assert_ne!(scope_tag(&a, &pa, "").as_bytes(), pa.as_bytes());
        let g1 = LinkageKey::generate("g").unwrap();
        let g2 = LinkageKey::generate("g").unwrap();
        assert_ne!(patient_key(&g1, &id), patient_key(&g2, &id));
    }

    #[test]
    fn key_files_and_kids() {
        let key = test_key();
        let b64 = key.to_base64();
        let back = LinkageKey::from_base64("k1", &format!("{}\n", b64.as_str())).unwrap();
        let id = normalize_identifier("1").unwrap();
        assert_eq!(patient_key(&key, &id), patient_key(&back, &id));
        assert_eq!(
            LinkageKey::from_base64("k1", "AAAA").unwrap_err(),
            LinkageKeyError::InvalidEncoding
        );
        assert_eq!(
            LinkageKey::from_base64("k1", "not base64!").unwrap_err(),
            LinkageKeyError::InvalidEncoding
        );
        for bad in ["", "K1", "k_1", &"k".repeat(33)] {
            assert_eq!(
                LinkageKey::new(bad, [0; 32]).unwrap_err(),
                LinkageKeyError::InvalidKid
            );
        }
        assert_eq!(
            LinkageKey::new(&"k".repeat(32), [0; 32]).unwrap().kid(),
            "k".repeat(32)
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = LinkageKey::new("k1", [0x41; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("k1") && shown.contains("redacted"));
        assert!(!shown.contains("65") && !shown.contains("QUFB"));
        let id = normalize_identifier("123456789").unwrap();
        assert!(!format!("{id:?}").contains("123"));
    }
}

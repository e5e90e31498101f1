//! Validated identifier newtypes.
//!
//! Every id has exactly one string form. Parsing accepts only that form (no upper-case
//! hex, no braced or URN UUIDs), so two spellings of one id can never produce two
//! different canonical ledger entries or two index rows.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Domain-separation label for [`KeyId::for_ed25519`].
pub const KEY_ID_LABEL: &[u8] = b"locus/key-id/v1";

/// Longest [`MemberId`] / [`HospitalId`], in characters.
pub const MAX_MEMBER_ID_LEN: usize = 64;

/// Why a string is not a valid identifier. The input itself is never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly `len` lowercase hexadecimal characters.
    #[error("{kind} must be exactly {len} lowercase hexadecimal characters")]
    Hex { kind: &'static str, len: usize },
    /// Not a lowercase hyphenated UUID.
    #[error("{kind} must be a lowercase hyphenated UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    Uuid { kind: &'static str },
    /// Not a valid member name.
    #[error(
        "{kind} must be 1 to 64 characters of a-z, 0-9 and '-', start with a letter, \
         and neither end with '-' nor contain \"--\""
    )]
    Name { kind: &'static str },
    /// Not a FHIR resource id.
    #[error("FHIR id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'")]
    Fhir,
    /// Not exactly `len` characters of unpadded base64url.
    #[error("{kind} must be exactly {len} base64url characters without padding")]
    Base64Url { kind: &'static str, len: usize },
}

/// Decodes exactly `2 * N` lowercase hex characters.
pub(crate) fn parse_lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(bytes, &mut out).ok()?;
    Some(out)
}

/// 32-byte values shown as 64 lowercase hex characters. Equality is constant-time:
/// these are pseudonyms and commitments that services compare against attacker input.
macro_rules! hex32_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0[..].ct_eq(&other.0[..]).into()
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        /// Byte order (not constant-time): only for sorting and map keys.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                self.0.cmp(&other.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_lower_hex::<32>(s)
                    .map(Self)
                    .ok_or(IdError::Hex { kind: $kind, len: 64 })
            }
        }

        string_form!($name);
    };
}

hex32_id!(
    /// A patient's blinded key: `HMAC-SHA256(K_link, PATIENT_KEY_LABEL || identifier)`,
    /// see [`crate::linkage::patient_key`].
    PatientKey,
    "patient key"
);

hex32_id!(
    /// A blinded category tag, see [`crate::linkage::scope_tag`].
    ScopeTag,
    "scope tag"
);

hex32_id!(
    /// A salted SHA-256 commitment to a record's canonical content.
    Commitment,
    "commitment"
);

hex32_id!(
    /// A Merkle tree root (SHA-256), e.g. over a published batch's commitments.
    MerkleRoot,
    "merkle root"
);

hex32_id!(
    /// A plain (unsalted) SHA-256 digest of some content, e.g. of a record as released.
    ContentDigest,
    "content digest"
);

/// UUID ids. Distinct types so that a pointer id can never be passed as a grant id.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (version 4) id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `Uuid`'s Display is the lowercase hyphenated form.
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_uuid(s).map(Self).ok_or(IdError::Uuid { kind: $kind })
            }
        }

        string_form!($name);
    };
}

/// Parses only the lowercase hyphenated form; `Uuid::try_parse` would also accept
/// simple, braced, URN and upper-case forms.
fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    let uuid = Uuid::try_parse(s).ok()?;
    let mut buf = Uuid::encode_buffer();
    (uuid.hyphenated().encode_lower(&mut buf) == s).then_some(uuid)
}

uuid_id!(
    /// Identifies one published pointer in the index.
    PointerId,
    "pointer id"
);
uuid_id!(
    /// Identifies one grant (the JWT `jti`).
    GrantId,
    "grant id"
);
uuid_id!(
    /// Identifies one access request.
    RequestId,
    "request id"
);
uuid_id!(
    /// Identifies one standing rule a patient signed (see [`crate::consent::StandingRule`]).
    RuleId,
    "rule id"
);

fn is_member_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_MEMBER_ID_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Ids written as text: `$name($inner)` whose `FromStr` is `|s| $parse` (giving
/// the inner value or an [`IdError`]), printed as `as_str()`.
macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident($inner:ty), |$s:ident| $parse:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($inner);

        impl $name {
            /// The id as a string.
            pub fn as_str(&self) -> &str {
                self.0.as_ref()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str($s: &str) -> Result<Self, IdError> {
                $parse.map(Self)
            }
        }

        string_form!($name);
    };
}

text_id!(
    /// A consortium member (hospital, index, consent service, regulator): 1 to 64
    /// characters of `[a-z0-9-]`, starting with a letter, no trailing `-`, no `--`.
    MemberId(String),
    |s| is_member_name(s)
        .then(|| s.to_owned())
        .ok_or(IdError::Name { kind: "member id" })
);

text_id!(
    /// A member acting as a record custodian. Same syntax as [`MemberId`], but a
    /// distinct type so that the custodian slot of an event only takes a hospital.
    HospitalId(MemberId),
    |s| is_member_name(s)
        .then(|| MemberId(s.to_owned()))
        .ok_or(IdError::Name {
            kind: "hospital id"
        })
);

impl HospitalId {
    /// The same id as a plain member id.
    pub fn as_member(&self) -> &MemberId {
        &self.0
    }
}

impl From<HospitalId> for MemberId {
    fn from(h: HospitalId) -> Self {
        h.0
    }
}

/// Longest [`FhirId`], in characters.
pub const MAX_FHIR_ID_LEN: usize = 64;

text_id!(
    /// A FHIR R4 resource id (the `id` datatype): 1 to 64 characters of
    /// `[A-Za-z0-9\-.]`. Kept exactly as given: R4 calls ids case-insensitive, but
    /// servers look them up case-sensitively, so folding case could name another record.
    FhirId(String),
    |s| {
        let ok = (1..=MAX_FHIR_ID_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        ok.then(|| s.to_owned()).ok_or(IdError::Fhir)
    }
);

/// Identifies an Ed25519 member key: the first 8 bytes of
/// `SHA-256(KEY_ID_LABEL || public key)`, as 16 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The id of an Ed25519 public key, given as its 32 bytes (see
    /// [`crate::signing::VerifyingKey::key_id`]).
    pub fn for_ed25519(key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(KEY_ID_LABEL)
            .chain_update(key)
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self(id)
    }

    /// The raw 8 bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_lower_hex::<8>(s).map(Self).ok_or(IdError::Hex {
            kind: "key id",
            len: 16,
        })
    }
}

string_form!(KeyId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::SigningKey;

    const HEX64: &str = "1553afd87589661bffe7f636c024232c40cc9380f60c26b0070d34c25ae50bf6";

    #[test]
    fn hex32_round_trip_and_rejects() {
        let k: PatientKey = HEX64.parse().unwrap();
        assert_eq!(k.to_string(), HEX64);
        assert_eq!(PatientKey::from_bytes(*k.as_bytes()), k);
        assert_eq!(ScopeTag::try_from(HEX64).unwrap().to_string(), HEX64);
        for bad in [
            "",
            &HEX64[..63],
            &format!("{HEX64}0"),
            &HEX64.to_uppercase(),
            &format!("0x{}", &HEX64[2..]),
            &format!("{}g", &HEX64[..63]),
            &format!(" {}", &HEX64[1..]),
        ] {
            assert!(bad.parse::<PatientKey>().is_err(), "{bad:?}");
        }
        let err = "zz".parse::<Commitment>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "commitment must be exactly 64 lowercase hexadecimal characters"
        );
    }

    #[test]
    fn hex32_serde() {
        let k = PatientKey::from_bytes([0xab; 32]);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<PatientKey>(&json).unwrap(), k);
        assert!(serde_json::from_str::<PatientKey>(&json.to_uppercase()).is_err());
        assert!(serde_json::from_str::<PatientKey>("42").is_err());
    }

    #[test]
    fn hex32_eq_and_order() {
        let a = ScopeTag::from_bytes([1; 32]);
        let mut b_bytes = [1; 32];
        b_bytes[31] = 2;
        let b = ScopeTag::from_bytes(b_bytes);
        assert_ne!(a, b);
        assert!(a < b);
        assert_eq!(a, ScopeTag::from_bytes([1; 32]));
    }

    #[test]
    fn uuid_forms() {
        let s = "123e4567-e89b-42d3-a456-426614174000";
        let g: GrantId = s.parse().unwrap();
        assert_eq!(g.to_string(), s);
        assert_eq!(serde_json::to_string(&g).unwrap(), format!("\"{s}\""));
        for bad in [
            "123E4567-E89B-42D3-A456-426614174000",
            "{123e4567-e89b-42d3-a456-426614174000}",
            "urn:uuid:123e4567-e89b-42d3-a456-426614174000",
            "123e4567e89b42d3a456426614174000",
            "123e4567-e89b-42d3-a456-42661417400",
            "123e4567-e89b-42d3-a456-4266141740000",
            "",
        ] {
            assert!(bad.parse::<GrantId>().is_err(), "{bad:?}");
            assert!(serde_json::from_str::<PointerId>(&format!("\"{bad}\"")).is_err());
        }
        let r = RequestId::new_random();
        assert_eq!(
            Uuid::parse_str(&r.to_string()).unwrap().get_version_num(),
            4
        );
        assert_eq!(r.to_string().parse::<RequestId>().unwrap(), r);
        assert_ne!(PointerId::new_random(), PointerId::new_random());
    }

    #[test]
    fn member_ids() {
        for good in [
            "a",
            "st-mary-hospital",
            "h1",
            "regulator-2",
            &"a".repeat(64),
        ] {
            let m: MemberId = good.parse().unwrap();
            assert_eq!(m.as_str(), good);
            let h: HospitalId = good.parse().unwrap();
            assert_eq!(h.as_member(), &m);
            assert_eq!(MemberId::from(h), m);
        }
        for bad in [
            "",
            "1abc",
            "-abc",
            "abc-",
            "a--b",
            "Abc",
            "a_b",
            "a b",
            "a.b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(bad.parse::<MemberId>().is_err(), "{bad:?}");
            assert!(bad.parse::<HospitalId>().is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<HospitalId>("\"Bad\"").is_err());
        assert_eq!(
            serde_json::from_str::<HospitalId>("\"st-mary\"")
                .unwrap()
                .to_string(),
            "st-mary"
        );
    }

    #[test]
    fn fhir_ids() {
        for good in [
            "a",
            "Obs-1.2",
            "123",
            &"Z".repeat(64),
            "e5b9d1c2-0000-4000-8000-000000000001",
        ] {
            let id: FhirId = good.parse().unwrap();
            assert_eq!(id.as_str(), good);
            assert_eq!(
                serde_json::from_str::<FhirId>(&serde_json::to_string(&id).unwrap()).unwrap(),
                id
            );
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "a_b",
            "é",
            "a\n",
            &"a".repeat(65),
            "Observation/1",
        ] {
            assert_eq!(bad.parse::<FhirId>(), Err(IdError::Fhir), "{bad:?}");
        }
        let d: ContentDigest = HEX64.parse().unwrap();
        assert_eq!(d.to_string(), HEX64);
    }

    #[test]
    fn key_id_known_answer() {
        // RFC 8032 test 1 public key; expected value computed independently with
        // python3: hashlib.sha256(b"locus/key-id/v1" + pk).hexdigest()[:16]
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let key = SigningKey::from_seed(seed.try_into().unwrap());
        let kid = key.verifying_key().key_id();
        assert_eq!(kid.to_string(), "8b017384498f5f95");
        assert_eq!("8b017384498f5f95".parse::<KeyId>().unwrap(), kid);
        for bad in [
            "8B017384498F5F95",
            "8b017384498f5f9",
            "8b017384498f5f950",
            "",
        ] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad:?}");
        }
    }
}

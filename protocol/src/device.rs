//! Patient device keys and device signatures.
//!
//! A patient's phone holds its own key pair: ECDSA P-256 as WebCrypto makes it, or
//! Ed25519. The consent service and the ledger hold only the public half, as a JWK:
//! `{"crv":"P-256","kty":"EC","x":..,"y":..}` (RFC 7517, RFC 7518 §6.2) or
//! `{"crv":"Ed25519","kty":"OKP","x":..}` (RFC 8037 §2). A device is named by its
//! key's RFC 7638 thumbprint, [`DeviceKeyId`].
//!
//! A device signature covers `DEVICE_SIGNATURE_CONTEXT || message`, where `message` is
//! the canonical JSON of one of the objects in [`crate::consent`]. The context keeps a
//! device signature from being anything else; the consent objects' distinct member
//! sets keep one kind of consent from being read as another.
//!
//! ECDSA signatures are the 64-byte `r || s` (IEEE P1363) form WebCrypto produces;
//! DER is refused. Both `s` and `n - s` are accepted: WebCrypto does not require a
//! low `s` and browsers emit either, so refusing high-`s` would refuse about half of
//! honest approvals. The cost is malleability: from one valid signature anyone can
//! make a second one over the same message. That forges nothing, but signature bytes
//! must never serve as an id; the ledger names decisions by request, rules by rule id
//! and revocations by grant.
//! Ed25519 uses `verify_strict` (canonical `S`, no small-order keys).

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::{RandomizedSigner as _, Verifier as _};
use p256::elliptic_curve::sec1::Coordinates;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::IdError;
use crate::signing::{decode_b64_array, Signature64, SigningKey, VerifyError, VerifyingKey};

/// Prepended to every message a device signs.
pub const DEVICE_SIGNATURE_CONTEXT: &[u8] = b"locus/device/v1\n";

/// Longest JWK text [`DeviceKey::from_webcrypto_jwk`] reads, in bytes.
pub const MAX_JWK_LEN: usize = 4096;

/// Why a JWK is not an acceptable device key. Key material is never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceKeyError {
    /// Longer than [`MAX_JWK_LEN`].
    #[error("device key JWK is longer than {MAX_JWK_LEN} bytes")]
    TooLong,
    /// Not a JSON object with the members a public JWK of its type needs.
    #[error(
        "device key must be a public JWK: {{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\",\"y\"}} \
         or {{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\"}}"
    )]
    Malformed,
    /// Another key type or curve.
    #[error("device keys must be EC P-256 or OKP Ed25519")]
    Unsupported,
    /// The JWK holds a private key (`d`).
    #[error("device key JWK must not contain a private key (\"d\")")]
    PrivateKey,
    /// A coordinate is not unpadded base64url of exactly 32 bytes.
    #[error("JWK x and y must be base64url (no padding) of exactly 32 bytes")]
    InvalidEncoding,
    /// Not a point of the curve, a small-order Ed25519 point, or a non-canonical
    /// encoding of one.
    #[error("not a valid public key for its curve")]
    InvalidPoint,
    /// `alg`, `use` or `key_ops` say the key is not for these signatures.
    #[error("JWK alg, use or key_ops do not allow verifying ES256 / EdDSA signatures")]
    WrongUse,
}

/// The signature algorithm of a device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (JOSE `ES256`), signatures `r || s`.
    EcdsaP256,
    /// Ed25519 (JOSE `EdDSA`).
    Ed25519,
}

impl DeviceKeyAlgorithm {
    /// The JOSE `alg` name.
    pub const fn jose_alg(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ES256",
            Self::Ed25519 => "EdDSA",
        }
    }
}

/// A patient device's public key. JSON form: the public JWK with exactly the members
/// RFC 7638 hashes (`crv`, `kty`, `x` and, for EC, `y`), so the stored form is the
/// thumbprint input. [`DeviceKey::from_webcrypto_jwk`] also takes the metadata
/// members WebCrypto's `exportKey("jwk", ...)` adds.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey(Key);

#[derive(Clone, PartialEq, Eq)]
enum Key {
    /// The coordinates are kept as given (already checked canonical) for the JWK.
    P256 {
        key: p256::ecdsa::VerifyingKey,
        x: [u8; 32],
        y: [u8; 32],
    },
    Ed25519(VerifyingKey),
}

impl DeviceKey {
    /// Wraps a P-256 public key. Fails only for the point at infinity, which a
    /// `VerifyingKey` never is.
    pub fn from_p256(key: &p256::ecdsa::VerifyingKey) -> Result<Self, DeviceKeyError> {
        match key.to_encoded_point(false).coordinates() {
            Coordinates::Uncompressed { x, y } => Ok(Self(Key::P256 {
                key: *key,
                x: (*x).into(),
                y: (*y).into(),
            })),
            _ => Err(DeviceKeyError::InvalidPoint),
        }
    }

    /// Wraps an Ed25519 public key, refusing non-canonical encodings so that one key
    /// has one JWK and one thumbprint ([`VerifyingKey`] already refuses small order).
    pub fn from_ed25519(key: VerifyingKey) -> Result<Self, DeviceKeyError> {
        if key.as_dalek().to_edwards().compress().to_bytes() != key.to_bytes() {
            return Err(DeviceKeyError::InvalidPoint);
        }
        Ok(Self(Key::Ed25519(key)))
    }

    /// Parses a public JWK as WebCrypto exports it: the key members plus, optionally,
    /// `alg` (`ES256`; `EdDSA` or `Ed25519`), `use` (`sig`), `key_ops` (only
    /// `verify`), `ext` and `kid`, which are checked and dropped. Anything else,
    /// including a private `d`, is refused.
    pub fn from_webcrypto_jwk(json: &str) -> Result<Self, DeviceKeyError> {
        if json.len() > MAX_JWK_LEN {
            return Err(DeviceKeyError::TooLong);
        }
        let jwk: ExportedJwk = serde_json::from_str(json).map_err(|_| DeviceKeyError::Malformed)?;
        let key = jwk.public_key()?;
        let alg_ok = match (key.algorithm(), jwk.alg.as_deref()) {
            (_, None) => true,
            (DeviceKeyAlgorithm::EcdsaP256, Some(alg)) => alg == "ES256",
            (DeviceKeyAlgorithm::Ed25519, Some(alg)) => alg == "EdDSA" || alg == "Ed25519",
        };
        let use_ok = jwk.use_.as_deref().is_none_or(|u| u == "sig");
        let ops_ok = jwk
            .key_ops
            .as_deref()
            .is_none_or(|ops| ops.iter().all(|op| op == "verify"));
        if !(alg_ok && use_ok && ops_ok) {
            return Err(DeviceKeyError::WrongUse);
        }
        Ok(key)
    }

    fn from_members(
        kty: &str,
        crv: &str,
        x: &str,
        y: Option<&str>,
    ) -> Result<Self, DeviceKeyError> {
        let coordinate = |s: &str| {
            decode_b64_array::<32>(&URL_SAFE_NO_PAD, s).ok_or(DeviceKeyError::InvalidEncoding)
        };
        match (kty, crv, y) {
            ("EC", "P-256", Some(y)) => {
                let (x, y) = (coordinate(x)?, coordinate(y)?);
                let point = p256::EncodedPoint::from_affine_coordinates(
                    &p256::FieldBytes::from(x),
                    &p256::FieldBytes::from(y),
                    false,
                );
                // Checks that both coordinates are below p and satisfy the curve
                // equation; P-256 has cofactor 1, so every such point is usable.
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| DeviceKeyError::InvalidPoint)?;
                Ok(Self(Key::P256 { key, x, y }))
            }
            ("OKP", "Ed25519", None) => {
                let key = VerifyingKey::from_bytes(&coordinate(x)?)
                    .map_err(|_| DeviceKeyError::InvalidPoint)?;
                Self::from_ed25519(key)
            }
            ("EC", "P-256", None) | ("OKP", "Ed25519", Some(_)) => Err(DeviceKeyError::Malformed),
            _ => Err(DeviceKeyError::Unsupported),
        }
    }

    /// The key's signature algorithm.
    pub fn algorithm(&self) -> DeviceKeyAlgorithm {
        match self.0 {
            Key::P256 { .. } => DeviceKeyAlgorithm::EcdsaP256,
            Key::Ed25519(_) => DeviceKeyAlgorithm::Ed25519,
        }
    }

    /// The RFC 7638 JWK thumbprint: SHA-256 over the required members in
    /// lexicographic order, no whitespace.
    pub fn thumbprint(&self) -> DeviceKeyId {
        let input = match &self.0 {
            Key::P256 { x, y, .. } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
            Key::Ed25519(key) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(key.as_bytes())
            ),
        };
        DeviceKeyId(Sha256::digest(input.as_bytes()).into())
    }

    /// Checks a device signature over `DEVICE_SIGNATURE_CONTEXT || message`: ECDSA
    /// P-256 with SHA-256 as 64-byte `r || s` (either `s`), or Ed25519 under
    /// `verify_strict`. One opaque error whatever went wrong.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let signed = [DEVICE_SIGNATURE_CONTEXT, message].concat();
        match &self.0 {
            Key::P256 { key, .. } => {
                // `from_slice` takes exactly 64 bytes with r and s in 1..n.
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| VerifyError)?;
                key.verify(&signed, &sig).map_err(|_| VerifyError)
            }
            Key::Ed25519(key) => {
                let sig = Signature64::try_from(signature).map_err(|_| VerifyError)?;
                key.verify(&signed, &sig)
            }
        }
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("alg", &self.algorithm().jose_alg())
            .field("id", &self.thumbprint())
            .finish()
    }
}

#[derive(Serialize)]
struct JwkRef {
    crv: &'static str,
    kty: &'static str,
    x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

impl Serialize for DeviceKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let jwk = match &self.0 {
            Key::P256 { x, y, .. } => JwkRef {
                crv: "P-256",
                kty: "EC",
                x: URL_SAFE_NO_PAD.encode(x),
                y: Some(URL_SAFE_NO_PAD.encode(y)),
            },
            Key::Ed25519(key) => JwkRef {
                crv: "Ed25519",
                kty: "OKP",
                x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
                y: None,
            },
        };
        jwk.serialize(s)
    }
}

/// Whether a member is present at all (even as `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// Declares a JWK as read from JSON: the key members, whether a private `d` is
/// present, then `$extra` members; any other member is refused.
macro_rules! jwk_members {
    ($name:ident { $($extra:tt)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            kty: String,
            crv: String,
            x: String,
            #[serde(default)]
            y: Option<String>,
            #[serde(default, deserialize_with = "present")]
            d: bool,
            $($extra)*
        }

        impl $name {
            /// The public key these members describe; a private key is refused.
            fn public_key(&self) -> Result<DeviceKey, DeviceKeyError> {
                if self.d {
                    return Err(DeviceKeyError::PrivateKey);
                }
                DeviceKey::from_members(&self.kty, &self.crv, &self.x, self.y.as_deref())
            }
        }
    };
}

jwk_members!(StrictJwk {});

jwk_members!(ExportedJwk {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    ext: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    kid: Option<IgnoredAny>,
});

impl<'de> Deserialize<'de> for DeviceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StrictJwk::deserialize(d)?
            .public_key()
            .map_err(serde::de::Error::custom)
    }
}

/// Names a device: the RFC 7638 SHA-256 thumbprint of its public key. String and
/// JSON form: 43 characters of unpadded base64url, strictly decoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKeyId([u8; 32]);

impl DeviceKeyId {
    /// Wraps a 32-byte thumbprint.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

base64_form!(
    DeviceKeyId([u8; 32]),
    URL_SAFE_NO_PAD,
    IdError = IdError::Base64Url {
        kind: "device key id",
        len: 43,
    }
);

/// Signs as a patient device: for tests and the demo's simulated phone (a real
/// phone signs in WebCrypto). Secret keys are wiped on drop; `Debug` shows only the
/// public key.
pub struct DeviceSigner {
    secret: Secret,
    public: DeviceKey,
}

enum Secret {
    P256(p256::ecdsa::SigningKey),
    Ed25519(SigningKey),
}

impl DeviceSigner {
    /// A fresh random ECDSA P-256 key, like WebCrypto's `generateKey`.
    pub fn generate_p256() -> Self {
        // `from_p256` cannot fail for a key p256 made; looping keeps that out of
        // the signature without a panic path (as key generation itself loops).
        loop {
            let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
            if let Ok(signer) = Self::from_p256(key) {
                return signer;
            }
        }
    }

    /// A fresh random Ed25519 key.
    pub fn generate_ed25519() -> Self {
        loop {
            if let Ok(signer) = Self::from_ed25519(SigningKey::generate()) {
                return signer;
            }
        }
    }

    /// A fresh signer of each algorithm, for tests that must hold for both.
    #[cfg(test)]
    pub(crate) fn of_each_algorithm() -> [Self; 2] {
        [Self::generate_p256(), Self::generate_ed25519()]
    }

    /// Signs with an existing P-256 key.
    pub fn from_p256(key: p256::ecdsa::SigningKey) -> Result<Self, DeviceKeyError> {
        let public = DeviceKey::from_p256(key.verifying_key())?;
        Ok(Self {
            secret: Secret::P256(key),
            public,
        })
    }

    /// Signs with an existing Ed25519 key.
    pub fn from_ed25519(key: SigningKey) -> Result<Self, DeviceKeyError> {
        let public = DeviceKey::from_ed25519(key.verifying_key())?;
        Ok(Self {
            secret: Secret::Ed25519(key),
            public,
        })
    }

    /// The public key, as the device would export it.
    pub fn public_jwk(&self) -> DeviceKey {
        self.public.clone()
    }

    /// The device's id (its key's thumbprint).
    pub fn device_id(&self) -> DeviceKeyId {
        self.public.thumbprint()
    }

    /// Signs `DEVICE_SIGNATURE_CONTEXT || message`: 64 bytes, `r || s` for P-256.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signed = [DEVICE_SIGNATURE_CONTEXT, message].concat();
        match &self.secret {
            Secret::P256(key) => loop {
                // Hedged RFC 6979 (fresh randomness mixed in, as a phone would);
                // fails only if r or s comes out zero, about 2^-256, then retries.
                let attempt: Result<p256::ecdsa::Signature, _> =
                    key.try_sign_with_rng(&mut rand_core::OsRng, &signed);
                if let Ok(sig) = attempt {
                    break sig.to_bytes().to_vec();
                }
            },
            Secret::Ed25519(key) => key.sign(&signed).as_bytes().to_vec(),
        }
    }
}

redacted_debug!(DeviceSigner, "public", |k| k.public);

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.2's public key (the RFC 8032 test 1 key).
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    /// A fixed P-256 key, exported the way WebCrypto's `exportKey("jwk", publicKey)`
    /// does (member order and metadata as Chrome and Firefox write them).
    fn fixed_p256() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap()
    }

    fn webcrypto_jwk(key: &p256::ecdsa::SigningKey) -> String {
        let point = key.verifying_key().to_encoded_point(false);
        format!(
            r#"{{"crv":"P-256","ext":true,"key_ops":["verify"],"kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            URL_SAFE_NO_PAD.encode(point.y().unwrap())
        )
    }

    fn strict(json: &str) -> Result<DeviceKey, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn parses_webcrypto_p256() {
        let signer = fixed_p256();
        let jwk = webcrypto_jwk(&signer);
        let key = DeviceKey::from_webcrypto_jwk(&jwk).unwrap();
        assert_eq!(key.algorithm(), DeviceKeyAlgorithm::EcdsaP256);
        assert_eq!(key, DeviceKey::from_p256(signer.verifying_key()).unwrap());
        // The stored form is exactly the RFC 7638 members, and parses strictly.
        let stored = serde_json::to_string(&key).unwrap();
        let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
        let mut members: Vec<&String> = v.as_object().unwrap().keys().collect();
        members.sort();
        assert_eq!(members, ["crv", "kty", "x", "y"]);
        assert_eq!(strict(&stored).unwrap(), key);
        // The strict form refuses WebCrypto's metadata; the WebCrypto parser takes it.
        assert!(strict(&jwk).is_err());
        let with_alg = jwk.replace(r#""ext":true"#, r#""alg":"ES256","ext":true,"use":"sig""#);
        assert_eq!(DeviceKey::from_webcrypto_jwk(&with_alg).unwrap(), key);
    }

    #[test]
    fn parses_rfc8037_ed25519() {
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#);
        let key = strict(&jwk).unwrap();
        assert_eq!(key.algorithm(), DeviceKeyAlgorithm::Ed25519);
        assert_eq!(DeviceKey::from_webcrypto_jwk(&jwk).unwrap(), key);
        assert_eq!(
            serde_json::to_string(&key).unwrap(),
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{RFC8037_X}"}}"#)
        );
        // RFC 8037 appendix A.3.
        assert_eq!(
            key.thumbprint().to_string(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn ec_thumbprint_known_answer() {
        // RFC 7638's own example is RSA. This is the EC key of RFC 7517 appendix A.1;
        // the expected value was computed independently with python3:
        // base64.urlsafe_b64encode(hashlib.sha256(b'{"crv":"P-256","kty":"EC",
        //   "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        //   "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}').digest()).rstrip(b"=")
        let jwk = r#"{"kty":"EC","crv":"P-256",
            "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#;
        let key = strict(jwk).unwrap();
        assert_eq!(
            key.thumbprint().to_string(),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
        // The thumbprint input is the canonical JSON of the stored form.
        let canonical = crate::jcs::to_canonical_vec(&key).unwrap();
        assert_eq!(
            key.thumbprint().as_bytes()[..],
            Sha256::digest(&canonical)[..]
        );
        let id = key.thumbprint();
        assert_eq!(id.to_string().parse::<DeviceKeyId>().unwrap(), id);
        assert_eq!(
            serde_json::from_str::<DeviceKeyId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
    }

    #[test]
    fn rejections() {
        let signer = fixed_p256();
        let good: serde_json::Value = serde_json::from_str(&webcrypto_jwk(&signer)).unwrap();
        let x = good["x"].as_str().unwrap().to_owned();
        let y = good["y"].as_str().unwrap().to_owned();
        let ec = |x: &str, y: &str| format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        // y with one bit flipped is (almost surely) off the curve.
        let mut y_bytes = URL_SAFE_NO_PAD.decode(&y).unwrap();
        y_bytes[31] ^= 1;
        let off_curve = ec(&x, &URL_SAFE_NO_PAD.encode(&y_bytes));
        // p itself: a coordinate that is not a field element.
        let p = "_____wAAAAEAAAAAAAAAAAAAAAD_______________8";
        // The Ed25519 identity point (small order), and a non-canonical encoding
        // (y + p) of a usable point with a small y.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let small_y = (2u8..19)
            .find(|&y| {
                let mut canonical = [0u8; 32];
                canonical[0] = y;
                VerifyingKey::from_bytes(&canonical).is_ok()
            })
            .unwrap();
        let mut non_canonical = [0xff; 32];
        non_canonical[0] = 0xed + small_y;
        non_canonical[31] = 0x7f;
        assert!(VerifyingKey::from_bytes(&non_canonical).is_ok());
        let okp = |x: &[u8]| {
            format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x)
            )
        };
        let cases: Vec<(&str, String, DeviceKeyError)> = vec![
            (
                "P-384",
                ec(&x, &y).replace("P-256", "P-384"),
                DeviceKeyError::Unsupported,
            ),
            (
                "secp256k1",
                ec(&x, &y).replace("P-256", "secp256k1"),
                DeviceKeyError::Unsupported,
            ),
            (
                "RSA",
                r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.into(),
                DeviceKeyError::Malformed,
            ),
            (
                "X25519",
                okp(&[9; 32]).replace("Ed25519", "X25519"),
                DeviceKeyError::Unsupported,
            ),
            (
                "oct",
                r#"{"kty":"oct","crv":"x","x":"AA"}"#.into(),
                DeviceKeyError::Unsupported,
            ),
            (
                "private EC",
                ec(&x, &y).replace("}", r#","d":"AAAA"}"#),
                DeviceKeyError::PrivateKey,
            ),
            (
                "private OKP",
                okp(&[9; 32]).replace(
                    "}",
                    r#","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#,
                ),
                DeviceKeyError::PrivateKey,
            ),
            ("short x", ec(&x[..42], &y), DeviceKeyError::InvalidEncoding),
            (
                "long x",
                ec(&format!("{x}AA"), &y),
                DeviceKeyError::InvalidEncoding,
            ),
            (
                "padded x",
                ec(&format!("{x}="), &y),
                DeviceKeyError::InvalidEncoding,
            ),
            (
                "std alphabet",
                ec(&format!("+{}", &x[1..]), &y),
                DeviceKeyError::InvalidEncoding,
            ),
            ("off curve", off_curve, DeviceKeyError::InvalidPoint),
            ("x = p", ec(p, &y), DeviceKeyError::InvalidPoint),
            (
                "EC without y",
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}"}}"#),
                DeviceKeyError::Malformed,
            ),
            (
                "OKP with y",
                okp(&[9; 32]).replace("}", &format!(r#","y":"{y}"}}"#)),
                DeviceKeyError::Malformed,
            ),
            ("small order", okp(&identity), DeviceKeyError::InvalidPoint),
            (
                "non-canonical",
                okp(&non_canonical),
                DeviceKeyError::InvalidPoint,
            ),
            ("short OKP", okp(&[9; 31]), DeviceKeyError::InvalidEncoding),
            ("not JSON", "kty=EC".into(), DeviceKeyError::Malformed),
            ("array", "[]".into(), DeviceKeyError::Malformed),
            (
                "wrong alg",
                ec(&x, &y).replace("}", r#","alg":"ES384"}"#),
                DeviceKeyError::WrongUse,
            ),
            (
                "encryption key",
                ec(&x, &y).replace("}", r#","use":"enc"}"#),
                DeviceKeyError::WrongUse,
            ),
            (
                "signing key ops",
                ec(&x, &y).replace("}", r#","key_ops":["sign"]}"#),
                DeviceKeyError::WrongUse,
            ),
            (
                "unknown member",
                ec(&x, &y).replace("}", r#","x5c":[]}"#),
                DeviceKeyError::Malformed,
            ),
            (
                "too long",
                format!("{}{}", " ".repeat(MAX_JWK_LEN), ec(&x, &y)),
                DeviceKeyError::TooLong,
            ),
        ];
        for (name, json, want) in cases {
            // Only the WebCrypto parser bounds the input length.
            let strict_refuses = want != DeviceKeyError::TooLong;
            assert_eq!(DeviceKey::from_webcrypto_jwk(&json), Err(want), "{name}");
            assert_eq!(strict(&json).is_err(), strict_refuses, "{name} (strict)");
        }
        assert!(strict(&okp(&[9; 32]).replace("}", r#","d":null}"#)).is_err());
        // Sanity: the unmodified keys parse.
        assert!(strict(&ec(&x, &y)).is_ok());
        assert!(DeviceKey::from_webcrypto_jwk(&okp(&RFC8037_X
            .parse::<VerifyingKey>()
            .unwrap()
            .to_bytes()))
        .is_ok());
        // Ids refuse other spellings.
        for bad in [
            "",
            "AAAA",
            &format!("{}=", "A".repeat(43)),
            &"A".repeat(44),
            &format!("{}B", "A".repeat(42)),
        ] {
            assert!(bad.parse::<DeviceKeyId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signatures_round_trip() {
        for signer in DeviceSigner::of_each_algorithm() {
            let key = signer.public_jwk();
            assert_eq!(signer.device_id(), key.thumbprint());
            let sig = signer.sign(b"approve request 1");
            assert_eq!(sig.len(), 64);
            key.verify(b"approve request 1", &sig).unwrap();
            // Another message (a replay onto other terms) fails.
            assert_eq!(key.verify(b"approve request 2", &sig), Err(VerifyError));
            assert_eq!(key.verify(b"", &sig), Err(VerifyError));
            // Any flipped bit fails.
            for i in 0..64 {
                let mut bad = sig.clone();
                bad[i] ^= 0x10;
                assert_eq!(
                    key.verify(b"approve request 1", &bad),
                    Err(VerifyError),
                    "{i}"
                );
            }
            // Wrong lengths fail.
            assert_eq!(
                key.verify(b"approve request 1", &sig[..63]),
                Err(VerifyError)
            );
            assert_eq!(
                key.verify(b"approve request 1", &[sig.clone(), vec![0]].concat()),
                Err(VerifyError)
            );
            // Another device's key fails.
            let other = DeviceSigner::generate_p256().public_jwk();
            assert_eq!(other.verify(b"approve request 1", &sig), Err(VerifyError));
            // Debug never shows the secret.
            let shown = format!("{signer:?}");
            assert!(shown.contains("redacted") && shown.contains(&key.thumbprint().to_string()));
        }
    }

    #[test]
    fn context_is_required() {
        // A signature over the bare message (no context) does not verify.
        let sk = fixed_p256();
        let bare: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&sk, b"approve");
        let key = DeviceKey::from_p256(sk.verifying_key()).unwrap();
        assert_eq!(key.verify(b"approve", &bare.to_bytes()), Err(VerifyError));
        let with_ctx: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(
            &sk,
            &[DEVICE_SIGNATURE_CONTEXT, b"approve"].concat(),
        );
        key.verify(b"approve", &with_ctx.to_bytes()).unwrap();

        let ed = SigningKey::from_seed([3; 32]);
        let key = DeviceKey::from_ed25519(ed.verifying_key()).unwrap();
        assert_eq!(
            key.verify(b"approve", ed.sign(b"approve").as_bytes()),
            Err(VerifyError)
        );
    }

    #[test]
    fn ecdsa_forms() {
        let signer = DeviceSigner::from_p256(fixed_p256()).unwrap();
        let key = signer.public_jwk();
        let sig = p256::ecdsa::Signature::from_slice(&signer.sign(b"m")).unwrap();
        // Both s and n - s verify (WebCrypto emits either).
        let (low, high) = match sig.normalize_s() {
            Some(low) => (low, sig),
            None => {
                let s = -*sig.s();
                (
                    sig,
                    p256::ecdsa::Signature::from_scalars(sig.r(), s).unwrap(),
                )
            }
        };
        key.verify(b"m", &low.to_bytes()).unwrap();
        key.verify(b"m", &high.to_bytes()).unwrap();
        // DER is refused, even though it encodes a valid signature.
        let integer = |bytes: &[u8]| {
            let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
            let body = if trimmed[0] & 0x80 != 0 {
                [&[0][..], &trimmed].concat()
            } else {
                trimmed
            };
            [&[0x02, body.len() as u8][..], &body].concat()
        };
        let bytes = sig.to_bytes();
        let (r, s) = bytes.split_at(32);
        let seq = [integer(r), integer(s)].concat();
        let der = [&[0x30, seq.len() as u8][..], &seq].concat();
        assert_eq!(key.verify(b"m", &der), Err(VerifyError));
        // r = 0 or s = 0, and r >= n, are refused without panicking.
        let bytes = sig.to_bytes();
        let mut zero_r = bytes.to_vec();
        zero_r[..32].fill(0);
        assert_eq!(key.verify(b"m", &zero_r), Err(VerifyError));
        let mut big_r = bytes.to_vec();
        big_r[..32].fill(0xff);
        assert_eq!(key.verify(b"m", &big_r), Err(VerifyError));
        assert_eq!(key.verify(b"m", &[0; 64]), Err(VerifyError));
    }

    proptest::proptest! {
        #[test]
        fn jwk_parsing_never_panics(json in "\\PC{0,200}") {
            let _ = DeviceKey::from_webcrypto_jwk(&json);
            let _ = serde_json::from_str::<DeviceKey>(&json);
        }

        #[test]
        fn verify_never_panics(sig in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let key = DeviceKey::from_p256(fixed_p256().verifying_key()).unwrap();
            proptest::prop_assert!(key.verify(b"m", &sig).is_err());
        }
    }
}

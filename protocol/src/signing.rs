//! Ed25519 member keys: every consortium node signs ledger entries (and, elsewhere,
//! checkpoints and grants) with one. Verification is always `verify_strict`, which
//! refuses non-canonical signatures and small-order keys, so a signature cannot be
//! mauled into a second valid one.
//!
//! [`SigningKey::sign`] signs the message as given; callers domain-separate it
//! (entries prepend [`crate::entry::ENTRY_SIGNATURE_CONTEXT`], provenance
//! [`crate::pointer::PROVENANCE_SIGNATURE_CONTEXT`]). Grant tokens are verified by
//! `jsonwebtoken` instead, see [`crate::grant_token`] for why that is equivalent.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use zeroize::Zeroizing;

use crate::ids::KeyId;

/// Decodes `s` with `engine` into exactly `N` bytes (strict: canonical padding and
/// trailing bits, no whitespace). Only for public data.
pub(crate) fn decode_b64_array<const N: usize>(engine: &impl Engine, s: &str) -> Option<[u8; N]> {
    // Bound the work before decoding attacker-sized input.
    if s.len() > N.div_ceil(3) * 4 {
        return None;
    }
    engine.decode(s).ok()?.try_into().ok()
}

/// Problems loading a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PKCS#8 PEM Ed25519 private key.
    #[error("not a PKCS#8 PEM Ed25519 private key")]
    InvalidPrivateKeyPem,
    /// Not an SPKI PEM Ed25519 public key.
    #[error("not an SPKI PEM Ed25519 public key")]
    InvalidPublicKeyPem,
    /// Encoding the key failed.
    #[error("could not encode the key")]
    Encoding,
    /// Not a valid Ed25519 public key: not a curve point, or a small-order
    /// ("weak") point that no honest member would use.
    #[error("not a usable Ed25519 public key")]
    InvalidPublicKey,
    /// Not base64url (no padding) of exactly 32 bytes.
    #[error("Ed25519 public key must be base64url (no padding) of exactly 32 bytes")]
    InvalidPublicKeyEncoding,
}

/// Signature verification failed. Deliberately one opaque error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct VerifyError;

/// An Ed25519 signing key. Wiped on drop; `Debug` shows only the key id.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// A key from its 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// Loads a PKCS#8 PEM (`BEGIN PRIVATE KEY`) as written by OpenSSL or
    /// [`SigningKey::to_pkcs8_pem`]. If the file also holds the public key, it must
    /// match the seed.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(Self)
            .map_err(|_| KeyError::InvalidPrivateKeyPem)
    }

    /// Writes the key as PKCS#8 v2 PEM (seed and public key), LF line endings.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encoding)
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// The id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.verifying_key().key_id()
    }

    /// Signs `message` as given (pure Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature64 {
        use ed25519_dalek::Signer as _;
        Signature64(self.0.sign(message).to_bytes())
    }

    /// The underlying dalek key, for APIs that take it directly.
    pub fn as_dalek(&self) -> &ed25519_dalek::SigningKey {
        &self.0
    }
}

redacted_debug!(SigningKey, "key_id", |k| k.key_id());

/// An Ed25519 public key. String and JSON form: base64url (no padding) of the 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// Parses 32 bytes, refusing non-points and small-order points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(Self(key))
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Loads an SPKI PEM (`BEGIN PUBLIC KEY`).
    pub fn from_public_key_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map_err(|_| KeyError::InvalidPublicKeyPem)?;
        Self::from_bytes(key.as_bytes())
    }

    /// Writes an SPKI PEM, LF line endings.
    pub fn to_public_key_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encoding)
    }

    /// This key's id.
    pub fn key_id(&self) -> KeyId {
        KeyId::for_ed25519(self.as_bytes())
    }

    /// Checks `signature` over `message` with `verify_strict`.
    pub fn verify(&self, message: &[u8], signature: &Signature64) -> Result<(), VerifyError> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0.verify_strict(message, &sig).map_err(|_| VerifyError)
    }

    /// The underlying dalek key.
    pub fn as_dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.0
    }
}

base64_form!(
    VerifyingKey,
    URL_SAFE_NO_PAD,
    |k| k.as_bytes(),
    |bytes: [u8; 32]| Self::from_bytes(&bytes),
    KeyError = KeyError::InvalidPublicKeyEncoding
);

/// A 64-byte signature: Ed25519, or (on the ledger) a patient device's ECDSA P-256
/// `r || s` signature (see [`crate::device`]). String and JSON form: standard base64
/// with padding (88 characters); decoding is strict so each signature has one spelling.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature64([u8; 64]);

/// Why a string is not a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature must be standard base64 (with padding) of exactly 64 bytes")]
pub struct SignatureParseError;

impl Signature64 {
    /// Wraps the 64 signature bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The 64 signature bytes.
    pub const fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// The 64 signature bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

/// Exactly 64 bytes, e.g. what [`crate::device::DeviceSigner::sign`] returns.
impl TryFrom<&[u8]> for Signature64 {
    type Error = SignatureParseError;
    fn try_from(bytes: &[u8]) -> Result<Self, SignatureParseError> {
        bytes.try_into().map(Self).map_err(|_| SignatureParseError)
    }
}

base64_form!(
    Signature64([u8; 64]),
    STANDARD,
    SignatureParseError = SignatureParseError
);

#[cfg(test)]
mod tests {
    use super::*;

    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    fn rfc8032_key() -> SigningKey {
        SigningKey::from_seed(hex::decode(RFC8032_SEED).unwrap().try_into().unwrap())
    }

    #[test]
    fn rfc8032_test_1() {
        let key = rfc8032_key();
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"");
        assert_eq!(
            hex::encode(sig.as_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(key.verifying_key().verify(b"", &sig).is_ok());
        assert_eq!(key.verifying_key().verify(b"x", &sig), Err(VerifyError));
    }

    #[test]
    fn pem_interop() {
        // Written by Python's `cryptography` (OpenSSL) for the RFC 8032 test 1 key.
        let openssl_private = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
            -----END PRIVATE KEY-----\n";
        let openssl_public = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
            -----END PUBLIC KEY-----\n";
        let key = SigningKey::from_pkcs8_pem(openssl_private).unwrap();
        assert_eq!(hex::encode(*key.to_seed()), RFC8032_SEED);
        let public = VerifyingKey::from_public_key_pem(openssl_public).unwrap();
        assert_eq!(public, key.verifying_key());
        assert_eq!(public.to_public_key_pem().unwrap(), openssl_public);

        let generated = SigningKey::generate();
        let pem = generated.to_pkcs8_pem().unwrap();
        let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(*back.to_seed(), *generated.to_seed());

        assert_eq!(
            SigningKey::from_pkcs8_pem(openssl_public).unwrap_err(),
            KeyError::InvalidPrivateKeyPem
        );
        assert_eq!(
            VerifyingKey::from_public_key_pem(openssl_private).unwrap_err(),
            KeyError::InvalidPublicKeyPem
        );
        assert!(SigningKey::from_pkcs8_pem("").is_err());
    }

    #[test]
    fn verifying_key_forms() {
        let vk = rfc8032_key().verifying_key();
        let s = vk.to_string();
        assert_eq!(s, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(s.parse::<VerifyingKey>().unwrap(), vk);
        assert_eq!(serde_json::to_string(&vk).unwrap(), format!("\"{s}\""));
        assert_eq!(
            serde_json::from_str::<VerifyingKey>(&format!("\"{s}\"")).unwrap(),
            vk
        );
        for bad in [
            "",
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp",
            "AAAA",
        ] {
            assert!(bad.parse::<VerifyingKey>().is_err(), "{bad:?}");
        }
        // The identity point (small order) is refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            VerifyingKey::from_bytes(&identity),
            Err(KeyError::InvalidPublicKey)
        );
    }

    #[test]
    fn signature_forms() {
        let sig = rfc8032_key().sign(b"m");
        let s = sig.to_string();
        assert_eq!(s.len(), 88);
        assert!(s.ends_with("=="));
        assert_eq!(s.parse::<Signature64>().unwrap(), sig);
        assert!(s.trim_end_matches('=').parse::<Signature64>().is_err());
        assert!(format!("{s}AAAA").parse::<Signature64>().is_err());
        assert!(format!(" {s}").parse::<Signature64>().is_err());
        if s.contains(['+', '/']) {
            let url_safe = s.replace('+', "-").replace('/', "_");
            assert!(url_safe.parse::<Signature64>().is_err());
        }
        // The last data character before "==" carries 4 unused bits; a spelling with
        // one of them set would decode to the same bytes, so it must be refused.
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let last = s.len() - 3;
        let v = ALPHABET.find(&s[last..last + 1]).unwrap();
        let mut tweaked = s.clone();
        tweaked.replace_range(last..last + 1, &ALPHABET[(v ^ 1)..(v ^ 1) + 1]);
        assert!(tweaked.parse::<Signature64>().is_err());
    }

    #[test]
    fn different_key_fails() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        let sig = a.sign(b"msg");
        assert!(a.verifying_key().verify(b"msg", &sig).is_ok());
        assert_eq!(b.verifying_key().verify(b"msg", &sig), Err(VerifyError));
        assert_ne!(a.key_id(), b.key_id());
        let shown = format!("{a:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&hex::encode(*a.to_seed())));
    }
}

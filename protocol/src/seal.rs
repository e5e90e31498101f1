//! Sealed envelopes: HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and ChaCha20-Poly1305, single-shot.
//!
//! Wire form of a sealed envelope: `enc (32 bytes) || ciphertext (plaintext + 16-byte tag)`.
//! The `info` label names what the envelope is for, so a pointer body can never be
//! opened as a record or the other way round; the `aad` binds it to its context
//! (pointer id, patient key, custodian, ...).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core_09::{CryptoRng, RngCore};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

/// HPKE `info` for pointer bodies a custodian seals to itself.
pub const POINTER_INFO: &[u8] = b"locus/pointer/v1";
/// HPKE `info` for records a custodian seals to a requester.
pub const RECORD_INFO: &[u8] = b"locus/record/v1";

/// Length of the encapsulated key that starts every sealed envelope.
pub const ENC_LEN: usize = 32;
/// Length of the AEAD tag at the end of every sealed envelope.
pub const TAG_LEN: usize = 16;

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;

/// A long-term X25519 secret key. Wiped on drop; `Debug` is redacted.
pub struct X25519SecretKey(StaticSecret);

impl X25519SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(StaticSecret::random_from_rng(rand_core::OsRng))
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// The secret bytes, for a key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> X25519PublicKey {
        X25519PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }
}

redacted_debug!(X25519SecretKey, "public", |k| k.public_key());

/// An X25519 public key. String and JSON form: base64url without padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519PublicKey([u8; 32]);

impl X25519PublicKey {
    /// Wraps the 32 public key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 public key bytes.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// Why a string is not an X25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X25519 public key must be base64url (no padding) of exactly 32 bytes")]
pub struct PublicKeyParseError;

base64_form!(
    X25519PublicKey([u8; 32]),
    URL_SAFE_NO_PAD,
    PublicKeyParseError = PublicKeyParseError
);

/// Sealing failed. Only a degenerate (low-order) recipient key causes this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The recipient public key gave an all-zero shared secret (RFC 9180 §7.1.4).
    #[error("recipient public key is not usable for HPKE (low-order point)")]
    InvalidRecipientKey,
    /// The HPKE library refused to encrypt.
    #[error("HPKE encryption failed")]
    Encryption,
}

/// Opening failed. Deliberately one opaque error: which check failed (key, `info`,
/// `aad`, ciphertext, length) is not told, so it cannot serve as an oracle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed envelope could not be opened")]
pub struct OpenError;

/// Seals `plaintext` to `recipient`; returns `enc || ciphertext`.
pub fn rfc9180_seal(
    recipient: &X25519PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    // Failure of the OS RNG panics here (inside `UnwrapErr`); it cannot be caused by
    // input, and going on without randomness would be worse.
    let mut rng = rand_core_09::UnwrapErr(rand_core_09::OsRng);
    seal_with_rng(recipient, info, aad, plaintext, &mut rng)
}

fn seal_with_rng<R: CryptoRng + RngCore>(
    recipient: &X25519PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.0)
        .map_err(|_| SealError::InvalidRecipientKey)?;
    let (enc, ciphertext) =
        hpke::single_shot_seal::<Aead, Kdf, Kem, R>(&OpModeS::Base, &pk, info, plaintext, aad, rng)
            .map_err(|e| match e {
                hpke::HpkeError::EncapError => SealError::InvalidRecipientKey,
                _ => SealError::Encryption,
            })?;
    let mut out = Vec::with_capacity(ENC_LEN + ciphertext.len());
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens an envelope made by [`rfc9180_seal`] with the same `info` and `aad`.
pub fn rfc9180_open(
    recipient: &X25519SecretKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < ENC_LEN + TAG_LEN {
        return Err(OpenError);
    }
    let (enc, ciphertext) = sealed.split_at(ENC_LEN);
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError)?;
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&recipient.to_bytes()[..])
        .map_err(|_| OpenError)?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, info, ciphertext, aad)
        .map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Hands out fixed bytes, standing in for the RNG in the RFC 9180 vectors.
    struct FixedRng(Vec<u8>);

    impl RngCore for FixedRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            assert!(dest.len() <= self.0.len(), "fixed RNG exhausted");
            let rest = self.0.split_off(dest.len());
            dest.copy_from_slice(&self.0);
            self.0 = rest;
        }
    }

    impl CryptoRng for FixedRng {}

    /// RFC 9180 appendix A.2.1 (mode 0, KEM 0x0020, KDF 0x0001, AEAD 0x0003),
    /// encryption with sequence number 0, which is what single-shot uses. hpke has no
    /// public "derand" entry point, but its sender draws the ephemeral key as
    /// `DeriveKeyPair(32 bytes from the RNG)`, so an RNG yielding `ikmE` reproduces
    /// the vector through the public API. If hpke ever draws differently, this test
    /// fails loudly rather than passing by accident.
    #[test]
    fn rfc9180_a2_vector() {
        let ikm_r = hx("1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df");
        let (sk_r, pk_r) = <Kem as hpke::Kem>::derive_keypair(&ikm_r);
        assert_eq!(
            sk_r.to_bytes().as_slice(),
            hx("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
        );
        let mut sk_bytes = [0u8; 32];
        sk_bytes.copy_from_slice(&sk_r.to_bytes());
        let recipient = X25519SecretKey::from_bytes(sk_bytes);
        assert_eq!(
            recipient.public_key().to_bytes().as_slice(),
            pk_r.to_bytes().as_slice()
        );
        assert_eq!(
            recipient.public_key().to_bytes().to_vec(),
            hx("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
        );

        let info = hx("4f6465206f6e2061204772656369616e2055726e");
        let aad = hx("436f756e742d30");
        let pt = hx("4265617574792069732074727574682c20747275746820626561757479");
        let mut rng = FixedRng(hx(
            "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b",
        ));
        let sealed = seal_with_rng(&recipient.public_key(), &info, &aad, &pt, &mut rng).unwrap();
        let enc = hx("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a");
        let ct = hx("1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28");
        assert_eq!(&sealed[..ENC_LEN], enc.as_slice());
        assert_eq!(&sealed[ENC_LEN..], ct.as_slice());
        assert_eq!(rfc9180_open(&recipient, &info, &aad, &sealed).unwrap(), pt);
    }

    #[test]
    fn round_trip() {
        let sk = X25519SecretKey::generate();
        let pk = sk.public_key();
        for pt in [&b""[..], b"x", &[7u8; 5000]] {
            let sealed = rfc9180_seal(&pk, POINTER_INFO, b"aad", pt).unwrap();
            assert_eq!(sealed.len(), ENC_LEN + pt.len() + TAG_LEN);
            assert_eq!(
                rfc9180_open(&sk, POINTER_INFO, b"aad", &sealed).unwrap(),
                pt
            );
        }
        // Fresh ephemeral key each time.
        assert_ne!(
            rfc9180_seal(&pk, RECORD_INFO, b"", b"m").unwrap(),
            rfc9180_seal(&pk, RECORD_INFO, b"", b"m").unwrap()
        );
    }

    #[test]
    fn every_failure_is_the_same_opaque_error() {
        let sk = X25519SecretKey::generate();
        let sealed = rfc9180_seal(&sk.public_key(), POINTER_INFO, b"aad", b"body").unwrap();
        let other = X25519SecretKey::generate();
        // Another key, info or associated data.
        for (key, info, aad) in [
            (&other, POINTER_INFO, &b"aad"[..]),
            (&sk, RECORD_INFO, b"aad"),
            (&sk, POINTER_INFO, b"aaD"),
            (&sk, POINTER_INFO, b""),
        ] {
            assert_eq!(rfc9180_open(key, info, aad, &sealed), Err(OpenError));
        }
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                rfc9180_open(&sk, POINTER_INFO, b"aad", &bad),
                Err(OpenError),
                "byte {i}"
            );
        }
        for len in 0..sealed.len() {
            assert_eq!(
                rfc9180_open(&sk, POINTER_INFO, b"aad", &sealed[..len]),
                Err(OpenError),
                "len {len}"
            );
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(
            rfc9180_open(&sk, POINTER_INFO, b"aad", &longer),
            Err(OpenError)
        );
        // An all-zero encapsulated key is a low-order point: refused, no panic.
        let mut zero_enc = sealed.clone();
        zero_enc[..ENC_LEN].fill(0);
        assert_eq!(
            rfc9180_open(&sk, POINTER_INFO, b"aad", &zero_enc),
            Err(OpenError)
        );
    }

    #[test]
    fn low_order_recipient_is_refused() {
        let zero = X25519PublicKey::from_bytes([0; 32]);
        assert_eq!(
            rfc9180_seal(&zero, POINTER_INFO, b"", b"m"),
            Err(SealError::InvalidRecipientKey)
        );
    }

    #[test]
    fn keys() {
        let sk = X25519SecretKey::generate();
        let again = X25519SecretKey::from_bytes(*sk.to_bytes());
        assert_eq!(sk.public_key(), again.public_key());
        let pk = sk.public_key();
        let json = serde_json::to_string(&pk).unwrap();
        assert_eq!(json.len(), 2 + 43);
        assert!(!json.contains('=') && !json.contains('+') && !json.contains('/'));
        assert_eq!(serde_json::from_str::<X25519PublicKey>(&json).unwrap(), pk);
        assert_eq!(pk.to_string().parse::<X25519PublicKey>().unwrap(), pk);
        assert!("AAAA".parse::<X25519PublicKey>().is_err());
        assert!(format!("{pk}=").parse::<X25519PublicKey>().is_err());
        let shown = format!("{sk:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&hex::encode(*sk.to_bytes())));
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics(sealed in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let sk = X25519SecretKey::from_bytes([3; 32]);
            proptest::prop_assert_eq!(rfc9180_open(&sk, POINTER_INFO, b"", &sealed), Err(OpenError));
        }
    }
}

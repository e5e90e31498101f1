//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys
//! (signature type 0x01), and the key encodings of Go's
//! `golang.org/x/mod/sumdb/note`.
//!
//! A signed note is a text ending in a newline, a blank line, then one or
//! more lines `— <key name> base64(key id (4 bytes, big endian) || signature)`.

use std::marker::PhantomData;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Signature type byte of plain Ed25519 note signatures.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// Most signature lines a note may carry (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Malformed notes, keys or names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("invalid key name: it must be non-empty, without spaces, '+' or control characters")]
    InvalidName,
    #[error("malformed key encoding")]
    MalformedKey,
    #[error("the key id does not match the key")]
    KeyIdMismatch,
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedKeyType(u8),
    #[error(
        "note text must end with a newline and contain no control characters other than newline"
    )]
    InvalidText,
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("the system random number generator failed")]
    Rng,
}

/// A note signature did not verify. Deliberately opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("note verification failed")]
pub struct VerifyError;

/// Anything that can check one kind of note signature: plain Ed25519 note
/// keys ([`NoteVerifier`]) and witness cosignature keys
/// ([`crate::cosignature::CosignatureVerifier`]), so one note can carry both.
pub trait SignatureVerifier {
    fn name(&self) -> &str;
    fn key_id(&self) -> u32;
    /// Whether `sig` (the signature bytes after the key id) is valid over `text`.
    fn verify(&self, text: &str, sig: &[u8]) -> bool;
}

/// Key names must be non-empty, without Unicode spaces or `+` (signed-note);
/// we also refuse control characters, which no note may contain.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// `SHA-256(name || "\n" || signature type || public key)[:4]`, big endian.
pub fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([signature_type])
        .chain_update(public_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Note text must end in a newline and hold no control character but newline.
pub(crate) fn is_valid_text(text: &str) -> bool {
    text.ends_with('\n') && !text.chars().any(|c| c < ' ' && c != '\n')
}

/// A fresh random Ed25519 key from the OS generator.
pub(crate) fn generate_signing_key() -> Result<SigningKey, NoteError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(seed.as_mut())
        .map_err(|_| NoteError::Rng)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Parses `<name>+<8 hex digits>+<base64>` (a vkey, or an skey after its
/// `PRIVATE+KEY+`) into its name, key id and decoded key bytes.
pub(crate) fn split_key(encoded: &str) -> Result<(&str, u32, Zeroizing<Vec<u8>>), NoteError> {
    let mut parts = encoded.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey);
    };
    if !is_valid_key_name(name) {
        return Err(NoteError::InvalidName);
    }
    // from_str_radix would accept a sign, so check the digits first.
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::MalformedKey);
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| NoteError::MalformedKey)?;
    let key = Zeroizing::new(
        STANDARD
            .decode(key64)
            .map_err(|_| NoteError::MalformedKey)?,
    );
    Ok((name, id, key))
}

/// Decodes an Ed25519 public key, refusing small-order (weak) points.
pub(crate) fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, NoteError> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| NoteError::MalformedKey)?;
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| NoteError::MalformedKey)?;
    if key.is_weak() {
        return Err(NoteError::MalformedKey);
    }
    Ok(key)
}

/// Decodes a 32-byte Ed25519 seed into a signing key.
pub(crate) fn parse_seed(bytes: &[u8]) -> Result<SigningKey, NoteError> {
    let seed: &[u8; 32] = bytes.try_into().map_err(|_| NoteError::MalformedKey)?;
    Ok(SigningKey::from_bytes(seed))
}

/// `PRIVATE+KEY+<name>+<key id>+base64(type || seed)`.
pub(crate) fn encode_skey(
    name: &str,
    key_id: u32,
    signature_type: u8,
    key: &SigningKey,
) -> Zeroizing<String> {
    let mut raw = Zeroizing::new(Vec::with_capacity(33));
    raw.push(signature_type);
    raw.extend_from_slice(key.as_bytes());
    let encoded = Zeroizing::new(STANDARD.encode(raw.as_slice()));
    Zeroizing::new(format!(
        "PRIVATE+KEY+{name}+{key_id:08x}+{}",
        encoded.as_str()
    ))
}

/// `<name>+<key id>+base64(type || public key)`.
pub(crate) fn encode_vkey(
    name: &str,
    key_id: u32,
    signature_type: u8,
    key: &VerifyingKey,
) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(signature_type);
    raw.extend_from_slice(key.as_bytes());
    format!("{name}+{key_id:08x}+{}", STANDARD.encode(raw))
}

/// Strips `PRIVATE+KEY+` from an skey.
pub(crate) fn strip_skey_prefix(skey: &str) -> Result<&str, NoteError> {
    skey.strip_prefix("PRIVATE+KEY+")
        .ok_or(NoteError::MalformedKey)
}

/// What tells the two kinds of Ed25519 note key apart: the signature type byte
/// in their key ids and encodings, what their signatures cover, the error their
/// constructors return, and the name their `Debug` shows.
pub trait KeyType: Clone {
    const SIGNATURE_TYPE: u8;
    /// `Note` or `Cosignature`: the start of the type names `Debug` shows.
    const NAME: &'static str;
    type Error: From<NoteError>;
    /// Whether `sig` (the signature bytes after the key id) is valid over `text`.
    fn verify(key: &VerifyingKey, text: &str, sig: &[u8]) -> bool;
}

/// Declares a [`KeyType`]: its marker, signature type byte, `Debug` name,
/// constructor error and check of a signature's bytes.
macro_rules! key_type {
    ($(#[$doc:meta])* $marker:ident, $type:expr, $name:literal, $error:ty, $verify:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $marker {}

        impl $crate::note::KeyType for $marker {
            const SIGNATURE_TYPE: u8 = $type;
            const NAME: &'static str = $name;
            type Error = $error;

            fn verify(key: &VerifyingKey, text: &str, sig: &[u8]) -> bool {
                $verify(key, text, sig)
            }
        }
    };
}
pub(crate) use key_type;

key_type!(
    /// Plain Ed25519 note keys (type 0x01), with which the log signs checkpoints.
    NoteKey, ED25519_SIGNATURE_TYPE, "Note", NoteError, verify_plain
);

/// Whether `sig` is a plain Ed25519 signature by `key` over `text`.
fn verify_plain(key: &VerifyingKey, text: &str, sig: &[u8]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    key.verify_strict(text.as_bytes(), &sig).is_ok()
}

/// `Debug` for a key of type `T` in `role` (`Signer`, `Verifier`): its name
/// and key id, never key material.
fn debug_key<T: KeyType>(
    f: &mut std::fmt::Formatter<'_>,
    role: &str,
    name: &str,
    key_id: u32,
) -> std::fmt::Result {
    f.debug_struct(&format!("{}{role}", T::NAME))
        .field("name", &name)
        .field("key_id", &format_args!("{key_id:08x}"))
        .finish_non_exhaustive()
}

/// An Ed25519 signing key of one [`KeyType`]: its public side (name, key id
/// and public key) and the secret key, which is wiped from memory on drop.
pub struct Signer<T> {
    public: Verifier<T>,
    key: SigningKey,
}

/// A log's Ed25519 note signing key.
pub type NoteSigner = Signer<NoteKey>;

impl<T: KeyType> std::fmt::Debug for Signer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_key::<T>(f, "Signer", &self.public.name, self.public.key_id)
    }
}

impl<T: KeyType> Signer<T> {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<Self, T::Error> {
        Self::from_signing_key(name, generate_signing_key()?)
    }

    /// A signer for an existing Ed25519 key.
    pub fn from_signing_key(name: &str, key: SigningKey) -> Result<Self, T::Error> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidName.into());
        }
        let public = key.verifying_key();
        let public = Verifier {
            name: name.to_owned(),
            key_id: key_id(name, T::SIGNATURE_TYPE, public.as_bytes()),
            key: public,
            kind: PhantomData,
        };
        Ok(Self { public, key })
    }

    /// The skey encoding, of this key type. Secret: keep it out of logs.
    pub fn to_skey(&self) -> Zeroizing<String> {
        encode_skey(self.name(), self.key_id(), T::SIGNATURE_TYPE, &self.key)
    }

    pub fn name(&self) -> &str {
        &self.public.name
    }

    pub fn key_id(&self) -> u32 {
        self.public.key_id
    }

    pub fn verifier(&self) -> Verifier<T> {
        self.public.clone()
    }

    /// A signature line of this key over `message`, after `prefix` (the
    /// bytes a signature type puts before the Ed25519 signature).
    pub(crate) fn signature(&self, prefix: Vec<u8>, message: &[u8]) -> NoteSignature {
        let mut signature = prefix;
        signature.extend_from_slice(&self.key.sign(message).to_bytes());
        NoteSignature {
            name: self.public.name.clone(),
            key_id: self.public.key_id,
            signature,
        }
    }
}

impl Signer<NoteKey> {
    /// Parses Go's `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let (name, id, raw) = split_key(strip_skey_prefix(skey)?)?;
        let Some((&kind, seed)) = raw.split_first() else {
            return Err(NoteError::MalformedKey);
        };
        if kind != ED25519_SIGNATURE_TYPE {
            return Err(NoteError::UnsupportedKeyType(kind));
        }
        let signer = Self::from_signing_key(name, parse_seed(seed)?)?;
        if signer.key_id() != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(signer)
    }

    /// Signs a note text (which must end in a newline and hold no other
    /// control characters, so that the signed note is well formed).
    pub fn sign(&self, text: &str) -> Result<NoteSignature, NoteError> {
        if !is_valid_text(text) {
            return Err(NoteError::InvalidText);
        }
        Ok(self.signature(Vec::new(), text.as_bytes()))
    }
}

/// A public Ed25519 key of one [`KeyType`], under its name.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier<T> {
    name: String,
    key: VerifyingKey,
    key_id: u32,
    kind: PhantomData<T>,
}

/// A public Ed25519 note key.
pub type NoteVerifier = Verifier<NoteKey>;

impl<T: KeyType> std::fmt::Debug for Verifier<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_key::<T>(f, "Verifier", &self.name, self.key_id)
    }
}

impl<T: KeyType> Verifier<T> {
    /// A verifier for a raw Ed25519 public key.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<Self, T::Error> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidName.into());
        }
        let key = parse_public_key(public_key)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, T::SIGNATURE_TYPE, key.as_bytes()),
            key,
            kind: PhantomData,
        })
    }

    /// Parses `<name>+<hex key id>+<base64(type || public key)>`, of this key
    /// type only (a witness key is configured as one, a log key as the other).
    pub fn from_vkey(vkey: &str) -> Result<Self, T::Error> {
        let (name, id, raw) = split_key(vkey)?;
        let Some((&kind, public)) = raw.split_first() else {
            return Err(NoteError::MalformedKey.into());
        };
        if kind != T::SIGNATURE_TYPE {
            return Err(NoteError::UnsupportedKeyType(kind).into());
        }
        let public: &[u8; 32] = public.try_into().map_err(|_| NoteError::MalformedKey)?;
        let verifier = Self::from_public_key(name, public)?;
        if verifier.key_id != id {
            return Err(NoteError::KeyIdMismatch.into());
        }
        Ok(verifier)
    }

    pub fn to_vkey(&self) -> String {
        encode_vkey(&self.name, self.key_id, T::SIGNATURE_TYPE, &self.key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl<T: KeyType> SignatureVerifier for Verifier<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, text: &str, sig: &[u8]) -> bool {
        T::verify(&self.key, text, sig)
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl std::fmt::Display for NoteSignature {
    /// The signature line, without its newline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        write!(
            f,
            "{SIGNATURE_PREFIX}{} {}",
            self.name,
            STANDARD.encode(raw)
        )
    }
}

/// A signed note: its text and signature lines, verified or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The text, including its final newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl std::fmt::Display for Note {
    /// The serialized note: text, blank line, one line per signature.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for sig in &self.signatures {
            writeln!(f, "{sig}")?;
        }
        Ok(())
    }
}

impl Note {
    /// Parses a serialized signed note, without verifying anything.
    pub fn parse(msg: &str) -> Result<Self, NoteError> {
        if msg.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed("control character"));
        }
        // The text ends at the last blank line; signature lines are never empty.
        let Some(split) = msg.rfind("\n\n") else {
            return Err(NoteError::Malformed("no signature block"));
        };
        let (text, sigs) = (&msg[..=split], &msg[split + 2..]);
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::Malformed("no signature block"));
        };
        if sigs.is_empty() {
            return Err(NoteError::Malformed("no signature block"));
        }
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(parse_signature_line(line)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Verifies the signatures from known keys and returns the names of the
    /// keys that signed, in order of appearance. Signatures from unknown keys
    /// (name and key id not both matching a verifier) are ignored; a known
    /// key's signature that fails is an error; at least one must verify.
    pub fn verify(&self, verifiers: &[&dyn SignatureVerifier]) -> Result<Vec<String>, VerifyError> {
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(VerifyError);
        }
        let mut names: Vec<String> = Vec::new();
        for sig in &self.signatures {
            let mut known = verifiers
                .iter()
                .filter(|v| v.key_id() == sig.key_id && v.name() == sig.name);
            let Some(verifier) = known.next() else {
                continue;
            };
            // Two keys with one name and id make the configuration ambiguous.
            if known.next().is_some() || !verifier.verify(&self.text, &sig.signature) {
                return Err(VerifyError);
            }
            if !names.contains(&sig.name) {
                names.push(sig.name.clone());
            }
        }
        if names.is_empty() {
            return Err(VerifyError);
        }
        Ok(names)
    }
}

/// Parses one signature line (without its newline).
pub fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
        return Err(NoteError::Malformed(
            "signature line must start with an em dash and a space",
        ));
    };
    let Some((name, sig64)) = rest.split_once(' ') else {
        return Err(NoteError::Malformed("signature line has no signature"));
    };
    if !is_valid_key_name(name) {
        return Err(NoteError::Malformed("invalid key name in signature line"));
    }
    let raw = STANDARD
        .decode(sig64)
        .map_err(|_| NoteError::Malformed("signature is not base64"))?;
    // A key id and at least one signature byte.
    if raw.len() < 5 {
        return Err(NoteError::Malformed("signature too short"));
    }
    let (id, signature) = raw.split_at(4);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
        signature: signature.to_vec(),
    })
}

/// Asserts that `parse` refuses each of `cases`: the tests' tables of malformed
/// notes, checkpoints and keys.
#[cfg(test)]
pub(crate) fn assert_all_refused<T, E, S>(
    parse: impl Fn(&str) -> Result<T, E>,
    cases: impl IntoIterator<Item = S>,
) where
    S: AsRef<str> + std::fmt::Debug,
{
    for case in cases {
        assert!(parse(case.as_ref()).is_err(), "accepted {case:?}");
    }
}

/// Asserts that `signer`'s skey (read by its key type's `from_skey`) and vkey
/// give back the same key, and that its `Debug` does not show the skey; returns
/// the verifier read from the vkey.
#[cfg(test)]
pub(crate) fn assert_keys_round_trip<T: KeyType + PartialEq, E: std::fmt::Debug>(
    signer: &Signer<T>,
    from_skey: impl Fn(&str) -> Result<Signer<T>, E>,
) -> Verifier<T>
where
    T::Error: std::fmt::Debug,
{
    let again = from_skey(&signer.to_skey()).unwrap();
    assert_eq!(again.verifier(), signer.verifier());
    let debug = format!("{signer:?}");
    assert!(!debug.contains(signer.to_skey().as_str()));
    Verifier::<T>::from_vkey(&signer.verifier().to_vkey()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note's package documentation.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n\
                           \n\
                           \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const GO_TWO_SIGS: &str = "If you think cryptography is the answer to your problem,\n\
                               then you don't know what your problem is.\n\
                               \n\
                               \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n\
                               \u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    #[test]
    fn go_known_answer() {
        let signer = NoteSigner::from_skey(GO_SKEY).unwrap();
        assert_eq!(signer.key_id(), 0xc74f20a3);
        assert_eq!(signer.to_skey().as_str(), GO_SKEY);
        assert_eq!(signer.verifier().to_vkey(), GO_VKEY);
        let verifier = NoteVerifier::from_vkey(GO_VKEY).unwrap();
        assert_eq!(verifier, signer.verifier());

        // Ed25519 is deterministic: we must produce Go's exact note.
        let note = Note {
            text: GO_TEXT.to_owned(),
            signatures: vec![signer.sign(GO_TEXT).unwrap()],
        };
        assert_eq!(note.to_string(), GO_NOTE);

        let parsed = Note::parse(GO_NOTE).unwrap();
        assert_eq!(parsed, note);
        assert_eq!(parsed.verify(&[&verifier]).unwrap(), vec!["PeterNeumann"]);

        // The unknown EnochRoot signature is ignored.
        let two = Note::parse(GO_TWO_SIGS).unwrap();
        assert_eq!(two.signatures.len(), 2);
        assert_eq!(two.to_string(), GO_TWO_SIGS);
        assert_eq!(two.verify(&[&verifier]).unwrap(), vec!["PeterNeumann"]);
    }

    #[test]
    fn spec_key_id_formula() {
        let verifier = NoteVerifier::from_vkey(GO_VKEY).unwrap();
        let mut preimage = b"PeterNeumann\n\x01".to_vec();
        preimage.extend_from_slice(&verifier.public_key());
        let digest = Sha256::digest(&preimage);
        assert_eq!(verifier.key_id().to_be_bytes(), digest[..4]);
    }

    #[test]
    fn generate_round_trip() {
        let signer = NoteSigner::generate("example.com/log").unwrap();
        let verifier = assert_keys_round_trip(&signer, NoteSigner::from_skey);
        let text = "hello\n\nworld\n";
        let note = Note {
            text: text.to_owned(),
            signatures: vec![signer.sign(text).unwrap()],
        };
        let parsed = Note::parse(&note.to_string()).unwrap();
        assert_eq!(parsed.text, text);
        assert_eq!(
            parsed.verify(&[&verifier]).unwrap(),
            vec!["example.com/log"]
        );
        assert!(format!("{signer:?}").contains("example.com/log"));
    }

    #[test]
    fn bad_known_signature_rejects_the_note() {
        let verifier = NoteVerifier::from_vkey(GO_VKEY).unwrap();
        let mut note = Note::parse(GO_NOTE).unwrap();
        note.signatures[0].signature[10] ^= 1;
        assert_eq!(note.verify(&[&verifier]), Err(VerifyError));
        // Altered text.
        let mut note = Note::parse(GO_NOTE).unwrap();
        note.text.insert(0, 'X');
        assert_eq!(note.verify(&[&verifier]), Err(VerifyError));
        // A valid signature followed by a forged one under the same key.
        let mut note = Note::parse(GO_NOTE).unwrap();
        let mut forged = note.signatures[0].clone();
        forged.signature[0] ^= 1;
        note.signatures.push(forged);
        assert_eq!(note.verify(&[&verifier]), Err(VerifyError));
        // Wrong length.
        let mut note = Note::parse(GO_NOTE).unwrap();
        note.signatures[0].signature.pop();
        assert_eq!(note.verify(&[&verifier]), Err(VerifyError));
    }

    #[test]
    fn unknown_or_missing_keys_are_not_enough() {
        let note = Note::parse(GO_NOTE).unwrap();
        assert_eq!(note.verify(&[]), Err(VerifyError));
        let other = NoteSigner::generate("PeterNeumann").unwrap().verifier();
        // Same name, different key id: ignored, so nothing verified.
        assert_eq!(note.verify(&[&other]), Err(VerifyError));
        // Same key listed twice: ambiguous.
        let v = NoteVerifier::from_vkey(GO_VKEY).unwrap();
        assert_eq!(note.verify(&[&v, &v]), Err(VerifyError));
    }

    #[test]
    fn malformed_notes() {
        let line = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
        let cases = [
            String::new(),
            "text\n".to_owned(),
            "text\n\n".to_owned(),
            format!("text\n{line}\n"),
            format!("text\n\n{line}"),
            format!("text\n\n{line}\n\n"),
            format!("text\n\n{line}\n\n{line}\n")
                .replacen("\n\n", "\n", 1)
                .replacen("text\n", "text\r\n", 1),
            format!("te\txt\n\n{line}\n"),
            format!("text\n\n{}\n", line.replace('\u{2014}', "-")),
            format!("text\n\n{}\n", line.replace("\u{2014} ", "\u{2014}")),
            format!("text\n\n{}\n", line.replace("Neumann ", "Neumann")),
            format!("text\n\n{}\n", line.replace("Peter", "Pe+ter")),
            format!("text\n\n{}\n", line.replace("PeterNeumann", "")),
            format!("text\n\n{}\n", line.replace('=', "")),
            format!("text\n\n{}\n", line.replace("x08", "!08")),
            format!("text\n\n{}\n", line.replace("Neumann ", "Neumann  ")),
            format!("text\n\n{line} \n"),
            "text\n\n\u{2014} a AAAAAA==\n".to_owned(),
            "text\n\n\u{2014} a \n".to_owned(),
        ];
        assert_all_refused(Note::parse, &cases);
        let many = format!("text\n\n{}", format!("{line}\n").repeat(MAX_SIGNATURES + 1));
        assert_eq!(Note::parse(&many), Err(NoteError::TooManySignatures));
        let enough = format!("text\n\n{}", format!("{line}\n").repeat(MAX_SIGNATURES));
        assert_eq!(
            Note::parse(&enough).unwrap().signatures.len(),
            MAX_SIGNATURES
        );
        // The last blank line separates; earlier ones belong to the text.
        let note = Note::parse(&format!("a\n\nb\n\n{line}\n")).unwrap();
        assert_eq!(note.text, "a\n\nb\n");
    }

    #[test]
    fn malformed_keys() {
        let bad_vkeys = [
            "",
            "PeterNeumann",
            "PeterNeumann+c74f20a3",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann++74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
            "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            // A small-order point (the identity) under a matching key id.
            "weak+00000000+AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ];
        assert_all_refused(NoteVerifier::from_vkey, bad_vkeys);
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            NoteVerifier::from_public_key("weak", &identity),
            Err(NoteError::MalformedKey)
        );
        // Uppercase hex is accepted, as Go does.
        assert!(NoteVerifier::from_vkey(&GO_VKEY.replace("c74f20a3", "C74F20A3")).is_ok());
        let bad_skeys = [
            GO_VKEY,
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKD",
            "PRIVATE+KEY+Peter+Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        ];
        assert_all_refused(NoteSigner::from_skey, bad_skeys);
        assert!(NoteSigner::generate("bad name").is_err());
        assert!(NoteSigner::generate("").is_err());
        assert!(NoteSigner::generate("a\u{a0}b").is_err());
    }

    #[test]
    fn signing_refuses_malformed_text() {
        let signer = NoteSigner::from_skey(GO_SKEY).unwrap();
        assert_eq!(signer.sign("no newline"), Err(NoteError::InvalidText));
        assert_eq!(signer.sign(""), Err(NoteError::InvalidText));
        assert_eq!(signer.sign("tab\there\n"), Err(NoteError::InvalidText));
        assert!(signer.sign("\n").is_ok());
    }
}

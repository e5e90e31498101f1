//! C2SP tlog-cosignature (<https://c2sp.org/tlog-cosignature>), Ed25519
//! `cosignature/v1`: a witness's timestamped signature over a checkpoint,
//! carried as one more signature line of the checkpoint note.
//!
//! Layout, as the spec defines it:
//! - key id: `SHA-256(name || "\n" || 0x04 || 32-byte public key)[:4]`;
//! - signature line bytes: key id (4) || timestamp (u64, big endian, 8) ||
//!   Ed25519 signature (64), 76 bytes, base64;
//! - signed message: `"cosignature/v1\ntime <timestamp>\n" || checkpoint text`
//!   (the whole note text, extension lines included, no signature lines),
//!   the timestamp in decimal without leading zeros, in seconds since the
//!   UNIX epoch, at most 2^63 - 1.

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::Checkpoint;
use crate::note::{
    self, key_type, parse_seed, split_key, strip_skey_prefix, NoteError, NoteSignature, Signer,
    Verifier, ED25519_SIGNATURE_TYPE,
};

/// Signature type byte of Ed25519 `cosignature/v1` keys.
pub const COSIGNATURE_V1_TYPE: u8 = 0x04;
/// The domain-separating first line of the signed message.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";
/// Timestamps above `2^63 - 1` are forbidden by the spec.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;
/// Bytes after the key id: timestamp (8) and Ed25519 signature (64).
pub const COSIGNATURE_V1_LEN: usize = 8 + 64;

/// Malformed keys or inputs to cosigning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error(transparent)]
    Key(#[from] NoteError),
    #[error("the cosigned text is not a checkpoint")]
    NotACheckpoint,
    #[error("timestamp {0} is above 2^63 - 1")]
    TimestampTooLarge(u64),
}

/// A cosignature did not verify. Opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cosignature verification failed")]
pub struct VerifyError;

/// The signed message for a checkpoint text at `timestamp`.
fn signed_message(checkpoint_text: &str, timestamp: u64) -> String {
    format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n{checkpoint_text}")
}

/// The timestamp of a `cosignature/v1` signature, without verifying it.
pub fn cosignature_timestamp(sig: &NoteSignature) -> Option<u64> {
    let bytes: &[u8; 8] = sig.signature.get(..8)?.try_into().ok()?;
    (sig.signature.len() == COSIGNATURE_V1_LEN).then(|| u64::from_be_bytes(*bytes))
}

key_type!(
    /// Witness cosignature keys (type 0x04), with which a witness cosigns
    /// checkpoints.
    CosignatureKey,
    COSIGNATURE_V1_TYPE,
    "Cosignature",
    CosignatureError,
    |key, text, sig| check(key, text, sig).is_some()
);

/// A witness's cosigning key.
pub type CosignatureSigner = Signer<CosignatureKey>;

impl Signer<CosignatureKey> {
    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>`, the
    /// form transparency-dev/formats' `NewSignerForCosignatureV1` reads: type
    /// 0x04 with the cosignature key id, or a plain 0x01 note key with the
    /// plain key id (the same Ed25519 key then cosigns under the 0x04 id).
    pub fn from_skey(skey: &str) -> Result<Self, CosignatureError> {
        let (name, id, raw) = split_key(strip_skey_prefix(skey)?)?;
        let Some((&kind, seed)) = raw.split_first() else {
            return Err(NoteError::MalformedKey.into());
        };
        let key = parse_seed(seed)?;
        let expected_id = match kind {
            COSIGNATURE_V1_TYPE | ED25519_SIGNATURE_TYPE => {
                note::key_id(name, kind, key.verifying_key().as_bytes())
            }
            other => return Err(NoteError::UnsupportedKeyType(other).into()),
        };
        if expected_id != id {
            return Err(NoteError::KeyIdMismatch.into());
        }
        Self::from_signing_key(name, key)
    }

    /// Cosigns a checkpoint text (the note text, without signature lines) as
    /// of `timestamp` (seconds since the UNIX epoch). The caller is stating
    /// it has checked the checkpoint's consistency with what it saw before.
    pub fn cosign(
        &self,
        checkpoint_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampTooLarge(timestamp));
        }
        Checkpoint::parse(checkpoint_text).map_err(|_| CosignatureError::NotACheckpoint)?;
        let message = signed_message(checkpoint_text, timestamp);
        let mut prefix = Vec::with_capacity(COSIGNATURE_V1_LEN);
        prefix.extend_from_slice(&timestamp.to_be_bytes());
        Ok(self.signature(prefix, message.as_bytes()))
    }
}

/// A witness's public cosigning key.
pub type CosignatureVerifier = Verifier<CosignatureKey>;

impl Verifier<CosignatureKey> {
    /// Verifies `sig` over a checkpoint text and returns its timestamp.
    pub fn verify_cosignature(
        &self,
        checkpoint_text: &str,
        sig: &NoteSignature,
    ) -> Result<u64, VerifyError> {
        if sig.name != self.name() || sig.key_id != self.key_id() {
            return Err(VerifyError);
        }
        check(self.key(), checkpoint_text, &sig.signature).ok_or(VerifyError)
    }
}

/// The timestamp of a valid cosignature `sig` by `key` over `text`.
fn check(key: &VerifyingKey, text: &str, sig: &[u8]) -> Option<u64> {
    if sig.len() != COSIGNATURE_V1_LEN {
        return None;
    }
    let (time, sig) = sig.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().ok()?);
    if timestamp > MAX_TIMESTAMP {
        return None;
    }
    let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
    let message = signed_message(text, timestamp);
    key.verify_strict(message.as_bytes(), &sig).ok()?;
    Some(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::sign_checkpoint;
    use crate::note::{assert_keys_round_trip, Note, NoteSigner, SignatureVerifier};
    use ed25519_dalek::{Signer as _, SigningKey};

    const CHECKPOINT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn fixed_signer() -> CosignatureSigner {
        CosignatureSigner::from_signing_key(
            "witness.example.com/w1",
            SigningKey::from_bytes(&[7; 32]),
        )
        .unwrap()
    }

    #[test]
    fn spec_example_layout() {
        // The example note of c2sp.org/tlog-cosignature (keys unpublished:
        // this checks the wire layout, not the signature).
        let example = format!(
            "{CHECKPOINT}\n\
             \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
             \u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        );
        let note = Note::parse(&example).unwrap();
        let cosig = &note.signatures[1];
        assert_eq!(cosig.name, "witness.example.com/w1");
        assert_eq!(cosig.key_id, 0x8d66_cf3f);
        assert_eq!(cosig.signature.len(), COSIGNATURE_V1_LEN);
        assert_eq!(cosignature_timestamp(cosig), Some(1_679_315_147));
        // The log's plain Ed25519 signature is 4 + 64 bytes, no timestamp.
        assert_eq!(note.signatures[0].signature.len(), 64);
        assert_eq!(cosignature_timestamp(&note.signatures[0]), None);
    }

    #[test]
    fn known_answer() {
        // Cross-checked with an independent Ed25519 implementation (pyca
        // cryptography) over "cosignature/v1\ntime 1679315147\n" || CHECKPOINT.
        let signer = fixed_signer();
        let verifier = signer.verifier();
        assert_eq!(verifier.to_vkey(), KAT_VKEY);
        let sig = signer.cosign(CHECKPOINT, 1_679_315_147).unwrap();
        assert_eq!(sig.to_string(), KAT_LINE);
        assert_eq!(
            verifier.verify_cosignature(CHECKPOINT, &sig),
            Ok(1_679_315_147)
        );
    }

    const KAT_VKEY: &str =
        "witness.example.com/w1+8122a5ab+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs";
    const KAT_LINE: &str = "\u{2014} witness.example.com/w1 gSKlqwAAAABkGFDLWr4Jea05CAgwNVtwky0Jgz6WfX0QJgM//FkB/W9BoT9TX0DkTxG+2cT4p/ViKNhUM/SnUwFcYQzugGFQ15LwDw==";

    #[test]
    fn keys_round_trip() {
        let signer = CosignatureSigner::generate("witness.example/w").unwrap();
        let verifier = assert_keys_round_trip(&signer, CosignatureSigner::from_skey);
        assert_eq!(verifier, signer.verifier());
        assert!(signer
            .verifier()
            .to_vkey()
            .contains(&format!("+{:08x}+", signer.key_id())));

        // A plain note skey for the same Ed25519 key cosigns under the 0x04 id.
        let note_signer =
            NoteSigner::from_signing_key("w", SigningKey::from_bytes(&[3; 32])).unwrap();
        let cosigner = CosignatureSigner::from_skey(&note_signer.to_skey()).unwrap();
        assert_ne!(cosigner.key_id(), note_signer.key_id());
        assert_eq!(
            cosigner.verifier().public_key(),
            note_signer.verifier().public_key()
        );
        // But a plain note vkey is not a cosignature vkey.
        assert!(CosignatureVerifier::from_vkey(&note_signer.verifier().to_vkey()).is_err());
        assert!(NoteVerifier::from_vkey(&cosigner.verifier().to_vkey()).is_err());
        // Key ids are checked.
        let skey = cosigner.to_skey();
        let wrong = skey.replace(&format!("{:08x}", cosigner.key_id()), "00000000");
        assert!(CosignatureSigner::from_skey(&wrong).is_err());
    }

    use crate::note::NoteVerifier;

    #[test]
    fn one_note_carries_log_signature_and_cosignatures() {
        let log = NoteSigner::generate("locus.example/ledger").unwrap();
        let w1 = CosignatureSigner::generate("w1.example").unwrap();
        let w2 = CosignatureSigner::generate("w2.example").unwrap();
        let cp = Checkpoint::parse(CHECKPOINT).unwrap();
        let mut note = sign_checkpoint(&cp, &log).unwrap();
        note.signatures.push(w1.cosign(&note.text, 1000).unwrap());
        note.signatures.push(w2.cosign(&note.text, 2000).unwrap());
        let note = Note::parse(&note.to_string()).unwrap();

        let (lv, v1, v2) = (log.verifier(), w1.verifier(), w2.verifier());
        assert_eq!(
            note.verify(&[&lv, &v1, &v2]).unwrap(),
            vec!["locus.example/ledger", "w1.example", "w2.example"]
        );
        assert_eq!(note.verify(&[&v2]).unwrap(), vec!["w2.example"]);
        assert_eq!(
            v1.verify_cosignature(&note.text, &note.signatures[1]),
            Ok(1000)
        );
        assert_eq!(
            v1.verify_cosignature(&note.text, &note.signatures[2]),
            Err(VerifyError)
        );

        // A cosignature whose timestamp was altered no longer verifies.
        let mut bad = note.clone();
        bad.signatures[2].signature[7] ^= 1;
        assert!(bad.verify(&[&lv, &v1, &v2]).is_err());
        assert!(bad.verify(&[&lv, &v1]).is_ok());
    }

    #[test]
    fn rejects_bad_inputs() {
        let signer = fixed_signer();
        let verifier = signer.verifier();
        assert_eq!(
            signer.cosign(CHECKPOINT, MAX_TIMESTAMP + 1),
            Err(CosignatureError::TimestampTooLarge(MAX_TIMESTAMP + 1))
        );
        assert!(signer.cosign(CHECKPOINT, MAX_TIMESTAMP).is_ok());
        assert_eq!(
            signer.cosign("not a checkpoint\n", 1),
            Err(CosignatureError::NotACheckpoint)
        );
        assert_eq!(signer.cosign("", 1), Err(CosignatureError::NotACheckpoint));

        let sig = signer.cosign(CHECKPOINT, 5).unwrap();
        let other_text = CHECKPOINT.replace("20852163", "20852164");
        assert!(verifier.verify_cosignature(&other_text, &sig).is_err());
        for len in [0, 8, 71, 73] {
            let mut short = sig.clone();
            short.signature.resize(len, 0);
            assert!(verifier.verify_cosignature(CHECKPOINT, &short).is_err());
        }
        // A timestamp above 2^63 - 1 is refused even with a valid signature.
        let huge = u64::MAX;
        let message = signed_message(CHECKPOINT, huge);
        let mut forged = huge.to_be_bytes().to_vec();
        forged.extend_from_slice(
            &SigningKey::from_bytes(&[7; 32])
                .sign(message.as_bytes())
                .to_bytes(),
        );
        assert!(!SignatureVerifier::verify(&verifier, CHECKPOINT, &forged));
    }
}

//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the signed
//! tree head as the text of a signed note.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! [extension lines]
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::merkle::Hash;
use crate::note::{Note, NoteError, NoteSigner, NoteVerifier};

/// A checkpoint text that does not follow tlog-checkpoint, or a signing error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A checkpoint did not open (bad note, bad signature, bad body). Opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint verification failed")]
pub struct VerifyError;

/// A log's tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `example.com/log`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque extra lines, each non-empty. Not recommended by the spec.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: one line each for origin, size, root and extensions.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint text strictly: newline-terminated non-empty lines,
    /// an origin without surrounding spaces, a canonical decimal size, and a
    /// root that is the standard base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let malformed = |why| Err(CheckpointError::Malformed(why));
        let Some(body) = text.strip_suffix('\n') else {
            return malformed("the text must end with a newline");
        };
        if body.chars().any(|c| c < ' ' && c != '\n') {
            return malformed("control character");
        }
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return malformed("fewer than three lines");
        };
        if origin.is_empty() || origin.trim() != origin {
            return malformed("the origin must be non-empty, without surrounding spaces");
        }
        let size = parse_size(size).ok_or(CheckpointError::Malformed(
            "the size must be a decimal integer without leading zeros",
        ))?;
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|raw| Hash::try_from(raw.as_slice()).ok())
            .ok_or(CheckpointError::Malformed(
                "the root must be 32 bytes in standard base64",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return malformed("empty extension line");
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// Signs a checkpoint as a note carrying the log's signature. Refuses a
/// checkpoint whose text would not parse back to itself.
pub fn sign_checkpoint(cp: &Checkpoint, signer: &NoteSigner) -> Result<Note, CheckpointError> {
    let text = cp.to_text();
    if Checkpoint::parse(&text)? != *cp {
        return Err(CheckpointError::Malformed(
            "the checkpoint does not round-trip",
        ));
    }
    let signature = signer.sign(&text)?;
    Ok(Note {
        text,
        signatures: vec![signature],
    })
}

/// Parses a signed checkpoint, verifies the log's signature (other
/// signatures, e.g. cosignatures, are left for the caller), and parses the
/// body. The caller still decides whether `origin` is the log it expects.
pub fn open_checkpoint(
    note_text: &str,
    log_verifier: &NoteVerifier,
) -> Result<(Checkpoint, Note), VerifyError> {
    let note = Note::parse(note_text).map_err(|_| VerifyError)?;
    note.verify(&[log_verifier]).map_err(|_| VerifyError)?;
    let checkpoint = Checkpoint::parse(&note.text).map_err(|_| VerifyError)?;
    Ok((checkpoint, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::rfc9162_empty_root;
    use crate::note::assert_all_refused;

    const SPEC_TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    /// The root line of [`SPEC_TEXT`].
    const SPEC_ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    #[test]
    fn spec_example_parses() {
        let cp = Checkpoint::parse(SPEC_TEXT).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(STANDARD.encode(cp.root), SPEC_ROOT);
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_text(), SPEC_TEXT);
    }

    #[test]
    fn round_trips() {
        let cp = Checkpoint {
            origin: "locus.example/ledger".into(),
            size: 0,
            root: rfc9162_empty_root(),
            extensions: vec!["ext one".into(), "— two".into()],
        };
        assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
        let max = Checkpoint {
            size: u64::MAX,
            extensions: vec![],
            ..cp
        };
        assert_eq!(Checkpoint::parse(&max.to_text()).unwrap(), max);
    }

    #[test]
    fn rejects_malformed() {
        let root = SPEC_ROOT;
        let cases = [
            String::new(),
            "\n".to_owned(),
            format!("o\n1\n{root}"),
            "o\n1\n".to_owned(),
            format!("\n1\n{root}\n"),
            format!(" o\n1\n{root}\n"),
            format!("o \n1\n{root}\n"),
            format!("o\n01\n{root}\n"),
            format!("o\n00\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1 \n{root}\n"),
            format!("o\n\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n0x10\n{root}\n"),
            format!("o\n1\n{}\n", &root[..40]),
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            format!("o\n1\n{}\n", root.replace('/', "_")),
            format!("o\n1\nAAAA{root}\n"),
            // Non-canonical base64 (trailing bits set).
            format!("o\n1\n{}\n", root.replace("2I=", "2J=")),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{root}\next\n\n"),
            format!("o\n1\n{root}\n\next\n"),
            format!("o\n1\n{root}\r\n"),
            format!("o\t\n1\n{root}\n"),
        ];
        assert_all_refused(Checkpoint::parse, &cases);
    }

    #[test]
    fn sign_and_open() {
        let signer = NoteSigner::generate("locus.example/ledger").unwrap();
        let verifier = signer.verifier();
        let cp = Checkpoint {
            origin: "locus.example/ledger".into(),
            size: 42,
            root: [9; 32],
            extensions: vec![],
        };
        let note = sign_checkpoint(&cp, &signer).unwrap();
        let serialized = note.to_string();
        let (opened, opened_note) = open_checkpoint(&serialized, &verifier).unwrap();
        assert_eq!(opened, cp);
        assert_eq!(opened_note, note);

        let other = NoteSigner::generate("locus.example/ledger")
            .unwrap()
            .verifier();
        assert_eq!(open_checkpoint(&serialized, &other), Err(VerifyError));
        let tampered = serialized.replacen("42", "43", 1);
        assert_eq!(open_checkpoint(&tampered, &verifier), Err(VerifyError));
        assert_eq!(open_checkpoint("garbage", &verifier), Err(VerifyError));

        // A validly signed note whose body is not a checkpoint.
        let text = "not a checkpoint\n";
        let bad = Note {
            text: text.into(),
            signatures: vec![signer.sign(text).unwrap()],
        };
        assert_eq!(
            open_checkpoint(&bad.to_string(), &verifier),
            Err(VerifyError)
        );

        for bad in [
            Checkpoint {
                origin: "two\nlines".into(),
                ..cp.clone()
            },
            Checkpoint {
                origin: String::new(),
                ..cp.clone()
            },
            Checkpoint {
                extensions: vec![String::new()],
                ..cp.clone()
            },
            Checkpoint {
                extensions: vec!["a\nb".into()],
                ..cp.clone()
            },
        ] {
            assert!(sign_checkpoint(&bad, &signer).is_err(), "signed {bad:?}");
        }
    }
}

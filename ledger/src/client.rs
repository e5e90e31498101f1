//! A client of the ledger API for submitters, witnesses and auditors.
//!
//! It trusts nothing the server says: every checkpoint is checked against the
//! pinned verifier key, and proofs and tiles are checked against checkpoints.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use locus_platform::clock::Clock;
use locus_protocol::entry::{EventKind, SignedEntry};

use crate::checkpoint::{open_checkpoint, Checkpoint};
use crate::directory::{LedgerDirectory, MEMBER_UPDATED};
use crate::merkle::{
    rfc9162_empty_root, rfc9162_leaf_hash, tree_root, verify_consistency, verify_inclusion, Hash,
    MemoryTree,
};
use crate::note::NoteVerifier;
use crate::tiles::{decode_entry_bundle, entry_bundles_for_size, tile_path, TilePath, TILE_WIDTH};
use crate::wire::{ConsistencyProof, EntryPage, ErrorBody, InclusionProof, Receipt};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the ledger cannot be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the ledger refused ({status}, {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the checkpoint does not verify under the pinned ledger key")]
    BadCheckpoint,
    #[error("the checkpoint is from log {0:?}, not the expected one")]
    WrongOrigin(String),
    #[error("the ledger's proof does not verify: {0}")]
    BadProof(&'static str),
    #[error("the ledger answered something malformed: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone)]
pub struct LedgerClient {
    /// `https://host:port/ledger`
    base: String,
    http: reqwest::Client,
    verifier: NoteVerifier,
    /// Dates the entries this client signs.
    clock: Clock,
}

/// A whole log as downloaded and checked against a checkpoint.
#[derive(Debug)]
pub struct VerifiedLog {
    pub checkpoint: Checkpoint,
    pub entries: Vec<Vec<u8>>,
    pub tree: MemoryTree,
}

impl LedgerClient {
    /// `service_url` is the hosting service's base URL; `verifier` is the
    /// log's key, pinned from the consortium directory.
    pub fn new(service_url: &str, verifier: NoteVerifier, http: reqwest::Client) -> Self {
        Self {
            base: format!("{}/ledger", service_url.trim_end_matches('/')),
            http,
            verifier,
            clock: Clock::system(),
        }
    }

    /// The same client, dating what it signs by `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .send()
            .await?;
        refused_or(response).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get(path)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// Submits a signed entry; returns once the ledger has made it durable,
    /// after checking the receipt names this entry's leaf hash.
    pub async fn submit(&self, entry: &SignedEntry) -> Result<Receipt, ClientError> {
        let body = entry.canonical_bytes().to_vec();
        let expected = BASE64.encode(rfc9162_leaf_hash(&body));
        let response = self
            .http
            .post(format!("{}/entries", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?;
        let receipt: Receipt = refused_or(response)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        if receipt.leaf_hash != expected {
            return Err(ClientError::Malformed(
                "the receipt names another entry".into(),
            ));
        }
        Ok(receipt)
    }

    /// Signs `event` as `submitter` with `key`, now, and submits it.
    pub async fn log(
        &self,
        submitter: &locus_protocol::ids::MemberId,
        key: &locus_protocol::signing::SigningKey,
        event: locus_protocol::entry::Event,
    ) -> Result<Receipt, ClientError> {
        let now = self.clock.now_ms();
        let entry = locus_protocol::entry::Entry::new(submitter.clone(), key.key_id(), now, event);
        let signed =
            SignedEntry::sign(entry, key).map_err(|e| ClientError::Malformed(e.to_string()))?;
        self.submit(&signed).await
    }

    /// The newest checkpoint, verified, with its signed note.
    pub async fn checkpoint(&self) -> Result<(Checkpoint, String), ClientError> {
        let note = self
            .get("checkpoint")
            .await?
            .text()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        let (checkpoint, _) =
            open_checkpoint(&note, &self.verifier).map_err(|_| ClientError::BadCheckpoint)?;
        if checkpoint.origin != self.verifier.name() {
            return Err(ClientError::WrongOrigin(checkpoint.origin));
        }
        Ok((checkpoint, note))
    }

    /// Every checkpoint the ledger signed, oldest first, as signed notes with
    /// their cosignatures. Nothing is verified here: an auditor checks each.
    pub async fn checkpoints(&self) -> Result<Vec<String>, ClientError> {
        let mut notes = Vec::new();
        let mut from = Some(0);
        while let Some(start) = from {
            let page: crate::wire::CheckpointPage = self
                .get_json(&format!("checkpoints?from={start}&limit=1000"))
                .await?;
            if page.next.is_some_and(|next| next <= start) {
                return Err(ClientError::Malformed(
                    "the checkpoint history pages backwards".into(),
                ));
            }
            notes.extend(page.checkpoints.into_iter().map(|c| c.note));
            from = page.next;
        }
        Ok(notes)
    }

    /// Sends a witness's cosignature of the checkpoint of `tree_size`.
    pub async fn submit_cosignature(
        &self,
        tree_size: u64,
        cosignature: &crate::note::NoteSignature,
    ) -> Result<(), ClientError> {
        let body = crate::wire::CosignatureSubmission {
            tree_size,
            cosignature: cosignature.to_string(),
        };
        let response = self
            .http
            .post(format!("{}/cosignatures", self.base))
            .json(&body)
            .send()
            .await?;
        refused_or(response).await.map(drop)
    }

    /// Fetches and checks that leaf `index` with `leaf_hash` is in `checkpoint`.
    pub async fn prove_inclusion(
        &self,
        leaf_hash: &Hash,
        index: u64,
        checkpoint: &Checkpoint,
    ) -> Result<(), ClientError> {
        let size = checkpoint.size;
        let proof: InclusionProof = self
            .get_json(&format!("proof/inclusion?index={index}&size={size}"))
            .await?;
        let hashes = decode_hashes(&proof.proof)?;
        verify_inclusion(leaf_hash, index, size, &hashes, &checkpoint.root)
            .map_err(|_| ClientError::BadProof("inclusion"))
    }

    /// Fetches and checks that `new` extends `old` (append-only).
    pub async fn prove_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> Result<(), ClientError> {
        if new.size < old.size {
            return Err(ClientError::BadProof("the newer checkpoint is smaller"));
        }
        if old.size == 0 {
            // No proof exists from the empty tree (RFC 9162); it is a prefix of
            // every tree if it really is the empty tree.
            return if old.root == rfc9162_empty_root() {
                Ok(())
            } else {
                Err(ClientError::BadProof(
                    "a size-0 checkpoint with a non-empty root",
                ))
            };
        }
        let proof: ConsistencyProof = self
            .get_json(&format!(
                "proof/consistency?first={}&second={}",
                old.size, new.size
            ))
            .await?;
        let hashes = decode_hashes(&proof.proof)?;
        verify_consistency(old.size, new.size, &old.root, &new.root, &hashes)
            .map_err(|_| ClientError::BadProof("consistency"))
    }

    /// One tlog-tiles resource, raw.
    pub async fn tile(&self, path: &TilePath) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .get(&tile_path(path))
            .await?
            .bytes()
            .await
            .map_err(|e| ClientError::Malformed(e.to_string()))?
            .to_vec())
    }

    /// Downloads every entry the checkpoint covers from the entry bundles and
    /// checks that they hash to its root.
    pub async fn download_log(&self, checkpoint: &Checkpoint) -> Result<VerifiedLog, ClientError> {
        let mut entries = Vec::with_capacity(usize::try_from(checkpoint.size).unwrap_or(0));
        let mut tree = MemoryTree::new();
        for bundle in entry_bundles_for_size(checkpoint.size) {
            let TilePath::Entries { width, .. } = bundle else {
                continue;
            };
            let data = self.tile(&bundle).await?;
            let decoded =
                decode_entry_bundle(&data).map_err(|e| ClientError::Malformed(e.to_string()))?;
            if decoded.len() != usize::from(width) || u64::from(width) > TILE_WIDTH {
                return Err(ClientError::Malformed(
                    "an entry bundle has the wrong width".into(),
                ));
            }
            for entry in decoded {
                tree.push(&entry);
                entries.push(entry);
            }
        }
        let root = tree_root(&tree, checkpoint.size).map_err(|_| ClientError::BadProof("tree"))?;
        if root != checkpoint.root {
            return Err(ClientError::BadProof(
                "the entries do not hash to the checkpoint's root",
            ));
        }
        Ok(VerifiedLog {
            checkpoint: checkpoint.clone(),
            entries,
            tree,
        })
    }

    /// Whether the consent service has logged the revocation of `grant`. Only
    /// checkpointed entries are served, so a revocation shows here within one
    /// checkpoint interval.
    pub async fn is_revoked(
        &self,
        grant: &locus_protocol::ids::GrantId,
    ) -> Result<bool, ClientError> {
        let page = self
            .entries(&format!(
                "type={}&grant={grant}&limit=1",
                EventKind::GrantRevoked
            ))
            .await?;
        Ok(!page.entries.is_empty())
    }

    /// The canonical bytes of the entry at `index` (hash them to check a
    /// receipt or a proof).
    pub async fn entry(&self, index: u64) -> Result<Vec<u8>, ClientError> {
        let logged: crate::wire::LoggedEntry = self.get_json(&format!("entries/{index}")).await?;
        locus_protocol::jcs::canonicalize(&logged.entry)
            .map(String::into_bytes)
            .map_err(|_| ClientError::Malformed("a logged entry is not canonical JSON".into()))
    }

    /// One page of the entry query (`query` is the URL query string).
    pub async fn entries(&self, query: &str) -> Result<EntryPage, ClientError> {
        self.get_json(&format!("entries?{query}")).await
    }
}

async fn refused_or(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: Option<ErrorBody> = response.json().await.ok();
    Err(ClientError::Refused {
        status: status.as_u16(),
        code: body
            .as_ref()
            .map_or_else(|| "unknown".into(), |b| b.error.clone()),
        message: body.map_or_else(String::new, |b| b.message),
    })
}

fn decode_hashes(encoded: &[String]) -> Result<Vec<Hash>, ClientError> {
    encoded
        .iter()
        .map(|h| {
            BASE64
                .decode(h)
                .ok()
                .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                .ok_or_else(|| {
                    ClientError::Malformed("a proof hash is not 32 bytes of base64".into())
                })
        })
        .collect()
}

/// Follows the directory on the ledger: the authority's `member.updated`
/// entries, each checked against the pinned authority key, folded in log
/// order. Services that do not host the ledger keep their view current with
/// it.
#[derive(Debug)]
pub struct DirectoryFollower {
    client: LedgerClient,
    directory: LedgerDirectory,
    cursor: std::sync::Mutex<Option<u64>>,
}

impl DirectoryFollower {
    pub fn new(client: LedgerClient, authority: locus_protocol::signing::VerifyingKey) -> Self {
        Self {
            client,
            directory: LedgerDirectory::new(authority),
            cursor: std::sync::Mutex::new(None),
        }
    }

    pub fn directory(&self) -> &LedgerDirectory {
        &self.directory
    }

    /// Reads every directory change logged since the last call. Entries not
    /// signed by the authority are an error: the ledger would never log them.
    pub async fn refresh(&self) -> Result<usize, ClientError> {
        let mut applied = 0;
        loop {
            let after = *self.cursor.lock().unwrap_or_else(|p| p.into_inner());
            let query = match after {
                Some(after) => format!("type={MEMBER_UPDATED}&limit=1000&after={after}"),
                None => format!("type={MEMBER_UPDATED}&limit=1000"),
            };
            let page = self.client.entries(&query).await?;
            let canonical: Vec<String> = page
                .entries
                .iter()
                .map(|e| {
                    locus_protocol::jcs::canonicalize(&e.entry).map_err(|_| {
                        ClientError::Malformed("a directory entry is not canonical JSON".into())
                    })
                })
                .collect::<Result<_, _>>()?;
            applied += self
                .directory
                .replay(canonical.iter().map(String::as_str))
                .map_err(|e| ClientError::Malformed(e.into()))?;
            if let Some(last) = page.entries.last() {
                *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = Some(last.index);
            }
            if page.next.is_none() {
                return Ok(applied);
            }
        }
    }
}

//! The sequencer: the only writer of the log.
//!
//! Submitters are checked in the caller's task (parse, member lookup, signature,
//! role), then queued to one writer thread that checks the member and role again
//! at the entry's place in the log (the directory may have changed meanwhile,
//! also earlier in the same batch), commits whatever has queued up as one
//! transaction (group commit) and answers each submitter only once its batch is
//! durable. The same thread signs a checkpoint at most `checkpoint_interval`
//! after new entries land, and only after proving from storage that the new tree
//! extends the last one it signed.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use locus_protocol::directory::Directory;
use locus_protocol::entry::{Event, EventKind, SignedEntry};
use locus_protocol::ids::GrantId;
use locus_protocol::roles::{may_log, NotPermitted};
use locus_protocol::signing::VerifyingKey;
use tokio::sync::oneshot;

use crate::checkpoint::{open_checkpoint, sign_checkpoint, Checkpoint};
use crate::directory::{submitter, LedgerDirectory, SubmitterRefusal};
use crate::merkle::{
    consistency_proof, rfc9162_empty_root, rfc9162_leaf_hash, verify_consistency, CompactRange,
    Hash,
};
use crate::metrics::LedgerMetrics;
use crate::note::{NoteSigner, NoteVerifier};
use crate::store::{EntryRow, LedgerStore, SignedCheckpoint, StoreError};
use crate::wire::Receipt;
use locus_platform::clock::Clock;
use locus_platform::db::PooledConnection;

/// Largest entry accepted: tlog-tiles entry bundles prefix each entry with a
/// 16-bit length.
pub const MAX_ENTRY_BYTES: usize = 65_535;

#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Log identity, the first line of every checkpoint.
    pub origin: String,
    /// Longest time between new entries landing and a checkpoint covering them.
    pub checkpoint_interval: Duration,
    /// Most entries committed in one transaction.
    pub max_batch: usize,
    /// Submissions waiting beyond this are refused as busy (back-pressure).
    pub queue_depth: usize,
    /// How far an entry's own timestamp may be from the sequencer's clock.
    pub max_clock_skew: Duration,
    /// The sequencer's clock: entries' timestamps are checked against it and
    /// checkpoints are dated by it.
    pub clock: Clock,
}

impl SequencerConfig {
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            checkpoint_interval: Duration::from_millis(500),
            max_batch: 4096,
            queue_depth: 16_384,
            max_clock_skew: Duration::from_secs(300),
            clock: Clock::system(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the entry is larger than {MAX_ENTRY_BYTES} bytes")]
    TooLarge,
    #[error("the entry is not a canonical signed entry: {0}")]
    Malformed(String),
    #[error("the submitter is not a registered member")]
    UnknownSubmitter,
    #[error("the submitter's membership is {0}")]
    InactiveSubmitter(&'static str),
    #[error("the entry's signature does not verify under the submitter's key")]
    BadSignature,
    #[error(transparent)]
    NotPermitted(#[from] NotPermitted),
    #[error("the entry's time is more than {0} seconds from the ledger's clock")]
    ClockSkew(u64),
    #[error("the grant was revoked earlier in the log")]
    GrantRevoked,
    #[error("the ledger is busy; retry shortly")]
    Busy,
    #[error("the ledger is not accepting entries")]
    Unavailable,
}

/// Why a sequencer refuses to start or to sign.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored checkpoint is not signed by this ledger's key")]
    ForeignCheckpoint,
    #[error("storage holds {stored} entries but a signed checkpoint covers {signed}")]
    Truncated { stored: u64, signed: u64 },
    #[error("the stored tree of size {size} is not consistent with the checkpoint signed at size {signed}")]
    Inconsistent { signed: u64, size: u64 },
    #[error("cannot sign the checkpoint: {0}")]
    Sign(String),
    #[error("the logged directory cannot be trusted: {0}")]
    Directory(String),
}

/// The latest checkpoint, as served to readers.
#[derive(Debug, Clone)]
pub struct Published {
    pub size: u64,
    pub root: Hash,
    /// The signed note, exactly as served at `checkpoint`.
    pub note: String,
}

#[derive(Debug, Default)]
struct Shared {
    published: RwLock<Option<Published>>,
    halted: RwLock<Option<String>>,
}

/// An entry that passed every check a submitter can be given an answer for.
#[derive(Debug)]
struct Job {
    leaf_hash: Hash,
    row: EntryRow,
    /// Checked again by the writer, and kept for the directory, which changes
    /// once the entry is durable.
    signed: SignedEntry,
    /// The key the signature was checked under on arrival.
    key: VerifyingKey,
    reply: oneshot::Sender<Result<Receipt, SubmitError>>,
}

/// Handle to the sequencer; cheap to clone. The writer thread stops once every
/// handle is dropped, after a last checkpoint.
#[derive(Debug, Clone)]
pub struct Sequencer {
    tx: mpsc::SyncSender<Job>,
    directory: Arc<LedgerDirectory>,
    shared: Arc<Shared>,
    metrics: LedgerMetrics,
    max_clock_skew: Duration,
    clock: Clock,
}

impl Sequencer {
    /// Checks storage against the last signed checkpoint, then starts the writer.
    pub fn start(
        store: LedgerStore,
        signer: NoteSigner,
        directory: Arc<LedgerDirectory>,
        metrics: LedgerMetrics,
        config: SequencerConfig,
    ) -> Result<(Self, JoinHandle<()>), GuardError> {
        let verifier = signer.verifier();
        let updates = store.entry_bodies_of_type(EventKind::MemberUpdated)?;
        directory
            .replay(updates.iter().map(String::as_str))
            .map_err(|e| GuardError::Directory(e.to_owned()))?;
        let size = store.tree_size()?;
        let peaks = crate::merkle::NodeReader::read_nodes(&store, &CompactRange::peak_ids(size))?;
        let range = CompactRange::from_peaks(size, peaks)
            .map_err(|_| GuardError::Inconsistent { signed: 0, size })?;
        let shared = Arc::new(Shared::default());
        let mut writer = Writer {
            conn: store.conn()?,
            store,
            signer,
            verifier,
            range,
            last_signed: None,
            last_signed_at: Instant::now(),
            shared: Arc::clone(&shared),
            directory: Arc::clone(&directory),
            metrics: metrics.clone(),
            config: config.clone(),
        };
        writer.load_guard()?;
        // A fresh log gets its first checkpoint at once, and a log that was
        // stopped mid-batch gets one covering what it had made durable.
        if writer.last_signed.map(|(s, _)| s) != Some(writer.range.size()) {
            writer.sign()?;
        }
        metrics.tree_size.set(writer.range.size() as i64);

        let (tx, rx) = mpsc::sync_channel(config.queue_depth);
        let handle = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| GuardError::Sign(e.to_string()))?;
        Ok((
            Self {
                tx,
                directory,
                shared,
                metrics,
                max_clock_skew: config.max_clock_skew,
                clock: config.clock.clone(),
            },
            handle,
        ))
    }

    /// The clock entries are checked against.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The members as the log knows them.
    pub fn directory(&self) -> &LedgerDirectory {
        &self.directory
    }

    /// The newest signed checkpoint.
    pub fn published(&self) -> Option<Published> {
        read_lock(&self.shared.published).clone()
    }

    /// Why the sequencer stopped accepting entries, if it did.
    pub fn halted(&self) -> Option<String> {
        read_lock(&self.shared.halted).clone()
    }

    /// Validates a signed entry and waits until it is durable in the log.
    pub async fn submit(&self, bytes: &[u8]) -> Result<Receipt, SubmitError> {
        let result = self.enqueue(bytes);
        let result = match result {
            Ok(rx) => rx.await.unwrap_or(Err(SubmitError::Unavailable)),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.metrics
                .rejected
                .with_label_values(&[e.metric_label()])
                .inc();
        }
        result
    }

    fn enqueue(
        &self,
        bytes: &[u8],
    ) -> Result<oneshot::Receiver<Result<Receipt, SubmitError>>, SubmitError> {
        if self.halted().is_some() {
            return Err(SubmitError::Unavailable);
        }
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(SubmitError::TooLarge);
        }
        let signed =
            SignedEntry::parse(bytes).map_err(|e| SubmitError::Malformed(e.to_string()))?;
        let entry = signed.entry();
        let (key, role) = self
            .directory
            .submitter(&entry.submitter)
            .map_err(SubmitError::from)?;
        signed.verify(&key).map_err(|_| SubmitError::BadSignature)?;
        may_log(entry, role)?;
        let now = self.clock.now_ms();
        let skew = self.max_clock_skew.as_millis() as i64;
        if (entry.time_ms - now).abs() > skew {
            return Err(SubmitError::ClockSkew(self.max_clock_skew.as_secs()));
        }

        let leaf_hash = rfc9162_leaf_hash(bytes);
        let row = EntryRow::new(0, &signed, &leaf_hash, 0);
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job {
                leaf_hash,
                row,
                signed,
                key,
                reply,
            })
            .map_err(|e| match e {
                TrySendError::Full(_) => SubmitError::Busy,
                TrySendError::Disconnected(_) => SubmitError::Unavailable,
            })?;
        Ok(rx)
    }
}

impl From<SubmitterRefusal> for SubmitError {
    fn from(refusal: SubmitterRefusal) -> Self {
        match refusal {
            SubmitterRefusal::Unknown => Self::UnknownSubmitter,
            SubmitterRefusal::Suspended => Self::InactiveSubmitter("suspended"),
            SubmitterRefusal::Withdrawn => Self::InactiveSubmitter("withdrawn"),
        }
    }
}

impl SubmitError {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnknownSubmitter => "unknown_submitter",
            Self::InactiveSubmitter(_) => "inactive_submitter",
            Self::BadSignature => "bad_signature",
            Self::NotPermitted(_) => "not_permitted",
            Self::ClockSkew(_) => "clock_skew",
            Self::GrantRevoked => "grant_revoked",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        }
    }
}

struct Writer {
    store: LedgerStore,
    conn: PooledConnection,
    signer: NoteSigner,
    verifier: NoteVerifier,
    range: CompactRange,
    last_signed: Option<(u64, Hash)>,
    last_signed_at: Instant,
    shared: Arc<Shared>,
    directory: Arc<LedgerDirectory>,
    metrics: LedgerMetrics,
    config: SequencerConfig,
}

impl Writer {
    /// Loads the last signed checkpoint and proves the stored tree extends it.
    fn load_guard(&mut self) -> Result<(), GuardError> {
        let Some(row) = self.store.latest_checkpoint()? else {
            return Ok(());
        };
        let (checkpoint, _) = open_checkpoint(&row.note, &self.verifier)
            .map_err(|_| GuardError::ForeignCheckpoint)?;
        if checkpoint.size as i64 != row.tree_size || checkpoint.root.as_slice() != row.root {
            return Err(GuardError::ForeignCheckpoint);
        }
        self.last_signed = Some((checkpoint.size, checkpoint.root));
        self.check_extends_last_signed()?;
        self.publish(Published {
            size: checkpoint.size,
            root: checkpoint.root,
            note: row.note,
        });
        Ok(())
    }

    /// The guard: the tree about to be signed must extend the last signed one,
    /// proven from storage rather than from this process's memory.
    fn check_extends_last_signed(&self) -> Result<(), GuardError> {
        let Some((signed, signed_root)) = self.last_signed else {
            return Ok(());
        };
        let size = self.range.size();
        if size < signed {
            return Err(GuardError::Truncated {
                stored: size,
                signed,
            });
        }
        if signed == 0 {
            // RFC 9162 has no consistency proof from the empty tree; it is a
            // prefix of every tree, provided it is the empty tree.
            return if signed_root == rfc9162_empty_root() {
                Ok(())
            } else {
                Err(GuardError::Inconsistent { signed, size })
            };
        }
        let inconsistent = GuardError::Inconsistent { signed, size };
        let proof = match consistency_proof(&self.store, signed, size) {
            Ok(proof) => proof,
            Err(crate::merkle::ProofError::Store(e)) => return Err(e.into()),
            Err(_) => return Err(inconsistent),
        };
        verify_consistency(signed, size, &signed_root, &self.range.root(), &proof)
            .map_err(|_| inconsistent)
    }

    fn sign(&mut self) -> Result<(), GuardError> {
        self.check_extends_last_signed()?;
        let checkpoint = Checkpoint {
            origin: self.config.origin.clone(),
            size: self.range.size(),
            root: self.range.root(),
            extensions: Vec::new(),
        };
        let note = sign_checkpoint(&checkpoint, &self.signer)
            .map_err(|e| GuardError::Sign(e.to_string()))?
            .to_string();
        self.store.insert_checkpoint(&SignedCheckpoint {
            tree_size: checkpoint.size as i64,
            root: checkpoint.root.to_vec(),
            note: note.clone(),
            signed_at: self.config.clock.now_ms(),
        })?;
        self.last_signed = Some((checkpoint.size, checkpoint.root));
        self.last_signed_at = Instant::now();
        self.metrics.checkpoints.inc();
        self.publish(Published {
            size: checkpoint.size,
            root: checkpoint.root,
            note,
        });
        Ok(())
    }

    fn publish(&self, published: Published) {
        self.metrics.published_size.set(published.size as i64);
        *write_lock(&self.shared.published) = Some(published);
    }

    fn signed_size(&self) -> u64 {
        self.last_signed.map_or(0, |(s, _)| s)
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        loop {
            let wait = if self.range.size() > self.signed_size() {
                self.config
                    .checkpoint_interval
                    .saturating_sub(self.last_signed_at.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            match rx.recv_timeout(wait) {
                Ok(job) => {
                    let mut batch = vec![job];
                    while batch.len() < self.config.max_batch {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    self.commit(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.checkpoint_if_due(true);
                    tracing::info!(size = self.range.size(), "sequencer stopped");
                    return;
                }
            }
            self.checkpoint_if_due(false);
        }
    }

    fn checkpoint_if_due(&mut self, force: bool) {
        if read_lock(&self.shared.halted).is_some() || self.range.size() == self.signed_size() {
            return;
        }
        if !force && self.last_signed_at.elapsed() < self.config.checkpoint_interval {
            return;
        }
        match self.sign() {
            Ok(()) => {}
            // A storage hiccup is retried at the next turn; anything else means
            // the stored tree cannot be trusted, so stop accepting entries.
            Err(GuardError::Store(e)) => {
                tracing::warn!(error = %e, "checkpoint not signed; will retry");
            }
            Err(e) => {
                tracing::error!(error = %e, "refusing to sign; the ledger stops accepting entries");
                *write_lock(&self.shared.halted) = Some(e.to_string());
            }
        }
    }

    /// Commits one batch and answers its submitters.
    fn commit(&mut self, jobs: Vec<Job>) {
        if read_lock(&self.shared.halted).is_some() {
            for job in jobs {
                let _ = job.reply.send(Err(SubmitError::Unavailable));
            }
            return;
        }
        match self.write_batch(&jobs) {
            Ok(indexes) => {
                // The directory changes only once its entries are durable, and
                // before the authority hears back; an entry the log already
                // held (a replay) changes nothing.
                for (job, outcome) in jobs.iter().zip(&indexes) {
                    if matches!(outcome, Ok((_, true))) {
                        self.directory.apply(job.signed.entry());
                    }
                }
                for (job, outcome) in jobs.into_iter().zip(indexes) {
                    let reply = outcome.map(|(index, _)| Receipt {
                        index,
                        leaf_hash: BASE64.encode(job.leaf_hash),
                    });
                    // A submitter that gave up still has its entry logged.
                    let _ = job.reply.send(reply);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = jobs.len(), "batch not committed");
                for job in jobs {
                    let _ = job.reply.send(Err(SubmitError::Unavailable));
                }
                self.recover();
            }
        }
    }

    /// After a failed batch the connection may be dead, and the commit may even
    /// have happened with its answer lost: take a fresh connection and reload
    /// the tree from storage rather than trust this process's memory.
    fn recover(&mut self) {
        let reloaded = self.store.conn().and_then(|conn| {
            let size = self.store.tree_size()?;
            let peaks =
                crate::merkle::NodeReader::read_nodes(&self.store, &CompactRange::peak_ids(size))?;
            Ok((conn, size, peaks))
        });
        match reloaded {
            Ok((conn, size, peaks)) => match CompactRange::from_peaks(size, peaks) {
                Ok(range) => {
                    self.conn = conn;
                    self.range = range;
                    tracing::info!(size, "storage reconnected; tree reloaded");
                }
                Err(_) => {
                    *write_lock(&self.shared.halted) = Some("the stored tree is corrupt".into());
                }
            },
            Err(e) => tracing::warn!(error = %e, "storage still unavailable"),
        }
    }

    /// Returns each job's index, and whether this batch appended it. An entry
    /// already in the log (a submitter retrying after a lost answer) gets its
    /// existing index, not a second leaf.
    ///
    /// A discovery or a release under a grant whose revocation is already in
    /// the log is refused here, where entries are put in order: the log never
    /// holds an access after the revocation of its grant, and a custodian that
    /// has not yet seen the revocation releases nothing (no log, no data).
    fn write_batch(&mut self, jobs: &[Job]) -> Result<Vec<Outcome>, StoreError> {
        let hashes: Vec<Vec<u8>> = jobs.iter().map(|j| j.leaf_hash.to_vec()).collect();
        let mut known: HashMap<Hash, u64> = HashMap::new();
        for (hash, index) in self.store.find_leaves(&hashes)? {
            if let Ok(hash) = Hash::try_from(hash.as_slice()) {
                known.insert(hash, index);
            }
        }
        let accessed: Vec<GrantId> = jobs
            .iter()
            .filter(|j| is_access(&j.signed.entry().event))
            .filter_map(|j| j.row.grant_id)
            .collect();
        let mut revoked: HashSet<GrantId> = if accessed.is_empty() {
            HashSet::new()
        } else {
            self.store.revoked_among(&accessed)?
        };
        let mut range = self.range.clone();
        let mut rows = Vec::with_capacity(jobs.len());
        let mut nodes = Vec::with_capacity(jobs.len() * 2);
        let mut indexes = Vec::with_capacity(jobs.len());
        let now = self.config.clock.now_ms();
        let shared = self.directory.read();
        // The directory as it stands at each place of the batch: the stored one
        // until the batch itself changes it.
        let mut changed: Option<Directory> = None;
        for job in jobs {
            if let Some(&index) = known.get(&job.leaf_hash) {
                indexes.push(Ok((index, false)));
                continue;
            }
            let event = &job.signed.entry().event;
            let directory = changed.as_ref().unwrap_or(&shared);
            if let Err(e) = still_admitted(directory, self.directory.authority(), job) {
                indexes.push(Err(e));
                continue;
            }
            if let Some(grant) = &job.row.grant_id {
                if is_access(event) && revoked.contains(grant) {
                    indexes.push(Err(SubmitError::GrantRevoked));
                    continue;
                }
                if matches!(event, Event::GrantRevoked(_)) {
                    revoked.insert(*grant);
                }
            }
            if matches!(event, Event::MemberUpdated(_)) {
                changed
                    .get_or_insert_with(|| shared.clone())
                    .apply_entry(job.signed.entry());
            }
            let index = range.size();
            nodes.extend(range.append(job.leaf_hash));
            let mut row = job.row.clone();
            row.idx = index as i64;
            row.sequenced_at = now;
            rows.push(row);
            known.insert(job.leaf_hash, index);
            indexes.push(Ok((index, true)));
        }
        drop(shared);
        if !rows.is_empty() {
            let started = Instant::now();
            self.store.append(&mut self.conn, &rows, &nodes)?;
            self.metrics
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.batch_size.observe(rows.len() as f64);
            self.metrics.appended.inc_by(rows.len() as u64);
        }
        self.range = range;
        self.metrics.tree_size.set(self.range.size() as i64);
        Ok(indexes)
    }
}

/// A job's fate in a batch: its index and whether this batch appended it, or
/// why it was refused.
type Outcome = Result<(u64, bool), SubmitError>;

/// Whether the submitter may still log the job's entry where it is about to
/// land: still active, under the key that verified it on arrival, in a role
/// that logs it. The audit checks every entry the same way at its place.
fn still_admitted(
    directory: &Directory,
    authority: &VerifyingKey,
    job: &Job,
) -> Result<(), SubmitError> {
    let entry = job.signed.entry();
    let (key, role) = submitter(directory, authority, &entry.submitter)?;
    if key != job.key {
        return Err(SubmitError::BadSignature);
    }
    Ok(may_log(entry, role)?)
}

/// Entries that use a grant: refused once the grant is revoked.
fn is_access(event: &Event) -> bool {
    matches!(event, Event::IndexQueried(_) | Event::RecordRetrieved(_))
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

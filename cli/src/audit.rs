//! `locus audit ...`: the regulator's view of the ledger, with nothing but
//! `network.json` (the regulator's certificate, the ledger's key, the witness
//! keys and the authority key): verify everything, list entries, export them
//! as FHIR AuditEvents.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::{Args, Subcommand};
use locus_consent::audit::{check_grants, parse_entries};
use locus_ledger::checkpoint::{open_checkpoint, Checkpoint};
use locus_ledger::client::LedgerClient;
use locus_ledger::cosignature::{CosignatureSigner, CosignatureVerifier};
use locus_ledger::merkle::{rfc9162_leaf_hash, tree_root, Hash, MemoryTree};
use locus_ledger::note::Note;
use locus_ledger::tiles::{
    decode_entry_bundle, entry_bundles_for_size, TilePath, TileRef, TILE_WIDTH,
};
use locus_ledger::wire::LoggedEntry;
use locus_ledger::witness::{self, CosignDecision};
use locus_protocol::entry::EventKind;
use locus_protocol::signing::SigningKey;
use serde_json::{json, Value};

use crate::network::NetworkInfo;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every checkpoint's signature and cosignatures, consistency from
    /// the first to the last, every entry's inclusion and signature, and the
    /// access rules. Exits 0 only if all of it holds.
    Verify {
        #[command(flatten)]
        network: NetworkArg,
        /// How long to wait for the witnesses to cosign the newest checkpoint.
        #[arg(long, default_value_t = 10)]
        witness_wait_secs: u64,
    },
    /// Witness the ledger as the regulator, until Ctrl-C: cosign each new
    /// checkpoint after checking it extends the last one cosigned. Exits 2,
    /// keeping the evidence in the state file, if the ledger ever shows one that
    /// does not.
    Watch {
        #[command(flatten)]
        network: NetworkArg,
        /// Where the last checkpoint cosigned is kept between runs.
        #[arg(long, default_value = "regulator-witness.json")]
        state: PathBuf,
        /// How often to look at the newest checkpoint.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Look once and exit (for a scheduled job).
        #[arg(long)]
        once: bool,
    },
    /// List ledger entries, filtered.
    Events {
        #[command(flatten)]
        network: NetworkArg,
        #[command(flatten)]
        filter: Filter,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the entries (filtered) as a FHIR R4 Bundle of AuditEvent resources.
    Export {
        #[command(flatten)]
        network: NetworkArg,
        #[command(flatten)]
        filter: Filter,
        /// Output file; standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct NetworkArg {
    /// The network file `locus up` wrote.
    #[arg(long = "network", default_value = "locus-data/network.json")]
    pub path: PathBuf,
}

/// Filters on the ledger's indexed columns.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Entry type, e.g. `record.retrieved`, `grant.issued`.
    #[arg(long = "type")]
    pub entry_type: Option<String>,
    /// Submitting member, e.g. `hospital-b`.
    #[arg(long)]
    pub submitter: Option<String>,
    /// Patient pseudonym (64 hex characters).
    #[arg(long)]
    pub subject: Option<String>,
    /// Grant id.
    #[arg(long)]
    pub grant: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            network,
            witness_wait_secs,
        } => {
            let info = NetworkInfo::load(&network.path)?;
            let report = verify(&info, Duration::from_secs(witness_wait_secs)).await?;
            for line in &report.facts {
                println!("ok: {line}");
            }
            for item in &report.for_review {
                println!("review: {item}");
            }
            if report.holds() {
                println!("audit holds");
                Ok(ExitCode::SUCCESS)
            } else {
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                println!("audit FAILED: {} problem(s)", report.problems.len());
                Ok(ExitCode::from(2))
            }
        }
        AuditCommand::Watch {
            network,
            state,
            interval_ms,
            once,
        } => {
            let info = NetworkInfo::load(&network.path)?;
            watch(
                &info,
                &state,
                Duration::from_millis(interval_ms.max(100)),
                once,
            )
            .await
        }
        AuditCommand::Events {
            network,
            filter,
            json,
        } => {
            let info = NetworkInfo::load(&network.path)?;
            let entries = events(&info.regulator_ledger()?, &filter).await?;
            for logged in &entries {
                if json {
                    println!("{}", serde_json::to_string(logged)?);
                } else {
                    println!("{}", describe(logged));
                }
            }
            if !json {
                println!("{} entries", entries.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export {
            network,
            filter,
            out,
        } => {
            let info = NetworkInfo::load(&network.path)?;
            let entries = events(&info.regulator_ledger()?, &filter).await?;
            let bundle = audit_event_bundle(&info, &entries);
            let text = serde_json::to_string_pretty(&bundle)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "wrote {} AuditEvent resources to {}",
                        entries.len(),
                        path.display()
                    );
                }
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The regulator's witness state: the last checkpoint it cosigned, and the
/// signed note of one that did not extend it, once there is one.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct WitnessState {
    tree_size: u64,
    /// Base64 of the root.
    root: String,
    conflict: Option<String>,
}

impl WitnessState {
    fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is damaged", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Written whole to a neighbour and renamed, so a crash leaves the old view.
    fn store(&self, path: &Path) -> anyhow::Result<()> {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
    }

    fn checkpoint(&self) -> anyhow::Result<Checkpoint> {
        let root = BASE64
            .decode(&self.root)
            .ok()
            .and_then(|r| Hash::try_from(r.as_slice()).ok());
        Ok(witness::view(
            self.tree_size,
            root.context("the witness state's root is damaged")?,
        ))
    }
}

/// `locus audit watch`: the regulator as one more witness, its view in a file.
async fn watch(
    info: &NetworkInfo,
    state_path: &Path,
    interval: Duration,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let ledger = info.regulator_ledger()?;
    let key = SigningKey::from_pkcs8_pem(&info.regulator.signing_key.pem)
        .context("the regulator's signing key")?;
    let signer = CosignatureSigner::from_signing_key(&info.regulator.id, key.as_dalek().clone())?;
    loop {
        let state = WitnessState::load(state_path)?;
        if let Some(WitnessState {
            conflict: Some(_),
            tree_size,
            ..
        }) = &state
        {
            println!(
                "CONFLICT: stopped earlier; the ledger showed a checkpoint that does not extend size {tree_size}; the evidence is in {}",
                state_path.display()
            );
            return Ok(ExitCode::from(2));
        }
        let seen = state.as_ref().map(WitnessState::checkpoint).transpose()?;
        match witness::decide(&ledger, &signer, seen.as_ref()).await {
            Ok(CosignDecision::AlreadyCosigned(_)) => {}
            Ok(CosignDecision::Cosign { checkpoint, text }) => {
                WitnessState {
                    tree_size: checkpoint.size,
                    root: BASE64.encode(checkpoint.root),
                    conflict: None,
                }
                .store(state_path)?;
                witness::cosign(&ledger, &signer, &checkpoint, &text)
                    .await
                    .context("sending the cosignature")?;
                println!("cosigned the checkpoint of size {}", checkpoint.size);
            }
            Ok(CosignDecision::Conflict { size, evidence }) => {
                let mut state = state.unwrap_or_default();
                let witnessed = state.tree_size;
                state.conflict = Some(evidence);
                state.store(state_path)?;
                println!(
                    "CONFLICT: the ledger serves a checkpoint of size {size} that does not extend the one of size {witnessed} cosigned before; the evidence is in {}",
                    state_path.display()
                );
                return Ok(ExitCode::from(2));
            }
            Err(e) if once => return Err(e).context("reading the ledger"),
            Err(e) => eprintln!("the ledger cannot be read now ({e}); trying again"),
        }
        if once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// What [`verify`] established and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// What holds, in words.
    pub facts: Vec<String>,
    /// What a regulator should look at (not failures): break-glass accesses,
    /// and grants backed on a device their own requester's desk enrolled.
    pub for_review: Vec<String>,
    /// What does not hold, each naming the checkpoint or entry.
    pub problems: Vec<String>,
}

impl Report {
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The whole audit. Errors are for what stops it from starting (no network
/// file, ledger unreachable); everything it finds is in the report.
pub async fn verify(info: &NetworkInfo, witness_wait: Duration) -> anyhow::Result<Report> {
    let ledger = info.regulator_ledger()?;
    let witnesses = info.witness_verifiers()?;
    let quorum = info.witnesses.quorum;
    let mut report = Report::default();

    // The head: the newest checkpoint, once a quorum of witnesses cosigned it.
    let deadline = tokio::time::Instant::now() + witness_wait;
    let (head, head_note) = loop {
        let (head, note) = ledger
            .checkpoint()
            .await
            .context("fetching the newest checkpoint")?;
        let note = Note::parse(&note).context("the newest checkpoint is not a signed note")?;
        let cosigned = cosigners(&note, &witnesses, &mut Vec::new());
        if cosigned.len() >= quorum || tokio::time::Instant::now() >= deadline {
            break (head, note);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let cosigned = cosigners(&head_note, &witnesses, &mut report.problems);
    if cosigned.len() >= quorum {
        report.facts.push(format!(
            "the newest checkpoint ({} entries) is cosigned by {} of {} witnesses ({}), quorum {quorum}",
            head.size,
            cosigned.len(),
            witnesses.len(),
            cosigned.join(", ")
        ));
    } else {
        report.problems.push(format!(
            "the newest checkpoint ({} entries) has {} valid witness cosignature(s); {quorum} are required",
            head.size,
            cosigned.len()
        ));
    }

    let history = checkpoint_history(&ledger, info, &witnesses, &head, &mut report).await?;
    let log = download(&ledger, &head, &mut report).await?;

    // Every historical checkpoint's root is the root of the first `size` leaves.
    if let Some((tree, _)) = &log {
        let mut wrong = 0;
        for cp in &history {
            if tree_root(tree, cp.size).ok() != Some(cp.root) {
                wrong += 1;
                report.problems.push(format!(
                    "checkpoint of size {} does not match the log's first {} leaves",
                    cp.size, cp.size
                ));
            }
        }
        if wrong == 0 {
            report.facts.push(format!(
                "every one of {} checkpoints is a prefix of the log",
                history.len()
            ));
        }
    }

    // Entries that are missing or altered are already named; the rest of the
    // audit needs them all.
    if let Some((_, Some(entries))) = &log {
        entries_and_access(info, entries, &mut report)?;
    }
    Ok(report)
}

/// The witnesses whose cosignature on `note` verifies; a present but invalid
/// cosignature is a problem.
fn cosigners(
    note: &Note,
    witnesses: &[CosignatureVerifier],
    problems: &mut Vec<String>,
) -> Vec<String> {
    let mut names = Vec::new();
    for witness in witnesses {
        let present = note
            .signatures
            .iter()
            .any(|s| s.name == witness.name() && s.key_id == witness.key_id());
        if !present {
            continue;
        }
        if note.verify(&[witness]).is_ok() {
            names.push(witness.name().to_owned());
        } else {
            let size = note.text.lines().nth(1).unwrap_or("?");
            problems.push(format!(
                "witness {}'s cosignature on the checkpoint of size {size} does not verify",
                witness.name()
            ));
        }
    }
    names
}

/// Every stored checkpoint: the log's signature, its witnesses' cosignatures,
/// growth, and a consistency proof between each and the next, ending at `head`.
async fn checkpoint_history(
    ledger: &LedgerClient,
    info: &NetworkInfo,
    witnesses: &[CosignatureVerifier],
    head: &Checkpoint,
    report: &mut Report,
) -> anyhow::Result<Vec<Checkpoint>> {
    let notes = ledger
        .checkpoints()
        .await
        .context("fetching the checkpoint history")?;
    let mut history: Vec<Checkpoint> = Vec::new();
    let mut cosigned = 0;
    for (position, text) in notes.iter().enumerate() {
        match open_checkpoint(text, ledger.verifier()) {
            // Signed after the head was fetched: the next audit covers it.
            Ok((checkpoint, _))
                if checkpoint.origin == info.ledger.origin && checkpoint.size > head.size => {}
            Ok((checkpoint, note)) if checkpoint.origin == info.ledger.origin => {
                if !cosigners(&note, witnesses, &mut report.problems).is_empty() {
                    cosigned += 1;
                }
                history.push(checkpoint);
            }
            Ok((checkpoint, _)) => report.problems.push(format!(
                "checkpoint {position} (size {}) names the log {:?}, not {:?}",
                checkpoint.size, checkpoint.origin, info.ledger.origin
            )),
            Err(_) => {
                let size = Note::parse(text)
                    .ok()
                    .and_then(|note| Checkpoint::parse(&note.text).ok())
                    .map_or_else(|| "unreadable".to_owned(), |c| c.size.to_string());
                report.problems.push(format!(
                    "checkpoint {position} (size {size}) is not signed by the ledger's key: forged or altered"
                ));
            }
        }
    }
    // Nothing in `history` is larger than the head.
    let (Some(first), Some(last)) = (history.first(), history.last()) else {
        report
            .problems
            .push("the ledger serves no checkpoint history".into());
        return Ok(history);
    };
    let first_size = first.size;
    let mut inconsistent = 0;
    for pair in history.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        if new.size <= old.size {
            report.problems.push(format!(
                "checkpoint of size {} follows one of size {}: the log shrank",
                new.size, old.size
            ));
            inconsistent += 1;
        } else if let Err(e) = ledger.prove_consistency(old, new).await {
            report.problems.push(format!(
                "checkpoints of size {} and {} are not consistent: {e}",
                old.size, new.size
            ));
            inconsistent += 1;
        }
    }
    if last.size < head.size {
        if let Err(e) = ledger.prove_consistency(last, head).await {
            report.problems.push(format!(
                "the newest checkpoint is not consistent with the history: {e}"
            ));
            inconsistent += 1;
        }
    } else if last.root != head.root {
        report
            .problems
            .push(format!("two different checkpoints of size {}", head.size));
        inconsistent += 1;
    }
    if inconsistent == 0 {
        report.facts.push(format!(
            "{} checkpoints signed by the ledger, consistent from size {first_size} to {}; {cosigned} carry witness cosignatures",
            history.len(),
            head.size
        ));
    }
    Ok(history)
}

/// Downloads every leaf hash (hash tiles) and every entry (entry bundles) of
/// `head`; names each entry missing or not hashing to its leaf, and checks the
/// leaves produce the signed root. Returns the tree, and the entries when every
/// one of them holds.
async fn download(
    ledger: &LedgerClient,
    head: &Checkpoint,
    report: &mut Report,
) -> anyhow::Result<Option<(MemoryTree, Option<Vec<Vec<u8>>>)>> {
    let mut tree = MemoryTree::new();
    let mut leaves: Vec<Hash> = Vec::new();
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut bad_entries = 0usize;
    for bundle in entry_bundles_for_size(head.size) {
        let TilePath::Entries { index, width } = bundle else {
            continue;
        };
        let start = index * TILE_WIDTH;
        let tile = TilePath::Hash(TileRef::new(0, index, width)?);
        let hashes = ledger
            .tile(&tile)
            .await
            .with_context(|| format!("fetching the leaf hashes from {start}"))?;
        let hashes: Vec<Hash> = hashes
            .chunks(32)
            .filter_map(|c| Hash::try_from(c).ok())
            .collect();
        if hashes.len() != usize::from(width) {
            report
                .problems
                .push(format!("the leaf hashes from entry {start} are incomplete"));
            return Ok(None);
        }
        let entries = match ledger
            .tile(&bundle)
            .await
            .map(|data| decode_entry_bundle(&data))
        {
            Ok(Ok(entries)) if entries.len() == hashes.len() => {
                entries.into_iter().map(Some).collect()
            }
            // A short or unreadable bundle: ask entry by entry to name the gap.
            _ => one_by_one(ledger, start, hashes.len()).await,
        };
        for ((offset, hash), entry) in (0u64..).zip(&hashes).zip(&entries) {
            let at = start + offset;
            match entry {
                None => {
                    bad_entries += 1;
                    report
                        .problems
                        .push(format!("entry {at} is missing from the ledger's storage"));
                }
                Some(body) if rfc9162_leaf_hash(body) != *hash => {
                    bad_entries += 1;
                    report.problems.push(format!(
                        "entry {at} was altered: it no longer hashes to its leaf"
                    ));
                }
                Some(_) => {}
            }
        }
        bodies.extend(entries.into_iter().flatten());
        leaves.extend(hashes);
    }
    for hash in &leaves {
        tree.push_leaf_hash(*hash);
    }
    if tree_root(&tree, head.size).ok() != Some(head.root) {
        report.problems.push(format!(
            "the ledger's leaves do not produce the root of the checkpoint of size {}",
            head.size
        ));
        return Ok(None);
    }
    if bad_entries > 0 {
        return Ok(Some((tree, None)));
    }
    report.facts.push(format!(
        "all {} entries are included in the signed tree",
        head.size
    ));
    Ok(Some((tree, Some(bodies))))
}

async fn one_by_one(ledger: &LedgerClient, start: u64, count: usize) -> Vec<Option<Vec<u8>>> {
    let mut entries = Vec::with_capacity(count);
    for at in start..start + count as u64 {
        entries.push(ledger.entry(at).await.ok());
    }
    entries
}

/// Entry signatures, roles, grant backing and access rules, from the whole
/// log as checked against the signed tree.
fn entries_and_access(
    info: &NetworkInfo,
    leaves: &[Vec<u8>],
    report: &mut Report,
) -> anyhow::Result<()> {
    let entries = match parse_entries(leaves) {
        Ok(entries) => entries,
        Err(e) => {
            report.problems.push(e.to_string());
            return Ok(());
        }
    };
    let audit = check_grants(&entries, &info.authority()?);
    for finding in &audit.findings {
        let grant = finding
            .grant
            .map(|g| format!(" (grant {g})"))
            .unwrap_or_default();
        report.problems.push(format!(
            "entry {}{grant}: {}",
            finding.index, finding.problem
        ));
    }
    if audit.is_clean() {
        report.facts.push(format!(
            "every entry is signed by its submitter, active at that point of the log, in a role that may log it by the sequencer's own table ({} entries)",
            entries.len()
        ));
        report.facts.push(format!(
            "all {} grants are backed: {} by the patient's signed approval, {} by a signed standing rule, {} emergency",
            audit.grants_checked,
            audit.backed_by_approval,
            audit.backed_by_rule,
            audit.emergency_grants.len()
        ));
        report.facts.push(format!(
            "all {} discoveries and retrievals happened under a grant valid at that moment and not revoked",
            audit.accesses_checked
        ));
    }
    for (index, grant, reason) in &audit.emergency_grants {
        report.for_review.push(format!(
            "entry {index}: emergency grant {grant}, reason given: {reason:?}"
        ));
    }
    for flag in &audit.desk_enrolled {
        report.for_review.push(format!(
            "entry {}: grant {} to {} is backed by a signature of device {}, which {} itself enrolled (entry {})",
            flag.index, flag.grant, flag.hospital, flag.device, flag.hospital, flag.enrolled_at
        ));
    }
    Ok(())
}

/// Every entry matching `filter`, through the ledger's query API.
pub async fn events(ledger: &LedgerClient, filter: &Filter) -> anyhow::Result<Vec<LoggedEntry>> {
    let mut params: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("type", &filter.entry_type),
        ("submitter", &filter.submitter),
        ("subject", &filter.subject),
        ("grant", &filter.grant),
        ("from", &filter.from),
        ("until", &filter.until),
    ] {
        if let Some(value) = value {
            params.push((name, value));
        }
    }
    let base: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}&", urlencode(v)))
        .collect();
    let mut out = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page = ledger
            .entries(&format!("{base}limit=1000{cursor}"))
            .await
            .context("querying the ledger")?;
        out.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn field<'a>(entry: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(entry, |v, k| v.get(k))
}

fn text(entry: &Value, path: &[&str]) -> String {
    field(entry, path)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn time_of(logged: &LoggedEntry) -> String {
    field(&logged.entry, &["entry", "time_ms"])
        .and_then(Value::as_i64)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(String::new, |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
}

/// One line: index, time, type, submitter and who/what it concerns.
fn describe(logged: &LoggedEntry) -> String {
    let e = &logged.entry;
    let kind = text(e, &["entry", "event", "type"]);
    let mut details = Vec::new();
    for key in [
        "requester",
        "custodian",
        "grant",
        "member",
        "status",
        "reason",
        "results",
    ] {
        if let Some(value) = field(e, &["entry", "event", key]) {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            details.push(format!("{key}={value}"));
        }
    }
    format!(
        "{:>6}  {}  {:<18} {:<12} {}",
        logged.index,
        time_of(logged),
        kind,
        text(e, &["entry", "submitter"]),
        details.join(" ")
    )
}

/// DICOM audit event codes (DCM) by entry type: what kind of act each entry is.
fn event_type(kind: &str) -> (&'static str, &'static str, &'static str) {
    const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
    const LOCUS: &str = "https://locus.invalid/fhir/CodeSystem/ledger-entry";
    match kind.parse::<EventKind>() {
        Ok(EventKind::RecordRetrieved) => (DCM, "110106", "Export"),
        Ok(EventKind::IndexQueried) => (DCM, "110112", "Query"),
        Ok(EventKind::AccessRefused) => (DCM, "110113", "Security Alert"),
        Ok(EventKind::MemberUpdated) => (DCM, "110136", "Security Roles Changed"),
        Ok(EventKind::DeviceEnrolled | EventKind::DeviceRemoved) => {
            (DCM, "110114", "User Authentication")
        }
        Ok(
            EventKind::PointersPublished
            | EventKind::GrantRevoked
            | EventKind::AccessRequested
            | EventKind::AccessDecided
            | EventKind::GrantIssued
            | EventKind::RuleCreated
            | EventKind::RuleRevoked,
        )
        | Err(_) => (LOCUS, "ledger-entry", "Locus ledger entry"),
    }
}

/// The entries as a FHIR R4 `collection` Bundle of AuditEvents. Patients appear
/// only as pseudonyms; each AuditEvent names its ledger leaf so it can be
/// proven against a checkpoint.
pub fn audit_event_bundle(info: &NetworkInfo, entries: &[LoggedEntry]) -> Value {
    let resources: Vec<Value> = entries
        .iter()
        .map(|logged| audit_event(info, logged))
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "total": resources.len(),
        "entry": resources.into_iter().map(|r| json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": r,
        })).collect::<Vec<_>>(),
    })
}

fn audit_event(info: &NetworkInfo, logged: &LoggedEntry) -> Value {
    let e = &logged.entry;
    let kind = text(e, &["entry", "event", "type"]);
    let (system, code, display) = event_type(&kind);
    let refused = kind == EventKind::AccessRefused.as_str();
    let member = |id: String| json!({ "identifier": { "system": "https://locus.invalid/fhir/member", "value": id } });
    let mut agents = vec![json!({
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "datacollector", "display": "data collector" }] },
        "who": member(text(e, &["entry", "submitter"])),
        "requestor": false,
    })];
    let requester = text(e, &["entry", "event", "requester"]);
    if !requester.is_empty() {
        agents.push(json!({
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient" }] },
            "who": member(requester),
            "requestor": true,
        }));
    }
    let mut entities = vec![json!({
        "what": { "identifier": { "system": format!("{}/entries", info.ledger.tlog_base_url), "value": logged.index.to_string() } },
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
        "description": format!("ledger leaf {} (hash {})", logged.index, logged.leaf_hash),
    })];
    let subject = text(e, &["entry", "event", "subject"]);
    if !subject.is_empty() {
        entities.push(json!({
            "what": { "identifier": { "system": "https://locus.invalid/fhir/patient-pseudonym", "value": subject } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
        }));
    }
    let grant = text(e, &["entry", "event", "grant"]);
    if !grant.is_empty() {
        entities.push(json!({
            "what": { "identifier": { "system": "https://locus.invalid/fhir/grant", "value": grant } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
            "description": "consent grant",
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("ledger-{}", logged.index),
        "type": { "system": system, "code": code, "display": display },
        "subtype": [{ "system": "https://locus.invalid/fhir/CodeSystem/ledger-entry", "code": kind }],
        "action": if kind == EventKind::RecordRetrieved.as_str() { "R" } else { "E" },
        "recorded": time_of(logged),
        "outcome": if refused { "4" } else { "0" },
        "agent": agents,
        "source": { "site": info.ledger.origin, "observer": member("index".into()) },
        "entity": entities,
    });
    if refused {
        event["outcomeDesc"] = json!(text(e, &["entry", "event", "reason"]));
    }
    let purpose = text(e, &["entry", "event", "purpose"]);
    if !purpose.is_empty() {
        event["purposeOfEvent"] = json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose }] }]);
    }
    event
}

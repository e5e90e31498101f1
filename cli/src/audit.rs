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
use locus_audit::events::{describe, events, Filter};
use locus_audit::export::{audit_event_bundle, LogSite};
use locus_audit::report::EXIT_PROBLEMS;
use locus_audit::{Pins, Report};
use locus_ledger::checkpoint::Checkpoint;
use locus_ledger::cosignature::CosignatureSigner;
use locus_ledger::merkle::Hash;
use locus_ledger::wire::LoggedEntry;
use locus_ledger::witness::{self, CosignDecision};
use locus_platform::clock::Clock;
use locus_protocol::signing::SigningKey;

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

impl NetworkArg {
    fn load(&self) -> anyhow::Result<NetworkInfo> {
        NetworkInfo::load(&self.path)
    }

    /// The network, and the entries of its ledger that match `filter`.
    async fn entries(&self, filter: &Filter) -> anyhow::Result<(NetworkInfo, Vec<LoggedEntry>)> {
        let info = self.load()?;
        let entries = events(&info.regulator_ledger()?, filter).await?;
        Ok((info, entries))
    }
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            network,
            witness_wait_secs,
        } => {
            let info = network.load()?;
            let report = verify(&info, Duration::from_secs(witness_wait_secs)).await?;
            for line in &report.facts {
                println!("ok: {line}");
            }
            for item in &report.for_review {
                println!("review: {item}");
            }
            if report.holds() {
                println!("audit holds");
            } else {
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                println!("audit FAILED: {} problem(s)", report.problems.len());
            }
            Ok(report.exit_code())
        }
        AuditCommand::Watch {
            network,
            state,
            interval_ms,
            once,
        } => {
            let info = network.load()?;
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
            let (_, entries) = network.entries(&filter).await?;
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
            let (info, entries) = network.entries(&filter).await?;
            let site = LogSite {
                origin: &info.ledger.origin,
                tlog_base_url: &info.ledger.tlog_base_url,
            };
            let bundle = audit_event_bundle(site, &entries, Clock::system().now());
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
            return Ok(ExitCode::from(EXIT_PROBLEMS));
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
                return Ok(ExitCode::from(EXIT_PROBLEMS));
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

/// The whole audit of the network's ledger, as the regulator. Errors are for
/// what stops it from starting (no network file, ledger unreachable); everything
/// it finds is in the report.
pub async fn verify(info: &NetworkInfo, witness_wait: Duration) -> anyhow::Result<Report> {
    let pins = Pins {
        origin: info.ledger.origin.clone(),
        witnesses: info.witness_verifiers()?,
        quorum: info.witnesses.quorum,
        authority: info.authority()?,
    };
    Ok(locus_audit::verify(&info.regulator_ledger()?, &pins, witness_wait).await?)
}

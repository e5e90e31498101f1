//! `network.json`: where a running development consortium answers and what an
//! outsider needs to check it. `locus up` writes it; scripts, `locus audit` and
//! the tests read it. PEM material is inline so the file alone is enough.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use locus_ledger::client::LedgerClient;
use locus_ledger::cosignature::CosignatureVerifier;
use locus_ledger::note::NoteVerifier;
use serde::{Deserialize, Serialize};

/// The file's name inside the data folder.
pub const NETWORK_FILE: &str = "network.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Storage backend every service runs on: `sqlite` or `postgres`.
    pub database: String,
    /// The consortium CA certificate: every service's TLS chains to it.
    pub ca_cert: Pem,
    /// The consortium authority's Ed25519 public key (base64url): it alone
    /// admits members, so an auditor pins it.
    pub authority_key: String,
    pub ledger: LedgerInfo,
    pub index: ServiceInfo,
    pub consent: ConsentInfo,
    pub hospitals: Vec<HospitalInfo>,
    pub regulator: RegulatorInfo,
    pub witnesses: WitnessPolicy,
}

/// A PEM document and the file it was written to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pem {
    pub file: PathBuf,
    pub pem: String,
}

impl Pem {
    pub fn read(file: &Path) -> anyhow::Result<Self> {
        let pem =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        Ok(Self { file, pem })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerInfo {
    /// The C2SP tlog-tiles base URL: `<base>/checkpoint`, `<base>/tile/...`.
    pub tlog_base_url: String,
    /// The checkpoint origin line.
    pub origin: String,
    /// The log's verifier key (C2SP vkey).
    pub vkey: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub url: String,
    /// The OpenAPI document the service serves.
    pub openapi: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentInfo {
    /// The API for members (mutual TLS).
    pub member_url: String,
    /// The API for patients' devices (server TLS only).
    pub patient_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HospitalInfo {
    pub id: String,
    pub name: String,
    pub url: String,
    pub openapi: String,
    /// The database the connector keeps its records in (a path for SQLite).
    pub database: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegulatorInfo {
    pub id: String,
    /// Client certificate and key for mutual TLS to the ledger.
    pub cert: Pem,
    pub key: Pem,
    /// The regulator's Ed25519 directory key (PKCS#8), with which
    /// `locus audit watch` cosigns checkpoints as a witness.
    pub signing_key: Pem,
}

/// Who witnesses the ledger and how many cosignatures a checkpoint needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WitnessPolicy {
    pub quorum: usize,
    /// C2SP vkeys of the witnesses: the hospital connectors, and the
    /// regulator when it runs `locus audit watch`.
    pub vkeys: Vec<String>,
}

impl NetworkInfo {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a Locus network file", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// The regulator's mutual-TLS client, from the inline PEMs.
    pub fn regulator_client(&self) -> anyhow::Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(self.ca_cert.pem.as_bytes())
            .context("the CA certificate")?;
        let identity = reqwest::Identity::from_pkcs8_pem(
            self.regulator.cert.pem.as_bytes(),
            self.regulator.key.pem.as_bytes(),
        )
        .context("the regulator's certificate and key")?;
        Ok(reqwest::Client::builder()
            .pool_idle_timeout(locus_platform::tls::CLIENT_POOL_IDLE)
            .use_native_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(identity)
            .timeout(Duration::from_secs(60))
            .build()?)
    }

    /// A verifying client of the ledger, as the regulator.
    pub fn regulator_ledger(&self) -> anyhow::Result<LedgerClient> {
        let verifier = NoteVerifier::from_vkey(&self.ledger.vkey).context("the ledger's vkey")?;
        Ok(LedgerClient::new(
            &self.index.url,
            verifier,
            self.regulator_client()?,
        ))
    }

    pub fn witness_verifiers(&self) -> anyhow::Result<Vec<CosignatureVerifier>> {
        self.witnesses
            .vkeys
            .iter()
            .map(|vkey| {
                CosignatureVerifier::from_vkey(vkey)
                    .with_context(|| format!("witness key {vkey:?}"))
            })
            .collect()
    }

    pub fn authority(&self) -> anyhow::Result<locus_protocol::signing::VerifyingKey> {
        locus_platform::config::authority_key(&Some(self.authority_key.clone()))
            .context("the authority key")
    }
}

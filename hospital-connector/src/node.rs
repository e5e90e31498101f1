//! One hospital's connector: its identity, its keys, its store, and its
//! clients of the index, the ledger and the directory.

use std::time::Duration;

use locus_index_service::client::IndexClient;
use locus_ledger::client::{ClientError, DirectoryFollower, LedgerClient};
use locus_ledger::wire::Receipt;
use locus_platform::access::Refused;
use locus_platform::clock::Clock;
use locus_protocol::entry::Event;
use locus_protocol::ids::{HospitalId, MemberId};
use locus_protocol::linkage::LinkageKey;
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::SigningKey;

use crate::records::RecordStore;

pub struct Node {
    pub hospital: HospitalId,
    pub member: MemberId,
    pub key: SigningKey,
    pub x25519: X25519SecretKey,
    pub linkage: LinkageKey,
    pub identifier_system: String,
    pub store: RecordStore,
    pub ledger: LedgerClient,
    pub index: IndexClient,
    /// Mutual-TLS client for other connectors.
    pub http: reqwest::Client,
    pub directory: DirectoryFollower,
    /// What this connector takes the time to be: grants' validity is checked against it.
    pub clock: Clock,
}

// Keys, stores and clients are not for logs.
locus_platform::debug_fields!(Node: hospital);

/// How long a connector waits for a checkpoint to cover a receipt.
pub const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

impl Node {
    /// Signs one of this hospital's entries and waits until the ledger has made
    /// it durable.
    pub async fn log(&self, event: Event) -> Result<Receipt, ClientError> {
        self.ledger.log(&self.member, &self.key, event).await
    }

    /// Logs a refusal; the refusal stands even if the ledger cannot take it now.
    pub async fn log_refusal(&self, refused: &Refused) {
        let Some(event) = refused.entry_event(Some(&self.hospital)) else {
            return;
        };
        if let Err(e) = self.log(event).await {
            tracing::warn!(error = %e, "a refusal could not be logged");
        }
    }

    /// Waits for a signed checkpoint that covers leaf `index`.
    pub async fn checkpoint_covering(
        &self,
        index: u64,
    ) -> Result<locus_ledger::checkpoint::Checkpoint, ClientError> {
        let deadline = tokio::time::Instant::now() + CHECKPOINT_WAIT;
        loop {
            let (checkpoint, _) = self.ledger.checkpoint().await?;
            if checkpoint.size > index {
                return Ok(checkpoint);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::BadProof(
                    "no checkpoint covers the receipt in time",
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

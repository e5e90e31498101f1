//! Retrieval, as requester: discover under a grant, fetch each result from its
//! custodian, and keep it only if everything checks: the custodian's signature
//! (provenance), the commitment, and the ledger receipt (an inclusion proof
//! against a signed checkpoint, of the custodian's own `record.retrieved`
//! entry). A result kept this way can be recognised without repeating the test.

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use locus_index_service::api::DiscoveredPointer;
use locus_index_service::client::{post_json, IndexClientError, ServiceRefusal};
use locus_ledger::client::ClientError;
use locus_ledger::merkle::rfc9162_leaf_hash;
use locus_platform::access::MAX_GRANT_SECS;
use locus_protocol::directory::MemberRole;
use locus_protocol::entry::{Event, SignedEntry};
use locus_protocol::grant::GrantClaims;
use locus_protocol::grant_token::{decode_grant, TokenCheck};
use locus_protocol::ids::PointerId;
use locus_protocol::pointer::{verify_commitment, RecordRelease};
use uuid::Uuid;

use crate::node::Node;
use crate::records::NewReceivedResult;
use crate::retrieve::{ReleasedRecord, RetrieveRequest, RetrieveResponse};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the grant does not verify for this hospital: {0}")]
    Grant(String),
    #[error("discovery failed: {0}")]
    Discovery(#[from] IndexClientError),
}

/// Why one result was not kept.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("the custodian is not an active member with an endpoint")]
    UnknownCustodian,
    #[error("the custodian cannot be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the custodian refused {0}")]
    Refused(#[from] ServiceRefusal),
    #[error("the released record does not open or does not parse")]
    Unopenable,
    #[error("the custodian's signature does not verify")]
    BadProvenance,
    #[error("the content does not match its commitment")]
    BadCommitment,
    #[error("the receipt does not check out: {0}")]
    BadReceipt(String),
    #[error("the result cannot be stored: {0}")]
    Store(String),
}

#[derive(Debug, Default)]
pub struct FetchReport {
    /// Ids of the stored results.
    pub received: Vec<Uuid>,
    /// Results that were found but not kept, and why.
    pub failed: Vec<(PointerId, ResultError)>,
}

impl Node {
    /// Discovers what `grant` covers (showing the index only its `discovery`
    /// token) and fetches it all.
    pub async fn fetch_under_grant(
        &self,
        grant: &str,
        discovery: &str,
    ) -> Result<FetchReport, FetchError> {
        let claims = self.own_grant(grant)?;
        let discovered = self.index.discover(discovery).await?;
        let mut report = FetchReport::default();
        for pointer in discovered.pointers {
            // Our own records are already here.
            if pointer.custodian == self.hospital {
                continue;
            }
            match self.fetch_one(grant, &claims, &pointer).await {
                Ok(id) => report.received.push(id),
                Err(e) => {
                    tracing::warn!(error = %e, "a result was not kept");
                    report.failed.push((pointer.pointer_id, e));
                }
            }
        }
        Ok(report)
    }

    /// The claims of a grant issued to this hospital, checked like anyone would.
    fn own_grant(&self, grant: &str) -> Result<GrantClaims, FetchError> {
        let directory = self.directory.directory().read();
        let keys = |kid: &_| directory.active_key(MemberRole::Consent, kid);
        let check = TokenCheck {
            keys: &keys,
            audience: &self.member,
            now: self.clock.now_secs(),
            max_duration_secs: MAX_GRANT_SECS,
        };
        decode_grant(grant, &check).map_err(|e| FetchError::Grant(e.to_string()))
    }

    /// Sends one retrieval to the custodian: the raw answer, for callers that
    /// want to see refusals as they are.
    pub async fn request_retrieval(
        &self,
        endpoint: &str,
        request: &RetrieveRequest,
    ) -> Result<RetrieveResponse, ResultError> {
        let url = format!("{}/connector/retrieve", endpoint.trim_end_matches('/'));
        post_json(&self.http, url, request).await
    }

    async fn fetch_one(
        &self,
        grant: &str,
        claims: &GrantClaims,
        pointer: &DiscoveredPointer,
    ) -> Result<Uuid, ResultError> {
        let (endpoint, custodian_key) = {
            let directory = self.directory.directory().read();
            let custodian = directory
                .active(pointer.custodian.as_member())
                .filter(|m| m.role == MemberRole::Hospital)
                .ok_or(ResultError::UnknownCustodian)?;
            (
                custodian
                    .endpoint
                    .clone()
                    .ok_or(ResultError::UnknownCustodian)?,
                custodian.ed25519,
            )
        };
        let request = RetrieveRequest {
            grant: Some(grant.to_owned()),
            pointer_id: pointer.pointer_id,
            sealed: pointer.sealed.clone(),
        };
        let response = self.request_retrieval(&endpoint, &request).await?;

        let sealed = BASE64
            .decode(&response.sealed_record)
            .map_err(|_| ResultError::Unopenable)?;
        let plaintext = RecordRelease {
            pointer: &pointer.pointer_id,
            grant: &claims.jti,
            requester: &self.member,
        }
        .open(&self.x25519, &sealed)
        .map_err(|_| ResultError::Unopenable)?;
        let released: ReleasedRecord =
            serde_json::from_slice(&plaintext).map_err(|_| ResultError::Unopenable)?;

        // The custodian vouches for exactly this content, for this pointer.
        let provenance = &released.provenance;
        provenance
            .verify(&custodian_key)
            .map_err(|_| ResultError::BadProvenance)?;
        let statement = &provenance.provenance;
        if statement.custodian != pointer.custodian
            || statement.pointer != pointer.pointer_id
            || statement.receipt_index != response.receipt.index
            || !provenance.describes(released.content.as_bytes())
        {
            return Err(ResultError::BadProvenance);
        }
        let salt: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&released.salt)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(ResultError::BadCommitment)?;
        if !verify_commitment(&statement.commitment, &salt, released.content.as_bytes()) {
            return Err(ResultError::BadCommitment);
        }

        self.check_receipt(
            claims,
            pointer,
            &response,
            &custodian_key,
            &statement.commitment,
        )
        .await?;

        let result = NewReceivedResult {
            patient_key: claims.sub,
            custodian: pointer.custodian.clone(),
            pointer_id: pointer.pointer_id,
            resource_type: statement.resource_type,
            resource_id: statement.resource_id.clone(),
            version: statement.version,
            content: released.content,
            commitment: statement.commitment,
            provenance: serde_json::to_string(provenance)
                .map_err(|e| ResultError::Store(e.to_string()))?,
            receipt_index: response.receipt.index,
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.insert_received(&result))
            .await
            .map_err(|e| ResultError::Store(e.to_string()))?
            .map(|stored| stored.id)
            .map_err(|e| ResultError::Store(e.to_string()))
    }

    /// The receipt names a leaf that is in the signed log, and that leaf is the
    /// custodian's own signed `record.retrieved` entry for this grant, patient,
    /// pointer and commitment.
    async fn check_receipt(
        &self,
        claims: &GrantClaims,
        pointer: &DiscoveredPointer,
        response: &RetrieveResponse,
        custodian_key: &locus_protocol::signing::VerifyingKey,
        commitment: &locus_protocol::ids::Commitment,
    ) -> Result<(), ResultError> {
        let bad = |e: ClientError| ResultError::BadReceipt(e.to_string());
        let index = response.receipt.index;
        let checkpoint = self.checkpoint_covering(index).await.map_err(bad)?;
        let logged = self.ledger.entry(index).await.map_err(bad)?;
        let leaf_hash = rfc9162_leaf_hash(&logged);
        if BASE64.encode(leaf_hash) != response.receipt.leaf_hash {
            return Err(ResultError::BadReceipt(
                "the receipt names another leaf".into(),
            ));
        }
        self.ledger
            .prove_inclusion(&leaf_hash, index, &checkpoint)
            .await
            .map_err(bad)?;
        let entry =
            SignedEntry::parse(&logged).map_err(|e| ResultError::BadReceipt(e.to_string()))?;
        entry.verify(custodian_key).map_err(|_| {
            ResultError::BadReceipt("the logged entry is not signed by the custodian".into())
        })?;
        let matches = matches!(&entry.entry().event, Event::RecordRetrieved(r)
            if r.custodian == pointer.custodian
                && r.pointer == pointer.pointer_id
                && r.grant == claims.jti
                && r.subject == claims.sub
                && r.commitment == *commitment
                && r.requester == self.member)
            && entry.entry().submitter == *pointer.custodian.as_member();
        if !matches {
            return Err(ResultError::BadReceipt(
                "the logged entry is not this retrieval".into(),
            ));
        }
        Ok(())
    }
}

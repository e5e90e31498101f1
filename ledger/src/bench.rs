//! What both ledger benchmarks need (criterion's and `locus bench`): a
//! hospital admitted to a directory of its own, minting signed retrieval
//! entries, and the plain table row of an entry for the INSERT baseline.

use std::sync::Arc;

use locus_protocol::directory::{MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{
    Commitment, Entry, EntryError, Event, MemberUpdated, RecordRetrieved, SignedEntry,
};
use locus_protocol::grant::Confirmation;
use locus_protocol::ids::{GrantId, HospitalId, MemberId, PatientKey, PointerId};
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::SigningKey;

use crate::directory::LedgerDirectory;
use crate::merkle::rfc9162_leaf_hash;
use crate::store::EntryRow;

/// One admitted hospital and its key.
#[derive(Debug)]
pub struct BenchMember {
    hospital: HospitalId,
    member: MemberId,
    key: SigningKey,
}

impl BenchMember {
    pub fn new(hospital: HospitalId) -> Self {
        let member = hospital.as_member().clone();
        Self {
            hospital,
            member,
            key: SigningKey::generate(),
        }
    }

    /// The canonical bytes of a distinct signed `record.retrieved` entry,
    /// logged by this member as custodian.
    pub fn entry(&self, n: u64) -> Result<Vec<u8>, EntryError> {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&n.to_be_bytes());
        let event = Event::RecordRetrieved(RecordRetrieved {
            requester: self.member.clone(),
            custodian: self.hospital.clone(),
            grant: GrantId::new_random(),
            subject: PatientKey::from_bytes(seed),
            pointer: PointerId::new_random(),
            commitment: Commitment::from_bytes(rfc9162_leaf_hash(&seed)),
        });
        let time = chrono::Utc::now().timestamp_millis();
        let entry = Entry::new(self.member.clone(), self.key.key_id(), time, event);
        Ok(SignedEntry::sign(entry, &self.key)?.to_canonical_bytes())
    }

    /// A directory where this member is an admitted hospital.
    pub fn directory(&self) -> Arc<LedgerDirectory> {
        let authority = SigningKey::generate();
        let directory = LedgerDirectory::new(authority.verifying_key());
        if let Ok(authority_id) = AUTHORITY_MEMBER.parse() {
            let admission = Entry::new(
                authority_id,
                authority.key_id(),
                0,
                Event::MemberUpdated(MemberUpdated {
                    member: self.member.clone(),
                    role: MemberRole::Hospital,
                    display_name: "Bench hospital".into(),
                    ed25519: self.key.verifying_key(),
                    x25519: X25519SecretKey::generate().public_key(),
                    certificate: Confirmation::for_certificate_der(b"bench"),
                    endpoint: None,
                    status: MemberStatus::Active,
                }),
            );
            directory.apply(&admission);
        }
        Arc::new(directory)
    }
}

/// `body` as the row a plain INSERT would write: the same columns the ledger
/// fills, without its signature check, queue or subtree hashes.
pub fn plain_row(body: &[u8], idx: i64) -> EntryRow {
    EntryRow {
        idx,
        leaf_hash: rfc9162_leaf_hash(body).to_vec(),
        body: String::from_utf8_lossy(body).into_owned(),
        entry_type: locus_protocol::entry::EventKind::RecordRetrieved,
        submitter: "bench".parse().expect("a member id"),
        subject: body
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .map(PatientKey::from_bytes),
        grant_id: None,
        entry_time: 0,
        sequenced_at: 0,
    }
}

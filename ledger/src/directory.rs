//! Who may submit entries: the consortium authority, whose key is pinned in
//! configuration, and the members it admitted. The directory is itself on the
//! ledger: the fold of the authority's `member.updated` entries, so admitting,
//! suspending or withdrawing a member is a signed, logged act. What each may
//! log is `locus_protocol::roles`; who a mutual-TLS peer is, [`LedgerDirectory::peer`].

use std::sync::{RwLock, RwLockReadGuard};

use locus_protocol::directory::{Directory, MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{Entry, Event, EventKind, SignedEntry};
use locus_protocol::grant::Confirmation;
use locus_protocol::ids::MemberId;
use locus_protocol::signing::VerifyingKey;

/// The event type of directory changes, as stored in the entry index.
pub const MEMBER_UPDATED: &str = EventKind::MemberUpdated.as_str();

/// Why a submitter's key cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitterRefusal {
    Unknown,
    Suspended,
    Withdrawn,
}

/// Who a submitter is, as a directory stands: the key its entries verify
/// under and its role. The authority is known by its pinned key, not by the
/// directory.
pub fn submitter(
    directory: &Directory,
    authority: &VerifyingKey,
    submitter: &MemberId,
) -> Result<(VerifyingKey, MemberRole), SubmitterRefusal> {
    if submitter.as_str() == AUTHORITY_MEMBER {
        return Ok((*authority, MemberRole::Authority));
    }
    let member = directory.get(submitter).ok_or(SubmitterRefusal::Unknown)?;
    match member.status {
        MemberStatus::Active => Ok((member.ed25519, member.role)),
        MemberStatus::Suspended => Err(SubmitterRefusal::Suspended),
        MemberStatus::Withdrawn => Err(SubmitterRefusal::Withdrawn),
    }
}

/// Who a mutual-TLS peer is, by its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// The consortium authority, by the certificate pinned in configuration.
    Authority,
    /// An active member.
    Member(MemberId),
}

#[derive(Debug)]
pub struct LedgerDirectory {
    authority: VerifyingKey,
    /// The authority's TLS certificate, when pinned: it is no directory member,
    /// yet admits them over the same mutual-TLS routes.
    authority_certificate: Option<Confirmation>,
    members: RwLock<Directory>,
}

impl LedgerDirectory {
    pub fn new(authority: VerifyingKey) -> Self {
        Self {
            authority,
            authority_certificate: None,
            members: RwLock::new(Directory::default()),
        }
    }

    /// Also lets the holder of this certificate in as the authority.
    pub fn with_authority_certificate(mut self, certificate: Option<Confirmation>) -> Self {
        self.authority_certificate = certificate;
        self
    }

    pub fn authority(&self) -> &VerifyingKey {
        &self.authority
    }

    /// The key `submitter`'s entries must verify under, and its role.
    pub fn submitter(
        &self,
        submitter: &MemberId,
    ) -> Result<(VerifyingKey, MemberRole), SubmitterRefusal> {
        self::submitter(&self.read(), &self.authority, submitter)
    }

    /// The authority or the active member holding this certificate; `None` for
    /// a certificate no active member holds (the consortium CA may have signed
    /// it, but signing is not admitting).
    pub fn peer(&self, certificate: &Confirmation) -> Option<Peer> {
        if self.authority_certificate.as_ref() == Some(certificate) {
            return Some(Peer::Authority);
        }
        let members = self.read();
        let member = members.by_certificate(certificate)?;
        (member.status == MemberStatus::Active).then(|| Peer::Member(member.member.clone()))
    }

    /// Applies an entry that is now durable in the log.
    pub fn apply(&self, entry: &Entry) {
        if matches!(entry.event, Event::MemberUpdated(_)) {
            self.members
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .apply_entry(entry);
        }
    }

    /// Rebuilds the directory from logged entries, in log order, checking each
    /// against the authority's key again.
    pub fn replay<'a>(
        &self,
        logged: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, &'static str> {
        let mut applied = 0;
        for body in logged {
            let signed = SignedEntry::parse(body.as_bytes())
                .map_err(|_| "a logged directory entry does not parse")?;
            if signed.entry().submitter.as_str() != AUTHORITY_MEMBER
                || signed.verify(&self.authority).is_err()
            {
                return Err("a logged directory entry is not signed by the pinned authority key");
            }
            self.apply(signed.entry());
            applied += 1;
        }
        Ok(applied)
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Directory> {
        self.members
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

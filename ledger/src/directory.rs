//! Who may submit entries: the consortium authority, whose key is pinned in
//! configuration, and the members it admitted. The directory is itself on the
//! ledger: the fold of the authority's `member.updated` entries, so admitting,
//! suspending or withdrawing a member is a signed, logged act.

use std::sync::{RwLock, RwLockReadGuard};

use locus_protocol::directory::{AUTHORITY_MEMBER, Directory, MemberRole};
use locus_protocol::entry::{Entry, Event, SignedEntry};

use locus_protocol::ids::MemberId;
use locus_protocol::signing::VerifyingKey;

/// The event type of directory changes, as stored in the entry index.
pub const MEMBER_UPDATED: &str = "member.updated";

/// Why a submitter's key cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitterRefusal {
    Unknown,
    Suspended,
    Withdrawn,
}

#[derive(Debug)]
pub struct LedgerDirectory {
    authority: VerifyingKey,
    members: RwLock<Directory>,
}

impl LedgerDirectory {
    pub fn new(authority: VerifyingKey) -> Self {
        Self {
            authority,
            members: RwLock::new(Directory::default()),
        }
    }

    pub fn authority(&self) -> &VerifyingKey {
        &self.authority
    }

    /// The key `submitter`'s entries must verify under.
    pub fn submitter_key(&self, submitter: &MemberId) -> Result<VerifyingKey, SubmitterRefusal> {
        if submitter.as_str() == AUTHORITY_MEMBER {
            return Ok(self.authority);
        }
        let members = self.read();
        let member = members.get(submitter).ok_or(SubmitterRefusal::Unknown)?;
        match member.status {
            locus_protocol::directory::MemberStatus::Active => Ok(member.ed25519),
            locus_protocol::directory::MemberStatus::Suspended => Err(SubmitterRefusal::Suspended),
            locus_protocol::directory::MemberStatus::Withdrawn => Err(SubmitterRefusal::Withdrawn),
        }
    }

    /// Whether the submitter may log this kind of entry: each kind is the act of
    /// one role, and an entry about a custodian's release is that custodian's
    /// own. Otherwise any member could revoke others' grants or write releases
    /// in another hospital's name.
    pub fn may_submit(&self, entry: &Entry) -> Result<(), &'static str> {
        let kind = entry.event.kind();
        if kind == MEMBER_UPDATED || entry.submitter.as_str() == AUTHORITY_MEMBER {
            return if kind == MEMBER_UPDATED && entry.submitter.as_str() == AUTHORITY_MEMBER {
                Ok(())
            } else {
                Err("only the consortium authority updates the directory, and it logs nothing else")
            };
        }
        let members = self.read();
        let role = members.get(&entry.submitter).map(|m| m.role).ok_or("the submitter is not a member")?;
        let allowed = match kind {
            "index.queried" => role == MemberRole::Index,
            "access.refused" => matches!(role, MemberRole::Index | MemberRole::Hospital),
            "record.retrieved" | "pointers.published" => {
                role == MemberRole::Hospital
                    && entry.event.custodian().map(|c| c.as_member()) == Some(&entry.submitter)
            }
            // Everything about patients' decisions, devices, grants and rules
            // is the consent service's to log.
            "grant.revoked" | "grant.issued" | "access.requested" | "access.decided" | "device.enrolled"
            | "device.removed" | "rule.created" | "rule.revoked" => role == MemberRole::Consent,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err("the submitter's role does not log this kind of entry")
        }
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
    pub fn replay<'a>(&self, logged: impl IntoIterator<Item = &'a str>) -> Result<usize, &'static str> {
        let mut applied = 0;
        for body in logged {
            let signed = SignedEntry::parse(body.as_bytes()).map_err(|_| "a logged directory entry does not parse")?;
            if signed.entry().submitter.as_str() != AUTHORITY_MEMBER || signed.verify(&self.authority).is_err() {
                return Err("a logged directory entry is not signed by the pinned authority key");
            }
            self.apply(signed.entry());
            applied += 1;
        }
        Ok(applied)
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Directory> {
        self.members.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

//! Replays the log as it stood at each entry: parses the leaves, rebuilds the
//! directory (from `member.updated` entries under the pinned authority key) and the
//! patients' enrolled devices, and admits an entry only if its submitter was an
//! active member then, it verifies under that member's key, and that member's role
//! logs this kind of entry (`locus_protocol::roles`, the sequencer's own table).

use std::collections::{HashMap, HashSet};

use locus_protocol::device::{DeviceKey, DeviceKeyId};
use locus_protocol::directory::{Directory, MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{DeviceEnrolled, DeviceRemoved, Entry, EntryError, Event, SignedEntry};
use locus_protocol::ids::{MemberId, PatientKey};
use locus_protocol::roles::may_log;
use locus_protocol::signing::VerifyingKey;

/// A leaf that is not a well-formed signed entry: the sequencer never logs one, so
/// the log itself is broken and cannot be audited.
#[derive(Debug, thiserror::Error)]
#[error("leaf {index} is not a valid ledger entry: {source}")]
pub struct UnparseableLeaf {
    /// The leaf index.
    pub index: u64,
    /// Why it does not parse.
    pub source: EntryError,
}

/// Parses a verified log's leaves, pairing each with its leaf index.
pub fn parse_entries(leaves: &[Vec<u8>]) -> Result<Vec<(u64, SignedEntry)>, UnparseableLeaf> {
    (0u64..)
        .zip(leaves)
        .map(|(index, leaf)| {
            SignedEntry::parse(leaf)
                .map(|entry| (index, entry))
                .map_err(|source| UnparseableLeaf { index, source })
        })
        .collect()
}

/// Who was a member, and which device keys each patient had, at the current
/// point of the replay.
#[derive(Debug)]
pub(crate) struct Replay<'a> {
    authority: &'a VerifyingKey,
    directory: Directory,
    /// Enrolled, not removed, device keys per patient.
    devices: HashMap<(PatientKey, DeviceKeyId), DeviceKey>,
    /// Devices removed from a patient, for clearer findings.
    removed: HashSet<(PatientKey, DeviceKeyId)>,
    /// Who issued the code each device was enrolled with, and at which leaf.
    enrolled_by: HashMap<(PatientKey, DeviceKeyId), (MemberId, u64)>,
}

impl<'a> Replay<'a> {
    /// An empty directory; `authority` is the pinned consortium key.
    pub(crate) fn new(authority: &'a VerifyingKey) -> Self {
        Self {
            authority,
            directory: Directory::default(),
            devices: HashMap::new(),
            removed: HashSet::new(),
            enrolled_by: HashMap::new(),
        }
    }

    /// The directory as it stands at this point of the log.
    pub(crate) fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Who issued the code `device` was enrolled with for `subject`, and at which leaf.
    pub(crate) fn enrolled_by(
        &self,
        subject: PatientKey,
        device: DeviceKeyId,
    ) -> Option<&(MemberId, u64)> {
        self.enrolled_by.get(&(subject, device))
    }

    /// The submitter was an active member (or the authority) at this point of the
    /// log, the entry verifies under its key, and its role logs this kind of entry.
    pub(crate) fn admit(&self, signed: &SignedEntry) -> Result<(), String> {
        let entry = signed.entry();
        let submitter = &entry.submitter;
        let is_authority = submitter.as_str() == AUTHORITY_MEMBER;
        let (key, role) = if is_authority {
            (*self.authority, MemberRole::Authority)
        } else {
            let member = self.directory.get(submitter).ok_or_else(|| {
                format!("submitter {submitter} is not a member at this point of the log")
            })?;
            if member.status != MemberStatus::Active {
                return Err(format!(
                    "submitter {submitter} is {} at this point of the log",
                    status_word(member.status)
                ));
            }
            (member.ed25519, member.role)
        };
        if signed.verify(&key).is_err() {
            return Err(format!(
                "entry signature does not verify under {submitter}'s key (entry kid {})",
                entry.kid
            ));
        }
        // The sequencer's table, with the role the submitter had here, so an
        // entry a sequencer should have refused is named.
        may_log(entry, role).map_err(|e| e.to_string())
    }

    /// Checks the event's device signature under the key enrolled, at this point of
    /// the log, for that device and the patient the signed object names.
    pub(crate) fn device_problem(&self, event: &Event) -> Result<(), String> {
        let signed = match event.device_signed() {
            Ok(Some(signed)) => signed,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("the signed object is invalid: {e}")),
        };
        let pair = (signed.subject, signed.device);
        let Some(key) = self.devices.get(&pair) else {
            let device = signed.device;
            return Err(if self.removed.contains(&pair) {
                format!("device {device} had been removed from this patient")
            } else if self.devices.keys().any(|(_, d)| *d == device) {
                format!("device {device} is enrolled for another patient, not this one")
            } else {
                format!("device {device} is not enrolled for this patient")
            });
        };
        signed
            .verify(key)
            .map_err(|_| format!("device signature of {} does not verify", signed.device))
    }

    /// An admitted `member.updated`.
    pub(crate) fn member_updated(&mut self, entry: &Entry) {
        self.directory.apply_entry(entry);
    }

    /// An admitted `device.enrolled` at leaf `index`.
    pub(crate) fn device_enrolled(&mut self, index: u64, e: &DeviceEnrolled) {
        self.enrolled_by
            .insert((e.subject, e.device), (e.code_issuer.clone(), index));
        self.removed.remove(&(e.subject, e.device));
        self.devices.insert((e.subject, e.device), e.key.clone());
    }

    /// An admitted `device.removed`.
    pub(crate) fn device_removed(&mut self, e: &DeviceRemoved) {
        if self.devices.remove(&(e.subject, e.device)).is_some() {
            self.removed.insert((e.subject, e.device));
        }
    }
}

fn status_word(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Active => "active",
        MemberStatus::Suspended => "suspended",
        MemberStatus::Withdrawn => "withdrawn",
    }
}

//! Who may submit entries: the consortium members' Ed25519 keys and status.
//!
//! Loaded from the directory file at start. Admission and suspension as ledger
//! entries build on this registry.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use locus_protocol::ids::MemberId;
use locus_protocol::signing::VerifyingKey;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Index,
    Consent,
    Hospital,
    Regulator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Suspended,
    Withdrawn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: MemberId,
    pub role: MemberRole,
    /// The key that signs this member's ledger entries.
    pub ed25519: VerifyingKey,
    pub status: MemberStatus,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub members: Vec<Member>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read the directory file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the directory file is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("member {0} is listed twice")]
    Duplicate(MemberId),
}

impl Directory {
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// The members the sequencer accepts entries from.
#[derive(Debug, Default)]
pub struct Members {
    by_id: RwLock<HashMap<MemberId, Member>>,
}

impl Members {
    pub fn new(directory: Directory) -> Result<Self, DirectoryError> {
        let mut by_id = HashMap::new();
        for member in directory.members {
            if let Some(dup) = by_id.insert(member.id.clone(), member) {
                return Err(DirectoryError::Duplicate(dup.id));
            }
        }
        Ok(Self {
            by_id: RwLock::new(by_id),
        })
    }

    pub fn get(&self, id: &MemberId) -> Option<Member> {
        self.by_id
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .cloned()
    }
}

//! Consortium members as the authority records them: role, status, and the whole
//! state a `member.updated` entry carries (see [`crate::directory`] for their fold).

use serde::{Deserialize, Serialize};

use crate::grant::Confirmation;
use crate::ids::MemberId;
use crate::seal::X25519PublicKey;
use crate::signing::VerifyingKey;

/// Longest member display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;
/// Longest member endpoint URL, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 256;

/// What a member does in the consortium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// The consortium authority: admits, updates and suspends members.
    Authority,
    /// The index operator (index-service, ledger sequencer).
    Index,
    /// The consent service: issues and revokes grants.
    Consent,
    /// A hospital: publishes pointers, requests and releases records.
    Hospital,
    /// A regulator: reads and audits the ledger.
    Regulator,
}

/// Whether a member may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// In good standing.
    Active,
    /// Temporarily barred; may become active again.
    Suspended,
    /// Left the consortium.
    Withdrawn,
}

/// Why a `member.updated` event is not acceptable. Values are never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberUpdateError {
    /// Empty, too long, padded with spaces, or holding control or bidi characters.
    #[error(
        "display name must be 1 to 128 characters without control or bidirectional-override \
         characters and without leading or trailing spaces"
    )]
    InvalidDisplayName,
    /// Not an `https://` URL of printable ASCII, or too long.
    #[error("endpoint must be an https:// URL of at most 256 printable ASCII characters")]
    InvalidEndpoint,
}

/// Unicode bidirectional controls (embeddings, overrides, isolates, marks). They are
/// format characters, not control characters, but can make one name read as another
/// in the patient's app.
/// Checks a member's display name: an organisation's name, shown to patients.
pub fn check_display_name(name: &str) -> Result<(), MemberUpdateError> {
    crate::text::check_shown_text(name, MAX_DISPLAY_NAME_CHARS)
        .map_err(|_| MemberUpdateError::InvalidDisplayName)
}

/// Checks a member's endpoint: `https://` and printable ASCII (no whitespace or
/// controls; internationalised hosts go in punycode), at most [`MAX_ENDPOINT_LEN`] bytes.
pub fn check_endpoint(url: &str) -> Result<(), MemberUpdateError> {
    let ok = url.len() <= MAX_ENDPOINT_LEN
        && url
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty())
        && url.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(MemberUpdateError::InvalidEndpoint)
    }
}

checked_struct! {
/// `member.updated`: the whole new state of one member (not a diff), so the directory
/// is the latest such entry per member. Submitted by the consortium authority; see
/// [`crate::directory`]. `endpoint` is left out of the JSON when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberUpdated {
    /// Which member.
    pub member: MemberId,
    /// Its role.
    pub role: MemberRole,
    /// The organisation's name as shown to patients (never a person's name):
    /// 1 to 128 characters, no control or bidi-override characters.
    pub display_name: String,
    /// The key that signs its ledger entries, grants and provenance.
    pub ed25519: VerifyingKey,
    /// The key records and pointers are sealed to.
    pub x25519: X25519PublicKey,
    /// The SHA-256 thumbprint of its TLS client and server certificate.
    pub certificate: Confirmation,
    /// Its base URL (`https://`), for members that serve requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether it may act.
    pub status: MemberStatus,
}
}

impl MemberUpdated {
    /// Checks the display name and endpoint (see [`check_display_name`],
    /// [`check_endpoint`]).
    pub fn check(&self) -> Result<(), MemberUpdateError> {
        check_display_name(&self.display_name)?;
        if let Some(endpoint) = &self.endpoint {
            check_endpoint(endpoint)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_endpoint_rules() {
        for good in [
            "A",
            "St Mary's Hospital",
            "Hôpital Saint-Louis",
            "北京协和医院",
            &"x".repeat(128),
        ] {
            assert_eq!(check_display_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            " St Mary",
            "St Mary ",
            "St\nMary",
            "St\u{7f}Mary",
            "St \u{202e}yraM",
            "a\u{2066}b",
            &"x".repeat(129),
        ] {
            assert_eq!(
                check_display_name(bad),
                Err(MemberUpdateError::InvalidDisplayName),
                "{bad:?}"
            );
        }
        for good in ["https://a", "https://st-mary.example:8443/locus?x=1"] {
            assert_eq!(check_endpoint(good), Ok(()), "{good:?}");
        }
        let long = format!("https://{}", "a".repeat(249));
        for bad in [
            "",
            "https://",
            "http://st-mary.example",
            "HTTPS://st-mary.example",
            "https://st mary.example",
            "https://st-mary.example\n",
            "https://hôpital.example",
            " https://st-mary.example",
            &long,
        ] {
            assert_eq!(
                check_endpoint(bad),
                Err(MemberUpdateError::InvalidEndpoint),
                "{bad:?}"
            );
        }
        assert_eq!(check_endpoint(&long[..256]), Ok(()));
        assert_eq!(
            serde_json::to_string(&MemberRole::Authority).unwrap(),
            "\"authority\""
        );
        assert_eq!(
            serde_json::from_str::<MemberStatus>("\"withdrawn\"").unwrap(),
            MemberStatus::Withdrawn
        );
        assert!(serde_json::from_str::<MemberStatus>("\"Withdrawn\"").is_err());
    }
}

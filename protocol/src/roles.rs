//! Who may log what: one table over every kind of event.
//!
//! The sequencer applies it before it orders an entry, and the regulator's audit
//! applies it again to every logged entry, each with the submitter's role as the
//! directory stood at that entry's place in the log, so a sequencer that logged
//! an entry it should have refused is caught. [`actors`] matches every variant of
//! [`Event`] by name: a new kind of event does not compile until it has a row
//! saying who logs it and whether a patient's device signed it.
//!
//! Each kind is the act of one role, and an entry speaks only of its submitter's
//! own acts: a custodian publishes and releases its own records and refuses
//! retrievals asked of it, the index refuses discoveries asked of it, the consent
//! service keeps patients' devices, decisions, grants and rules, and the
//! consortium authority changes the directory and logs nothing else.

use crate::consent::ConsentError;
use crate::device::DeviceKeyId;
use crate::directory::{MemberRole, AUTHORITY_MEMBER};
use crate::entry::{
    AccessDecided, DeviceRevocation, Entry, Event, EventKind, GrantRevoked, RuleCreated,
    RuleRevoked, SignedConsent,
};
use crate::ids::{HospitalId, MemberId, PatientKey};
use crate::signing::Signature64;

/// Who may log an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logger<'a> {
    /// The consortium authority ([`AUTHORITY_MEMBER`], key pinned in
    /// configuration) and no directory member.
    Authority,
    /// Any member of this role.
    Role(MemberRole),
    /// The hospital the entry names as custodian, and no other member.
    Custodian(&'a HospitalId),
}

impl std::fmt::Display for Logger<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Authority => write!(f, "the consortium authority ({AUTHORITY_MEMBER})"),
            Self::Role(role) => write!(f, "{}", role_name(*role)),
            Self::Custodian(custodian) => write!(f, "the custodian it names ({custodian})"),
        }
    }
}

/// Who acts in one event: the party that logs it and, for a patient's own act,
/// what the patient's device signed.
#[derive(Debug, Clone, Copy)]
pub struct Actors<'a> {
    /// Who may log it.
    pub logger: Logger<'a>,
    /// The device-signed act it carries, if any.
    pub device: Option<DeviceAct<'a>>,
}

/// An event's act signed by a patient's device (see [`Event::device_signed`]).
#[derive(Debug, Clone, Copy)]
pub enum DeviceAct<'a> {
    /// The patient's approval or refusal.
    Decision(&'a AccessDecided),
    /// The patient's standing rule.
    Rule(&'a RuleCreated),
    /// The patient's revocation of a rule.
    RuleRevocation(&'a RuleRevoked),
    /// The patient's revocation of a grant from a device.
    GrantRevocation(&'a GrantRevoked, &'a DeviceRevocation),
}

/// The table: who acts in `event`.
pub fn actors(event: &Event) -> Actors<'_> {
    let logged_by = |logger| Actors {
        logger,
        device: None,
    };
    // Patients' devices, requests, decisions, grants and rules: a hospital
    // logging any of these could approve its own requests.
    let consent = |device| Actors {
        logger: Logger::Role(MemberRole::Consent),
        device,
    };
    match event {
        Event::MemberUpdated(_) => logged_by(Logger::Authority),
        Event::PointersPublished(e) => logged_by(Logger::Custodian(&e.custodian)),
        Event::RecordRetrieved(e) => logged_by(Logger::Custodian(&e.custodian)),
        Event::IndexQueried(_) => logged_by(Logger::Role(MemberRole::Index)),
        // A refusal is the refusing party's own act: a hospital refuses
        // retrievals asked of it, the index discoveries asked of it.
        Event::AccessRefused(e) => logged_by(match &e.custodian {
            Some(custodian) => Logger::Custodian(custodian),
            None => Logger::Role(MemberRole::Index),
        }),
        Event::DeviceEnrolled(_)
        | Event::DeviceRemoved(_)
        | Event::AccessRequested(_)
        | Event::GrantIssued(_) => consent(None),
        Event::AccessDecided(e) => consent(Some(DeviceAct::Decision(e))),
        Event::RuleCreated(e) => consent(Some(DeviceAct::Rule(e))),
        Event::RuleRevoked(e) => consent(Some(DeviceAct::RuleRevocation(e))),
        Event::GrantRevoked(e) => consent(
            e.by_device
                .as_ref()
                .map(|by| DeviceAct::GrantRevocation(e, by)),
        ),
    }
}

/// Who may log `event`, from [`actors`].
pub fn logger(event: &Event) -> Logger<'_> {
    actors(event).logger
}

/// What the table says of one event, as methods of the event.
impl Event {
    /// The record custodian involved, if any: the hospital that published,
    /// released, or refused a retrieval asked of it. Those are the events only
    /// their custodian may log, so this reads [`logger`]'s table: an event that
    /// names a custodian is one its custodian logs, and its row in [`actors`]
    /// says so.
    pub fn custodian(&self) -> Option<&HospitalId> {
        match logger(self) {
            Logger::Custodian(custodian) => Some(custodian),
            Logger::Authority | Logger::Role(_) => None,
        }
    }

    /// The device signature this event carries and what it covers, if any:
    /// `access.decided`, `rule.created`, `rule.revoked` and a patient's
    /// `grant.revoked`. Verify it with the key of the `device.enrolled` entry for the
    /// same device and subject ([`SignedConsent::verify`]).
    pub fn device_signed(&self) -> Result<Option<SignedConsent>, ConsentError> {
        let signed = |device: &DeviceKeyId,
                      subject: &PatientKey,
                      message: Result<Vec<u8>, ConsentError>,
                      signature: &Signature64| {
            Ok(Some(SignedConsent {
                device: *device,
                subject: *subject,
                message: message?,
                signature: *signature,
            }))
        };
        match actors(self).device {
            None => Ok(None),
            Some(DeviceAct::Decision(e)) => signed(
                e.decision.device(),
                e.decision.subject(),
                e.decision.signing_bytes(),
                &e.signature,
            ),
            Some(DeviceAct::Rule(e)) => signed(
                &e.rule.device,
                &e.rule.subject,
                e.rule.signing_bytes(),
                &e.signature,
            ),
            Some(DeviceAct::RuleRevocation(e)) => signed(
                &e.device,
                &e.subject,
                e.revocation().signing_bytes(),
                &e.signature,
            ),
            Some(DeviceAct::GrantRevocation(e, by)) => signed(
                &by.device,
                &e.subject,
                e.revocation_by(by).signing_bytes(),
                &by.signature,
            ),
        }
    }
}

/// Why a submitter may not log an entry. Names members and kinds, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPermitted {
    /// The directory gives the authority role to someone other than the
    /// consortium authority, or the authority is given another role: either way
    /// the directory is not what this table assumes, so nothing is permitted.
    #[error("only the consortium authority ({AUTHORITY_MEMBER}) holds the authority role, and it holds no other")]
    AuthorityRole,
    /// The wrong party for this kind of entry.
    #[error("{kind} is logged only by {logger}, not by {submitter}, which is {role}", role = role_name(*role))]
    WrongLogger {
        /// The entry's kind.
        kind: EventKind,
        /// Who may log it, in words.
        logger: String,
        /// Who submitted it.
        submitter: MemberId,
        /// The submitter's role.
        role: MemberRole,
    },
}

/// Checks `entry` against the table. `role` is the submitter's role as the
/// directory stood when the entry was (or is to be) logged;
/// [`MemberRole::Authority`] for [`AUTHORITY_MEMBER`]. Whether the submitter is
/// active and its signature are the caller's to check.
pub fn may_log(entry: &Entry, role: MemberRole) -> Result<(), NotPermitted> {
    let submitter = &entry.submitter;
    let is_authority = submitter.as_str() == AUTHORITY_MEMBER;
    if is_authority != (role == MemberRole::Authority) {
        return Err(NotPermitted::AuthorityRole);
    }
    let logger = logger(&entry.event);
    let allowed = match logger {
        Logger::Authority => is_authority,
        Logger::Role(needed) => role == needed,
        Logger::Custodian(custodian) => {
            role == MemberRole::Hospital && custodian.as_member() == submitter
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(NotPermitted::WrongLogger {
            kind: entry.event.event_kind(),
            logger: logger.to_string(),
            submitter: submitter.clone(),
            role,
        })
    }
}

/// The role's name in messages ("the index", "a hospital", ...).
pub fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Authority => "the consortium authority",
        MemberRole::Index => "the index",
        MemberRole::Consent => "the consent service",
        MemberRole::Hospital => "a hospital",
        MemberRole::Regulator => "a regulator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{AccessRefused, IndexQueried, MerkleRoot, PointersPublished, RefusalReason};
    use crate::ids::{GrantId, PatientKey};
    use crate::signing::SigningKey;
    use crate::test_support::record_retrieved;

    fn entry(submitter: &str, event: Event) -> Entry {
        let key = SigningKey::from_seed([3; 32]);
        Entry::new(submitter.parse().unwrap(), key.key_id(), 0, event)
    }

    fn refusal(custodian: Option<&str>) -> Event {
        Event::AccessRefused(AccessRefused {
            requester: "city-er".parse().unwrap(),
            custodian: custodian.map(|c| c.parse().unwrap()),
            grant: Some(GrantId::new_random()),
            subject: None,
            reason: RefusalReason::OutOfScope,
        })
    }

    /// Every role, and who of them may log each of these events.
    #[test]
    fn custodians_and_refusals() {
        let subject = PatientKey::from_bytes([1; 32]);
        let grant = GrantId::new_random();
        let retrieved = record_retrieved(grant, subject);
        let published = Event::PointersPublished(PointersPublished {
            custodian: "st-mary".parse().unwrap(),
            count: 1,
            batch_root: MerkleRoot::from_bytes([3; 32]),
        });
        let queried = Event::IndexQueried(IndexQueried {
            requester: "city-er".parse().unwrap(),
            grant,
            subject,
            results: 0,
        });
        let submitters = [
            (AUTHORITY_MEMBER, MemberRole::Authority),
            ("index", MemberRole::Index),
            ("consent", MemberRole::Consent),
            ("st-mary", MemberRole::Hospital),
            ("city-er", MemberRole::Hospital),
            ("regulator", MemberRole::Regulator),
        ];
        let cases: [(Event, &[&str]); 6] = [
            (retrieved, &["st-mary"]),
            (published, &["st-mary"]),
            (queried, &["index"]),
            (refusal(Some("st-mary")), &["st-mary"]),
            (refusal(Some("city-er")), &["city-er"]),
            (refusal(None), &["index"]),
        ];
        for (event, allowed) in cases {
            for (submitter, role) in submitters {
                let result = may_log(&entry(submitter, event.clone()), role);
                assert_eq!(
                    result.is_ok(),
                    allowed.contains(&submitter),
                    "{} by {submitter}: {result:?}",
                    event.kind()
                );
            }
        }
    }

    #[test]
    fn the_authority_role_is_the_authority_alone() {
        // A directory member given the authority role may log nothing, not even
        // what its id would otherwise allow.
        assert_eq!(
            may_log(
                &entry("st-mary", refusal(Some("st-mary"))),
                MemberRole::Authority
            ),
            Err(NotPermitted::AuthorityRole)
        );
        // The authority's id with another role (a directory record for it).
        assert_eq!(
            may_log(&entry(AUTHORITY_MEMBER, refusal(None)), MemberRole::Index),
            Err(NotPermitted::AuthorityRole)
        );
        let err = may_log(&entry("regulator", refusal(None)), MemberRole::Regulator)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "access.refused is logged only by the index, not by regulator, which is a regulator"
        );
    }
}

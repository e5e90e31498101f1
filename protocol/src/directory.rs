//! The consortium directory: who the members are, their keys, certificate and status.
//!
//! The directory is not configured anywhere: it is the fold, in log order, of the
//! `member.updated` entries that the consortium authority ([`AUTHORITY_MEMBER`])
//! submits to the ledger, the latest entry per member winning. Every service that
//! replays the same log therefore holds the same directory, and every change to it is
//! on the record.

use std::collections::{BTreeMap, HashMap};

use crate::entry::{Entry, Event};
use crate::grant::Confirmation;
use crate::ids::{KeyId, MemberId};
use crate::member::MemberUpdated;
pub use crate::member::{MemberRole, MemberStatus};
use crate::signing::VerifyingKey;

/// The member id of the consortium authority, the only submitter whose
/// `member.updated` entries change the directory.
pub const AUTHORITY_MEMBER: &str = "consortium";

/// The current state of every member: the fold of `member.updated` events.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    members: BTreeMap<MemberId, MemberUpdated>,
    /// `x5t#S256` → the member that last got that certificate.
    by_certificate: HashMap<String, MemberId>,
}

impl Directory {
    /// Applies one update: it replaces whatever was known about the member. A
    /// certificate belongs to one member at a time, so an update that gives a member
    /// a certificate another member had moves the certificate to it.
    pub fn apply(&mut self, update: &MemberUpdated) {
        if let Some(previous) = self.members.get(&update.member) {
            let old = &previous.certificate.x5t_s256;
            if *old != update.certificate.x5t_s256
                && self.by_certificate.get(old) == Some(&update.member)
            {
                self.by_certificate.remove(old);
            }
        }
        self.by_certificate
            .insert(update.certificate.x5t_s256.clone(), update.member.clone());
        self.members.insert(update.member.clone(), update.clone());
    }

    /// Applies `entry` if it is a `member.updated` submitted by [`AUTHORITY_MEMBER`];
    /// returns whether it did. The caller must have verified the entry's signature
    /// against the authority's key (the ledger does this when sequencing).
    pub fn apply_entry(&mut self, entry: &Entry) -> bool {
        match &entry.event {
            Event::MemberUpdated(update) if entry.submitter.as_str() == AUTHORITY_MEMBER => {
                self.apply(update);
                true
            }
            _ => false,
        }
    }

    /// The latest state of `member`, whatever its status.
    pub fn get(&self, member: &MemberId) -> Option<&MemberUpdated> {
        self.members.get(member)
    }

    /// The member whose TLS certificate has this thumbprint, whatever its status.
    pub fn by_certificate(&self, certificate: &Confirmation) -> Option<&MemberUpdated> {
        let member = self.by_certificate.get(&certificate.x5t_s256)?;
        self.members.get(member)
    }

    /// `member`, only if it is active.
    pub fn active(&self, member: &MemberId) -> Option<&MemberUpdated> {
        self.get(member)
            .filter(|m| m.status == MemberStatus::Active)
    }

    /// The Ed25519 key named `kid` of an active member with `role`: what a verifier
    /// of grant tokens (role [`MemberRole::Consent`]) passes as its key resolver.
    pub fn active_key(&self, role: MemberRole, kid: &KeyId) -> Option<VerifyingKey> {
        self.members
            .values()
            .find(|m| {
                m.role == role && m.status == MemberStatus::Active && m.ed25519.key_id() == *kid
            })
            .map(|m| m.ed25519)
    }

    /// Every member, in member id order.
    pub fn members(&self) -> impl Iterator<Item = &MemberUpdated> {
        self.members.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ENTRY_VERSION;
    use crate::seal::X25519SecretKey;
    use crate::signing::SigningKey;

    fn update(member: &str, cert: &[u8], status: MemberStatus) -> MemberUpdated {
        MemberUpdated {
            member: member.parse().unwrap(),
            role: MemberRole::Hospital,
            display_name: "St Mary's Hospital".into(),
            ed25519: SigningKey::from_seed([member.len() as u8; 32]).verifying_key(),
            x25519: X25519SecretKey::from_bytes([7; 32]).public_key(),
            certificate: Confirmation::for_certificate_der(cert),
            endpoint: Some("https://st-mary.example:8443".into()),
            status,
        }
    }

    fn id(s: &str) -> MemberId {
        s.parse().unwrap()
    }

    #[test]
    fn latest_update_wins() {
        let mut dir = Directory::default();
        assert!(dir.get(&id("st-mary")).is_none());
        dir.apply(&update("st-mary", b"cert 1", MemberStatus::Active));
        assert!(dir.active(&id("st-mary")).is_some());
        dir.apply(&update("st-mary", b"cert 1", MemberStatus::Suspended));
        assert_eq!(
            dir.get(&id("st-mary")).unwrap().status,
            MemberStatus::Suspended
        );
        assert!(dir.active(&id("st-mary")).is_none());
        dir.apply(&update("st-mary", b"cert 1", MemberStatus::Active));
        assert!(dir.active(&id("st-mary")).is_some());
        dir.apply(&update("city-er", b"cert 2", MemberStatus::Withdrawn));
        let ids: Vec<&str> = dir.members().map(|m| m.member.as_str()).collect();
        assert_eq!(ids, ["city-er", "st-mary"]);
        assert!(dir.active(&id("city-er")).is_none());
    }

    #[test]
    fn certificates_follow_updates() {
        let c1 = Confirmation::for_certificate_der(b"cert 1");
        let c2 = Confirmation::for_certificate_der(b"cert 2");
        let mut dir = Directory::default();
        dir.apply(&update("st-mary", b"cert 1", MemberStatus::Active));
        assert_eq!(dir.by_certificate(&c1).unwrap().member.as_str(), "st-mary");
        // Renewal: the old certificate no longer identifies anyone.
        dir.apply(&update("st-mary", b"cert 2", MemberStatus::Active));
        assert!(dir.by_certificate(&c1).is_none());
        assert_eq!(dir.by_certificate(&c2).unwrap().member.as_str(), "st-mary");
        // Handing the certificate to another member moves it.
        dir.apply(&update("city-er", b"cert 2", MemberStatus::Active));
        assert_eq!(dir.by_certificate(&c2).unwrap().member.as_str(), "city-er");
        // And st-mary renewing away from it does not take it from city-er.
        dir.apply(&update("st-mary", b"cert 3", MemberStatus::Active));
        assert_eq!(dir.by_certificate(&c2).unwrap().member.as_str(), "city-er");
        assert_eq!(
            dir.by_certificate(&Confirmation::for_certificate_der(b"cert 3"))
                .unwrap()
                .member
                .as_str(),
            "st-mary"
        );
    }

    #[test]
    fn only_the_authority_updates_the_directory() {
        let mut dir = Directory::default();
        let u = update("st-mary", b"c", MemberStatus::Active);
        let kid = SigningKey::from_seed([1; 32]).key_id();
        let by_hospital = Entry::new(id("st-mary"), kid, 1, Event::MemberUpdated(u.clone()));
        assert!(!dir.apply_entry(&by_hospital));
        assert!(dir.get(&id("st-mary")).is_none());
        let by_authority = Entry::new(id(AUTHORITY_MEMBER), kid, 1, Event::MemberUpdated(u));
        assert_eq!(by_authority.v, ENTRY_VERSION);
        assert!(dir.apply_entry(&by_authority));
        assert!(dir.active(&id("st-mary")).is_some());
    }

    #[test]
    fn active_key_lookup() {
        let mut dir = Directory::default();
        let mut consent = update("consent", b"c", MemberStatus::Active);
        consent.role = MemberRole::Consent;
        let kid = consent.ed25519.key_id();
        dir.apply(&consent);
        assert_eq!(
            dir.active_key(MemberRole::Consent, &kid),
            Some(consent.ed25519)
        );
        assert_eq!(dir.active_key(MemberRole::Hospital, &kid), None);
        let other = SigningKey::from_seed([99; 32]).key_id();
        assert_eq!(dir.active_key(MemberRole::Consent, &other), None);
        consent.status = MemberStatus::Suspended;
        dir.apply(&consent);
        assert_eq!(dir.active_key(MemberRole::Consent, &kid), None);
    }
}

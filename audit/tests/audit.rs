//! The regulator's grant audit on a synthetic ledger built from protocol types: a
//! clean log first, then one tampering at a time, each giving exactly one finding.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use locus_audit::replay::parse_entries;
use locus_audit::rules::{check_grants, Finding, GrantAudit};
use locus_protocol::consent::{
    Approval, Decision, RequestTerms, Revocation, RuleAudience, StandingRule,
};
use locus_protocol::device::DeviceSigner;
use locus_protocol::directory::{MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{
    AccessDecided, AccessRefused, AccessRequested, DeviceEnrolled, DeviceRevocation, Entry, Event,
    GrantIssued, GrantRevoked, IndexQueried, MemberUpdated, MerkleRoot, PointersPublished,
    RefusalReason, RuleCreated, RuleRevoked, SignedEntry,
};
use locus_protocol::grant::{Confirmation, DataPeriod, GrantBasis, PurposeOfUse};
use locus_protocol::ids::{GrantId, PatientKey, RequestId, RuleId};
use locus_protocol::seal::X25519SecretKey;
use locus_protocol::signing::{Signature64, SigningKey, VerifyingKey};

/// 2024-06-10 06:13:20 UTC, when the grants start.
const NB: i64 = 1_718_000_000;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const LABS: &str = "patient/Observation.rs?category=laboratory";

fn period(start: &str, end: &str) -> DataPeriod {
    DataPeriod::new(start, end).unwrap()
}

/// The consortium, two patients with a phone each, and the ids of the base log.
struct World {
    authority: SigningKey,
    consent: SigningKey,
    st_mary: SigningKey,
    city_er: SigningKey,
    alice: PatientKey,
    bob: PatientKey,
    alice_phone: DeviceSigner,
    bob_phone: DeviceSigner,
    request: RequestId,
    rule: RuleId,
    approval_grant: GrantId,
    rule_grant: GrantId,
    emergency_grant: GrantId,
}

/// Labelled entries, so a tampering can name the entry it changes.
struct Log(Vec<(&'static str, SignedEntry)>);

impl Log {
    fn at(&self, label: &str) -> usize {
        self.0.iter().position(|(l, _)| *l == label).unwrap()
    }
    fn index(&self, label: &str) -> u64 {
        self.at(label) as u64
    }
    /// Flips one bit of the submitter signature of the entry at `label`.
    fn break_signature(&mut self, label: &str) {
        let at = self.at(label);
        let entry = &mut self.0[at].1;
        let mut sig = entry.sig().to_bytes();
        sig[10] ^= 1;
        *entry =
            SignedEntry::from_parts(entry.entry().clone(), Signature64::from_bytes(sig)).unwrap();
    }
    fn replace(&mut self, label: &str, entry: SignedEntry) {
        let at = self.at(label);
        self.0[at].1 = entry;
    }
    fn remove(&mut self, label: &str) {
        let at = self.at(label);
        self.0.remove(at);
    }
    fn insert_before(&mut self, label: &str, new: &'static str, entry: SignedEntry) {
        let at = self.at(label);
        self.0.insert(at, (new, entry));
    }
    fn audit(&self, w: &World) -> GrantAudit {
        let entries: Vec<(u64, SignedEntry)> = (0u64..)
            .zip(self.0.iter().map(|(_, e)| e.clone()))
            .collect();
        check_grants(&entries, &w.authority_key())
    }
}

impl World {
    fn new() -> Self {
        Self {
            authority: SigningKey::from_seed([1; 32]),
            consent: SigningKey::from_seed([2; 32]),
            st_mary: SigningKey::from_seed([3; 32]),
            city_er: SigningKey::from_seed([4; 32]),
            alice: PatientKey::from_bytes([0xa1; 32]),
            bob: PatientKey::from_bytes([0xb0; 32]),
            alice_phone: DeviceSigner::generate_p256(),
            bob_phone: DeviceSigner::generate_p256(),
            request: RequestId::new_random(),
            rule: RuleId::new_random(),
            approval_grant: GrantId::new_random(),
            rule_grant: GrantId::new_random(),
            emergency_grant: GrantId::new_random(),
        }
    }

    fn authority_key(&self) -> VerifyingKey {
        self.authority.verifying_key()
    }

    fn key(&self, member: &str) -> &SigningKey {
        match member {
            AUTHORITY_MEMBER => &self.authority,
            "consent" => &self.consent,
            "st-mary" => &self.st_mary,
            "city-er" => &self.city_er,
            _ => panic!("no key for {member}"),
        }
    }

    fn by(&self, member: &str, event: Event) -> SignedEntry {
        let key = self.key(member);
        SignedEntry::sign(
            Entry::new(member.parse().unwrap(), key.key_id(), NB * 1000, event),
            key,
        )
        .unwrap()
    }

    fn by_consent(&self, event: Event) -> SignedEntry {
        self.by("consent", event)
    }

    fn member(&self, member: &str, role: MemberRole, status: MemberStatus) -> SignedEntry {
        self.by(
            AUTHORITY_MEMBER,
            Event::MemberUpdated(MemberUpdated {
                member: member.parse().unwrap(),
                role,
                display_name: format!("Member {member}"),
                ed25519: self.key(member).verifying_key(),
                x25519: X25519SecretKey::from_bytes([9; 32]).public_key(),
                certificate: Confirmation::for_certificate_der(member.as_bytes()),
                endpoint: None,
                status,
            }),
        )
    }

    fn enrol(&self, subject: PatientKey, phone: &DeviceSigner) -> SignedEntry {
        self.by_consent(Event::DeviceEnrolled(DeviceEnrolled {
            subject,
            device: phone.device_id(),
            key: phone.public_jwk(),
            code_issuer: "hospital-a".parse().unwrap(),
        }))
    }

    fn terms(&self) -> RequestTerms {
        RequestTerms {
            request: self.request,
            requester: "city-er".parse().unwrap(),
            subject: self.alice,
            purpose: PurposeOfUse::Treatment,
            scope: LABS.parse().unwrap(),
            data_period: Some(period("2024-01-01", "2024-06-30")),
            duration_secs: 2 * DAY,
        }
    }

    /// Alice approves, narrower than asked: three months, one day.
    fn approval(&self) -> Approval {
        let mut a = Approval::of(&self.terms(), self.alice_phone.device_id(), NB * 1000);
        a.data_period = Some(period("2024-01-01", "2024-03-31"));
        a.duration_secs = DAY;
        a
    }

    fn decided(&self, approval: Approval, phone: &DeviceSigner) -> SignedEntry {
        let decision = Decision::Approve(approval);
        let signature = sign64(phone, &decision.signing_bytes().unwrap());
        self.by_consent(Event::AccessDecided(AccessDecided {
            decision,
            signature,
        }))
    }

    fn approval_grant(&self) -> GrantIssued {
        GrantIssued {
            grant: self.approval_grant,
            subject: self.alice,
            requester: "city-er".parse().unwrap(),
            scope: LABS.parse().unwrap(),
            data_period: Some(period("2024-01-01", "2024-03-31")),
            purpose: PurposeOfUse::Treatment,
            not_before: NB,
            expires: NB + DAY,
            basis: GrantBasis::PatientApproval {
                request: self.request,
            },
            cnf: Confirmation::for_certificate_der(b"city-er"),
        }
    }

    /// Any hospital may read Alice's labs of the last year, for a day.
    fn rule(&self) -> StandingRule {
        StandingRule {
            rule: self.rule,
            subject: self.alice,
            who: RuleAudience::AnyHospital,
            scope: LABS.parse().unwrap(),
            data_window_days: Some(365),
            grant_duration_secs: DAY,
            purposes: vec![PurposeOfUse::EmergencyTreatment, PurposeOfUse::Treatment],
            device: self.alice_phone.device_id(),
            signed_at_ms: NB * 1000 - DAY * 1000,
        }
    }

    fn rule_created(&self, rule: StandingRule, phone: &DeviceSigner) -> SignedEntry {
        let signature = sign64(phone, &rule.signing_bytes().unwrap());
        self.by_consent(Event::RuleCreated(RuleCreated { rule, signature }))
    }

    /// Alice's approval, made on Bob's phone (enrolled for Bob, not her).
    fn decided_on_bobs_phone(&self) -> SignedEntry {
        let mut a = self.approval();
        a.device = self.bob_phone.device_id();
        self.decided(a, &self.bob_phone)
    }

    /// Alice's rule, made on Bob's phone.
    fn rule_on_bobs_phone(&self) -> SignedEntry {
        let mut r = self.rule();
        r.device = self.bob_phone.device_id();
        self.rule_created(r, &self.bob_phone)
    }

    /// For the same patient and purpose as the approval grant, to St Mary.
    fn rule_grant(&self) -> GrantIssued {
        GrantIssued {
            grant: self.rule_grant,
            requester: "st-mary".parse().unwrap(),
            scope: "patient/Observation.r?category=laboratory".parse().unwrap(),
            data_period: Some(DataPeriod::last_days("2024-06-10", 365).unwrap()),
            not_before: NB + 60,
            expires: NB + 60 + 12 * HOUR,
            basis: GrantBasis::StandingRule {
                rule: self.rule.to_string(),
            },
            cnf: Confirmation::for_certificate_der(b"st-mary"),
            ..self.approval_grant()
        }
    }

    fn emergency_grant(&self) -> GrantIssued {
        GrantIssued {
            grant: self.emergency_grant,
            subject: self.bob,
            requester: "st-mary".parse().unwrap(),
            scope: "patient/Observation.rs".parse().unwrap(),
            data_period: None,
            purpose: PurposeOfUse::EmergencyTreatment,
            not_before: NB + 120,
            expires: NB + 120 + 4 * HOUR,
            basis: GrantBasis::Emergency {
                reason: "unconscious on arrival in the emergency department".into(),
            },
            cnf: Confirmation::for_certificate_der(b"st-mary"),
        }
    }

    fn issued(&self, grant: GrantIssued) -> SignedEntry {
        self.by_consent(Event::GrantIssued(grant))
    }

    /// Alice revokes the approval grant from her phone.
    fn revoked(&self, phone: &DeviceSigner) -> SignedEntry {
        let revocation = Revocation {
            grant: self.approval_grant,
            subject: self.alice,
            device: self.alice_phone.device_id(),
            signed_at_ms: NB * 1000 + HOUR * 1000,
        };
        let signature = sign64(phone, &revocation.signing_bytes().unwrap());
        self.by_consent(Event::GrantRevoked(GrantRevoked {
            grant: self.approval_grant,
            subject: self.alice,
            by_device: Some(DeviceRevocation {
                device: revocation.device,
                signed_at_ms: revocation.signed_at_ms,
                signature,
            }),
        }))
    }

    fn rule_revoked(&self) -> SignedEntry {
        let mut revoked = RuleRevoked {
            rule: self.rule,
            subject: self.alice,
            device: self.alice_phone.device_id(),
            signed_at_ms: NB * 1000,
            signature: Signature64::from_bytes([0; 64]),
        };
        revoked.signature = sign64(
            &self.alice_phone,
            &revoked.revocation().signing_bytes().unwrap(),
        );
        self.by_consent(Event::RuleRevoked(revoked))
    }

    fn base(&self) -> Log {
        Log(vec![
            (
                "admit consent",
                self.member("consent", MemberRole::Consent, MemberStatus::Active),
            ),
            (
                "admit st-mary",
                self.member("st-mary", MemberRole::Hospital, MemberStatus::Active),
            ),
            (
                "admit city-er",
                self.member("city-er", MemberRole::Hospital, MemberStatus::Active),
            ),
            ("enrol alice", self.enrol(self.alice, &self.alice_phone)),
            ("enrol bob", self.enrol(self.bob, &self.bob_phone)),
            (
                "requested",
                self.by_consent(Event::AccessRequested(AccessRequested {
                    terms: self.terms(),
                })),
            ),
            ("decided", self.decided(self.approval(), &self.alice_phone)),
            ("approval grant", self.issued(self.approval_grant())),
            ("rule", self.rule_created(self.rule(), &self.alice_phone)),
            ("rule grant", self.issued(self.rule_grant())),
            ("emergency grant", self.issued(self.emergency_grant())),
            ("revoked", self.revoked(&self.alice_phone)),
            ("published", self.by("st-mary", st_mary_published(3, 7))),
        ])
    }
}

/// St Mary publishes `count` pointers under the batch root `[root; 32]`.
fn st_mary_published(count: u32, root: u8) -> Event {
    Event::PointersPublished(PointersPublished {
        custodian: "st-mary".parse().unwrap(),
        count,
        batch_root: MerkleRoot::from_bytes([root; 32]),
    })
}

/// City ER refused under its approval grant, by `custodian` (`None`: the index).
fn refusal(w: &World, custodian: Option<&str>) -> Event {
    Event::AccessRefused(AccessRefused {
        requester: "city-er".parse().unwrap(),
        custodian: custodian.map(|c| c.parse().unwrap()),
        grant: Some(w.approval_grant),
        subject: Some(w.alice),
        reason: RefusalReason::OutOfScope,
    })
}

fn sign64(phone: &DeviceSigner, message: &[u8]) -> Signature64 {
    Signature64::try_from(phone.sign(message).as_slice()).unwrap()
}

fn only_finding(audit: &GrantAudit) -> &Finding {
    assert_eq!(audit.findings.len(), 1, "{:#?}", audit.findings);
    &audit.findings[0]
}

#[test]
fn clean_log() {
    let w = World::new();
    let log = w.base();
    let audit = log.audit(&w);
    assert!(audit.is_clean(), "{:#?}", audit.findings);
    assert_eq!(audit.grants_checked, 3);
    assert_eq!(audit.backed_by_approval, 1);
    assert_eq!(audit.backed_by_rule, 1);
    assert_eq!(
        audit.emergency_grants,
        vec![(
            log.index("emergency grant"),
            w.emergency_grant,
            "unconscious on arrival in the emergency department".to_owned()
        )]
    );

    // The same from leaf bytes, as downloaded.
    let leaves: Vec<Vec<u8>> = log.0.iter().map(|(_, e)| e.to_canonical_bytes()).collect();
    let parsed = parse_entries(&leaves).unwrap();
    assert_eq!(check_grants(&parsed, &w.authority_key()), audit);
    let mut broken = leaves;
    broken[4].push(b' ');
    assert!(parse_entries(&broken)
        .unwrap_err()
        .to_string()
        .starts_with("leaf 4 "));

    // Another authority key: nobody is admitted, so every entry is a finding.
    let audit = check_grants(&parsed, &SigningKey::from_seed([99; 32]).verifying_key());
    assert_eq!(audit.findings.len(), log.0.len());
    assert_eq!(audit.backed_by_approval + audit.backed_by_rule, 0);
}

/// One tampering: what it does to the base log, the entry the finding must name,
/// whether it names a grant, and words the problem must contain.
struct Case {
    name: &'static str,
    tamper: fn(&World, &mut Log),
    at: &'static str,
    grant: fn(&World) -> Option<GrantId>,
    says: &'static str,
}

fn approval_grant(w: &World) -> Option<GrantId> {
    Some(w.approval_grant)
}
fn rule_grant(w: &World) -> Option<GrantId> {
    Some(w.rule_grant)
}
fn emergency_grant(w: &World) -> Option<GrantId> {
    Some(w.emergency_grant)
}
fn no_grant(_: &World) -> Option<GrantId> {
    None
}

/// Replaces the entry at `label` with `grant`, edited.
fn with_grant(
    w: &World,
    log: &mut Log,
    label: &str,
    mut grant: GrantIssued,
    edit: impl FnOnce(&mut GrantIssued),
) {
    edit(&mut grant);
    log.replace(label, w.issued(grant));
}

fn with_approval_grant(w: &World, log: &mut Log, edit: impl FnOnce(&mut GrantIssued)) {
    with_grant(w, log, "approval grant", w.approval_grant(), edit);
}

fn with_rule_grant(w: &World, log: &mut Log, edit: impl FnOnce(&mut GrantIssued)) {
    with_grant(w, log, "rule grant", w.rule_grant(), edit);
}

#[test]
fn each_tampering_is_one_finding() {
    let cases = [
        Case {
            name: "grant with no approval",
            tamper: |_, log| log.remove("decided"),
            at: "approval grant",
            grant: approval_grant,
            says: "no earlier access.decided for request",
        },
        Case {
            name: "grant with no request",
            tamper: |_, log| log.remove("requested"),
            at: "approval grant",
            grant: approval_grant,
            says: "no earlier access.requested for request",
        },
        Case {
            name: "approval signed by another patient's device",
            tamper: |w, log| log.replace("decided", w.decided_on_bobs_phone()),
            at: "approval grant",
            grant: approval_grant,
            says: "is enrolled for another patient",
        },
        Case {
            name: "approval with a forged signature",
            tamper: |w, log| log.replace("decided", w.decided(w.approval(), &DeviceSigner::generate_p256())),
            at: "approval grant",
            grant: approval_grant,
            says: "device signature of",
        },
        Case {
            name: "approval from a device removed before",
            tamper: |w, log| {
                let removed = w.by_consent(Event::DeviceRemoved(locus_protocol::entry::DeviceRemoved {
                    subject: w.alice,
                    device: w.alice_phone.device_id(),
                }));
                log.insert_before("decided", "removed", removed);
                // Re-enrolled after the approval, so the rule and revocation still hold.
                log.insert_before("approval grant", "re-enrol", w.enrol(w.alice, &w.alice_phone));
            },
            at: "approval grant",
            grant: approval_grant,
            says: "had been removed from this patient",
        },
        Case {
            name: "the patient refused",
            tamper: |w, log| {
                let decision = Decision::Refuse(locus_protocol::consent::Refusal {
                    request: w.request,
                    subject: w.alice,
                    device: w.alice_phone.device_id(),
                    signed_at_ms: NB * 1000,
                });
                let signature = sign64(&w.alice_phone, &decision.signing_bytes().unwrap());
                log.replace("decided", w.by_consent(Event::AccessDecided(AccessDecided { decision, signature })));
            },
            at: "approval grant",
            grant: approval_grant,
            says: "the patient refused request",
        },
        Case {
            name: "grant scope wider than approved",
            tamper: |w, log| with_approval_grant(w, log, |g| g.scope = "patient/Observation.rs".parse().unwrap()),
            at: "approval grant",
            grant: approval_grant,
            says: "scope patient/Observation.rs is wider than the approval",
        },
        Case {
            name: "grant period wider than approved",
            tamper: |w, log| with_approval_grant(w, log, |g| g.data_period = Some(period("2024-01-01", "2024-04-01"))),
            at: "approval grant",
            grant: approval_grant,
            says: "data period 2024-01-01..2024-04-01 is wider than the 2024-01-01..2024-03-31 approved",
        },
        Case {
            name: "grant without the approved period",
            tamper: |w, log| with_approval_grant(w, log, |g| g.data_period = None),
            at: "approval grant",
            grant: approval_grant,
            says: "the grant has no data period",
        },
        Case {
            name: "grant longer than approved",
            tamper: |w, log| with_approval_grant(w, log, |g| g.expires += 1),
            at: "approval grant",
            grant: approval_grant,
            says: "the grant lasts 86401 s, longer than the approved 86400 s",
        },
        Case {
            name: "grant to another requester",
            tamper: |w, log| with_approval_grant(w, log, |g| g.requester = "st-mary".parse().unwrap()),
            at: "approval grant",
            grant: approval_grant,
            says: "was made by city-er, not st-mary; the approval (leaf 6) names requester city-er",
        },
        Case {
            name: "one approval, two grants",
            tamper: |w, log| {
                let mut g = w.approval_grant();
                g.grant = GrantId::new_random();
                log.insert_before("rule", "second grant", w.issued(g));
            },
            at: "second grant",
            grant: |_| None, // checked below: a fresh id
            says: "already backs grant",
        },
        Case {
            name: "rule-based grant after the rule was revoked",
            tamper: |w, log| log.insert_before("rule grant", "rule revoked", w.rule_revoked()),
            at: "rule grant",
            grant: rule_grant,
            says: "was revoked at leaf 9",
        },
        Case {
            name: "rule-based grant for a purpose the rule does not allow",
            tamper: |w, log| with_rule_grant(w, log, |g| g.purpose = PurposeOfUse::CareManagement),
            at: "rule grant",
            grant: rule_grant,
            says: "does not allow purpose CAREMGT",
        },
        Case {
            name: "rule-based grant longer than the rule",
            tamper: |w, log| with_rule_grant(w, log, |g| g.expires = g.not_before + DAY + 1),
            at: "rule grant",
            grant: rule_grant,
            says: "longer than the 86400 s rule",
        },
        Case {
            name: "rule-based grant reaching before the rule's window",
            tamper: |w, log| with_rule_grant(w, log, |g| g.data_period = Some(period("2023-01-01", "2024-06-10"))),
            at: "rule grant",
            grant: rule_grant,
            says: "last 365 days",
        },
        Case {
            name: "rule-based grant to a member that is not a hospital",
            tamper: |w, log| with_rule_grant(w, log, |g| g.requester = "consent".parse().unwrap()),
            at: "rule grant",
            grant: rule_grant,
            says: "allows hospitals only, and consent is not an active hospital",
        },
        Case {
            name: "rule signed by another patient's device",
            tamper: |w, log| log.replace("rule", w.rule_on_bobs_phone()),
            at: "rule grant",
            grant: rule_grant,
            says: "is enrolled for another patient",
        },
        Case {
            name: "forged rule that no grant cites",
            tamper: |w, log| {
                log.replace("rule", w.rule_created(w.rule(), &DeviceSigner::generate_p256()));
                log.remove("rule grant");
            },
            at: "rule",
            grant: no_grant,
            says: "rule.created for rule",
        },
        Case {
            name: "grant.issued logged by a hospital",
            tamper: |w, log| log.replace("approval grant", w.by("st-mary", Event::GrantIssued(w.approval_grant()))),
            at: "approval grant",
            grant: approval_grant,
            says: "grant.issued is logged only by the consent service, not by st-mary, which is a hospital",
        },
        Case {
            name: "grant entry whose signature does not verify",
            tamper: |_, log| log.break_signature("emergency grant"),
            at: "emergency grant",
            grant: emergency_grant,
            says: "entry signature does not verify under consent's key",
        },
        Case {
            name: "other entry whose signature does not verify",
            tamper: |_, log| log.break_signature("published"),
            at: "published",
            grant: no_grant,
            says: "entry signature does not verify under st-mary's key",
        },
        Case {
            name: "entry by a suspended member",
            tamper: |w, log| {
                let suspended = w.member("st-mary", MemberRole::Hospital, MemberStatus::Suspended);
                log.insert_before("published", "suspend", suspended);
            },
            at: "published",
            grant: no_grant,
            says: "submitter st-mary is suspended",
        },
        Case {
            name: "device enrolled by a hospital",
            tamper: |w, log| {
                let rogue = DeviceSigner::generate_p256();
                let enrolled = Event::DeviceEnrolled(DeviceEnrolled {
                    subject: w.alice,
                    device: rogue.device_id(),
                    key: rogue.public_jwk(),
                    code_issuer: "hospital-a".parse().unwrap(),
                });
                log.insert_before("published", "rogue", w.by("city-er", enrolled));
            },
            at: "rogue",
            grant: no_grant,
            says: "device.enrolled is logged only by the consent service, not by city-er, which is a hospital",
        },
        Case {
            name: "discovery logged by a hospital",
            tamper: |w, log| {
                let queried = Event::IndexQueried(IndexQueried {
                    requester: "city-er".parse().unwrap(),
                    grant: w.approval_grant,
                    subject: w.alice,
                    results: 0,
                });
                log.insert_before("revoked", "queried", w.by("city-er", queried));
            },
            at: "queried",
            grant: approval_grant,
            says: "index.queried is logged only by the index, not by city-er, which is a hospital",
        },
        Case {
            name: "pointers published in another hospital's name",
            tamper: |w, log| log.insert_before("published", "foreign", w.by("city-er", st_mary_published(1, 8))),
            at: "foreign",
            grant: no_grant,
            says: "pointers.published is logged only by the custodian it names (st-mary), not by city-er",
        },
        Case {
            name: "a refusal by another custodian, about another hospital's grant",
            tamper: |w, log| log.insert_before("published", "refused", w.by("st-mary", refusal(w, Some("city-er")))),
            at: "refused",
            grant: approval_grant,
            says: "access.refused is logged only by the custodian it names (city-er), not by st-mary",
        },
        Case {
            name: "a hospital's refusal in the index's name",
            tamper: |w, log| log.insert_before("published", "refused", w.by("st-mary", refusal(w, None))),
            at: "refused",
            grant: approval_grant,
            says: "access.refused is logged only by the index, not by st-mary, which is a hospital",
        },
        Case {
            name: "a refusal by the consent service",
            tamper: |w, log| log.insert_before("published", "refused", w.by_consent(refusal(w, None))),
            at: "refused",
            grant: approval_grant,
            says: "access.refused is logged only by the index, not by consent",
        },
        Case {
            name: "device revocation with a forged signature",
            tamper: |w, log| log.replace("revoked", w.revoked(&DeviceSigner::generate_p256())),
            at: "revoked",
            grant: approval_grant,
            says: "patient revocation: device signature of",
        },
    ];
    for case in &cases {
        let w = World::new();
        let mut log = w.base();
        (case.tamper)(&w, &mut log);
        let audit = log.audit(&w);
        let finding = only_finding(&audit);
        assert_eq!(
            finding.index,
            log.index(case.at),
            "{}: {finding:?}",
            case.name
        );
        if case.name == "one approval, two grants" {
            assert!(
                finding.grant.is_some_and(|g| g != w.approval_grant),
                "{}",
                case.name
            );
        } else {
            assert_eq!(finding.grant, (case.grant)(&w), "{}", case.name);
        }
        assert!(
            finding.problem.contains(case.says),
            "{}: {}",
            case.name,
            finding.problem
        );
    }
}

#[test]
fn counts_under_tampering() {
    let w = World::new();
    let mut log = w.base();
    with_approval_grant(&w, &mut log, |g| g.expires += HOUR);
    log.break_signature("emergency grant");
    let audit = log.audit(&w);
    // Every grant is checked; only the ones that hold are counted as backed.
    assert_eq!(audit.grants_checked, 3);
    assert_eq!((audit.backed_by_approval, audit.backed_by_rule), (0, 1));
    assert!(audit.emergency_grants.is_empty());
    assert!(!audit.is_clean());
    let at: Vec<u64> = audit.findings.iter().map(|f| f.index).collect();
    assert_eq!(
        at,
        [log.index("approval grant"), log.index("emergency grant")]
    );
}

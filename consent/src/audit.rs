//! The regulator's grant audit: from the ledger alone, that every grant has a valid
//! patient signature, a rule the patient signed, or an emergency flag, and that
//! every discovery and release happened under a grant valid at that moment.
//!
//! It works on parsed entries in log order (download and verify the log with
//! `locus_ledger::client::LedgerClient::download_log`, then [`parse_entries`]) and
//! trusts nothing but the pinned authority key: the directory, the patients' device
//! keys and every signature are rebuilt and checked from the entries themselves, each
//! as of its own place in the log.
//!
//! Each problem is reported once, where it matters: a grant whose backing fails gets
//! one finding naming every reason; a bad device signature that backs no grant is
//! reported at its own entry; an entry that fails its submitter, signature or role
//! check (`locus_protocol::roles`, the sequencer's own table) is reported and
//! otherwise ignored (as the sequencer would have refused it).

use std::collections::{HashMap, HashSet};

use locus_protocol::consent::RequestTerms;
use locus_protocol::consent::{Decision, RuleAudience, StandingRule};
use locus_protocol::device::{DeviceKey, DeviceKeyId};
use locus_protocol::directory::{Directory, MemberRole, MemberStatus, AUTHORITY_MEMBER};
use locus_protocol::entry::{
    EntryError, Event, GrantIssued, GrantRevoked, RuleRevoked, SignedEntry,
};
use locus_protocol::grant::{DataPeriod, GrantBasis, PurposeOfUse, MAX_CLOCK_SKEW_SECS};
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId, RuleId};
use locus_protocol::roles::may_log;
use locus_protocol::signing::VerifyingKey;
use serde::Serialize;

/// Why a downloaded log cannot be audited at all.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A leaf is not a well-formed signed entry: the sequencer never logs one, so the
    /// log itself is broken.
    #[error("leaf {index} is not a valid ledger entry: {source}")]
    Unparseable {
        /// The leaf index.
        index: u64,
        /// Why it does not parse.
        source: EntryError,
    },
}

/// Parses a verified log's leaves (`VerifiedLog::entries`), pairing each with its
/// leaf index.
pub fn parse_entries(leaves: &[Vec<u8>]) -> Result<Vec<(u64, SignedEntry)>, AuditError> {
    (0u64..)
        .zip(leaves)
        .map(|(index, leaf)| {
            SignedEntry::parse(leaf)
                .map(|entry| (index, entry))
                .map_err(|source| AuditError::Unparseable { index, source })
        })
        .collect()
}

/// One thing a regulator must look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The leaf index of the entry concerned.
    pub index: u64,
    /// The grant concerned, if any.
    pub grant: Option<GrantId>,
    /// What is wrong, in words.
    pub problem: String,
}

/// A grant whose backing was signed on a device its own beneficiary enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeskEnrolled {
    /// The leaf of the `grant.issued` entry.
    pub index: u64,
    pub grant: GrantId,
    /// The hospital that issued the enrolment code and received the grant.
    pub hospital: MemberId,
    /// The device that signed the approval or rule.
    pub device: DeviceKeyId,
    /// The leaf of that device's `device.enrolled` entry.
    pub enrolled_at: u64,
}

/// What [`check_grants`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantAudit {
    /// Every `grant.issued` entry seen, whatever its outcome.
    pub grants_checked: u64,
    /// Grants backed by a patient's signed approval.
    pub backed_by_approval: u64,
    /// Grants backed by a standing rule the patient signed.
    pub backed_by_rule: u64,
    /// `index.queried` and `record.retrieved` entries checked against their grant.
    pub accesses_checked: u64,
    /// Break-glass grants, for review (not failures): leaf index, grant, stated reason.
    pub emergency_grants: Vec<(u64, GrantId, String)>,
    /// Grants, for review (not failures), backed by an approval or a rule signed
    /// on a device enrolled with a code from the very hospital the grant benefits:
    /// the desk's word is trusted, and here it vouched for itself.
    pub desk_enrolled: Vec<DeskEnrolled>,
    /// Everything that does not hold, in log order.
    pub findings: Vec<Finding>,
}

impl GrantAudit {
    /// Whether nothing was found (emergency grants still want review).
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Checks every grant on the ledger against what the patient signed. `entries` are
/// `(leaf index, entry)` in log order; `authority` is the pinned consortium key.
pub fn check_grants(entries: &[(u64, SignedEntry)], authority: &VerifyingKey) -> GrantAudit {
    let mut auditor = Auditor::new(authority);
    for (index, signed) in entries {
        auditor.entry(*index, signed);
    }
    auditor.finish()
}

/// What [`Auditor::access`] holds a discovery or release against.
#[derive(Debug)]
struct AccessTerms {
    subject: PatientKey,
    requester: MemberId,
    not_before: i64,
    expires: i64,
}

/// A patient device signature on the ledger, checked when its entry was folded.
#[derive(Debug)]
struct Signed<T> {
    index: u64,
    value: T,
    /// Why the device signature does not hold, if it does not.
    problem: Option<String>,
    /// Whether a grant relied on it (its problem is then reported with the grant).
    cited: bool,
}

#[derive(Debug)]
struct Auditor<'a> {
    authority: &'a VerifyingKey,
    directory: Directory,
    /// Enrolled, not removed, device keys per patient.
    devices: HashMap<(PatientKey, DeviceKeyId), DeviceKey>,
    /// Devices removed from a patient, for clearer findings.
    removed: HashSet<(PatientKey, DeviceKeyId)>,
    /// Who issued the code each device was enrolled with, and at which leaf.
    enrolled_by: HashMap<(PatientKey, DeviceKeyId), (MemberId, u64)>,
    /// The first `access.requested` per request id.
    requests: HashMap<RequestId, (u64, RequestTerms)>,
    /// Every `access.decided`, in log order; `latest_decision` picks the one in force.
    decisions: Vec<Signed<Decision>>,
    latest_decision: HashMap<RequestId, usize>,
    /// An approval backs one grant: request → (leaf, grant) of the grant it backed.
    approvals_used: HashMap<RequestId, (u64, GrantId)>,
    rules: HashMap<RuleId, Signed<StandingRule>>,
    /// Rule → the leaf of its first `rule.revoked`.
    rules_revoked: HashMap<RuleId, u64>,
    /// Grant → (leaf, patient) of its `grant.issued`.
    issued: HashMap<GrantId, (u64, PatientKey)>,
    /// Grant → what an access under it must match.
    access_terms: HashMap<GrantId, AccessTerms>,
    /// Grant → the leaf of its first `grant.revoked`.
    revoked: HashMap<GrantId, u64>,
    audit: GrantAudit,
}

impl<'a> Auditor<'a> {
    fn new(authority: &'a VerifyingKey) -> Self {
        Self {
            authority,
            directory: Directory::default(),
            devices: HashMap::new(),
            removed: HashSet::new(),
            enrolled_by: HashMap::new(),
            requests: HashMap::new(),
            decisions: Vec::new(),
            latest_decision: HashMap::new(),
            approvals_used: HashMap::new(),
            rules: HashMap::new(),
            rules_revoked: HashMap::new(),
            issued: HashMap::new(),
            access_terms: HashMap::new(),
            revoked: HashMap::new(),
            audit: GrantAudit::default(),
        }
    }

    fn find(&mut self, index: u64, grant: Option<GrantId>, problem: String) {
        self.audit.findings.push(Finding {
            index,
            grant,
            problem,
        });
    }

    fn entry(&mut self, index: u64, signed: &SignedEntry) {
        let entry = signed.entry();
        let event = &entry.event;
        if matches!(event, Event::GrantIssued(_)) {
            self.audit.grants_checked += 1;
        }
        // Submitter, signature and role first: an entry that fails them changes
        // nothing below, as the sequencer would never have logged it.
        if let Err(problem) = self.admit(signed) {
            self.find(index, event.grant().copied(), problem);
            return;
        }
        match event {
            Event::MemberUpdated(_) => {
                self.directory.apply_entry(entry);
            }
            Event::DeviceEnrolled(e) => {
                self.enrolled_by
                    .insert((e.subject, e.device), (e.code_issuer.clone(), index));
                self.removed.remove(&(e.subject, e.device));
                self.devices.insert((e.subject, e.device), e.key.clone());
            }
            Event::DeviceRemoved(e) => {
                if self.devices.remove(&(e.subject, e.device)).is_some() {
                    self.removed.insert((e.subject, e.device));
                }
            }
            Event::AccessRequested(e) => {
                self.requests
                    .entry(e.terms.request)
                    .or_insert_with(|| (index, e.terms.clone()));
            }
            Event::AccessDecided(e) => {
                let problem = self.device_problem(event).err();
                self.latest_decision
                    .insert(*e.decision.request(), self.decisions.len());
                self.decisions.push(Signed {
                    index,
                    value: e.decision.clone(),
                    problem,
                    cited: false,
                });
            }
            Event::RuleCreated(e) => {
                if let Some(first) = self.rules.get(&e.rule.rule) {
                    // A second rule under one id could change what grants cite.
                    let problem = format!(
                        "rule {} was already created at leaf {}; this one is ignored",
                        e.rule.rule, first.index
                    );
                    self.find(index, None, problem);
                    return;
                }
                let problem = self.device_problem(event).err();
                self.rules.insert(
                    e.rule.rule,
                    Signed {
                        index,
                        value: e.rule.clone(),
                        problem,
                        cited: false,
                    },
                );
            }
            Event::RuleRevoked(e) => self.rule_revoked(index, event, e),
            Event::GrantRevoked(e) => self.grant_revoked(index, event, e),
            Event::GrantIssued(e) => self.grant_issued(index, entry.time_ms, e),
            Event::IndexQueried(e) => {
                self.access(
                    index,
                    entry.time_ms,
                    event.kind(),
                    e.grant,
                    e.subject,
                    &e.requester,
                );
            }
            Event::RecordRetrieved(e) => {
                self.access(
                    index,
                    entry.time_ms,
                    event.kind(),
                    e.grant,
                    e.subject,
                    &e.requester,
                );
            }
            Event::PointersPublished(_) | Event::AccessRefused(_) => {}
        }
    }

    /// The submitter was an active member (or the authority) at this point of the
    /// log, the entry verifies under its key, and its role logs this kind of entry.
    fn admit(&self, signed: &SignedEntry) -> Result<(), String> {
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
    fn device_problem(&self, event: &Event) -> Result<(), String> {
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

    fn rule_revoked(&mut self, index: u64, event: &Event, e: &RuleRevoked) {
        // Counts even if unsigned: the consent service itself declared the rule
        // dead, so any later grant under it is wrong either way.
        self.rules_revoked.entry(e.rule).or_insert(index);
        let mut problems = Vec::new();
        if let Err(p) = self.device_problem(event) {
            problems.push(p);
        }
        if let Some(rule) = self.rules.get(&e.rule) {
            if rule.value.subject != e.subject {
                problems.push(format!("rule {} is another patient's", e.rule));
            }
        }
        if !problems.is_empty() {
            let problem = format!("rule.revoked for rule {}: {}", e.rule, problems.join("; "));
            self.find(index, None, problem);
        }
    }

    fn grant_revoked(&mut self, index: u64, event: &Event, e: &GrantRevoked) {
        self.revoked.entry(e.grant).or_insert(index);
        if e.by_device.is_none() {
            return;
        }
        let mut problems = Vec::new();
        if let Err(p) = self.device_problem(event) {
            problems.push(p);
        }
        if let Some((leaf, subject)) = self.issued.get(&e.grant) {
            if *subject != e.subject {
                problems.push(format!("the grant (leaf {leaf}) is another patient's"));
            }
        }
        if !problems.is_empty() {
            let problem = format!("patient revocation: {}", problems.join("; "));
            self.find(index, Some(e.grant), problem);
        }
    }

    fn grant_issued(&mut self, index: u64, time_ms: i64, g: &GrantIssued) {
        let mut problems = Vec::new();
        if let Some((leaf, _)) = self.issued.get(&g.grant) {
            problems.push(format!("grant id already issued at leaf {leaf}"));
        } else {
            self.issued.insert(g.grant, (index, g.subject));
            self.access_terms.insert(
                g.grant,
                AccessTerms {
                    subject: g.subject,
                    requester: g.requester.clone(),
                    not_before: g.not_before,
                    expires: g.expires,
                },
            );
        }
        let backed = match &g.basis {
            GrantBasis::PatientApproval { request } => {
                self.check_approval(index, g, request, &mut problems);
                &mut self.audit.backed_by_approval
            }
            GrantBasis::StandingRule { rule } => {
                self.check_rule(g, rule, time_ms, &mut problems);
                &mut self.audit.backed_by_rule
            }
            GrantBasis::Emergency { reason } => {
                // Parsing already enforces both; checked again so the audit does not
                // depend on how the entries were built.
                if g.purpose != PurposeOfUse::EmergencyTreatment {
                    problems.push(format!(
                        "emergency grant with purpose {}, not ETREAT",
                        g.purpose.code()
                    ));
                }
                if reason.trim().is_empty() {
                    problems.push("emergency grant without a stated reason".into());
                }
                if problems.is_empty() {
                    self.audit
                        .emergency_grants
                        .push((index, g.grant, reason.clone()));
                }
                self.find_grant(index, g.grant, problems);
                return;
            }
        };
        if problems.is_empty() {
            *backed += 1;
            self.desk_enrolled(index, g);
        } else {
            self.find_grant(index, g.grant, problems);
        }
    }

    /// Flags a backed grant whose approval or rule was signed on a device
    /// enrolled with a code from the grant's own requester.
    fn desk_enrolled(&mut self, index: u64, g: &GrantIssued) {
        let device = match &g.basis {
            GrantBasis::PatientApproval { request } => self
                .latest_decision
                .get(request)
                .and_then(|at| self.decisions.get(*at))
                .map(|d| *d.value.device()),
            GrantBasis::StandingRule { rule } => rule
                .parse::<RuleId>()
                .ok()
                .and_then(|id| self.rules.get(&id))
                .map(|r| r.value.device),
            GrantBasis::Emergency { .. } => None,
        };
        let Some(device) = device else { return };
        if let Some((issuer, enrolled_at)) = self.enrolled_by.get(&(g.subject, device)) {
            if *issuer == g.requester {
                self.audit.desk_enrolled.push(DeskEnrolled {
                    index,
                    grant: g.grant,
                    hospital: issuer.clone(),
                    device,
                    enrolled_at: *enrolled_at,
                });
            }
        }
    }

    /// A discovery or a release happened under a grant issued earlier in the log,
    /// to this requester, for this patient, inside its validity, not yet revoked.
    fn access(
        &mut self,
        index: u64,
        time_ms: i64,
        kind: &str,
        grant: GrantId,
        subject: PatientKey,
        requester: &MemberId,
    ) {
        self.audit.accesses_checked += 1;
        let Some(terms) = self.access_terms.get(&grant) else {
            self.find(
                index,
                Some(grant),
                format!("{kind} under a grant never issued before it"),
            );
            return;
        };
        let mut problems = Vec::new();
        if terms.requester != *requester {
            problems.push(format!(
                "the grant is {}'s, not {requester}'s",
                terms.requester
            ));
        }
        if terms.subject != subject {
            problems.push("the grant is for another patient".to_owned());
        }
        let seconds = time_ms.div_euclid(1000);
        if seconds < terms.not_before - MAX_CLOCK_SKEW_SECS {
            problems.push("before the grant's validity began".to_owned());
        }
        if seconds >= terms.expires {
            problems.push("after the grant expired".to_owned());
        }
        if let Some(leaf) = self.revoked.get(&grant) {
            problems.push(format!("after the grant was revoked at leaf {leaf}"));
        }
        if !problems.is_empty() {
            self.find(
                index,
                Some(grant),
                format!("{kind}: {}", problems.join("; ")),
            );
        }
    }

    fn find_grant(&mut self, index: u64, grant: GrantId, problems: Vec<String>) {
        if !problems.is_empty() {
            self.find(index, Some(grant), problems.join("; "));
        }
    }

    /// The request was made by the grant's requester for its patient, and the
    /// patient's latest decision on it is an approval, validly signed, not already
    /// used, that covers the grant.
    fn check_approval(
        &mut self,
        index: u64,
        g: &GrantIssued,
        request: &RequestId,
        problems: &mut Vec<String>,
    ) {
        match self.requests.get(request) {
            None => problems.push(format!("no earlier access.requested for request {request}")),
            Some((leaf, terms)) => {
                if terms.requester != g.requester {
                    problems.push(format!(
                        "request {request} (leaf {leaf}) was made by {}, not {}",
                        terms.requester, g.requester
                    ));
                }
                if terms.subject != g.subject {
                    problems.push(format!(
                        "request {request} (leaf {leaf}) is about another patient"
                    ));
                }
            }
        }
        let Some(&at) = self.latest_decision.get(request) else {
            problems.push(format!("no earlier access.decided for request {request}"));
            return;
        };
        let Some(decided) = self.decisions.get_mut(at) else {
            return;
        };
        decided.cited = true;
        let leaf = decided.index;
        if let Some(problem) = &decided.problem {
            problems.push(format!(
                "approval of request {request} (leaf {leaf}): {problem}"
            ));
        }
        let approval = match &decided.value {
            Decision::Approve(a) => a,
            Decision::Refuse(_) => {
                problems.push(format!(
                    "the patient refused request {request} (leaf {leaf})"
                ));
                return;
            }
        };
        if let Some((used_at, other)) = self.approvals_used.get(request) {
            problems.push(format!(
                "the approval of request {request} already backs grant {other} (leaf {used_at})"
            ));
        } else {
            self.approvals_used.insert(*request, (index, g.grant));
        }
        let what = format!("the approval (leaf {leaf})");
        if approval.subject != g.subject {
            problems.push(format!("{what} is another patient's"));
        }
        if approval.requester != g.requester {
            problems.push(format!(
                "{what} names requester {}, not {}",
                approval.requester, g.requester
            ));
        }
        if approval.purpose != g.purpose {
            problems.push(format!(
                "{what} is for purpose {}, not {}",
                approval.purpose.code(),
                g.purpose.code()
            ));
        }
        if let Some(scope) = g.scope.first_outside(&approval.scope) {
            problems.push(format!("scope {scope} is wider than {what} allows"));
        }
        if let Some(problem) = period_outside(
            g.data_period.as_ref(),
            approval.data_period.as_ref(),
            "approved",
        ) {
            problems.push(problem);
        }
        let lasts = g.expires.saturating_sub(g.not_before);
        if lasts > approval.duration_secs {
            problems.push(format!(
                "the grant lasts {lasts} s, longer than the approved {} s",
                approval.duration_secs
            ));
        }
    }

    /// The rule was created earlier with a valid device signature, is not revoked,
    /// and the grant is within it.
    fn check_rule(
        &mut self,
        g: &GrantIssued,
        rule: &str,
        time_ms: i64,
        problems: &mut Vec<String>,
    ) {
        let Ok(id) = rule.parse::<RuleId>() else {
            problems.push("the rule basis does not name a rule id".into());
            return;
        };
        let revoked = self.rules_revoked.get(&id).copied();
        let requester = self.directory.active(&g.requester).map(|m| m.role);
        let Some(signed) = self.rules.get_mut(&id) else {
            problems.push(format!("no earlier rule.created for rule {id}"));
            return;
        };
        signed.cited = true;
        let (leaf, r) = (signed.index, &signed.value);
        if let Some(problem) = &signed.problem {
            problems.push(format!("rule {id} (leaf {leaf}): {problem}"));
        }
        if let Some(at) = revoked {
            problems.push(format!("rule {id} was revoked at leaf {at}"));
        }
        let what = format!("rule {id} (leaf {leaf})");
        if r.subject != g.subject {
            problems.push(format!("{what} is another patient's"));
        }
        match &r.who {
            RuleAudience::Member(m) if *m != g.requester => {
                problems.push(format!("{what} allows only {m}, not {}", g.requester));
            }
            RuleAudience::AnyHospital if requester != Some(MemberRole::Hospital) => {
                problems.push(format!(
                    "{what} allows hospitals only, and {} is not an active hospital",
                    g.requester
                ));
            }
            RuleAudience::Member(_) | RuleAudience::AnyHospital => {}
        }
        if !r.purposes.contains(&g.purpose) {
            problems.push(format!(
                "{what} does not allow purpose {}",
                g.purpose.code()
            ));
        }
        if let Some(scope) = g.scope.first_outside(&r.scope) {
            problems.push(format!("scope {scope} is wider than {what} allows"));
        }
        let lasts = g.expires.saturating_sub(g.not_before);
        if lasts > r.grant_duration_secs {
            problems.push(format!(
                "the grant lasts {lasts} s, longer than the {} s {what} allows",
                r.grant_duration_secs
            ));
        }
        if let Some(days) = r.data_window_days {
            // The service cuts the window on the day it issues; that day is the one of
            // `not_before` or of the entry, and a day of slack covers a grant issued
            // across midnight.
            let day = utc_date(g.not_before.max(time_ms.div_euclid(1000)));
            let window = DataPeriod::last_days(&day, days.saturating_add(1));
            match window {
                Ok(window) => {
                    let allowed =
                        format!("{what} allows (its last {days} days, and a day's slack)");
                    if let Some(problem) =
                        period_outside(g.data_period.as_ref(), Some(&window), &allowed)
                    {
                        problems.push(problem);
                    }
                }
                Err(e) => problems.push(format!("cannot compute {what}'s data window: {e}")),
            }
        }
    }

    fn finish(mut self) -> GrantAudit {
        // Bad device signatures no grant relied on are still the consent service
        // logging something the patient did not sign.
        let orphans: Vec<Finding> = self
            .decisions
            .iter()
            .filter(|d| !d.cited)
            .filter_map(|d| {
                let problem = d.problem.as_ref()?;
                Some(Finding {
                    index: d.index,
                    grant: None,
                    problem: format!(
                        "access.decided for request {}: {problem}",
                        d.value.request()
                    ),
                })
            })
            .chain(self.rules.values().filter(|r| !r.cited).filter_map(|r| {
                let problem = r.problem.as_ref()?;
                Some(Finding {
                    index: r.index,
                    grant: None,
                    problem: format!("rule.created for rule {}: {problem}", r.value.rule),
                })
            }))
            .collect();
        self.audit.findings.extend(orphans);
        self.audit.findings.sort_by_key(|f| f.index);
        self.audit
    }
}

/// Why the grant's data period `inner` is not inside `outer` (`None` is any date
/// for both), ending with `whose` ("approved", "rule ... allows").
fn period_outside(
    inner: Option<&DataPeriod>,
    outer: Option<&DataPeriod>,
    whose: &str,
) -> Option<String> {
    match (inner, outer) {
        (_, None) => None,
        (None, Some(o)) => Some(format!(
            "the grant has no data period, wider than the {}..{} {whose}",
            o.start, o.end
        )),
        (Some(i), Some(o)) if !i.is_within(o) => Some(format!(
            "data period {}..{} is wider than the {}..{} {whose}",
            i.start, i.end, o.start, o.end
        )),
        (Some(_), Some(_)) => None,
    }
}

fn status_word(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Active => "active",
        MemberStatus::Suspended => "suspended",
        MemberStatus::Withdrawn => "withdrawn",
    }
}

/// The UTC date (`YYYY-MM-DD`) of Unix seconds `secs` (H. Hinnant's
/// `civil_from_days`; protocol keeps its copy private).
fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    use super::*;

    #[test]
    fn utc_dates() {
        for (secs, date) in [
            (0, "1970-01-01"),
            (86_399, "1970-01-01"),
            (86_400, "1970-01-02"),
            (951_782_400, "2000-02-29"),
            (1_718_000_000, "2024-06-10"),
            (4_107_542_399, "2100-02-28"),
            (4_107_542_400, "2100-03-01"),
        ] {
            assert_eq!(utc_date(secs), date, "{secs}");
        }
    }

    #[test]
    fn periods() {
        let p = |s: &str, e: &str| DataPeriod::new(s, e).unwrap();
        let year = p("2024-01-01", "2024-12-31");
        let outside = |i: Option<&DataPeriod>, o: Option<&DataPeriod>| period_outside(i, o, "x");
        assert_eq!(outside(None, None), None);
        assert_eq!(outside(Some(&year), None), None);
        assert_eq!(
            outside(Some(&p("2024-02-01", "2024-03-01")), Some(&year)),
            None
        );
        assert!(outside(None, Some(&year)).is_some());
        assert_eq!(
            outside(Some(&p("2023-12-31", "2024-03-01")), Some(&year)).unwrap(),
            "data period 2023-12-31..2024-03-01 is wider than the 2024-01-01..2024-12-31 x"
        );
    }
}

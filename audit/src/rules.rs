//! The grant and access rules: from the ledger alone, that every grant has a valid
//! patient signature, a rule the patient signed, or an emergency flag, and that
//! every discovery and release happened under a grant valid at that moment.
//!
//! It works on parsed entries in log order ([`crate::replay::parse_entries`]) and
//! trusts nothing but the pinned authority key: the directory, the patients' device
//! keys and every signature are rebuilt and checked from the entries themselves, each
//! as of its own place in the log ([`crate::replay`]).
//!
//! Each problem is reported once, where it matters: a grant whose backing fails gets
//! one finding naming every reason; a bad device signature that backs no grant is
//! reported at its own entry; an entry that fails its submitter, signature or role
//! check is reported and otherwise ignored (as the sequencer would have refused it).

use std::collections::HashMap;

use chrono::DateTime;
use locus_protocol::consent::RequestTerms;
use locus_protocol::consent::{Decision, RuleAudience, StandingRule};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::directory::MemberRole;
use locus_protocol::entry::{
    Event, EventKind, GrantIssued, GrantRevoked, IndexQueried, RecordRetrieved, RuleRevoked,
    SignedEntry,
};
use locus_protocol::grant::{
    DataPeriod, GrantBasis, GrantError, PurposeOfUse, MAX_CLOCK_SKEW_SECS,
};
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId, RuleId};
use locus_protocol::scope::ScopeSet;
use locus_protocol::signing::VerifyingKey;
use serde::Serialize;

use crate::replay::Replay;

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
    replay: Replay<'a>,
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
            replay: Replay::new(authority),
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
        if let Err(problem) = self.replay.admit(signed) {
            self.find(index, event.grant().copied(), problem);
            return;
        }
        match event {
            Event::MemberUpdated(_) => self.replay.member_updated(entry),
            Event::DeviceEnrolled(e) => self.replay.device_enrolled(index, e),
            Event::DeviceRemoved(e) => self.replay.device_removed(e),
            Event::AccessRequested(e) => {
                self.requests
                    .entry(e.terms.request)
                    .or_insert_with(|| (index, e.terms.clone()));
            }
            Event::AccessDecided(e) => {
                let problem = self.replay.device_problem(event).err();
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
                let problem = self.replay.device_problem(event).err();
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
            Event::IndexQueried(IndexQueried {
                grant,
                subject,
                requester,
                ..
            })
            | Event::RecordRetrieved(RecordRetrieved {
                grant,
                subject,
                requester,
                ..
            }) => {
                let kind = event.event_kind();
                self.access(index, entry.time_ms, kind, *grant, *subject, requester);
            }
            Event::PointersPublished(_) | Event::AccessRefused(_) => {}
        }
    }

    fn rule_revoked(&mut self, index: u64, event: &Event, e: &RuleRevoked) {
        // Counts even if unsigned: the consent service itself declared the rule
        // dead, so any later grant under it is wrong either way.
        self.rules_revoked.entry(e.rule).or_insert(index);
        let mut problems = Vec::new();
        if let Err(p) = self.replay.device_problem(event) {
            problems.push(p);
        }
        if let Some(rule) = self.rules.get(&e.rule) {
            if rule.value.subject != e.subject {
                problems.push(format!("rule {} is another patient's", e.rule));
            }
        }
        if !problems.is_empty() {
            let problem = format!(
                "{} for rule {}: {}",
                EventKind::RuleRevoked,
                e.rule,
                problems.join("; ")
            );
            self.find(index, None, problem);
        }
    }

    fn grant_revoked(&mut self, index: u64, event: &Event, e: &GrantRevoked) {
        self.revoked.entry(e.grant).or_insert(index);
        if e.by_device.is_none() {
            return;
        }
        let mut problems = Vec::new();
        if let Err(p) = self.replay.device_problem(event) {
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
        if let Some((issuer, enrolled_at)) = self.replay.enrolled_by(g.subject, device) {
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
        kind: EventKind,
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
            None => problems.push(format!(
                "no earlier {} for request {request}",
                EventKind::AccessRequested
            )),
            Some((leaf, terms)) => {
                let what = format!("request {request} (leaf {leaf})");
                if terms.requester != g.requester {
                    problems.push(format!(
                        "{what} was made by {}, not {}",
                        terms.requester, g.requester
                    ));
                }
                if terms.subject != g.subject {
                    problems.push(format!("{what} is about another patient"));
                }
            }
        }
        let Some(&at) = self.latest_decision.get(request) else {
            problems.push(format!(
                "no earlier {} for request {request}",
                EventKind::AccessDecided
            ));
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
        problems.extend(wider_scope(g, &approval.scope, &what));
        if let Some(problem) = period_outside(
            g.data_period.as_ref(),
            approval.data_period.as_ref(),
            "approved",
        ) {
            problems.push(problem);
        }
        if let Some(lasts) = longer_than(g, approval.duration_secs) {
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
        let requester = self.replay.directory().active(&g.requester).map(|m| m.role);
        let Some(signed) = self.rules.get_mut(&id) else {
            problems.push(format!(
                "no earlier {} for rule {id}",
                EventKind::RuleCreated
            ));
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
        problems.extend(wider_scope(g, &r.scope, &what));
        if let Some(lasts) = longer_than(g, r.grant_duration_secs) {
            problems.push(format!(
                "the grant lasts {lasts} s, longer than the {} s {what} allows",
                r.grant_duration_secs
            ));
        }
        if let Some(days) = r.data_window_days {
            // The service cuts the window on the day it issues; that day is the one of
            // `not_before` or of the entry, and a day of slack covers a grant issued
            // across midnight.
            let window = utc_date(g.not_before.max(time_ms.div_euclid(1000)))
                .ok_or(GrantError::InvalidDate)
                .and_then(|day| DataPeriod::last_days(&day, days.saturating_add(1)));
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
                        "{} for request {}: {problem}",
                        EventKind::AccessDecided,
                        d.value.request()
                    ),
                })
            })
            .chain(self.rules.values().filter(|r| !r.cited).filter_map(|r| {
                let problem = r.problem.as_ref()?;
                Some(Finding {
                    index: r.index,
                    grant: None,
                    problem: format!(
                        "{} for rule {}: {problem}",
                        EventKind::RuleCreated,
                        r.value.rule
                    ),
                })
            }))
            .collect();
        self.audit.findings.extend(orphans);
        self.audit.findings.sort_by_key(|f| f.index);
        self.audit
    }
}

/// Why the grant's scope is wider than the `allowed` one of `what` backs it.
fn wider_scope(g: &GrantIssued, allowed: &ScopeSet, what: &str) -> Option<String> {
    g.scope
        .first_outside(allowed)
        .map(|scope| format!("scope {scope} is wider than {what} allows"))
}

/// How long the grant lasts, in seconds, if that is longer than `max_secs`.
fn longer_than(g: &GrantIssued, max_secs: i64) -> Option<i64> {
    let lasts = g.expires.saturating_sub(g.not_before);
    (lasts > max_secs).then_some(lasts)
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

/// The UTC date (`YYYY-MM-DD`) of Unix seconds `secs`, if chrono can date them.
fn utc_date(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y-%m-%d").to_string())
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
            assert_eq!(utc_date(secs).as_deref(), Some(date), "{secs}");
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

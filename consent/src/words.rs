//! Requests and grants in plain words, for the patient's phone.

use locus_protocol::consent::{Decision, RequestTerms, RuleAudience, StandingRule};
use locus_protocol::entry::Event;
use locus_protocol::grant::{DataPeriod, GrantBasis, GrantClaims, PurposeOfUse};
use locus_protocol::ids::MemberId;
use locus_protocol::scope::{ResourceType, Scope, ScopeFilter, ScopeSet};

use locus_ledger::directory::LedgerDirectory;

fn who(directory: &LedgerDirectory, member: &MemberId) -> String {
    directory
        .read()
        .get(member)
        .map_or_else(|| member.to_string(), |m| m.display_name.clone())
}

fn purpose(p: PurposeOfUse) -> &'static str {
    match p {
        PurposeOfUse::Treatment => "to treat you",
        PurposeOfUse::EmergencyTreatment => "to treat you in an emergency",
        PurposeOfUse::CareManagement => "to coordinate your care",
        PurposeOfUse::PatientRequested => "because you asked for the transfer",
    }
}

fn one_scope(scope: &Scope) -> String {
    let kind = match scope.resource {
        ResourceType::Observation => "test results and measurements",
        ResourceType::DiagnosticReport => "reports",
    };
    match &scope.filter {
        None => format!("all your {kind}"),
        Some(ScopeFilter::Category(token)) => match token.code() {
            "laboratory" | "LAB" => format!("your laboratory {kind}"),
            "vital-signs" => "your vital signs (blood pressure, pulse, weight...)".to_owned(),
            other => format!("your {kind} of the kind \"{other}\""),
        },
        Some(ScopeFilter::Code(coding)) => format!("your {kind} with code {}", coding.code()),
    }
}

fn scopes(set: &ScopeSet) -> String {
    set.scopes()
        .iter()
        .map(one_scope)
        .collect::<Vec<_>>()
        .join(", ")
}

fn period(p: Option<&DataPeriod>) -> String {
    p.map_or_else(
        || "from any date".to_owned(),
        |p| format!("from {} to {}", p.start, p.end),
    )
}

/// What a request or grant covers: its scopes, dates and purpose.
fn what(scope: &ScopeSet, period_of_data: Option<&DataPeriod>, why: PurposeOfUse) -> String {
    format!(
        "{}, {}, {}",
        scopes(scope),
        period(period_of_data),
        purpose(why)
    )
}

fn duration(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s => format!("{} minute(s)", s.max(60) / 60),
    }
}

pub fn describe_request(directory: &LedgerDirectory, terms: &RequestTerms) -> String {
    format!(
        "{} asks to see {}, for {}.",
        who(directory, &terms.requester),
        what(&terms.scope, terms.data_period.as_ref(), terms.purpose),
        duration(terms.duration_secs)
    )
}

pub fn describe_grant(directory: &LedgerDirectory, claims: &GrantClaims) -> String {
    let basis = match &claims.basis {
        GrantBasis::PatientApproval { .. } => "You approved this.".to_owned(),
        GrantBasis::StandingRule { .. } => "One of your standing rules allowed this.".to_owned(),
        GrantBasis::Emergency { reason } => {
            format!("EMERGENCY ACCESS, without your approval. Reason given: {reason}")
        }
    };
    format!(
        "{} may see {}, until {}. {basis}",
        who(directory, &claims.aud),
        what(&claims.scope, claims.data_period.as_ref(), claims.purpose),
        chrono::DateTime::from_timestamp(claims.exp, 0)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
    )
}

pub fn describe_rule(directory: &LedgerDirectory, rule: &StandingRule) -> String {
    let audience = match &rule.who {
        RuleAudience::Member(m) => who(directory, m),
        RuleAudience::AnyHospital => "Any hospital".to_owned(),
    };
    let window = rule.data_window_days.map_or_else(
        || "from any date".to_owned(),
        |days| format!("of the last {days} day(s)"),
    );
    let purposes = rule
        .purposes
        .iter()
        .map(|p| purpose(*p))
        .collect::<Vec<_>>()
        .join(" or ");
    format!(
        "{audience} may see {}, {window}, {purposes}, for up to {} each time.",
        scopes(&rule.scope),
        duration(rule.grant_duration_secs)
    )
}

/// One ledger event about the patient, as the patient would say it.
pub fn describe_event(directory: &LedgerDirectory, event: &Event) -> String {
    match event {
        Event::DeviceEnrolled(e) => format!(
            "A device was enrolled for you with a code from {}. If it was not you, remove it.",
            who(directory, &e.code_issuer)
        ),
        Event::DeviceRemoved(_) => "You removed a device.".into(),
        Event::AccessRequested(e) => describe_request(directory, &e.terms),
        Event::AccessDecided(e) => match &e.decision {
            Decision::Approve(a) => {
                format!("You approved access for {}.", who(directory, &a.requester))
            }
            Decision::Refuse(_) => "You refused a request.".into(),
        },
        Event::GrantIssued(g) => match &g.basis {
            GrantBasis::Emergency { reason } => format!(
                "EMERGENCY ACCESS was given to {} without your approval. Reason given: {reason}",
                who(directory, &g.requester)
            ),
            GrantBasis::StandingRule { .. } => format!(
                "{} was given access under one of your rules.",
                who(directory, &g.requester)
            ),
            GrantBasis::PatientApproval { .. } => format!(
                "{} was given the access you approved.",
                who(directory, &g.requester)
            ),
        },
        Event::GrantRevoked(_) => "Access was revoked.".into(),
        Event::RuleCreated(_) => "You made a standing rule.".into(),
        Event::RuleRevoked(_) => "You withdrew a standing rule.".into(),
        Event::IndexQueried(q) => format!(
            "{} looked for your records ({} found).",
            who(directory, &q.requester),
            q.results
        ),
        Event::RecordRetrieved(r) => format!(
            "{} received one of your records from {}.",
            who(directory, &r.requester),
            who(directory, r.custodian.as_member())
        ),
        Event::AccessRefused(r) => match &r.custodian {
            Some(custodian) => format!(
                "{} refused to give {} one of your records.",
                who(directory, custodian.as_member()),
                who(directory, &r.requester)
            ),
            None => format!(
                "A search for your records by {} was refused.",
                who(directory, &r.requester)
            ),
        },
        Event::PointersPublished(_) | Event::MemberUpdated(_) => "A network event.".into(),
    }
}

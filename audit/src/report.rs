//! What an audit established and what it found wrong, and the exit codes that
//! say so: 0 it holds, [`EXIT_PROBLEMS`] it found problems (a command that could
//! not run at all exits 1).

use std::process::ExitCode;

use crate::rules::GrantAudit;

/// The exit code of an audit, or a witness, that found something wrong.
pub const EXIT_PROBLEMS: u8 = 2;

/// What [`crate::verify`] established and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// What holds, in words.
    pub facts: Vec<String>,
    /// What a regulator should look at (not failures): break-glass accesses,
    /// and grants backed on a device their own requester's desk enrolled.
    pub for_review: Vec<String>,
    /// What does not hold, each naming the checkpoint or entry.
    pub problems: Vec<String>,
}

impl Report {
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }

    /// 0 if the audit holds, [`EXIT_PROBLEMS`] if not.
    pub fn exit_code(&self) -> ExitCode {
        if self.holds() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_PROBLEMS)
        }
    }

    /// The grant audit of a log of `entries` entries, in words.
    pub(crate) fn grant_audit(&mut self, audit: &GrantAudit, entries: usize) {
        for finding in &audit.findings {
            let grant = finding
                .grant
                .map(|g| format!(" (grant {g})"))
                .unwrap_or_default();
            self.problems.push(format!(
                "entry {}{grant}: {}",
                finding.index, finding.problem
            ));
        }
        if audit.is_clean() {
            self.facts.push(format!(
                "every entry is signed by its submitter, active at that point of the log, in a role that may log it by the sequencer's own table ({entries} entries)"
            ));
            self.facts.push(format!(
                "all {} grants are backed: {} by the patient's signed approval, {} by a signed standing rule, {} emergency",
                audit.grants_checked,
                audit.backed_by_approval,
                audit.backed_by_rule,
                audit.emergency_grants.len()
            ));
            self.facts.push(format!(
                "all {} discoveries and retrievals happened under a grant valid at that moment and not revoked",
                audit.accesses_checked
            ));
        }
        for (index, grant, reason) in &audit.emergency_grants {
            self.for_review.push(format!(
                "entry {index}: emergency grant {grant}, reason given: {reason:?}"
            ));
        }
        for flag in &audit.desk_enrolled {
            self.for_review.push(format!(
                "entry {}: grant {} to {} is backed by a signature of device {}, which {} itself enrolled (entry {})",
                flag.index, flag.grant, flag.hospital, flag.device, flag.hospital, flag.enrolled_at
            ));
        }
    }
}

//! Authorization: authenticated parties reaching past what is theirs. Hospitals
//! collecting others' requests and grants, using grants for other patients,
//! other records or after revocation; patients acting on others' requests,
//! grants and devices; members logging entries that are not their role's or
//! not their own acts.

use locus_index_service::api::DiscoveredPointer;
use locus_protocol::consent::{Decision, Revocation};
use locus_protocol::ids::{GrantId, PointerId};
use locus_tests::hostile::{Expect, Suite};
use serde_json::{json, Value};

use crate::{logged_event_by, now_ms, Fixture, Identity};

group!("authorization": members, patients, roles);

fn retrieval(token: &str, pointer: &DiscoveredPointer) -> Value {
    json!({ "grant": token, "pointer_id": pointer.pointer_id, "sealed": pointer.sealed })
}

async fn members(f: &Fixture, s: &mut Suite) {
    let m = &f.members;
    // Another member's consent records are as good as absent.
    for (case, who, path) in [
        (
            "hospital-b collects hospital-a's request",
            &f.b,
            format!("requests/{}", f.a_request),
        ),
        (
            "hospital-a collects hospital-b's grant",
            &f.a,
            format!("requests/{}", f.live.request),
        ),
        (
            "hospital-a reads hospital-b's grant as FHIR",
            &f.a,
            format!("grants/{}/fhir", f.live.grant),
        ),
        (
            "hospital-b reads a grant that does not exist",
            &f.b,
            format!("grants/{}/fhir", GrantId::new_random()),
        ),
    ] {
        s.probe(
            case,
            who.client.get(format!("{m}/consent/{path}")),
            Expect::refused(404, "not_found"),
        )
        .await;
    }

    // The index: a hospital acts on its own pointers only.
    let i = &f.index;
    let a_pointer = &f.live.pointers[0];
    s.probe(
        "hospital-b withdraws hospital-a's pointer",
        f.b.client
            .post(format!("{i}/index/pointers/withdraw"))
            .json(&json!({ "pointer_ids": [a_pointer.pointer_id] })),
        Expect::status(404),
    )
    .await;
    let pointer = |id: PointerId, supersedes: Option<PointerId>| {
        json!({ "pointers": [{
            "pointer_id": id, "patient_key": f.p1, "scope_tags": ["07".repeat(32)], "sealed": "AAAA",
            "supersedes": supersedes,
        }] })
    };
    s.probe(
        "hospital-b publishes under hospital-a's pointer id",
        f.b.client
            .post(format!("{i}/index/pointers"))
            .json(&pointer(a_pointer.pointer_id, None)),
        Expect::refused(409, "conflict"),
    )
    .await;
    s.probe(
        "hospital-b supersedes hospital-a's pointer",
        f.b.client
            .post(format!("{i}/index/pointers"))
            .json(&pointer(
                PointerId::new_random(),
                Some(a_pointer.pointer_id),
            )),
        Expect::one_of(&[400, 403, 404, 409]),
    )
    .await;

    // Grants at the index and at the custodian.
    let a_url = format!("{}/connector/retrieve", f.connector_a);
    let retrieve = |who: &Identity, body: Value| who.client.post(&a_url).json(&body);
    let discover_url = format!("{i}/index/discover");
    let discover = |who: &Identity, discovery: &str| {
        who.client
            .post(&discover_url)
            .json(&json!({ "discovery": discovery }))
    };
    let (scoped, _) = f
        .network
        .grant(f.hospital_b(), &f.p1, "patient/DiagnosticReport.rs", None);
    let (dated, _) = f.network.grant(
        f.hospital_b(),
        &f.p1,
        crate::LABS,
        Some(("2020-01-01", "2020-12-31")),
    );
    let (live, p2_live, revoked) = (&f.live, &f.p2_live, &f.revoked);
    let cases = [
        (
            "hospital-a discovers with hospital-b's grant",
            discover(&f.a, &live.discovery),
            "invalid_grant",
        ),
        (
            "hospital-a retrieves with hospital-b's grant",
            retrieve(&f.a, live.retrieval()),
            "invalid_grant",
        ),
        (
            "P2's record under a grant for P1",
            retrieve(&f.b, retrieval(&live.token, &p2_live.pointers[0])),
            "wrong_patient",
        ),
        (
            "P1's record under a grant for P2",
            retrieve(&f.b, retrieval(&p2_live.token, &live.pointers[0])),
            "wrong_patient",
        ),
        (
            "a discovery under a revoked grant",
            discover(&f.b, &revoked.discovery),
            "revoked",
        ),
        (
            "a retrieval under a revoked grant",
            retrieve(&f.b, retrieval(&revoked.token, &revoked.pointers[0])),
            "revoked",
        ),
        (
            "a record outside the grant's scope",
            retrieve(&f.b, retrieval(&scoped, &live.pointers[0])),
            "out_of_scope",
        ),
        (
            "a record outside the grant's dates",
            retrieve(&f.b, retrieval(&dated, &live.pointers[0])),
            "out_of_date_range",
        ),
    ];
    for (what, request, code) in cases {
        let refused = Expect::refused(403, code).logs(&["access.refused"]);
        s.probe(what, request, refused).await;
    }
}

async fn patients(f: &Fixture, s: &mut Suite) {
    let (phone1, phone2) = (&f.phone1, &f.phone2);
    let terms = phone1.terms(f.pending[6]).await;
    let approval = |device: &crate::Phone, subject| {
        let mut decision = device.approval(&terms);
        if let Decision::Approve(a) = &mut decision {
            a.subject = subject;
        }
        device.decision(&decision)
    };
    let revocation = |subject| {
        let r = Revocation {
            grant: f.target,
            subject,
            device: phone2.device(),
            signed_at_ms: now_ms(),
        };
        json!({ "revocation": r, "signature": phone2.sign(&r.signing_bytes().unwrap()) })
    };
    let mut rule = phone2.rule();
    rule.subject = f.p1;
    let mut rule_revocation_in_their_name = phone2.rule_revocation(f.rule.rule);
    rule_revocation_in_their_name["revocation"]["subject"] = json!(f.p1);
    let (decisions, revocations) = ("/patient/decisions", "/patient/revocations");
    let rule_revocations = "/patient/rule-revocations";
    let forbidden = || Expect::refused(403, "forbidden");
    let not_found = || Expect::refused(404, "not_found");
    let cases = [
        (
            "a patient approves another patient's request",
            phone2.request(decisions, &approval(phone2, f.p1)),
            forbidden(),
        ),
        (
            "a patient approves another patient's request as their own",
            phone2.request(decisions, &approval(phone2, f.p2)),
            forbidden().or(not_found()),
        ),
        (
            "a decision signed by another of the patient's devices than the signed-in one",
            phone1.request(decisions, &approval(&f.spare, f.p1)),
            forbidden(),
        ),
        (
            "a patient revokes another patient's grant as their own",
            phone2.request(revocations, &revocation(f.p2)),
            not_found(),
        ),
        (
            "a patient revokes another patient's grant in their name",
            phone2.request(revocations, &revocation(f.p1)),
            forbidden(),
        ),
        (
            "a patient removes another patient's device",
            phone2
                .client
                .delete(phone2.url(&format!("/patient/devices/{}", phone1.device())))
                .bearer_auth(&phone2.session),
            not_found(),
        ),
        (
            "a patient makes a standing rule for another patient",
            phone2.request("/patient/rules", &phone2.rule_body(&rule)),
            forbidden(),
        ),
        (
            "a patient revokes another patient's rule as their own",
            phone2.request(rule_revocations, &phone2.rule_revocation(f.rule.rule)),
            not_found(),
        ),
        (
            "a patient revokes another patient's rule in their name",
            phone2.request(rule_revocations, &rule_revocation_in_their_name),
            forbidden(),
        ),
        (
            "a patient reads another patient's grant as FHIR",
            phone2
                .client
                .get(phone2.url(&format!("/patient/grants/{}/fhir", f.live.grant)))
                .bearer_auth(&phone2.session),
            not_found(),
        ),
    ];
    for (what, request, expect) in cases {
        s.probe(what, request, expect).await;
    }
    let before = s.before();
    let listed = phone2.get("/patient/rules").await;
    let shown = listed.to_string().contains(&f.rule.rule.to_string());
    let after = s.stores.snapshot();
    s.check(
        "a patient's rule list shows no other patient's rule",
        !shown && after == before,
        || format!("{listed}"),
    );
}

/// Each kind of entry is the act of one role, and about the submitter's own
/// acts: every other submitter is refused.
async fn roles(f: &Fixture, s: &mut Suite) {
    let url = format!("{}/ledger/entries", f.index);
    let kinds = [
        "member.updated",
        "pointers.published",
        "index.queried",
        "record.retrieved",
        "access.refused",
        "access.requested",
        "access.decided",
        "grant.issued",
        "grant.revoked",
        "device.enrolled",
        "device.removed",
        "rule.created",
        "rule.revoked",
    ];
    // Who logged each kind (and the refusals of each refuser).
    let logged = |kind: &str, by: &str| logged_event_by(s, kind, by);
    let mut events = Vec::new();
    for kind in kinds {
        let by = match kind {
            "member.updated" => "consortium",
            "pointers.published" | "record.retrieved" => "hospital-a",
            "index.queried" => "index",
            _ => "consent",
        };
        if kind == "access.refused" {
            continue;
        }
        if let Some(event) = logged(kind, by) {
            events.push((kind.to_owned(), event));
        }
    }
    let by_index = logged("access.refused", "index").expect("the index has logged a refusal");
    let by_a = logged("access.refused", "hospital-a").expect("hospital-a has logged a refusal");

    let submit = |who: &Identity, event: locus_protocol::entry::Event| {
        f.a.client
            .post(&url)
            .header("content-type", "application/json")
            .body(who.entry(&who.id, event))
    };
    let not_permitted = || Expect::refused(403, "not_permitted");
    let allowed = |who: &str, kind: &str| match who {
        "consortium" => kind == "member.updated",
        "index" => matches!(kind, "index.queried" | "access.refused"),
        "consent" => matches!(
            kind,
            "access.requested"
                | "access.decided"
                | "grant.issued"
                | "grant.revoked"
                | "device.enrolled"
                | "device.removed"
                | "rule.created"
                | "rule.revoked"
        ),
        // A hospital's own publications and releases (the copies here name
        // hospital-a) and refusals of requests made to it.
        "hospital-a" => matches!(kind, "pointers.published" | "record.retrieved"),
        _ => false,
    };
    for who in [
        &f.a,
        &f.b,
        &f.consent,
        &f.index_member,
        &f.regulator,
        &f.authority,
    ] {
        for (kind, event) in &events {
            if !allowed(&who.id, kind) {
                s.probe(
                    &format!("{kind} logged by {}", who.id),
                    submit(who, event.clone()),
                    not_permitted(),
                )
                .await;
            }
        }
    }
    // Refusals: only the refuser's own, of requests made to it.
    for (case, who, refusal) in [
        (
            "hospital-a logs the index's refusal as its own",
            &f.a,
            &by_index,
        ),
        ("hospital-b logs hospital-a's refusal of it", &f.b, &by_a),
        ("the consent service logs a refusal", &f.consent, &by_a),
        ("the regulator logs a refusal", &f.regulator, &by_a),
        (
            "the consortium authority logs a refusal",
            &f.authority,
            &by_index,
        ),
    ] {
        s.probe(case, submit(who, refusal.clone()), not_permitted())
            .await;
    }
}

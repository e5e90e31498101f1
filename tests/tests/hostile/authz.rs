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
    let discover = format!("{i}/index/discover");
    let refused = |code| Expect::refused(403, code).logs(&["access.refused"]);
    s.probe(
        "hospital-a discovers with hospital-b's grant",
        f.a.client
            .post(&discover)
            .json(&json!({ "discovery": f.live.discovery })),
        refused("invalid_grant"),
    )
    .await;
    s.probe(
        "hospital-a retrieves with hospital-b's grant",
        f.a.client.post(&a_url).json(&f.live.retrieval()),
        refused("invalid_grant"),
    )
    .await;
    s.probe(
        "P2's record under a grant for P1",
        f.b.client
            .post(&a_url)
            .json(&retrieval(&f.live.token, &f.p2_live.pointers[0])),
        refused("wrong_patient"),
    )
    .await;
    s.probe(
        "P1's record under a grant for P2",
        f.b.client
            .post(&a_url)
            .json(&retrieval(&f.p2_live.token, &f.live.pointers[0])),
        refused("wrong_patient"),
    )
    .await;
    s.probe(
        "a discovery under a revoked grant",
        f.b.client
            .post(&discover)
            .json(&json!({ "discovery": f.revoked.discovery })),
        refused("revoked"),
    )
    .await;
    s.probe(
        "a retrieval under a revoked grant",
        f.b.client
            .post(&a_url)
            .json(&retrieval(&f.revoked.token, &f.revoked.pointers[0])),
        refused("revoked"),
    )
    .await;
    let (scoped, _) = f
        .network
        .grant(f.hospital_b(), &f.p1, "patient/DiagnosticReport.rs", None);
    s.probe(
        "a record outside the grant's scope",
        f.b.client
            .post(&a_url)
            .json(&retrieval(&scoped, &f.live.pointers[0])),
        refused("out_of_scope"),
    )
    .await;
    let (dated, _) = f.network.grant(
        f.hospital_b(),
        &f.p1,
        crate::LABS,
        Some(("2020-01-01", "2020-12-31")),
    );
    s.probe(
        "a record outside the grant's dates",
        f.b.client
            .post(&a_url)
            .json(&retrieval(&dated, &f.live.pointers[0])),
        refused("out_of_date_range"),
    )
    .await;
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
    s.probe(
        "a patient approves another patient's request",
        phone2
            .client
            .post(phone2.url("/patient/decisions"))
            .bearer_auth(&phone2.session)
            .json(&approval(phone2, f.p1)),
        Expect::refused(403, "forbidden"),
    )
    .await;
    s.probe(
        "a patient approves another patient's request as their own",
        phone2
            .client
            .post(phone2.url("/patient/decisions"))
            .bearer_auth(&phone2.session)
            .json(&approval(phone2, f.p2)),
        Expect::refused(403, "forbidden").or(Expect::refused(404, "not_found")),
    )
    .await;
    s.probe(
        "a decision signed by another of the patient's devices than the signed-in one",
        phone1
            .client
            .post(phone1.url("/patient/decisions"))
            .bearer_auth(&phone1.session)
            .json(&approval(&f.spare, f.p1)),
        Expect::refused(403, "forbidden"),
    )
    .await;
    let revocation = |subject| {
        let r = Revocation {
            grant: f.target,
            subject,
            device: phone2.device(),
            signed_at_ms: now_ms(),
        };
        json!({ "revocation": r, "signature": phone2.sign(&r.signing_bytes().unwrap()) })
    };
    s.probe(
        "a patient revokes another patient's grant as their own",
        phone2
            .client
            .post(phone2.url("/patient/revocations"))
            .bearer_auth(&phone2.session)
            .json(&revocation(f.p2)),
        Expect::refused(404, "not_found"),
    )
    .await;
    s.probe(
        "a patient revokes another patient's grant in their name",
        phone2
            .client
            .post(phone2.url("/patient/revocations"))
            .bearer_auth(&phone2.session)
            .json(&revocation(f.p1)),
        Expect::refused(403, "forbidden"),
    )
    .await;
    s.probe(
        "a patient removes another patient's device",
        phone2
            .client
            .delete(phone2.url(&format!("/patient/devices/{}", phone1.device())))
            .bearer_auth(&phone2.session),
        Expect::refused(404, "not_found"),
    )
    .await;
    let mut rule = phone2.rule();
    rule.subject = f.p1;
    s.probe(
        "a patient makes a standing rule for another patient",
        phone2
            .client
            .post(phone2.url("/patient/rules"))
            .bearer_auth(&phone2.session)
            .json(&phone2.rule_body(&rule)),
        Expect::refused(403, "forbidden"),
    )
    .await;
    let revoke_rule = |body: Value| phone2.request("/patient/rule-revocations", &body);
    s.probe(
        "a patient revokes another patient's rule as their own",
        revoke_rule(phone2.rule_revocation(f.rule.rule)),
        Expect::refused(404, "not_found"),
    )
    .await;
    let mut in_their_name = phone2.rule_revocation(f.rule.rule);
    in_their_name["revocation"]["subject"] = json!(f.p1);
    s.probe(
        "a patient revokes another patient's rule in their name",
        revoke_rule(in_their_name),
        Expect::refused(403, "forbidden"),
    )
    .await;
    let before = s.before();
    let listed = phone2.get("/patient/rules").await;
    let shown = listed.to_string().contains(&f.rule.rule.to_string());
    let after = s.stores.snapshot();
    s.check(
        "a patient's rule list shows no other patient's rule",
        !shown && after == before,
        || format!("{listed}"),
    );
    s.probe(
        "a patient reads another patient's grant as FHIR",
        phone2
            .client
            .get(phone2.url(&format!("/patient/grants/{}/fhir", f.live.grant)))
            .bearer_auth(&phone2.session),
        Expect::refused(404, "not_found"),
    )
    .await;
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

//! Replay: each decision, revocation, rule, enrolment, sign-in, device
//! removal, ledger entry and cosignature takes effect once. The same message
//! sent six times at once yields one effect and one entry; sent again later it
//! gets the first one's result or a 409, and adds nothing.

use std::collections::BTreeMap;

use locus_protocol::consent::{Decision, DeviceChallenge, Refusal};
use locus_protocol::device::DeviceSigner;
use locus_tests::hostile::{error_shape, Expect, Response, Suite};
use serde_json::{json, Value};

use crate::{b64, challenge, enrolment_code, now_ms, Fixture, Phone};

group!("replay": decisions, revocations, rules, enrolments, sign_ins, removals, ledger);

/// A duplicate, later: the first result again, or 409; nothing logged or stored.
fn again() -> Expect {
    Expect::one_of(&[200]).or(Expect::status(409))
}

/// Sends what `make` builds `n` times at once, and checks that exactly the
/// entries `once` were appended (each once), that every answer is one of
/// `statuses` with at least one success, that the successes agree, and that
/// `rows` changed by as much as said.
async fn at_once(
    s: &mut Suite,
    case: &str,
    n: usize,
    make: impl Fn() -> reqwest::RequestBuilder,
    once: &[&str],
    statuses: &[u16],
    rows: &[(&str, i64)],
) -> Vec<Response> {
    let before = s.before();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = make();
        tasks.spawn(async move { Response::from_reqwest(request.send().await).await });
    }
    let mut responses = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        responses.push(joined.unwrap());
    }
    let after = s.stores.snapshot();
    let appended = s.stores.appended(before.ledger_size);
    let mut problems = Vec::new();
    let mut kinds: Vec<&str> = appended.iter().map(|a| a.kind.as_str()).collect();
    kinds.sort_unstable();
    let mut want = once.to_vec();
    want.sort_unstable();
    if kinds != want {
        problems.push(format!(
            "the ledger appended {kinds:?}, not {want:?} once each"
        ));
    }
    let mut seen: BTreeMap<Option<u16>, usize> = BTreeMap::new();
    let mut successes = Vec::new();
    for response in &responses {
        *seen.entry(response.status).or_default() += 1;
        match response.status {
            Some(status) if statuses.contains(&status) => {
                if status < 300 {
                    successes.push(response.json());
                } else if let Err(e) = error_shape(response) {
                    problems.push(e);
                }
            }
            _ => problems.push(format!("an answer outside {statuses:?}")),
        }
    }
    if successes.is_empty() {
        problems.push("no duplicate succeeded".into());
    }
    if successes.windows(2).any(|w| w[0] != w[1]) {
        problems.push(format!("the successes differ: {successes:?}"));
    }
    for (table, delta) in rows {
        let (b, a) = (
            before.rows.get(*table).copied().unwrap_or(0),
            after.rows.get(*table).copied().unwrap_or(0),
        );
        if a - b != *delta {
            problems.push(format!("{table} {b} -> {a}, not {delta:+}"));
        }
    }
    s.settled();
    s.check(case, problems.is_empty(), || {
        format!("{} (answers {seen:?})", problems.join("; "))
    });
    responses
}

/// A signed act (`the same signed {act}`) sent 6 times at once, applied and
/// logged once; then sent again later, answered as the first time or 409.
async fn signed_act_replayed(
    s: &mut Suite,
    act: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
    once: &[&str],
    rows: &[(&str, i64)],
) {
    let case = format!("the same signed {act} sent 6 times at once");
    at_once(s, &case, 6, &make, once, &[200, 409], rows).await;
    s.probe(&format!("the {act} again, later"), make(), again())
        .await;
}

fn decide(phone: &Phone, body: &Value) -> reqwest::RequestBuilder {
    phone.request("/patient/decisions", body)
}

async fn decisions(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone1;
    let terms = phone.terms(f.pending[0]).await;
    let signed = phone.decision(&phone.approval(&terms));
    signed_act_replayed(
        s,
        "approval",
        || decide(phone, &signed),
        &["access.decided", "grant.issued"],
        &[("consent.grants", 1)],
    )
    .await;
    s.probe(
        "the approval signed again",
        decide(phone, &phone.decision(&phone.approval(&terms))),
        again(),
    )
    .await;
    let refusal = |request| {
        phone.decision(&Decision::Refuse(Refusal {
            request,
            subject: f.p1,
            device: phone.device(),
            signed_at_ms: now_ms(),
        }))
    };
    s.probe(
        "a refusal of the approved request",
        decide(phone, &refusal(f.pending[0])),
        Expect::refused(409, "already_decided"),
    )
    .await;

    let refused = refusal(f.pending[1]);
    let refuse = || decide(phone, &refused);
    signed_act_replayed(s, "refusal", refuse, &["access.decided"], &[]).await;
    let terms = phone.terms(f.pending[2]).await;
    let mut approval = phone.approval(&terms);
    if let Decision::Approve(a) = &mut approval {
        a.request = f.pending[1];
    }
    s.probe(
        "an approval of the refused request",
        decide(phone, &phone.decision(&approval)),
        Expect::refused(409, "already_decided"),
    )
    .await;

    // Two different answers at once: one of them wins, once.
    let approve = phone.decision(&phone.approval(&terms));
    let refuse = refusal(f.pending[2]);
    let before = s.before();
    let (x, y) = tokio::join!(
        decide(phone, &approve).send(),
        decide(phone, &refuse).send()
    );
    let statuses = [
        x.map(|r| r.status().as_u16()).ok(),
        y.map(|r| r.status().as_u16()).ok(),
    ];
    let kinds: Vec<String> = s
        .stores
        .appended(before.ledger_size)
        .into_iter()
        .map(|a| a.kind)
        .collect();
    let decided = kinds.iter().filter(|k| *k == "access.decided").count();
    let one_won = decided == 1
        && statuses.iter().filter(|s| **s == Some(200)).count() == 1
        && statuses.contains(&Some(409));
    s.settled();
    s.check(
        "an approval and a refusal of one request at once",
        one_won,
        || format!("answers {statuses:?}, entries {kinds:?}"),
    );
}

async fn revocations(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone1;
    let revoke = |body: &Value| phone.request("/patient/revocations", body);
    let signed = phone.revocation(f.target);
    signed_act_replayed(s, "revocation", || revoke(&signed), &["grant.revoked"], &[]).await;
    s.probe(
        "the revocation signed again",
        revoke(&phone.revocation(f.target)),
        again(),
    )
    .await;
    s.probe(
        "a revocation of the grant revoked before",
        revoke(&phone.revocation(f.revoked.grant)),
        again(),
    )
    .await;
}

async fn rules(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone1;
    let add = |phone: &Phone, body: &Value| phone.request("/patient/rules", body);
    let rule = phone.rule();
    let signed = phone.rule_body(&rule);
    signed_act_replayed(
        s,
        "rule",
        || add(phone, &signed),
        &["rule.created"],
        &[("consent.rules", 1)],
    )
    .await;
    // Rule ids are public on the ledger: a taken one is refused, whoever
    // takes it and whatever the rule says.
    let mut taken = phone.rule();
    taken.rule = f.rule.rule;
    taken.grant_duration_secs = 600;
    s.probe(
        "another rule under a taken id",
        add(phone, &phone.rule_body(&taken)),
        Expect::refused(409, "conflict").or(Expect::status(409)),
    )
    .await;
    let mut theirs = f.phone2.rule();
    theirs.rule = f.rule.rule;
    s.probe(
        "another patient's rule under a taken id",
        add(&f.phone2, &f.phone2.rule_body(&theirs)),
        Expect::status(409),
    )
    .await;

    // Revoking a rule: once, and matching stops at once.
    let revoke = |phone: &Phone, body: &Value| phone.request("/patient/rule-revocations", body);
    let revocation = phone.rule_revocation(rule.rule);
    let send = || revoke(phone, &revocation);
    signed_act_replayed(s, "rule revocation", send, &["rule.revoked"], &[]).await;
    s.probe(
        "a revocation of a rule never made",
        revoke(
            phone,
            &phone.rule_revocation(locus_protocol::ids::RuleId::new_random()),
        ),
        Expect::refused(404, "not_found"),
    )
    .await;
    // A rule that would grant hospital-b's request, revoked before it asks.
    let phone2 = &f.phone2;
    let mut open = phone2.rule();
    open.who = locus_protocol::consent::RuleAudience::AnyHospital;
    open.purposes = vec![locus_protocol::grant::PurposeOfUse::Treatment];
    open.grant_duration_secs = 7 * 86_400;
    let (status, body) = phone2
        .post("/patient/rules", &phone2.rule_body(&open))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = phone2
        .post(
            "/patient/rule-revocations",
            &phone2.rule_revocation(open.rule),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.settled();
    let filed = s
        .probe(
            "a request a revoked rule would have granted",
            f.b.client
                .post(format!("{}/consent/requests", f.members))
                .json(&f.request_body(&f.p2)),
            Expect::one_of(&[200])
                .logs(&["access.requested"])
                .rows("consent.access_requests", 1),
        )
        .await;
    let pending = filed.json()["status"] == "pending";
    s.check("a revoked rule grants nothing", pending, || {
        format!("{}", filed.json())
    });
}

async fn enrolments(f: &Fixture, s: &mut Suite) {
    let url = format!("{}/patient/enrol", f.patients);
    let code = enrolment_code(f, &f.p1).await;
    s.settled();
    let keys: Vec<Value> = (0..6)
        .map(|_| serde_json::to_value(DeviceSigner::generate_p256().public_jwk()).unwrap())
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    at_once(
        s,
        "one enrolment code redeemed by 6 devices at once",
        6,
        || {
            let key = &keys[next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % keys.len()];
            f.anonymous
                .post(&url)
                .json(&json!({ "code": code, "device_key": key }))
        },
        &["device.enrolled"],
        &[200, 401],
        &[("consent.devices", 1)],
    )
    .await;
    let key = serde_json::to_value(DeviceSigner::generate_p256().public_jwk()).unwrap();
    s.probe(
        "the enrolment code again, later",
        f.anonymous
            .post(&url)
            .json(&json!({ "code": code, "device_key": key })),
        Expect::refused(401, "bad_enrolment_code"),
    )
    .await;
    // Keys already known: a removed one, another patient's, this patient's.
    for (what, signer, expect) in [
        (
            "re-enrolling a removed device's key",
            &f.removed.signer,
            Expect::one_of(&[400, 409]),
        ),
        (
            "enrolling a key enrolled for another patient",
            &f.phone2.signer,
            Expect::one_of(&[400, 409]),
        ),
        (
            "enrolling a key the patient already has",
            &f.phone1.signer,
            Expect::one_of(&[400, 409]).or(Expect::one_of(&[200])),
        ),
    ] {
        let code = enrolment_code(f, &f.p1).await;
        s.settled();
        s.probe(
            what,
            f.anonymous
                .post(&url)
                .json(&json!({ "code": code, "device_key": signer.public_jwk() })),
            expect,
        )
        .await;
    }
}

async fn sign_ins(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone2;
    let issued = challenge(f, &phone.device()).await;
    s.settled();
    let signature = b64(&phone.signer.sign(
        &DeviceChallenge {
            challenge: issued.clone(),
            device: phone.device(),
        }
        .signing_bytes()
        .unwrap(),
    ));
    let body = json!({ "device": phone.device(), "challenge": issued, "signature": signature });
    let url = format!("{}/patient/session", f.patients);
    let responses = at_once(
        s,
        "one challenge answered 6 times at once",
        6,
        || f.anonymous.post(&url).json(&body),
        &[],
        &[200, 401, 429],
        &[],
    )
    .await;
    let signed_in = responses.iter().filter(|r| r.status == Some(200)).count();
    s.check("one challenge signs in once", signed_in == 1, || {
        format!("{signed_in} sessions from one challenge")
    });
    s.probe(
        "the challenge answered again, later",
        f.anonymous.post(&url).json(&body),
        Expect::status(401).or(Expect::status(429)),
    )
    .await;
}

async fn removals(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone1;
    // A device to remove: enrolled now.
    let code = enrolment_code(f, &f.p1).await;
    let extra = DeviceSigner::generate_p256();
    let enrolled = f
        .anonymous
        .post(format!("{}/patient/enrol", f.patients))
        .json(&json!({ "code": code, "device_key": extra.public_jwk() }))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 200);
    s.settled();
    let url = phone.url(&format!("/patient/devices/{}", extra.device_id()));
    at_once(
        s,
        "the same device removal sent 6 times at once",
        6,
        || phone.client.delete(&url).bearer_auth(&phone.session),
        &["device.removed"],
        &[200, 404, 409],
        &[],
    )
    .await;
    s.probe(
        "the removal again, later",
        phone.client.delete(&url).bearer_auth(&phone.session),
        Expect::one_of(&[404, 409]),
    )
    .await;
}

async fn ledger(f: &Fixture, s: &mut Suite) {
    let url = format!("{}/ledger/entries", f.index);
    let submit = |body: &Vec<u8>| {
        f.a.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
    };
    // A release hospital-a logs under hospital-b's live grant, as it would.
    let entry = f.a.entry(
        "hospital-a",
        locus_protocol::entry::Event::RecordRetrieved(locus_protocol::entry::RecordRetrieved {
            requester: "hospital-b".parse().unwrap(),
            custodian: "hospital-a".parse().unwrap(),
            grant: f.live.grant,
            subject: f.p1,
            pointer: f.live.pointers[1].pointer_id,
            commitment: locus_protocol::ids::Commitment::from_bytes([6u8; 32]),
        }),
    );
    let first = at_once(
        s,
        "the same entry sent 6 times at once",
        6,
        || submit(&entry),
        &["record.retrieved"],
        &[200],
        &[],
    )
    .await;
    let again = s
        .probe(
            "the entry again, later",
            submit(&entry),
            Expect::one_of(&[200]),
        )
        .await;
    s.check(
        "the entry again gets its first receipt",
        first.first().map(Response::json) == Some(again.json()),
        || format!("{:?}", again.json()),
    );
    // The authority's admission of the hospital it later suspended, sent again.
    let admission = s
        .stores
        .appended(0)
        .into_iter()
        .find(|e| {
            e.kind == "member.updated"
                && e.body.contains("\"member\":\"hospital-s\"")
                && e.body.contains("\"status\":\"active\"")
        })
        .expect("hospital-s's admission");
    s.probe(
        "an old directory entry sent again",
        submit(&admission.body.into_bytes()),
        Expect::one_of(&[200]),
    )
    .await;
    s.probe(
        "the suspended hospital stays suspended",
        f.suspended
            .client
            .post(format!("{}/index/discover", f.index))
            .json(&json!({ "discovery": f.live.discovery })),
        Expect::status(403).logs(&["access.refused"]),
    )
    .await;

    // A witness's cosignature, sent again and sent at once.
    let (note, size) = f.checkpoint().await;
    let signer = locus_ledger::cosignature::CosignatureSigner::from_signing_key(
        "hospital-b",
        f.b.signing.as_ref().unwrap().as_dalek().clone(),
    )
    .unwrap();
    let line = signer
        .cosign(&note.text, chrono::Utc::now().timestamp() as u64)
        .unwrap()
        .to_string();
    let cosign = format!("{}/ledger/cosignatures", f.index);
    let body = json!({ "tree_size": size, "cosignature": line });
    at_once(
        s,
        "the same cosignature sent 6 times at once",
        6,
        || f.b.client.post(&cosign).json(&body),
        &[],
        &[204],
        &[("index.ledger_cosignatures", 1)],
    )
    .await;
    s.probe(
        "the cosignature again, later",
        f.b.client.post(&cosign).json(&body),
        Expect::one_of(&[204]),
    )
    .await;
}

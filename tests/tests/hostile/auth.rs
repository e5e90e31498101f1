//! Authentication: no certificate, another CA's, a CA-signed certificate no
//! member holds, a suspended member's; patients' sessions that are missing,
//! forged, truncated or of a removed device; sign-in and enrolment with what
//! does not prove anything.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_protocol::consent::{Decision, DeviceChallenge, Refusal};
use locus_protocol::device::DeviceSigner;
use locus_protocol::entry::{Event, MemberRole, MemberStatus};
use locus_protocol::ids::{HospitalId, PointerId};
use locus_tests::hostile::{Expect, Suite};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{b64, challenge, member_update, now_ms, Fixture, Identity};

/// Every route of the mutual-TLS listeners, with a body that would be
/// accepted from the right member: (name, method, url, body, refusal logged
/// when the caller is a known member).
pub fn member_routes(f: &Fixture) -> Vec<(String, Method, String, Option<Value>, bool)> {
    let (i, c, m) = (&f.index, &f.connector_a, &f.members);
    let pointer = &f.live.pointers[0];
    let get = |base: &str, path: &str| {
        (
            format!("GET {path}"),
            Method::GET,
            format!("{base}{path}"),
            None,
            false,
        )
    };
    let post = |base: &str, path: &str, body: Value, logged: bool| {
        (
            format!("POST {path}"),
            Method::POST,
            format!("{base}{path}"),
            Some(body),
            logged,
        )
    };
    vec![
        get(i, "/ledger/checkpoint"),
        get(i, "/ledger/checkpoints"),
        get(i, "/ledger/vkey"),
        get(i, "/ledger/entries"),
        get(i, "/ledger/entries/0"),
        get(i, "/ledger/proof/inclusion?index=0&size=1"),
        get(i, "/ledger/proof/consistency?first=1&second=2"),
        get(i, "/ledger/tile/0/000.p/1"),
        get(i, "/ledger/tile/entries/000.p/1"),
        post(
            i,
            "/ledger/cosignatures",
            json!({ "tree_size": 1, "cosignature": "— hospital-a AAAA" }),
            false,
        ),
        post(
            i,
            "/index/pointers",
            json!({ "pointers": [{ "pointer_id": PointerId::new_random(), "patient_key": f.p1, "scope_tags": ["07".repeat(32)], "sealed": "AAAA" }] }),
            false,
        ),
        post(
            i,
            "/index/pointers/withdraw",
            json!({ "pointer_ids": [pointer.pointer_id] }),
            false,
        ),
        post(
            i,
            "/index/discover",
            json!({ "discovery": f.live.discovery }),
            true,
        ),
        post(c, "/connector/retrieve", f.live.retrieval(), true),
        post(
            m,
            "/consent/enrolment-codes",
            json!({ "subject": f.p1 }),
            false,
        ),
        post(m, "/consent/requests", f.request_body(&f.p1), false),
        get(m, &format!("/consent/requests/{}", f.live.request)),
        post(
            m,
            "/consent/emergency",
            json!({ "subject": f.p1, "scope": crate::LABS, "reason": "unconscious on arrival", "duration_secs": 3600 }),
            false,
        ),
        get(m, &format!("/consent/grants/{}/fhir", f.live.grant)),
    ]
}

fn request(
    client: &reqwest::Client,
    method: &Method,
    url: &str,
    body: &Option<Value>,
) -> reqwest::RequestBuilder {
    let request = client.request(method.clone(), url);
    match body {
        Some(body) => request.json(body),
        None => request,
    }
}

group!("authentication": tls, ledger_submitters, sessions, sign_in);

async fn tls(f: &Fixture, s: &mut Suite) {
    // No certificate, or one of another CA: the handshake fails, on every listener.
    let listeners = [
        (
            "index",
            &f.index,
            vec![
                "/ledger/checkpoint",
                "/index/discover",
                "/openapi.json",
                "/healthz",
            ],
        ),
        (
            "connector",
            &f.connector_a,
            vec!["/connector/retrieve", "/openapi.json"],
        ),
        (
            "consent members",
            &f.members,
            vec!["/consent/requests", "/openapi.json"],
        ),
    ];
    for (listener, base, paths) in &listeners {
        for path in paths {
            for (who, client) in [
                ("no certificate", &f.anonymous),
                ("another CA's certificate", &f.foreign.client),
            ] {
                let name = format!("{listener} {path} with {who}");
                s.probe(
                    &name,
                    client.post(format!("{base}{path}")).json(&json!({})),
                    Expect::handshake(),
                )
                .await;
            }
        }
    }

    // A certificate the consortium CA signed that no member holds, and a
    // suspended member's: refused on every route, the ledger included.
    for (who, identity, known) in [
        ("a certificate of no member", &f.stranger, false),
        ("a suspended member", &f.suspended, true),
    ] {
        forbidden_routes(f, s, who, &identity.client, known, |_| true).await;
    }

    // The regulator reads the ledger, and nothing else.
    for (route, method, url, body, _) in member_routes(f) {
        if route.starts_with("GET /ledger") {
            s.probe(
                &format!("{route} by the regulator"),
                request(&f.regulator.client, &method, &url, &body),
                Expect::one_of(&[200]),
            )
            .await;
        }
    }
    let regulator = &f.regulator.client;
    forbidden_routes(f, s, "the regulator", regulator, true, |route| {
        !route.starts_with("GET /ledger") && route != "POST /ledger/cosignatures"
    })
    .await;
    // The consent service and the index are members, but not hospitals.
    for (who, identity) in [
        ("the consent service", &f.consent),
        ("the index", &f.index_member),
    ] {
        forbidden_routes(f, s, who, &identity.client, true, |route| {
            route.starts_with("POST /index/")
                || route.contains("/consent/")
                || route.contains("/connector/")
        })
        .await;
    }
}

/// Each of the member routes that `only` picks, sent by `who` as `client`:
/// 403, and the refusal logged where the route logs a `known` member's.
async fn forbidden_routes(
    f: &Fixture,
    s: &mut Suite,
    who: &str,
    client: &reqwest::Client,
    known: bool,
    only: impl Fn(&str) -> bool,
) {
    for (route, method, url, body, logged) in member_routes(f) {
        if !only(&route) {
            continue;
        }
        let expect = if known && logged {
            Expect::status(403).logs(&["access.refused"])
        } else {
            Expect::status(403)
        };
        s.probe(
            &format!("{route} by {who}"),
            request(client, &method, &url, &body),
            expect,
        )
        .await;
    }
}

/// Entries whose signature does not make the submitter who it says it is.
async fn ledger_submitters(f: &Fixture, s: &mut Suite) {
    let url = format!("{}/ledger/entries", f.index);
    let published = |custodian: &str| {
        Event::PointersPublished(locus_protocol::entry::PointersPublished {
            custodian: custodian.parse::<HospitalId>().unwrap(),
            count: 1,
            batch_root: locus_protocol::entry::MerkleRoot::from_bytes([9u8; 32]),
        })
    };
    let submit = |who: &Identity, body: Vec<u8>| {
        who.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
    };
    for (what, who, id) in [
        (
            "an entry over a connection of no member",
            &f.stranger,
            "hospital-x",
        ),
        (
            "an entry over a suspended member's connection",
            &f.suspended,
            "hospital-s",
        ),
    ] {
        s.probe(
            what,
            submit(who, who.entry(id, published(id))),
            Expect::status(403),
        )
        .await;
    }
    // Entries relayed over a member's connection: (case, relayed by, signed
    // by, in the name of, expected refusal).
    for (what, relay, signer, id, code) in [
        (
            "an entry by a member the directory does not know, relayed by a member",
            &f.a,
            &f.stranger,
            "hospital-x",
            "unknown_submitter",
        ),
        (
            "an entry by a suspended member, relayed by a member",
            &f.a,
            &f.suspended,
            "hospital-s",
            "inactive_submitter",
        ),
        (
            "an entry in hospital-a's name under another key",
            &f.a,
            &f.stranger,
            "hospital-a",
            "bad_signature",
        ),
        (
            "hospital-b's entry in hospital-a's name",
            &f.b,
            &f.b,
            "hospital-a",
            "bad_signature",
        ),
    ] {
        s.probe(
            what,
            submit(relay, signer.entry(id, published(id))),
            Expect::refused(403, code),
        )
        .await;
    }
    let restore = member_update(
        "hospital-s",
        MemberRole::Hospital,
        f.suspended.signing.as_ref().unwrap(),
        locus_protocol::grant::Confirmation::for_certificate_der(&[1, 2, 3]),
        MemberStatus::Active,
    );
    s.probe(
        "a directory update in the authority's name under a hospital's key",
        submit(&f.a, f.a.entry("consortium", restore.clone())),
        Expect::refused(403, "bad_signature"),
    )
    .await;
    s.probe(
        "a suspended member reinstating itself",
        submit(&f.suspended, f.suspended.entry("hospital-s", restore)),
        Expect::status(403),
    )
    .await;
}

/// Signed-in routes of the patients' API, with sessions that must not work.
async fn sessions(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone1;
    let refusal = Decision::Refuse(Refusal {
        request: f.pending[7],
        subject: f.p1,
        device: phone.device(),
        signed_at_ms: now_ms(),
    });
    let routes: Vec<(&str, Method, String, Option<Value>)> = vec![
        (
            "GET /patient/requests",
            Method::GET,
            phone.url("/patient/requests"),
            None,
        ),
        (
            "GET /patient/grants",
            Method::GET,
            phone.url("/patient/grants"),
            None,
        ),
        (
            "GET /patient/history",
            Method::GET,
            phone.url("/patient/history"),
            None,
        ),
        (
            "GET /patient/grants/{id}/fhir",
            Method::GET,
            phone.url(&format!("/patient/grants/{}/fhir", f.live.grant)),
            None,
        ),
        (
            "POST /patient/decisions",
            Method::POST,
            phone.url("/patient/decisions"),
            Some(phone.decision(&refusal)),
        ),
        (
            "POST /patient/revocations",
            Method::POST,
            phone.url("/patient/revocations"),
            Some(phone.revocation(f.target)),
        ),
        (
            "POST /patient/rules",
            Method::POST,
            phone.url("/patient/rules"),
            Some(phone.rule_body(&phone.rule())),
        ),
        (
            "DELETE /patient/devices/{id}",
            Method::DELETE,
            phone.url(&format!("/patient/devices/{}", f.spare.device())),
            None,
        ),
        (
            "GET /patient/rules",
            Method::GET,
            phone.url("/patient/rules"),
            None,
        ),
        (
            "POST /patient/rule-revocations",
            Method::POST,
            phone.url("/patient/rule-revocations"),
            Some(phone.rule_revocation(f.rule.rule)),
        ),
    ];
    let (payload, tag) = phone.session.split_once('.').unwrap();
    let (_, other_tag) = f.phone2.session.split_once('.').unwrap();
    let forged = {
        let mut session: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        session["sub"] = json!(f.p2.to_string());
        format!("{}.{tag}", b64(session.to_string().as_bytes()))
    };
    let longer = {
        let mut session: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        session["exp"] = json!(session["exp"].as_i64().unwrap() + 86_400);
        format!("{}.{tag}", b64(session.to_string().as_bytes()))
    };
    let tokens: Vec<(&str, Option<String>)> = vec![
        ("no session", None),
        ("an empty bearer token", Some("Bearer ".into())),
        (
            "a bearer token that is no session",
            Some("Bearer not-a-session".into()),
        ),
        (
            "basic authentication",
            Some("Basic cGF0aWVudDpwYXNzd29yZA==".into()),
        ),
        (
            "a session naming another patient",
            Some(format!("Bearer {forged}")),
        ),
        (
            "a session extended by its holder",
            Some(format!("Bearer {longer}")),
        ),
        (
            "a session with a truncated MAC",
            Some(format!("Bearer {payload}.{}", &tag[..tag.len() - 4])),
        ),
        (
            "a session with another session's MAC",
            Some(format!("Bearer {payload}.{other_tag}")),
        ),
        (
            "the session of a removed device",
            Some(format!("Bearer {}", f.removed.session)),
        ),
    ];
    for (route, method, url, body) in &routes {
        for (what, header) in &tokens {
            let mut request = request(&phone.client, method, url, body);
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            s.probe(
                &format!("{route} with {what}"),
                request,
                Expect::refused(401, "unauthenticated"),
            )
            .await;
        }
    }
}

/// Sign-in and enrolment with nothing that proves the device or the code.
async fn sign_in(f: &Fixture, s: &mut Suite) {
    let client = &f.anonymous;
    let url = |path: &str| format!("{}{path}", f.patients);
    // Sign-in challenges may be rate-limited; that is a refusal too.
    let or_limited = |expect: Expect| expect.or(Expect::status(429));
    let unknown = DeviceSigner::generate_p256();
    s.probe(
        "a challenge for a device never enrolled",
        client
            .post(url("/patient/challenge"))
            .json(&json!({ "device": unknown.device_id() })),
        or_limited(Expect::refused(404, "not_found")),
    )
    .await;
    s.probe(
        "a challenge for a removed device",
        client
            .post(url("/patient/challenge"))
            .json(&json!({ "device": f.removed.device() })),
        or_limited(Expect::refused(404, "not_found")),
    )
    .await;
    let session =
        |device: &locus_protocol::device::DeviceKeyId, challenge: &str, signature: String| {
            client
                .post(url("/patient/session"))
                .json(&json!({ "device": device, "challenge": challenge, "signature": signature }))
        };
    let signed = |signer: &DeviceSigner, challenge: &str, device| {
        b64(&signer.sign(
            &DeviceChallenge {
                challenge: challenge.to_owned(),
                device,
            }
            .signing_bytes()
            .unwrap(),
        ))
    };
    let never_issued = b64(&[5u8; 32]);
    let phone = &f.phone1;
    let (own, theirs, removed) = (phone.device(), f.phone2.device(), f.removed.device());
    // Before any challenge is pending for this device.
    s.probe(
        "a sign-in with a challenge never issued",
        session(
            &own,
            &never_issued,
            signed(&phone.signer, &never_issued, own),
        ),
        or_limited(Expect::status(401)),
    )
    .await;
    let issued = challenge(f, &own).await;
    let other = challenge(f, &theirs).await;
    s.settled();
    let cases = vec![
        (
            "a sign-in signed by another key",
            session(&own, &issued, signed(&f.phone2.signer, &issued, own)),
            Expect::refused(401, "bad_signature"),
        ),
        (
            "a sign-in signing another device's challenge object",
            session(&own, &issued, signed(&phone.signer, &issued, theirs)),
            Expect::refused(401, "bad_signature"),
        ),
        (
            "a sign-in with an empty signature",
            session(&own, &issued, String::new()),
            Expect::one_of(&[400, 401]),
        ),
        (
            "a sign-in with a signature that is not base64url",
            session(&own, &issued, "%%%".into()),
            Expect::refused(400, "bad_request"),
        ),
        (
            "a sign-in with another device's challenge",
            session(&own, &other, signed(&phone.signer, &other, own)),
            Expect::status(401),
        ),
        (
            "a sign-in by a removed device",
            session(
                &removed,
                &issued,
                signed(&f.removed.signer, &issued, removed),
            ),
            Expect::one_of(&[401, 404]),
        ),
    ];
    for (what, request, expect) in cases {
        s.probe(what, request, or_limited(expect)).await;
    }

    for (what, code) in [
        ("a code never issued", "ABCD-EFGH-JKMN".to_owned()),
        ("an empty code", String::new()),
        ("a code of another alphabet", "0000-1111-IIII".into()),
        ("a very long code", "A".repeat(2000)),
    ] {
        let key = DeviceSigner::generate_p256().public_jwk();
        s.probe(
            &format!("enrolment with {what}"),
            client
                .post(url("/patient/enrol"))
                .json(&json!({ "code": code, "device_key": key })),
            or_limited(Expect::one_of(&[400, 401])),
        )
        .await;
    }
}

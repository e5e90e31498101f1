//! Limits: numbers beyond what storage holds, durations, lengths, counts and
//! hostile text; bodies larger than a route needs; the edges of HTTP (long
//! URIs, many or malformed headers, ambiguous framing, wrong methods); a burst
//! of sign-in challenges.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use locus_protocol::consent::StandingRule;
use locus_protocol::ids::PointerId;
use locus_tests::hostile::{padded_json, Expect, Response, Suite};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{Fixture, Identity};

group!("limits": numbers, consent, index, sizes, http);

async fn numbers(f: &Fixture, s: &mut Suite) {
    let i = &f.index;
    let beyond_storage = [
        "/ledger/checkpoints?from=18446744073709551615",
        "/ledger/checkpoints?from=9223372036854775808",
        "/ledger/checkpoints?from=18446744073709551616",
        "/ledger/checkpoints?limit=0",
        "/ledger/checkpoints?limit=1001",
        "/ledger/checkpoints?limit=4294967296",
        "/ledger/entries?after=18446744073709551615",
        "/ledger/entries?after=9223372036854775808",
        "/ledger/entries?limit=0",
        "/ledger/entries?limit=1001",
        "/ledger/entries?from=99999-01-01T00:00:00Z",
        "/ledger/proof/inclusion?index=0&size=18446744073709551615",
        "/ledger/proof/inclusion?index=9223372036854775808&size=9223372036854775809",
        "/ledger/proof/consistency?first=0&second=18446744073709551615",
        "/ledger/proof/consistency?first=9223372036854775808&second=9223372036854775808",
    ];
    s.get_each(
        &f.regulator.client,
        i,
        &beyond_storage,
        &Expect::status(400),
    )
    .await;
    let beyond_the_log = [
        "/ledger/entries/18446744073709551615",
        "/ledger/entries/9223372036854775808",
        "/ledger/entries/18446744073709551616",
        "/ledger/tile/0/x999/999/999/999/999.p/256",
        "/ledger/tile/63/000",
        "/ledger/tile/entries/x999/999/999/999/999",
    ];
    let not_found = Expect::one_of(&[400, 404]);
    s.get_each(&f.regulator.client, i, &beyond_the_log, &not_found)
        .await;
    let cosign = format!("{i}/ledger/cosignatures");
    for (what, size) in [
        (
            "a cosignature for tree size 2^63",
            json!(9_223_372_036_854_775_808u64),
        ),
        ("a cosignature for tree size 2^64-1", json!(u64::MAX)),
        ("a cosignature for tree size -1", json!(-1)),
    ] {
        let line = "— hospital-a AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        s.probe(
            what,
            f.a.client
                .post(&cosign)
                .json(&json!({ "tree_size": size, "cosignature": line })),
            Expect::status(400),
        )
        .await;
    }
}

async fn consent(f: &Fixture, s: &mut Suite) {
    let m = &f.members;
    let requests = format!("{m}/consent/requests");
    let request = |change: &dyn Fn(&mut Value)| {
        let mut body = f.request_body(&f.p1);
        change(&mut body);
        f.b.client.post(&requests).json(&body)
    };
    let max = locus_protocol::consent::MAX_GRANT_DURATION_SECS;
    let scopes4 = "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs patient/DiagnosticReport.rs patient/MedicationRequest.rs";
    let many_scopes: Vec<String> = (0..200)
        .map(|n| format!("patient/Observation.rs?code=http://loinc.org|{n}-0"))
        .collect();
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "a request for 0 seconds",
            request(&|b| b["duration_secs"] = json!(0)),
        ),
        (
            "a request for -1 seconds",
            request(&|b| b["duration_secs"] = json!(-1)),
        ),
        (
            "a request over the longest grant",
            request(&|b| b["duration_secs"] = json!(max + 1)),
        ),
        (
            "a request for i64::MAX seconds",
            request(&|b| b["duration_secs"] = json!(i64::MAX)),
        ),
        (
            "a request for 2^64 seconds",
            request(&|b| b["duration_secs"] = json!(18_446_744_073_709_551_615u64)),
        ),
        (
            "a request of 1e300 seconds",
            request(&|b| b["duration_secs"] = json!(1e300)),
        ),
        (
            "a request over 61 months",
            request(&|b| b["data_period"] = json!({ "start": "2019-01-01", "end": "2024-01-31" })),
        ),
        (
            "a request in the year 99999",
            request(&|b| {
                b["data_period"] = json!({ "start": "99999-01-01", "end": "99999-12-31" })
            }),
        ),
        // Whatever a patient can approve must be issuable: a request whose
        // grant could not be encoded is refused when it is filed.
        (
            "a request of 4 scopes over 60 months",
            request(&|b| {
                b["scope"] = json!(scopes4);
                b["data_period"] = json!({ "start": "2019-01-01", "end": "2023-12-31" });
            }),
        ),
        (
            "a request of 200 scopes",
            request(&|b| b["scope"] = json!(many_scopes.join(" "))),
        ),
        (
            "a request whose scope holds a control character",
            request(&|b| b["scope"] = json!("patient/Observation.rs?category=lab\u{7}oratory")),
        ),
    ];
    // Over the route's body limit is a 413, also a refusal.
    for (what, request) in cases {
        s.probe(what, request, Expect::one_of(&[400, 413])).await;
    }

    let emergency = format!("{m}/consent/emergency");
    let emergency_with = |reason: &str, duration: Value| {
        f.b.client.post(&emergency).json(&json!({ "subject": f.p1, "scope": crate::LABS, "reason": reason, "duration_secs": duration }))
    };
    for (what, reason, duration) in [
        (
            "an emergency for 0 seconds",
            "unconscious on arrival",
            json!(0),
        ),
        (
            "an emergency for -1 seconds",
            "unconscious on arrival",
            json!(-1),
        ),
        (
            "an emergency over 8 hours",
            "unconscious on arrival",
            json!(8 * 3600 + 1),
        ),
        (
            "an emergency for i64::MAX seconds",
            "unconscious on arrival",
            json!(i64::MAX),
        ),
        ("an emergency without a reason", "", json!(3600)),
        (
            "an emergency whose reason is 10,000 characters",
            &"x".repeat(10_000),
            json!(3600),
        ),
        (
            "an emergency whose reason holds a bell",
            "unconscious\u{7} on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds a NUL",
            "unconscious\u{0} on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds an escape sequence",
            "\u{1b}[2Junconscious",
            json!(3600),
        ),
        (
            "an emergency whose reason holds a line break",
            "unconscious\non arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds U+202E",
            "unconscious \u{202E}lavirra no",
            json!(3600),
        ),
        (
            "an emergency whose reason holds U+202A",
            "\u{202A}unconscious on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds U+202D",
            "\u{202D}unconscious on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds U+2066",
            "\u{2066}unconscious\u{2069} on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds U+2067",
            "\u{2067}unconscious on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds U+2068",
            "\u{2068}unconscious on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds DEL",
            "unconscious\u{7f} on arrival",
            json!(3600),
        ),
        (
            "an emergency whose reason holds C1 control U+0085",
            "unconscious\u{85} on arrival",
            json!(3600),
        ),
    ] {
        s.probe(
            what,
            emergency_with(reason, duration),
            Expect::one_of(&[400, 413]),
        )
        .await;
    }

    // Standing rules out of bounds, signed (the service checks the rule
    // before the signature, so the signature matters not).
    let phone = &f.phone1;
    let rule = |change: &dyn Fn(&mut StandingRule)| {
        let mut rule = phone.rule();
        change(&mut rule);
        let body = json!({ "rule": rule, "signature": crate::b64(&[1u8; 64]) });
        phone.request("/patient/rules", &body)
    };
    use locus_protocol::grant::PurposeOfUse as P;
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "a rule with a window of 0 days",
            rule(&|r| r.data_window_days = Some(0)),
        ),
        (
            "a rule with a window of 1462 days",
            rule(&|r| r.data_window_days = Some(1462)),
        ),
        ("a rule with no purpose", rule(&|r| r.purposes = vec![])),
        (
            "a rule with a purpose twice",
            rule(&|r| r.purposes = vec![P::Treatment, P::Treatment]),
        ),
        ("a rule of 0 seconds", rule(&|r| r.grant_duration_secs = 0)),
        (
            "a rule over the longest grant",
            rule(&|r| r.grant_duration_secs = max + 1),
        ),
        ("a rule signed before 1970", rule(&|r| r.signed_at_ms = -1)),
        (
            "a rule signed beyond the largest exact JSON number",
            rule(&|r| r.signed_at_ms = 1 << 53),
        ),
    ];
    for (what, request) in cases {
        s.probe(what, request, Expect::status(400)).await;
    }
}

async fn index(f: &Fixture, s: &mut Suite) {
    let i = &f.index;
    let pointer = |sealed: String, tags: usize| json!({ "pointer_id": PointerId::new_random(), "patient_key": f.p1, "scope_tags": vec!["07".repeat(32); tags], "sealed": sealed });
    let small = STANDARD.encode([1u8; 64]);
    let publish = |pointers: Vec<Value>| {
        f.a.client
            .post(format!("{i}/index/pointers"))
            .json(&json!({ "pointers": pointers }))
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, Expect)> = vec![
        ("a publication of no pointers", publish(vec![]), Expect::status(400)),
        ("a publication of 1001 pointers", publish((0..1001).map(|_| pointer(small.clone(), 1)).collect()), Expect::status(400)),
        ("a pointer with no scope tags", publish(vec![pointer(small.clone(), 0)]), Expect::status(400)),
        ("a pointer with 65 scope tags", publish(vec![pointer(small.clone(), 65)]), Expect::status(400)),
        ("a sealed pointer of 4097 bytes", publish(vec![pointer(STANDARD.encode(vec![1u8; 4097]), 1)]), Expect::one_of(&[400, 413])),
        ("an empty sealed pointer", publish(vec![pointer(String::new(), 1)]), Expect::one_of(&[400, 413])),
        ("a sealed pointer that is not base64", publish(vec![pointer("%%%".into(), 1)]), Expect::status(400)),
        (
            "a withdrawal of no pointers",
            f.a.client.post(format!("{i}/index/pointers/withdraw")).json(&json!({ "pointer_ids": [] })),
            Expect::status(400),
        ),
        (
            "a withdrawal of 1001 pointers",
            f.a.client
                .post(format!("{i}/index/pointers/withdraw"))
                .json(&json!({ "pointer_ids": (0..1001).map(|_| PointerId::new_random()).collect::<Vec<_>>() })),
            Expect::status(400),
        ),
        (
            "a retrieval with a sealed pointer of 4097 bytes",
            f.b.client.post(format!("{}/connector/retrieve", f.connector_a)).json(&json!({
                "grant": f.live.token, "pointer_id": f.live.pointers[0].pointer_id, "sealed": STANDARD.encode(vec![1u8; 4097])
            })),
            Expect::status(400),
        ),
    ];
    for (what, request, expect) in cases {
        s.probe(what, request, expect).await;
    }
}

/// Bodies larger than the route needs: 413 before anything is parsed or logged.
async fn sizes(f: &Fixture, s: &mut Suite) {
    let cases: Vec<(&str, &Identity, String, usize)> = vec![
        ("/ledger/entries", &f.a, f.index.clone(), 70 * 1024),
        ("/ledger/cosignatures", &f.a, f.index.clone(), 70 * 1024),
        ("/index/discover", &f.b, f.index.clone(), 100 * 1024),
        ("/index/discover", &f.b, f.index.clone(), 9 * 1024 * 1024),
        (
            "/connector/retrieve",
            &f.b,
            f.connector_a.clone(),
            70 * 1024,
        ),
        (
            "/consent/enrolment-codes",
            &f.a,
            f.members.clone(),
            70 * 1024,
        ),
        ("/consent/requests", &f.b, f.members.clone(), 70 * 1024),
        ("/consent/emergency", &f.b, f.members.clone(), 70 * 1024),
    ];
    for (path, who, base, size) in cases {
        s.probe(
            &format!("POST {path} of {} KiB", size / 1024),
            who.client
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(padded_json("discovery", size)),
            Expect::status(413),
        )
        .await;
    }
    let phone = &f.phone1;
    for path in [
        "/patient/enrol",
        "/patient/challenge",
        "/patient/session",
        "/patient/decisions",
        "/patient/revocations",
        "/patient/rules",
        "/patient/rule-revocations",
    ] {
        s.probe(
            &format!("POST {path} of 70 KiB"),
            phone
                .client
                .post(phone.url(path))
                .bearer_auth(&phone.session)
                .header("content-type", "application/json")
                .body(padded_json("code", 70 * 1024)),
            Expect::status(413),
        )
        .await;
    }
}

/// The HTTP layer's own refusals carry the same JSON error body.
async fn http(f: &Fixture, s: &mut Suite) {
    let listeners = [
        ("index", f.raw(&f.index, Some(&f.a)), "/ledger/checkpoint"),
        ("connector", f.raw(&f.connector_a, Some(&f.b)), "/healthz"),
        ("consent members", f.raw(&f.members, Some(&f.b)), "/healthz"),
        ("consent patients", f.raw(&f.patients, None), "/healthz"),
    ];
    for (listener, target, path) in &listeners {
        let host = target.addr.clone();
        let long_uri = format!(
            "GET {path}?q={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            "a".repeat(40 * 1024)
        );
        let many_headers = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{}Connection: close\r\n\r\n",
            (0..200)
                .map(|n| format!("X-H{n}: {n}\r\n"))
                .collect::<String>()
        );
        let control = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Bad: a\u{1}b\r\nConnection: close\r\n\r\n"
        );
        let framing = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        );
        for (what, bytes, expect) in [
            (
                "a URI of 40 KiB",
                long_uri,
                Expect::one_of(&[400, 414, 431]),
            ),
            ("200 headers", many_headers, Expect::one_of(&[400, 431])),
            ("a control byte in a header", control, Expect::status(400)),
            (
                "both Content-Length and Transfer-Encoding",
                framing,
                Expect::status(400),
            ),
        ] {
            s.raw(
                &format!("{listener}: {what}"),
                target,
                bytes.into_bytes(),
                expect,
            )
            .await;
        }
    }
    let (i, c, m, p) = (&f.index, &f.connector_a, &f.members, &f.patients);
    let phone = &f.phone1.client;
    let mut wrong_methods: Vec<(Method, &reqwest::Client, &str, String)> = [
        (Method::GET, &f.b.client, i, "/index/discover"),
        (Method::DELETE, &f.a.client, i, "/ledger/checkpoint"),
        (Method::PUT, &f.a.client, i, "/ledger/entries"),
        (Method::GET, &f.a.client, i, "/ledger/cosignatures"),
        (Method::GET, &f.b.client, c, "/connector/retrieve"),
        (Method::PUT, &f.b.client, m, "/consent/requests"),
        (Method::GET, phone, p, "/patient/decisions"),
        (Method::POST, phone, p, "/patient/grants"),
        (Method::GET, &f.anonymous, p, "/patient/enrol"),
    ]
    .map(|(method, client, base, route)| (method, client, route, format!("{base}{route}")))
    .into();
    // Routes with an id: the route names the case, the URL holds a real id.
    wrong_methods.push((
        Method::DELETE,
        &f.b.client,
        "/consent/requests/{id}",
        format!("{m}/consent/requests/{}", f.live.request),
    ));
    wrong_methods.push((
        Method::PATCH,
        phone,
        "/patient/devices/{id}",
        format!("{p}/patient/devices/{}", f.phone1.device()),
    ));
    for (method, client, route, url) in wrong_methods {
        s.probe(
            &format!("{method} {route}, a wrong method"),
            client.request(method, url).bearer_auth(&f.phone1.session),
            Expect::status(405),
        )
        .await;
    }
}

/// A burst of anonymous sign-in challenges for one device is rate-limited,
/// and the challenges outstanding stay bounded.
pub async fn bursts(f: &Fixture, s: &mut Suite) {
    s.group("limits");
    let before = s.before();
    let url = f.phone2.url("/patient/challenge");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (client, url, device) = (f.anonymous.clone(), url.clone(), f.phone2.device());
        tasks.spawn(async move {
            Response::from_reqwest(
                client
                    .post(url)
                    .json(&json!({ "device": device }))
                    .send()
                    .await,
            )
            .await
        });
    }
    let mut statuses: BTreeMap<Option<u16>, usize> = BTreeMap::new();
    let mut bad_errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let response = joined.unwrap();
        *statuses.entry(response.status).or_default() += 1;
        if response.status.is_some_and(|s| s >= 400) {
            if let Err(e) = locus_tests::hostile::error_shape(&response) {
                bad_errors.push(e);
            }
        }
    }
    let now = s.stores.snapshot();
    let grown = now.rows.get("consent.challenges").copied().unwrap_or(0)
        - before.rows.get("consent.challenges").copied().unwrap_or(0);
    let limited = statuses.get(&Some(429)).copied().unwrap_or(0);
    let result = if limited == 0 {
        Err(format!(
            "300 challenges for one device in a burst were all answered: {statuses:?}"
        ))
    } else if !bad_errors.is_empty() {
        Err(format!(
            "rate-limit answers without the JSON error body: {:?}",
            &bad_errors[..1]
        ))
    } else if grown >= 300 || now.ledger_size != before.ledger_size {
        Err(format!(
            "the burst stored {grown} challenges and logged {} entries",
            now.ledger_size - before.ledger_size
        ))
    } else {
        Ok(())
    };
    s.settled();
    s.record("300 challenges for one device in a burst", result);
}

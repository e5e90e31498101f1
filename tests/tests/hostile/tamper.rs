//! Tampering: grant and discovery tokens forged or altered, sealed pointers
//! altered or forged to the custodian's public key, device-signed decisions,
//! revocations and rules altered after signing, ledger entries and witness
//! cosignatures altered.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use locus_ledger::cosignature::CosignatureSigner;
use locus_protocol::consent::Decision;
use locus_protocol::grant::GrantClaims;
use locus_protocol::grant_token::encode_grant;
use locus_protocol::ids::{FhirId, GrantId, PointerId};
use locus_protocol::pointer::PointerBody;
use locus_protocol::signing::SigningKey;
use locus_tests::hostile::{Expect, Suite};
use serde_json::{json, Value};

use crate::{now_ms, Fixture, Identity};

group!("tampering": tokens, pointers, device_signed, entries, cosignatures);

/// `token` with its JSON segment `index` (0 header, 1 payload) changed by `change`.
fn edit_segment(token: &str, index: usize, change: impl FnOnce(&mut Value)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut value: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[index]).unwrap()).unwrap();
    change(&mut value);
    parts[index] = URL_SAFE_NO_PAD.encode(value.to_string());
    parts.join(".")
}

/// `text` with one base64 character near its end changed: a signature that
/// still decodes, to other bytes.
fn flip_last(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = chars
        .iter()
        .rposition(|c| c.is_ascii_alphanumeric())
        .unwrap()
        - 4;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Variants of a token that must not pass: (what, token, refusal code).
fn forged_tokens(
    f: &Fixture,
    token: &str,
    claims: &GrantClaims,
    discovery: bool,
) -> Vec<(String, Option<String>, &'static str)> {
    let (b, network) = (f.hospital_b(), &f.network);
    let encode = |claims: &GrantClaims, key: &SigningKey| {
        if discovery {
            locus_protocol::grant_token::encode_discovery(claims, key).unwrap()
        } else {
            encode_grant(claims, key).unwrap()
        }
    };
    let minted = |adjust: &dyn Fn(&mut GrantClaims)| {
        let mut c = claims.clone();
        c.jti = GrantId::new_random();
        adjust(&mut c);
        encode(&c, &network.consent.key)
    };
    let now = chrono::Utc::now().timestamp();
    let (payload, _) = {
        let mut parts = token.split('.');
        (parts.nth(1).unwrap().to_owned(), ())
    };
    let header = edit_segment(token, 0, |h| h["alg"] = json!("none"));
    let none = format!("{}.{payload}.", header.split('.').next().unwrap());
    let hs256 = {
        let header = edit_segment(token, 0, |h| h["alg"] = json!("HS256"));
        network.hs256_forgery(header.split('.').next().unwrap(), &payload)
    };
    let other_patient = if discovery { f.p2 } else { f.p1 };
    let (for_a, _) = network.grant(f.hospital_a(), &f.p1, crate::LABS, None);
    let for_a = if discovery {
        let claims: GrantClaims = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(for_a.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        network.discovery(&claims)
    } else {
        for_a
    };
    let a_cert = f.hospital_a().certificate.clone();
    let wrong_typ = if discovery {
        f.live.token.clone()
    } else {
        f.live.discovery.clone()
    };
    vec![
        ("alg none".into(), Some(none), "invalid_grant"),
        (
            "HS256 keyed with the consent service's public key".into(),
            Some(hs256),
            "invalid_grant",
        ),
        (
            "signed by a key of no member".into(),
            Some(encode(claims, &SigningKey::generate())),
            "invalid_grant",
        ),
        (
            "signed by a hospital's member key".into(),
            Some(encode(claims, &b.node.key)),
            "invalid_grant",
        ),
        (
            "a flipped signature".into(),
            Some(flip_last(token)),
            "invalid_grant",
        ),
        (
            "a payload altered after signing".into(),
            Some(edit_segment(token, 1, |c| {
                c["sub"] = json!(other_patient.to_string())
            })),
            "invalid_grant",
        ),
        (
            "an expiry moved after signing".into(),
            Some(edit_segment(token, 1, |c| {
                c["exp"] = json!(now + 86_400 * 20)
            })),
            "invalid_grant",
        ),
        (
            "an expired grant".into(),
            Some(minted(&|c| {
                c.iat = now - 7200;
                c.nbf = now - 7200;
                c.exp = now - 60;
            })),
            "expired",
        ),
        (
            "a grant not yet valid".into(),
            Some(minted(&|c| {
                c.nbf = now + 3600;
                c.exp = now + 7200;
            })),
            "expired",
        ),
        (
            "a grant longer than any may last".into(),
            Some(minted(&|c| c.exp = now + 40 * 86_400)),
            "invalid_grant",
        ),
        (
            "a grant for another hospital".into(),
            Some(for_a),
            "invalid_grant",
        ),
        (
            "a grant bound to another certificate".into(),
            Some(minted(&|c| c.cnf = a_cert.clone())),
            "certificate_mismatch",
        ),
        (
            "the other token of the pair".into(),
            Some(wrong_typ),
            "invalid_grant",
        ),
        ("an empty token".into(), Some(String::new()), "no_grant"),
        ("no token".into(), None, "no_grant"),
        (
            "three segments of nothing".into(),
            Some("a.b.c".into()),
            "invalid_grant",
        ),
        (
            "a token of 60 KiB".into(),
            Some(format!(
                "{}.{}.{}",
                "e".repeat(20_000),
                "e".repeat(20_000),
                "e".repeat(20_000)
            )),
            "invalid_grant",
        ),
    ]
}

fn claims_of(token: &str) -> GrantClaims {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

async fn tokens(f: &Fixture, s: &mut Suite) {
    let claims = claims_of(&f.live.token);
    let a_url = format!("{}/connector/retrieve", f.connector_a);
    for (what, token, code) in forged_tokens(f, &f.live.token, &claims, false) {
        let mut body = f.live.retrieval();
        body["grant"] = json!(token);
        s.probe(
            &format!("a retrieval with {what}"),
            f.b.client.post(&a_url).json(&body),
            Expect::refused(403, code)
                .logs(&["access.refused"])
                .or(Expect::status(413)),
        )
        .await;
    }
    let discover = format!("{}/index/discover", f.index);
    for (what, token, code) in forged_tokens(f, &f.live.discovery, &claims, true) {
        s.probe(
            &format!("a discovery with {what}"),
            f.b.client
                .post(&discover)
                .json(&json!({ "discovery": token })),
            Expect::refused(403, code)
                .logs(&["access.refused"])
                .or(Expect::status(413)),
        )
        .await;
    }
}

async fn pointers(f: &Fixture, s: &mut Suite) {
    let a = f.hospital_a();
    let url = format!("{}/connector/retrieve", f.connector_a);
    let (first, second) = (&f.live.pointers[0], &f.live.pointers[1]);
    let body = |pointer_id: PointerId, sealed: String| json!({ "grant": f.live.token, "pointer_id": pointer_id, "sealed": sealed });
    // A sealed body that does not open, or a forged one: refused, or (the
    // custodian going by its own store, the body a hint at most) the record
    // the pointer id names released; logged as what happened, never a 5xx.
    let refused_or_released = || {
        Expect::status(403)
            .logs(&["access.refused"])
            .or(Expect::one_of(&[200]).logs(&["record.retrieved"]))
    };
    let mut flipped = STANDARD.decode(&first.sealed).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    s.probe(
        "a sealed pointer with a flipped byte",
        f.b.client
            .post(&url)
            .json(&body(first.pointer_id, STANDARD.encode(&flipped))),
        refused_or_released(),
    )
    .await;
    s.probe(
        "another pointer's sealed body under this pointer's id",
        f.b.client
            .post(&url)
            .json(&body(first.pointer_id, second.sealed.clone())),
        refused_or_released(),
    )
    .await;
    s.probe(
        "a pointer id hospital-a never published",
        f.b.client
            .post(&url)
            .json(&body(PointerId::new_random(), first.sealed.clone())),
        Expect::refused(403, "tampered_pointer").logs(&["access.refused"]),
    )
    .await;
    // Anyone can seal to the custodian's public key: forged bodies that claim
    // an in-grant record, with a wrong salt or naming another record.
    let opened = PointerBody::open(
        &a.node.x25519,
        &STANDARD.decode(&first.sealed).unwrap(),
        &first.pointer_id,
        &f.p1,
        &a.id,
    )
    .unwrap();
    let public = a.node.x25519.public_key();
    let seal = |body: &PointerBody, pointer: &PointerId| {
        STANDARD.encode(body.seal(&public, pointer, &f.p1, &a.id).unwrap())
    };
    let forged = |change: &dyn Fn(&mut PointerBody)| {
        let mut forged = opened.clone();
        change(&mut forged);
        let sealed = seal(&forged, &first.pointer_id);
        f.b.client.post(&url).json(&body(first.pointer_id, sealed))
    };
    let other_record: FhirId = "6d1d2e3f-0000-4000-8000-000000000004".parse().unwrap();
    let forgeries = vec![
        (
            "a forged body with the record's commitment and a wrong salt",
            forged(&|b| b.salt = [7u8; 32]),
        ),
        (
            "a forged body naming another record",
            forged(&|b| b.resource_id = other_record.clone()),
        ),
        (
            "a forged body with another commitment",
            forged(&|b| b.commitment = locus_protocol::ids::Commitment::from_bytes([3u8; 32])),
        ),
    ];
    s.probe_each(forgeries, &refused_or_released()).await;
    let fresh = PointerId::new_random();
    s.probe(
        "a forged body under a pointer id never published",
        f.b.client
            .post(&url)
            .json(&body(fresh, seal(&opened, &fresh))),
        Expect::status(403).logs(&["access.refused"]),
    )
    .await;
    s.probe(
        "a sealed pointer that is not base64",
        f.b.client
            .post(&url)
            .json(&body(first.pointer_id, "%%%".into())),
        Expect::refused(400, "bad_request"),
    )
    .await;
}

async fn device_signed(f: &Fixture, s: &mut Suite) {
    let phone = &f.phone1;
    let terms = phone.terms(f.pending[5]).await;
    let approval = phone.approval(&terms);
    let signed = phone.decision(&approval);
    let decide = |body: Value| phone.request("/patient/decisions", &body);
    let bad_signature = || Expect::refused(401, "bad_signature");

    // Each kind of signed act, altered after signing: the decision above, a
    // revocation of a grant of P1's, a rule revocation and a standing rule.
    let altered = |route: &str, signed: &Value, change: &dyn Fn(&mut Value)| {
        let mut body = signed.clone();
        change(&mut body);
        phone.request(route, &body)
    };
    let decision = |change: &dyn Fn(&mut Value)| altered("/patient/decisions", &signed, change);
    let signed_revocation = phone.revocation(f.target);
    let revocation =
        |change: &dyn Fn(&mut Value)| altered("/patient/revocations", &signed_revocation, change);
    let signed_rule_revocation = phone.rule_revocation(f.rule.rule);
    let rule_revocation = |change: &dyn Fn(&mut Value)| {
        altered("/patient/rule-revocations", &signed_rule_revocation, change)
    };
    let signed_rule = phone.rule_body(&phone.rule());
    let rule = |change: &dyn Fn(&mut Value)| altered("/patient/rules", &signed_rule, change);
    let flip_signature =
        |b: &mut Value| b["signature"] = json!(flip_last(b["signature"].as_str().unwrap()));
    // Changed after signing: the signature no longer holds.
    let broken = vec![
        (
            "an approval with its scope changed after signing",
            decision(&|b| b["decision"]["scope"] = json!("patient/Observation.rs")),
        ),
        (
            "an approval with its duration changed after signing",
            decision(&|b| b["decision"]["duration_secs"] = json!(3600)),
        ),
        (
            "an approval with a data period added after signing",
            decision(&|b| {
                b["decision"]["data_period"] = json!({"start": "2024-03-01", "end": "2024-03-31"})
            }),
        ),
        (
            "an approval with its requester changed after signing",
            decision(&|b| b["decision"]["requester"] = json!("hospital-a")),
        ),
        (
            "an approval moved to another request",
            decision(&|b| b["decision"]["request"] = json!(f.pending[4])),
        ),
        (
            "an approval with its signing time changed",
            decision(&|b| b["decision"]["signed_at_ms"] = json!(now_ms() - 1000)),
        ),
        (
            "a revocation moved to another grant",
            revocation(&|b| b["revocation"]["grant"] = json!(f.live.grant)),
        ),
        (
            "a revocation with its signing time changed",
            revocation(&|b| b["revocation"]["signed_at_ms"] = json!(now_ms() - 5000)),
        ),
        (
            "a rule widened to any hospital after signing",
            rule(&|b| b["rule"]["who"] = json!("any_hospital")),
        ),
        (
            "a rule widened to every Observation after signing",
            rule(&|b| b["rule"]["scope"] = json!("patient/Observation.rs")),
        ),
        (
            "a rule lengthened after signing",
            rule(&|b| b["rule"]["grant_duration_secs"] = json!(86_400)),
        ),
        (
            "a rule given another purpose after signing",
            rule(&|b| b["rule"]["purposes"] = json!(["TREAT"])),
        ),
        (
            "a rule given another id after signing",
            rule(&|b| b["rule"]["rule"] = json!(uuid::Uuid::new_v4())),
        ),
    ];
    s.probe_each(broken, &bad_signature()).await;
    // Changed to another patient or device: refused before the signature is checked.
    let not_theirs = vec![
        (
            "an approval for another patient",
            decision(&|b| b["decision"]["subject"] = json!(f.p2)),
        ),
        (
            "an approval by another device",
            decision(&|b| b["decision"]["device"] = json!(f.spare.device())),
        ),
        (
            "a revocation for another patient",
            revocation(&|b| b["revocation"]["subject"] = json!(f.p2)),
        ),
        (
            "a revocation by another device",
            revocation(&|b| b["revocation"]["device"] = json!(f.spare.device())),
        ),
        (
            "a rule for another patient",
            rule(&|b| b["rule"]["subject"] = json!(f.p2)),
        ),
    ];
    s.probe_each(not_theirs, &Expect::refused(403, "forbidden"))
        .await;
    // A flipped signature, and rule revocations changed after signing.
    let unverified = vec![
        (
            "a revocation with a flipped signature",
            revocation(&flip_signature),
        ),
        (
            "a rule revocation moved to another rule",
            rule_revocation(&|b| b["revocation"]["rule"] = json!(uuid::Uuid::new_v4())),
        ),
        (
            "a rule revocation with its signing time changed",
            rule_revocation(&|b| b["revocation"]["signed_at_ms"] = json!(now_ms() - 5000)),
        ),
        (
            "a rule revocation with a flipped signature",
            rule_revocation(&flip_signature),
        ),
    ];
    s.probe_each(unverified, &Expect::one_of(&[400, 401])).await;
    s.probe(
        "an approval with its purpose changed after signing",
        decision(&|b| b["decision"]["purpose"] = json!("HMARKT")),
        Expect::status(400).or(bad_signature()),
    )
    .await;
    let signature = URL_SAFE_NO_PAD
        .decode(signed["signature"].as_str().unwrap())
        .unwrap();
    let with_signature =
        |signature: String| json!({ "decision": signed["decision"], "signature": signature });
    let mut flipped = signature.clone();
    flipped[10] ^= 1;
    let other = f.phone2.sign(&approval.signing_bytes().unwrap());
    let refusal = Decision::Refuse(locus_protocol::consent::Refusal {
        request: f.pending[5],
        subject: f.p1,
        device: phone.device(),
        signed_at_ms: now_ms(),
    });
    let refusal_signature = phone.decision(&refusal)["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    for (what, signature) in [
        ("a flipped byte", URL_SAFE_NO_PAD.encode(&flipped)),
        (
            "only its first 10 bytes",
            URL_SAFE_NO_PAD.encode(&signature[..10]),
        ),
        ("64 zero bytes", URL_SAFE_NO_PAD.encode([0u8; 64])),
        ("1000 bytes", URL_SAFE_NO_PAD.encode([1u8; 1000])),
        ("another patient's device's signature", other),
        ("the signature of a refusal", refusal_signature),
    ] {
        s.probe(
            &format!("an approval whose signature is {what}"),
            decide(with_signature(signature)),
            Expect::one_of(&[400, 401]),
        )
        .await;
    }
    let mut refusal_body = phone.decision(&refusal);
    refusal_body["decision"]["request"] = json!(f.pending[4]);
    s.probe(
        "a refusal moved to another request",
        decide(refusal_body),
        bad_signature(),
    )
    .await;
}

/// A permitted entry of hospital-a's, and ways to alter it.
async fn entries(f: &Fixture, s: &mut Suite) {
    let url = format!("{}/ledger/entries", f.index);
    let submit = |body: Vec<u8>| {
        f.a.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
    };
    let retrieval = |grant: GrantId| {
        locus_protocol::entry::Event::RecordRetrieved(locus_protocol::entry::RecordRetrieved {
            requester: "hospital-b".parse().unwrap(),
            custodian: "hospital-a".parse().unwrap(),
            grant,
            subject: f.p1,
            pointer: PointerId::new_random(),
            commitment: locus_protocol::ids::Commitment::from_bytes([4u8; 32]),
        })
    };
    let good =
        String::from_utf8(f.a.entry("hospital-a", retrieval(GrantId::new_random()))).unwrap();
    let replace = |from: &str, to: &str| {
        assert!(good.contains(from), "{from} in {good}");
        good.replacen(from, to, 1).into_bytes()
    };
    let entry: Value = serde_json::from_str(&good).unwrap();
    let sig = entry["sig"].as_str().unwrap();
    let pointer = entry["entry"]["event"]["pointer"].as_str().unwrap();
    let time = entry["entry"]["time_ms"].to_string();
    let mut non_utf8 = good.clone().into_bytes();
    non_utf8.push(0xff);
    let malformed = || Expect::refused(400, "malformed_entry");
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "an entry with a flipped signature",
            replace(sig, &flip_last(sig)),
            Expect::refused(403, "bad_signature"),
        ),
        (
            "an entry altered after signing",
            replace(pointer, &PointerId::new_random().to_string()),
            Expect::refused(403, "bad_signature"),
        ),
        (
            "an entry moved to another submitter",
            replace(
                "\"submitter\":\"hospital-a\"",
                "\"submitter\":\"hospital-b\"",
            ),
            Expect::status(403),
        ),
        (
            "an entry with another key id",
            replace("\"kid\":\"", "\"kid\":\"A"),
            Expect::one_of(&[400, 403]),
        ),
        (
            "an entry with a space added",
            replace("{", "{ "),
            malformed(),
        ),
        (
            "an entry with its members reordered",
            format!("{{\"sig\":\"{sig}\",\"entry\":{}}}", entry["entry"]).into_bytes(),
            malformed(),
        ),
        (
            "an entry with an unknown field",
            replace("{\"entry\"", "{\"a\":1,\"entry\""),
            malformed(),
        ),
        (
            "an entry of an unknown type",
            replace("record.retrieved", "record.deleted"),
            malformed(),
        ),
        (
            "an entry of version 2",
            replace("\"v\":1", "\"v\":2"),
            malformed(),
        ),
        (
            "an entry without its signature",
            format!("{{\"entry\":{}}}", entry["entry"]).into_bytes(),
            malformed(),
        ),
        (
            "an entry with a negative time",
            replace(&format!("\"time_ms\":{time}"), "\"time_ms\":-1"),
            Expect::one_of(&[400, 403]),
        ),
        (
            "an entry with a byte that is not UTF-8",
            non_utf8,
            malformed(),
        ),
        (
            "an entry with a trailing newline",
            format!("{good}\n").into_bytes(),
            malformed(),
        ),
        ("an empty entry", Vec::new(), malformed()),
        (
            "an entry dated ten minutes ago",
            f.a.entry_at(
                "hospital-a",
                retrieval(GrantId::new_random()),
                now_ms() - 600_000,
            ),
            Expect::refused(400, "clock_skew"),
        ),
        (
            "an entry dated ten minutes ahead",
            f.a.entry_at(
                "hospital-a",
                retrieval(GrantId::new_random()),
                now_ms() + 600_000,
            ),
            Expect::refused(400, "clock_skew"),
        ),
        (
            "a release under a grant the ledger logged as revoked",
            f.a.entry("hospital-a", retrieval(f.revoked.grant)),
            Expect::refused(403, locus_ledger::wire::GRANT_REVOKED_CODE),
        ),
    ];
    for (what, body, expect) in cases {
        s.probe(what, submit(body), expect).await;
    }
}

/// Witness cosignatures that must not be kept.
async fn cosignatures(f: &Fixture, s: &mut Suite) {
    let url = format!("{}/ledger/cosignatures", f.index);
    let (note, size) = f.checkpoint().await;
    let signer = |who: &Identity, name: &str| {
        CosignatureSigner::from_signing_key(name, who.signing.as_ref().unwrap().as_dalek().clone())
            .unwrap()
    };
    let now = chrono::Utc::now().timestamp() as u64;
    let line = |who: &Identity, name: &str, timestamp: u64| {
        signer(who, name)
            .cosign(&note.text, timestamp)
            .unwrap()
            .to_string()
    };
    let good = line(&f.a, "hospital-a", now);
    let submit = |tree_size: Value, cosignature: String| {
        f.a.client
            .post(&url)
            .json(&json!({ "tree_size": tree_size, "cosignature": cosignature }))
    };
    let mut cases: Vec<(String, Value, String, Expect)> = vec![
        (
            "a cosignature with a flipped signature".into(),
            json!(size),
            flip_last(&good),
            Expect::refused(403, "bad_cosignature"),
        ),
        (
            "a cosignature of another tree size".into(),
            json!(size - 1),
            good.clone(),
            Expect::one_of(&[403, 404]),
        ),
        (
            "a cosignature beyond the log".into(),
            json!(size + 1000),
            good.clone(),
            Expect::refused(404, "not_found"),
        ),
    ];
    // Signers who are no witness, each under its own name.
    for (who, name, what) in [
        (&f.stranger, "hospital-x", "no member"),
        (&f.consent, "consent", "a member that is no witness"),
        (&f.suspended, "hospital-s", "a suspended hospital"),
    ] {
        cases.push((
            format!("a cosignature by {what}"),
            json!(size),
            line(who, name, now),
            Expect::refused(403, "not_a_witness"),
        ));
    }
    cases.extend([
        (
            "a cosignature in hospital-a's name by hospital-b".into(),
            json!(size),
            line(&f.b, "hospital-a", now),
            Expect::refused(403, "bad_cosignature"),
        ),
        (
            "a cosignature dated tomorrow".into(),
            json!(size),
            line(&f.a, "hospital-a", now + 86_400),
            Expect::refused(400, "bad_request"),
        ),
        (
            "a cosignature that is no signature line".into(),
            json!(size),
            "hello".into(),
            Expect::refused(400, "bad_request"),
        ),
    ]);
    for (what, tree_size, cosignature, expect) in cases {
        s.probe(&what, submit(tree_size, cosignature), expect).await;
    }
}

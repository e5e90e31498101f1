//! A patient's phone against the consent service's patient API: a device key,
//! enrolment with a desk code, challenge sign-in, and the signed acts
//! (decisions, revocations, rules, device removal), as the app makes them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_protocol::consent::{
    Decision, DeviceChallenge, Revocation, RuleRevocation, StandingRule,
};
use locus_protocol::device::{DeviceKeyId, DeviceSigner};
use locus_protocol::ids::{GrantId, PatientKey, RuleId};
use serde_json::{json, Value};

use crate::network::{TestHospital, TestNetwork};

/// Sends `body` as JSON (with a bearer token if given); the status and the
/// JSON answer (`null` if none).
pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    answer(request).await
}

/// Sends `request`; the status and the JSON answer (`null` if none).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub use crate::index::now_ms;

/// `hospital` asks for `scope` of `subject`'s records over `period`, to treat
/// them, for `duration` seconds.
pub async fn ask(
    network: &TestNetwork,
    hospital: &TestHospital,
    subject: &PatientKey,
    scope: &str,
    period: Option<(&str, &str)>,
    duration: i64,
) -> (u16, Value) {
    post(
        &hospital.node.http,
        format!("{}/consent/requests", network.consent_service.member_url),
        json!({
            "subject": subject,
            "purpose": "TREAT",
            "scope": scope,
            "data_period": period.map(|(s, e)| json!({"start": s, "end": e})),
            "duration_secs": duration,
        }),
        None,
    )
    .await
}

/// A one-time enrolment code from `desk` for `subject`.
pub async fn enrolment_code(
    network: &TestNetwork,
    desk: &TestHospital,
    subject: &PatientKey,
) -> String {
    let (status, code) = post(
        &desk.node.http,
        format!(
            "{}/consent/enrolment-codes",
            network.consent_service.member_url
        ),
        json!({ "subject": subject }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{code}");
    code["code"].as_str().expect("code").to_owned()
}

/// A patient's phone: its device key and, once signed in, a session.
pub struct Phone {
    pub client: reqwest::Client,
    pub base: String,
    pub signer: DeviceSigner,
    pub subject: PatientKey,
    pub session: String,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("device", &self.signer.device_id())
            .finish_non_exhaustive()
    }
}

impl Phone {
    /// A new device key that is not enrolled yet.
    pub fn new(network: &TestNetwork, subject: PatientKey) -> Self {
        Self {
            client: network.phone(),
            base: network.consent_service.patient_url.clone(),
            signer: DeviceSigner::generate_p256(),
            subject,
            session: String::new(),
        }
    }

    /// Enrols with a code from `desk` and signs in.
    pub async fn enrol(network: &TestNetwork, desk: &TestHospital, subject: PatientKey) -> Self {
        let mut phone = Self::new(network, subject);
        let code = enrolment_code(network, desk, &subject).await;
        let (status, enrolled) = phone.redeem(&code).await;
        assert_eq!(status, 200, "{enrolled}");
        assert_eq!(enrolled["subject"], json!(subject));
        let (status, session) = phone.sign_in().await;
        assert_eq!(status, 200, "{session}");
        phone
    }

    pub fn device(&self) -> DeviceKeyId {
        self.signer.device_id()
    }

    /// Redeems an enrolment code with this phone's key.
    pub async fn redeem(&self, code: &str) -> (u16, Value) {
        post(
            &self.client,
            format!("{}/patient/enrol", self.base),
            json!({ "code": code, "device_key": self.signer.public_jwk() }),
            None,
        )
        .await
    }

    /// Asks for a challenge.
    pub async fn challenge(&self) -> (u16, Value) {
        post(
            &self.client,
            format!("{}/patient/challenge", self.base),
            json!({ "device": self.device() }),
            None,
        )
        .await
    }

    /// Signs a challenge in; keeps the session on success.
    pub async fn sign_in(&mut self) -> (u16, Value) {
        let (status, challenge) = self.challenge().await;
        if status != 200 {
            return (status, challenge);
        }
        let challenge = challenge["challenge"]
            .as_str()
            .expect("challenge")
            .to_owned();
        let signed = DeviceChallenge {
            challenge: challenge.clone(),
            device: self.device(),
        }
        .signing_bytes()
        .expect("challenge bytes");
        let body = json!({ "device": self.device(), "challenge": challenge, "signature": URL_SAFE_NO_PAD.encode(self.signer.sign(&signed)) });
        let (status, session) = post(
            &self.client,
            format!("{}/patient/session", self.base),
            body,
            None,
        )
        .await;
        if status == 200 {
            self.session = session["session"].as_str().expect("session").to_owned();
        }
        (status, session)
    }

    /// A signed-in GET: the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        answer(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.session),
        )
        .await
    }

    /// A signed-in GET that must succeed.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A signed-in POST.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        post(
            &self.client,
            format!("{}{path}", self.base),
            body,
            Some(&self.session),
        )
        .await
    }

    /// Sends a decision with this device's signature, or `signature`.
    pub async fn decide(&self, decision: &Decision, signature: Option<Vec<u8>>) -> (u16, Value) {
        let signature = signature.unwrap_or_else(|| {
            self.signer
                .sign(&decision.signing_bytes().expect("decision bytes"))
        });
        self.post(
            "/patient/decisions",
            json!({ "decision": decision, "signature": URL_SAFE_NO_PAD.encode(signature) }),
        )
        .await
    }

    /// The signed revocation of `grant`, and its body.
    pub fn revocation(&self, grant: GrantId) -> Value {
        let revocation = Revocation {
            grant,
            subject: self.subject,
            device: self.device(),
            signed_at_ms: now_ms(),
        };
        let bytes = revocation.signing_bytes().expect("revocation bytes");
        self.signed("revocation", json!(revocation), &bytes)
    }

    /// Revokes a grant.
    pub async fn revoke(&self, grant: GrantId) -> (u16, Value) {
        self.post("/patient/revocations", self.revocation(grant))
            .await
    }

    /// The signed body of a new standing rule.
    pub fn rule_body(&self, rule: &StandingRule) -> Value {
        self.signed(
            "rule",
            json!(rule),
            &rule.signing_bytes().expect("rule bytes"),
        )
    }

    /// The signed body of a rule's revocation.
    pub fn rule_revocation(&self, rule: RuleId) -> Value {
        let revocation = RuleRevocation {
            rule,
            subject: self.subject,
            device: self.device(),
            signed_at_ms: now_ms(),
        };
        let bytes = revocation.signing_bytes().expect("rule revocation bytes");
        self.signed("revocation", json!(revocation), &bytes)
    }

    /// The body `{field: value, "signature": …}`, signed over `bytes` with this device's key.
    fn signed(&self, field: &str, value: Value, bytes: &[u8]) -> Value {
        let mut body = json!({ "signature": URL_SAFE_NO_PAD.encode(self.signer.sign(bytes)) });
        body[field] = value;
        body
    }

    /// Removes one of the patient's devices.
    pub async fn remove_device(&self, device: &DeviceKeyId) -> (u16, Value) {
        answer(
            self.client
                .delete(format!("{}/patient/devices/{device}", self.base))
                .bearer_auth(&self.session),
        )
        .await
    }
}

//! A patient's phone against the consent service's patient API: a device key,
//! enrolment with a desk code, challenge sign-in, and the signed acts
//! (decisions, revocations, rules, device removal), as the app makes them. The
//! flow is `locus_cli::phone`'s, the client `locus demo` uses; here its calls panic.

use std::ops::{Deref, DerefMut};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_cli::phone;
use locus_protocol::consent::{Decision, RuleRevocation, StandingRule};
use locus_protocol::device::DeviceKeyId;
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
    phone::post(client, url, body, bearer)
        .await
        .expect("request sent")
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
    phone::enrolment_code(
        &desk.node.http,
        &network.consent_service.member_url,
        subject,
    )
    .await
    .expect("enrolment code")
}

/// A patient's phone: the shared client (its key, subject and session read as
/// fields through `Deref`), with calls that panic rather than return errors.
#[derive(Debug)]
pub struct Phone(phone::Phone);

impl Deref for Phone {
    type Target = phone::Phone;

    fn deref(&self) -> &phone::Phone {
        &self.0
    }
}

impl DerefMut for Phone {
    fn deref_mut(&mut self) -> &mut phone::Phone {
        &mut self.0
    }
}

impl Phone {
    /// A new device key that is not enrolled yet.
    pub fn new(network: &TestNetwork, subject: PatientKey) -> Self {
        let base = network.consent_service.patient_url.clone();
        Self(phone::Phone::new(network.phone(), base, subject))
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

    /// Redeems an enrolment code with this phone's key.
    pub async fn redeem(&self, code: &str) -> (u16, Value) {
        self.0.redeem(code).await.expect("request sent")
    }

    /// Asks for a challenge.
    pub async fn challenge(&self) -> (u16, Value) {
        self.0.challenge().await.expect("request sent")
    }

    /// Signs a challenge in; keeps the session on success.
    pub async fn sign_in(&mut self) -> (u16, Value) {
        self.0.sign_in().await.expect("sign-in")
    }

    /// A signed-in GET: the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.0.get(path).await.expect("request sent")
    }

    /// A signed-in GET that must succeed.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A signed-in POST.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.0.post(path, body).await.expect("request sent")
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
        self.0
            .revocation(grant, now_ms())
            .expect("revocation bytes")
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

    /// Removes one of the patient's devices.
    pub async fn remove_device(&self, device: &DeviceKeyId) -> (u16, Value) {
        let url = format!("{}/patient/devices/{device}", self.base);
        let request = self.client.delete(url).bearer_auth(&self.session);
        phone::answer(request).await.expect("request sent")
    }
}

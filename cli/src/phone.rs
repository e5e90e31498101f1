//! A patient's phone against the consent service's patient API: its own device
//! key, enrolment with a desk's one-time code, challenge sign-in and signed acts.
//! `locus demo`, the OpenAPI fuzzer and the cross-service tests all use this one
//! client, so they walk the flow the same way.

use anyhow::{ensure, Context as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locus_protocol::consent::{DeviceChallenge, Revocation};
use locus_protocol::device::{DeviceKeyId, DeviceSigner};
use locus_protocol::ids::{GrantId, PatientKey};
use serde_json::{json, Value};

/// Sends `request`; the status and the JSON answer (`null` if none).
pub async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// POSTs `body` as JSON to `url` (with a bearer token if given); the status and
/// the JSON answer.
pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = client.post(&url).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    answer(request).await.with_context(|| format!("POST {url}"))
}

/// A one-time enrolment code for `subject` from a hospital's front desk
/// (`desk`, its member client), at the consent service's `members` URL.
pub async fn enrolment_code(
    desk: &reqwest::Client,
    members: &str,
    subject: &PatientKey,
) -> anyhow::Result<String> {
    let (status, code) = post(
        desk,
        format!("{members}/consent/enrolment-codes"),
        json!({ "subject": subject }),
        None,
    )
    .await?;
    ensure!(
        status == 200,
        "the desk could not get an enrolment code: {status} {code}"
    );
    Ok(code["code"]
        .as_str()
        .context("no enrolment code")?
        .to_owned())
}

/// A patient's phone: the patient, a device key it made itself and, once
/// signed in, a session.
pub struct Phone {
    pub client: reqwest::Client,
    /// The consent service's patient API.
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
    /// A new device key for `subject`, not enrolled yet; `client` trusts the
    /// consent service's CA.
    pub fn new(client: reqwest::Client, base: String, subject: PatientKey) -> Self {
        Self {
            client,
            base,
            signer: DeviceSigner::generate_p256(),
            subject,
            session: String::new(),
        }
    }

    /// Enrols with a desk's `code` and signs in.
    pub async fn enrol(mut self, code: &str) -> anyhow::Result<Self> {
        let (status, enrolled) = self.redeem(code).await?;
        ensure!(status == 200, "enrolment failed: {status} {enrolled}");
        let (status, session) = self.sign_in().await?;
        ensure!(status == 200, "sign-in failed: {status} {session}");
        Ok(self)
    }

    pub fn device(&self) -> DeviceKeyId {
        self.signer.device_id()
    }

    /// Redeems an enrolment code with this phone's key.
    pub async fn redeem(&self, code: &str) -> anyhow::Result<(u16, Value)> {
        let body = json!({ "code": code, "device_key": self.signer.public_jwk() });
        post(&self.client, self.url("/patient/enrol"), body, None).await
    }

    /// Asks for a sign-in challenge.
    pub async fn challenge(&self) -> anyhow::Result<(u16, Value)> {
        let body = json!({ "device": self.device() });
        post(&self.client, self.url("/patient/challenge"), body, None).await
    }

    /// Signs a fresh challenge in; keeps the session on success.
    pub async fn sign_in(&mut self) -> anyhow::Result<(u16, Value)> {
        let (status, challenge) = self.challenge().await?;
        if status != 200 {
            return Ok((status, challenge));
        }
        let challenge = challenge["challenge"]
            .as_str()
            .context("no sign-in challenge")?
            .to_owned();
        let signed = DeviceChallenge {
            challenge: challenge.clone(),
            device: self.device(),
        }
        .signing_bytes()?;
        let body = json!({ "device": self.device(), "challenge": challenge, "signature": self.sign(&signed) });
        let (status, session) =
            post(&self.client, self.url("/patient/session"), body, None).await?;
        if status == 200 {
            self.session = session["session"]
                .as_str()
                .context("no session")?
                .to_owned();
        }
        Ok((status, session))
    }

    /// A signed-in GET: the status and the JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let request = self.client.get(self.url(path)).bearer_auth(&self.session);
        answer(request).await.with_context(|| format!("GET {path}"))
    }

    /// A signed-in GET that must answer 200.
    pub async fn get_ok(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(path).await?;
        ensure!(status == 200, "the phone's GET {path}: {status} {body}");
        Ok(body)
    }

    /// A signed-in POST.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        post(&self.client, self.url(path), body, Some(&self.session)).await
    }

    /// The body `{field: value, "signature": …}`, signed over `bytes` with this
    /// device's key.
    pub fn signed(&self, field: &str, value: Value, bytes: &[u8]) -> Value {
        let mut body = json!({ "signature": self.sign(bytes) });
        body[field] = value;
        body
    }

    /// The signed body revoking `grant`, signed at `signed_at_ms`.
    pub fn revocation(&self, grant: GrantId, signed_at_ms: i64) -> anyhow::Result<Value> {
        let revocation = Revocation {
            grant,
            subject: self.subject,
            device: self.device(),
            signed_at_ms,
        };
        let bytes = revocation.signing_bytes()?;
        Ok(self.signed("revocation", serde_json::to_value(&revocation)?, &bytes))
    }

    /// This device's signature over `bytes`, in base64url.
    fn sign(&self, bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.signer.sign(bytes))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

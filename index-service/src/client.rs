//! A client of the index API, for hospital connectors (mutual TLS).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use locus_platform::http::ErrorBody;

use crate::api::{
    DiscoverRequest, DiscoverResponse, PublishRequest, PublishResponse, PublishedPointer,
    WithdrawRequest,
};
use locus_protocol::ids::PointerId;

#[derive(Debug, thiserror::Error)]
pub enum IndexClientError {
    #[error("the index cannot be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the index refused {0}")]
    Refused(#[from] ServiceRefusal),
}

/// A Locus service's answer with an error status: the status and its JSON
/// error (code `unknown` and no message when the body is not one).
#[derive(Debug, thiserror::Error)]
#[error("({status}, {code}): {message}")]
pub struct ServiceRefusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// POSTs `body` as JSON to a Locus service and reads its JSON answer; an error
/// status is the service's [`ServiceRefusal`].
pub async fn post_json<T, R, E>(http: &reqwest::Client, url: String, body: &T) -> Result<R, E>
where
    T: serde::Serialize + ?Sized,
    R: serde::de::DeserializeOwned,
    E: From<reqwest::Error> + From<ServiceRefusal>,
{
    let response = http.post(url).json(body).send().await?;
    let status = response.status();
    if !status.is_success() {
        let body: Option<ErrorBody> = response.json().await.ok();
        return Err(ServiceRefusal {
            status: status.as_u16(),
            code: body
                .as_ref()
                .map_or_else(|| "unknown".into(), |b| b.error.clone()),
            message: body.map_or_else(String::new, |b| b.message),
        }
        .into());
    }
    Ok(response.json().await?)
}

#[derive(Debug, Clone)]
pub struct IndexClient {
    base: String,
    http: reqwest::Client,
}

impl IndexClient {
    /// `http` must carry the member's client certificate.
    pub fn new(service_url: &str, http: reqwest::Client) -> Self {
        Self {
            base: format!("{}/index", service_url.trim_end_matches('/')),
            http,
        }
    }

    async fn post<T: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, IndexClientError> {
        post_json(&self.http, format!("{}/{path}", self.base), body).await
    }

    pub async fn publish(
        &self,
        pointers: Vec<PublishedPointer>,
    ) -> Result<PublishResponse, IndexClientError> {
        self.post("pointers", &PublishRequest { pointers }).await
    }

    pub async fn withdraw(
        &self,
        pointer_ids: Vec<PointerId>,
    ) -> Result<serde_json::Value, IndexClientError> {
        self.post("pointers/withdraw", &WithdrawRequest { pointer_ids })
            .await
    }

    /// Discovers under a grant's discovery token.
    pub async fn discover(&self, discovery: &str) -> Result<DiscoverResponse, IndexClientError> {
        self.post(
            "discover",
            &DiscoverRequest {
                discovery: Some(discovery.to_owned()),
            },
        )
        .await
    }
}

/// A sealed pointer as the index wire carries it.
pub fn encode_sealed(sealed: &[u8]) -> String {
    BASE64.encode(sealed)
}

//! Plain HTTP reads the cross-service tests share.

use serde_json::Value;

/// GETs `url` as `client` and parses the JSON answer, whatever its status:
/// the tests read services' JSON documents and states this way.
pub async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("a JSON answer")
}

//! Plain HTTP reads the cross-service tests share.

use serde_json::Value;

/// POSTs `body` as JSON to `url` as `client` and returns the JSON answer;
/// panics unless 200: for the steps that set a test up.
pub async fn post_ok(client: &reqwest::Client, url: String, body: Value) -> Value {
    let (status, body) = crate::phone::post(client, url.clone(), body, None).await;
    assert_eq!(status, 200, "POST {url}: {body}");
    body
}

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

/// GETs `url` as `client` and reads the answer as text, whatever its status.
pub async fn get_text(client: &reqwest::Client, url: String) -> String {
    let response = client.get(url).send().await.expect("request sent");
    response.text().await.expect("a text answer")
}

/// The string `field` of each object in a JSON array answer (a patient's
/// history, a list of grants); panics on any other shape.
pub fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    let items = list.as_array().expect("a JSON array");
    let string = |item: &'a Value| item[field].as_str().expect("a string field");
    items.iter().map(string).collect()
}

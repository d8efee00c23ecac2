//! JSON/HTTP as the tests' clients send it: one URL helper, one way to read
//! an answer, one JSON POST.

use reqwest::StatusCode;
use serde_json::Value;

use super::TestApp;

/// `path` on `app`'s HTTP listener.
pub fn url(app: &TestApp, path: &str) -> String {
    format!(
        "http://{}{path}",
        app.http_addr.expect("the HTTP listener is on")
    )
}

/// The answer's status and JSON body; a body that is not JSON fails the
/// test with what came instead.
pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// POST `body` as JSON to `path` with `token` as the bearer.
pub async fn post_json(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url(app, path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

//! A minimal AWS client for moto: the local runtime only provisions and polls, so raw JSON and
//! query-protocol calls keep the SDK (and its build time) out of this binary. moto checks no
//! signatures; it routes by the service named in the credential scope.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::template::REGION;

#[derive(Clone)]
pub struct Moto {
    pub url: String,
    http: reqwest::Client,
}

impl Moto {
    pub fn new(url: String) -> Self {
        Self { url, http: reqwest::Client::new() }
    }

    fn authorization(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        )
    }

    /// The JSON protocols (DynamoDB, Streams, SQS: 1.0; Cognito, SSM: 1.1).
    pub async fn json(&self, service: &str, target: &str, body: Value) -> Result<Value> {
        let version = if matches!(service, "dynamodb" | "sqs") { "1.0" } else { "1.1" };
        let request = self
            .http
            .post(&self.url)
            .header("X-Amz-Target", target)
            .header("Content-Type", format!("application/x-amz-json-{version}"))
            .header("Authorization", Self::authorization(service))
            .body(body.to_string());
        let text = answer(request, target, target).await?;
        if text.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&text).with_context(|| format!("{target}: {text}"))
        }
    }

    /// The query protocol (SNS): form parameters in, XML out (callers only need success).
    pub async fn query(&self, service: &str, params: &[(&str, String)]) -> Result<String> {
        let request = self.http.post(&self.url).header("Authorization", Self::authorization(service)).form(params);
        answer(request, &format!("{service} query"), &format!("{service} {:?}", params.first())).await
    }

    /// REST-style calls (S3, SES v2).
    pub async fn rest(&self, service: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<()> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", Self::authorization(service));
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        answer(request, &format!("{service} {path}"), &format!("{service} {path}")).await?;
        Ok(())
    }

    pub async fn sqs(&self, action: &str, body: Value) -> Result<Value> {
        self.json("sqs", &format!("AmazonSQS.{action}"), body).await
    }

    pub async fn dynamodb(&self, action: &str, body: Value) -> Result<Value> {
        self.json("dynamodb", &format!("DynamoDB_20120810.{action}"), body).await
    }

    pub async fn streams(&self, action: &str, body: Value) -> Result<Value> {
        self.json("dynamodb", &format!("DynamoDBStreams_20120810.{action}"), body).await
    }

    pub async fn cognito(&self, action: &str, body: Value) -> Result<Value> {
        self.json("cognito-idp", &format!("AWSCognitoIdentityProviderService.{action}"), body).await
    }
}

/// Sends `request` and returns moto's answer; an error when moto is unreachable (named by
/// `target`) or answers with a failure status (named by `call`, with moto's text).
async fn answer(request: reqwest::RequestBuilder, target: &str, call: &str) -> Result<String> {
    let response = request.send().await.with_context(|| format!("{target}: moto unreachable"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{call}: {status}: {text}");
    }
    Ok(text)
}

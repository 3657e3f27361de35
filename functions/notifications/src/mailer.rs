//! Sending e-mail: SES v2 in production, fakes in tests.

use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};

use crate::BoxFuture;

/// An e-mail ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Sends e-mail; answers the provider's message id.
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<String>>;
}

/// SES v2 from `from` (a sender in a verified identity's domain). SES's `SendEmail` takes no
/// idempotency key: a send whose answer is lost cannot be told apart from one that failed.
pub struct Ses {
    pub client: aws_sdk_sesv2::Client,
    pub from: String,
}

impl Mailer for Ses {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<String>> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        Box::pin(async move {
            let content = |s: &str| Content::builder().data(s).charset("UTF-8").build();
            let message = Message::builder()
                .subject(content(&email.subject)?)
                .body(Body::builder().text(content(&email.text)?).html(content(&email.html)?).build())
                .build();
            let out = self
                .client
                .send_email()
                .from_email_address(&self.from)
                .destination(Destination::builder().to_addresses(&email.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("SES SendEmail failed: {}", describe(&e)))?;
            Ok(out.message_id().unwrap_or_default().to_owned())
        })
    }
}

/// What may be logged of a failed send: SES's error code and HTTP status, never its message,
/// which names the addresses it refused ("... failed the check in region US-EAST-1: ann@...").
pub fn describe<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::ServiceError(e) => {
            format!("{} (HTTP {})", e.err().code().unwrap_or("unknown error code"), e.raw().status().as_u16())
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(e) if e.is_timeout() => "timed out while sending".to_owned(),
        SdkError::DispatchFailure(e) if e.is_io() => "connection failed".to_owned(),
        SdkError::DispatchFailure(_) => "request not sent".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request not built".to_owned(),
        _ => "unknown failure".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};

    use super::*;

    /// An SES endpoint that refuses every send the way SES's sandbox does, naming the address.
    async fn refusing_ses() -> String {
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::BAD_REQUEST,
                [("content-type", "application/json"), ("x-amzn-errortype", "MessageRejected")],
                r#"{"message":"Email address is not verified. The following identities failed the check in region US-EAST-1: ann.lee@example.com"}"#,
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    #[tokio::test]
    async fn a_refused_send_says_why_without_the_address() {
        let conf = aws_sdk_sesv2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(refusing_ses().await)
            .build();
        let ses = Ses { client: aws_sdk_sesv2::Client::from_conf(conf), from: "no-reply@roost.test".into() };
        let email = Email { to: "ann.lee@example.com".into(), subject: "s".into(), text: "t".into(), html: "h".into() };
        let err = format!("{:#}", ses.send(&email).await.unwrap_err());
        assert_eq!(err, "SES SendEmail failed: MessageRejected (HTTP 400)");
    }
}

//! The payment-events queue, as the webhook uses it: verified Stripe events go there, verbatim,
//! with the message attribute `source = stripe`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use futures::future::BoxFuture;
use shared::config::{self, ConfigError};

/// The message attribute that tells payment-events a body is a Stripe event.
pub const SOURCE_ATTRIBUTE: &str = "source";
pub const SOURCE_STRIPE: &str = "stripe";

/// Where verified events go: the payment-events queue (a fake in tests).
pub trait EventQueue: Send + Sync {
    /// Sends `body` with `source = stripe`; returns the queue's message id.
    fn send<'a>(&'a self, body: &'a str) -> BoxFuture<'a, anyhow::Result<String>>;
}

/// The payment-events SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl SqsQueue {
    /// The queue the template names (`PAYMENT_EVENTS_QUEUE_URL`), with a client that gives up
    /// fast: a webhook must be answered fast, so a queue that hangs fails the request (Stripe
    /// retries).
    pub fn from_config(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(shared::dependency::WatchDependency)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(6))
                    .build(),
            )
            .build();
        Ok(Self {
            client: aws_sdk_sqs::Client::from_conf(sqs),
            queue_url: config::required("PAYMENT_EVENTS_QUEUE_URL")?,
        })
    }
}

impl EventQueue for SqsQueue {
    fn send<'a>(&'a self, body: &'a str) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let source = aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(SOURCE_STRIPE)
                .build()?;
            let out = self
                .client
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(body)
                .message_attributes(SOURCE_ATTRIBUTE, source)
                .send()
                .await
                .map_err(|e| anyhow::Error::new(e).context("SQS SendMessage"))?;
            Ok(out.message_id.unwrap_or_default())
        })
    }
}

/// A queue that keeps what it is sent (tests).
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub sent: std::sync::Mutex<Vec<String>>,
    pub fail: bool,
}

impl EventQueue for MemoryQueue {
    fn send<'a>(&'a self, body: &'a str) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            if self.fail {
                anyhow::bail!("queue unavailable");
            }
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.push(body.to_owned());
            Ok(format!("m-{}", sent.len()))
        })
    }
}

impl MemoryQueue {
    pub fn bodies(&self) -> Vec<String> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Wraps a queue for the state.
pub fn shared_queue<Q: EventQueue + 'static>(q: Q) -> Arc<dyn EventQueue> {
    Arc::new(q)
}

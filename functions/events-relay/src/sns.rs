//! SNS, where the relay publishes: the [`Publisher`] port and its SNS adapter.

use std::future::Future;

use crate::rules::Outgoing;

/// The SNS message attribute the subscriptions' filter policies match on.
pub const TYPE_ATTRIBUTE: &str = "type";

/// Where events go: SNS in production, a fake in tests.
pub trait Publisher: Send + Sync {
    /// Publishes one event; returns the broker's message id.
    fn publish(&self, message: &Outgoing) -> impl Future<Output = Result<String, PublishError>> + Send;
}

/// A borrowed publisher publishes too (tests keep theirs, to see what was published).
impl<P: Publisher> Publisher for &P {
    fn publish(&self, message: &Outgoing) -> impl Future<Output = Result<String, PublishError>> + Send {
        (**self).publish(message)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0:#}")]
pub struct PublishError(pub anyhow::Error);

/// `Publish` to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into() }
    }
}

impl Publisher for SnsPublisher {
    async fn publish(&self, message: &Outgoing) -> Result<String, PublishError> {
        let event_type = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&message.event_type)
            .build()
            .map_err(|e| PublishError(anyhow::Error::new(e).context("build the type attribute")))?;
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(&message.body)
            .message_attributes(TYPE_ATTRIBUTE, event_type)
            .send()
            .await
            .map_err(|e| PublishError(anyhow::Error::new(e).context("SNS Publish")))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

//! What every Roost function crate stands on: configuration, time, ids, money, the one error type
//! and its HTTP mapping, request extractors, the caller's identity, the DynamoDB table wrapper,
//! pagination cursors and list pages (`page`), the HTTP request layers and caching (`caching`), ended sessions (`sessions`),
//! tracing setup, the business metrics (`metrics`, CloudWatch EMF), the domain-event envelope and
//! outbox (`events`) and the SQS consumer helpers (`sqs`).
//!
//! Nothing here knows one context's rules: a type or helper belongs here only when two or more
//! contexts need the same thing, or when it defines a contract between them (keys, wire formats).

pub mod booking;
pub mod caching;
pub mod clock;
pub mod config;
pub mod currencies;
pub mod cursor;
pub mod dependency;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod keys;
pub mod listing;
pub mod metrics;
pub mod money;
pub mod night;
pub mod openapi;
pub mod page;
pub mod payout;
pub mod sessions;
pub mod sqs;
pub mod table;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;

#[cfg(test)]
pub(crate) mod test_support;

pub use clock::{Clock, SharedClock};
pub use error::{ApiError, FieldError};
pub use identity::Caller;
pub use money::{Currency, Money};
pub use table::{Key, Table, TableError};

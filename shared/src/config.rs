//! Configuration from the environment (the template's `Environment.Variables`) and SSM.
//!
//! Read once at init in `main`; a missing value fails the cold start loudly instead of running
//! with a silent default.

use std::fmt::Display;
use std::str::FromStr;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is missing or empty")]
    Missing(String),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
    #[error("SSM parameter {name} could not be read")]
    Parameter {
        name: String,
        #[source]
        source: anyhow::Error,
    },
}

/// The value of `name`; missing, empty or non-UTF-8 is an error naming the variable.
pub fn required(name: &str) -> Result<String, ConfigError> {
    required_in(&env_lookup, name)
}

/// `name` parsed as `T`; the error names the variable and the parse failure.
pub fn parse<T>(name: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    parse_in(&env_lookup, name)
}

/// An integer setting that must lie in `bounds` (a duration in minutes or hours, say).
pub fn parse_bounded(name: &str, bounds: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
    parse_bounded_in(&env_lookup, name, bounds)
}

fn parse_bounded_in(lookup: &Lookup, name: &str, bounds: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
    let value: i64 = parse_in(lookup, name)?;
    if bounds.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: name.to_owned(),
            reason: format!("must be {} to {}", bounds.start(), bounds.end()),
        })
    }
}

/// The value of `name`, or `None` when it is unset or empty.
pub fn optional(name: &str) -> Option<String> {
    optional_in(&env_lookup, name)
}

/// A SecureString parameter, decrypted. Secrets cannot live in env vars on Lambda, so `main`
/// reads them here once at init.
pub async fn secure_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<SecretString, ConfigError> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| ConfigError::Parameter { name: name.to_owned(), source: anyhow::Error::new(e) })?;
    match out.parameter.and_then(|p| p.value) {
        Some(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => Err(ConfigError::Parameter { name: name.to_owned(), source: anyhow::anyhow!("parameter has no value") }),
    }
}

/// The SDK config every client is built from. Endpoints come from `AWS_ENDPOINT_URL*` (the local
/// stack points them at the emulators), so no code path differs between local and cloud.
///
/// Every call is bounded ([`sdk_timeouts`]), so a dependency that hangs costs a request seconds,
/// not the function's whole timeout; retries are the SDK's standard three attempts with backoff.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(sdk_timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .load()
        .await
}

/// Attempts per SDK call (the first and two retries).
pub const SDK_MAX_ATTEMPTS: u32 = 3;
/// One attempt: DynamoDB, SQS, SNS and SES answer in milliseconds; an attempt still open after
/// this is lost (a dropped connection, a stuck host) and a retry on a fresh one is faster.
pub const SDK_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(3_000);
/// A whole call, retries and backoff included: under the 10 s timeout of an HTTP function with
/// room for a second call and the answer (docs/reliability.md, "Deadlines").
pub const SDK_OPERATION_TIMEOUT: Duration = Duration::from_millis(6_000);
/// A connection: local or in-region endpoints connect in milliseconds.
pub const SDK_CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The timeouts of [`aws_config`].
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(SDK_CONNECT_TIMEOUT)
        .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
        .operation_timeout(SDK_OPERATION_TIMEOUT)
        .build()
}

pub(crate) type Lookup = dyn Fn(&str) -> Result<Option<String>, String>;

pub(crate) fn env_lookup(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err("not valid UTF-8".to_owned()),
    }
}

fn required_in(lookup: &Lookup, name: &str) -> Result<String, ConfigError> {
    match lookup(name) {
        Ok(Some(v)) if !v.trim().is_empty() => Ok(v),
        Ok(_) => Err(ConfigError::Missing(name.to_owned())),
        Err(reason) => Err(ConfigError::Invalid { name: name.to_owned(), reason }),
    }
}

pub(crate) fn parse_in<T>(lookup: &Lookup, name: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    let raw = required_in(lookup, name)?;
    raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name: name.to_owned(), reason: e.to_string() })
}

pub(crate) fn optional_in(lookup: &Lookup, name: &str) -> Option<String> {
    lookup(name).ok().flatten().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
pub(crate) fn fake_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<Option<String>, String> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| Ok(vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn bounded_settings_say_their_bounds() {
        let env = fake_env(&[("HOLD_MINUTES", "15"), ("TOO_LONG", "1441"), ("ZERO", "0")]);
        assert_eq!(parse_bounded_in(&env, "HOLD_MINUTES", 1..=1440).unwrap(), 15);
        for name in ["TOO_LONG", "ZERO"] {
            match parse_bounded_in(&env, name, 1..=1440) {
                Err(ConfigError::Invalid { reason, .. }) => assert_eq!(reason, "must be 1 to 1440"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(parse_bounded_in(&env, "UNSET", 1..=1440), Err(ConfigError::Missing(_))));
    }

    #[test]
    fn required_names_the_missing_variable() {
        let env = fake_env(&[("TABLE_NAME", "roost")]);
        assert_eq!(required_in(&env, "TABLE_NAME").unwrap(), "roost");
        let err = required_in(&env, "QUEUE_URL").unwrap_err();
        assert!(matches!(err, ConfigError::Missing(ref n) if n == "QUEUE_URL"));
        assert!(err.to_string().contains("QUEUE_URL"));
    }

    #[test]
    fn empty_is_missing_not_a_default() {
        let env = fake_env(&[("TABLE_NAME", ""), ("BLANK", "  ")]);
        assert!(matches!(required_in(&env, "TABLE_NAME"), Err(ConfigError::Missing(_))));
        assert!(required_in(&env, "BLANK").is_err());
        assert_eq!(optional_in(&env, "TABLE_NAME"), None);
        assert_eq!(optional_in(&env, "NOPE"), None);
    }

    #[test]
    fn non_utf8_is_invalid() {
        let env = |_: &str| Err("not valid UTF-8".to_owned());
        let err = required_in(&env, "X").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }));
    }

    #[test]
    fn parse_reports_the_variable_and_reason() {
        let env = fake_env(&[("PORT", "80x"), ("LIMIT", " 25 ")]);
        let err = parse_in::<u16>(&env, "PORT").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("PORT") && msg.contains("invalid digit"), "{msg}");
        assert_eq!(parse_in::<u16>(&env, "LIMIT").unwrap(), 25);
        assert!(matches!(parse_in::<u16>(&env, "MISSING"), Err(ConfigError::Missing(_))));
    }

    #[test]
    fn real_environment_is_read() {
        // PATH is set in every test environment; avoids `set_var` (unsafe in edition 2024).
        assert!(required("PATH").is_ok());
        assert!(optional("ROOST_SURELY_UNSET_VARIABLE").is_none());
    }

    #[tokio::test]
    async fn secure_parameter_decrypts_and_reports_failures() {
        let stub = crate::test_support::AwsStub::start(|target, body| {
            assert_eq!(target, "AmazonSSM.GetParameter");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(req["WithDecryption"], true);
            match req["Name"].as_str().unwrap() {
                "/roost/cursor-key" => (
                    200,
                    r#"{"Parameter":{"Name":"/roost/cursor-key","Type":"SecureString","Value":"s3cret"}}"#.to_owned(),
                ),
                _ => (400, r#"{"__type":"ParameterNotFound","message":"nope"}"#.to_owned()),
            }
        })
        .await;
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::Config::builder()
                .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
                .region(aws_sdk_ssm::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_ssm::config::Credentials::new("test", "test", None, None, "test"))
                .endpoint_url(stub.url())
                .build(),
        );
        let secret = secure_parameter(&ssm, "/roost/cursor-key").await.unwrap();
        assert_eq!(secret.expose_secret(), "s3cret");
        let err = secure_parameter(&ssm, "/roost/missing").await.unwrap_err();
        assert!(err.to_string().contains("/roost/missing"));
    }
}

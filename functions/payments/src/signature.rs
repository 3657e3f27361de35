//! `Stripe-Signature` verification, as Stripe documents it, as plain functions.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]`. The signed payload is
//! `"{t}.{raw body}"` and each `v1` is the hex HMAC-SHA256 of it under a webhook endpoint secret.
//! A request is genuine when **any** `v1` matches the HMAC under **any** accepted secret (Stripe
//! sends one `v1` per active secret while a secret is being rolled; we accept a second secret of
//! our own during a rotation), compared in constant time, and `t` is within the tolerance of our
//! clock. The body is the exact bytes received: it is never parsed or re-encoded before this.
//!
//! Every failure is one `SignatureError` value for the log; the HTTP answer is the same for all
//! of them, so a forger learns nothing from it.

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use shared::config::{self, ConfigError};
use subtle::ConstantTimeEq;

/// Stripe's default: 5 minutes either side of our clock.
pub const TOLERANCE_SECONDS: i64 = 300;
/// A header longer than this is not Stripe's (it sends a few signatures of 64 hex digits).
pub const MAX_HEADER_LEN: usize = 4096;
const SIGNATURE_LEN: usize = 32;

/// The accepted webhook secrets: the current one, and the previous one during a rotation.
#[derive(Clone)]
pub struct WebhookSecrets(pub Vec<SecretString>);

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets({} secret(s))", self.0.len())
    }
}

impl WebhookSecrets {
    /// The SSM SecureStrings the template names, read once at start:
    /// `STRIPE_WEBHOOK_SECRET_PARAMETER`, and `STRIPE_WEBHOOK_SECRET_PREVIOUS_PARAMETER` during a
    /// rotation.
    pub async fn from_config(ssm: &aws_sdk_ssm::Client) -> Result<Self, ConfigError> {
        let previous = config::optional("STRIPE_WEBHOOK_SECRET_PREVIOUS_PARAMETER");
        let (current, previous) = tokio::join!(
            async { config::secure_parameter(ssm, &config::required("STRIPE_WEBHOOK_SECRET_PARAMETER")?).await },
            async {
                match &previous {
                    Some(name) => config::secure_parameter(ssm, name).await.map(Some),
                    None => Ok::<_, ConfigError>(None),
                }
            },
        );
        let mut secrets = vec![current?];
        secrets.extend(previous?);
        Ok(Self(secrets))
    }
}

/// Why a request was refused (logged, never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    #[error("the timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches the body under any accepted secret")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// The parts of a `Stripe-Signature` header that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader {
    pub timestamp: i64,
    /// Every `v1` value that is 64 hex digits, decoded. Others are ignored (as Stripe's
    /// libraries ignore schemes they do not know).
    pub signatures: Vec<[u8; SIGNATURE_LEN]>,
}

/// Parses the header: exactly one `t` (an integer), any number of `v1`; other keys are ignored.
pub fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed);
                }
                timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?);
            }
            "v1" => {
                if let Some(sig) = decode_hex(value) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    Ok(ParsedHeader { timestamp, signatures })
}

/// Verifies `header` for `body` against `secrets` at `now`. The tolerance applies both ways
/// (a timestamp from the future is as suspect as an old one).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&SecretString],
    now: Timestamp,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let parsed = parse_header(header.ok_or(SignatureError::Missing)?)?;
    let age = now.as_second().saturating_sub(parsed.timestamp);
    if age.saturating_abs() > tolerance_seconds {
        return Err(SignatureError::Stale);
    }
    // Every candidate against every secret, without stopping early: the time taken does not
    // depend on which one matched.
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = compute(secret.expose_secret().as_bytes(), parsed.timestamp, body);
        for candidate in &parsed.signatures {
            matched |= expected.ct_eq(candidate);
        }
    }
    if bool::from(matched) { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn compute(secret: &[u8], timestamp: i64, body: &[u8]) -> [u8; SIGNATURE_LEN] {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return [0; SIGNATURE_LEN],
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// A `Stripe-Signature` header as Stripe would send it (for tests and sample events).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex(&compute(secret.as_bytes(), timestamp, body)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<[u8; SIGNATURE_LEN]> {
    let s = s.as_bytes();
    if s.len() != SIGNATURE_LEN * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; SIGNATURE_LEN];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_primary";
    const OLD: &str = "whsec_test_previous";
    const BODY: &[u8] = b"{\n  \"id\": \"evt_1\",\n  \"type\": \"payment_intent.succeeded\"\n}";

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn check(header: Option<&str>, body: &[u8], secrets: &[&str], at: Timestamp) -> Result<(), SignatureError> {
        let owned: Vec<SecretString> = secrets.iter().map(|s| secret(s)).collect();
        let refs: Vec<&SecretString> = owned.iter().collect();
        verify(header, body, &refs, at, TOLERANCE_SECONDS)
    }

    #[test]
    fn a_genuine_signature_verifies() {
        let t = now().as_second();
        let header = sign(SECRET, t, BODY);
        assert_eq!(check(Some(&header), BODY, &[SECRET], now()), Ok(()));
        // Exactly the value Stripe documents: hex HMAC-SHA256 of "{t}.{body}".
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(BODY);
        assert_eq!(header, format!("t={t},v1={}", hex(&mac.finalize().into_bytes())));
    }

    #[test]
    fn a_known_vector_from_an_independent_implementation() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_x",b"1700000000.{}",hashlib.sha256).hexdigest())'
        let sig = compute(b"whsec_x", 1_700_000_000, b"{}");
        assert_eq!(hex(&sig), "be8cb8325f2202445260a855532f967e30ad2a9394ce28da66ee02880ddcb661");
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let t = now().as_second();
        let good = hex(&compute(SECRET.as_bytes(), t, BODY));
        let bad = "0".repeat(64);
        for header in [
            format!("t={t},v1={bad},v1={good}"),
            format!("t={t},v0={bad},v1={good}"),
            format!("v1={good},t={t}"),
            format!("t={t}, v1={good}, scheme=x"),
            format!("t={t},v1=short,v1={good}"),
            format!("t={t},v1={}", good.to_uppercase()),
        ] {
            assert_eq!(check(Some(&header), BODY, &[SECRET], now()), Ok(()), "{header}");
        }
    }

    #[test]
    fn the_second_secret_is_accepted_during_a_rotation() {
        let t = now().as_second();
        let old = sign(OLD, t, BODY);
        assert_eq!(check(Some(&old), BODY, &[SECRET, OLD], now()), Ok(()));
        assert_eq!(check(Some(&old), BODY, &[SECRET], now()), Err(SignatureError::Mismatch));
        let new = sign(SECRET, t, BODY);
        assert_eq!(check(Some(&new), BODY, &[SECRET, OLD], now()), Ok(()));
        assert_eq!(check(Some(&new), BODY, &[], now()), Err(SignatureError::NoSecret));
    }

    #[test]
    fn a_wrong_secret_a_forgery_or_an_altered_body_is_refused() {
        let t = now().as_second();
        let header = sign(SECRET, t, BODY);
        assert_eq!(check(Some(&sign("whsec_other", t, BODY)), BODY, &[SECRET], now()), Err(SignatureError::Mismatch));
        let forged = format!("t={t},v1={}", "ab".repeat(32));
        assert_eq!(check(Some(&forged), BODY, &[SECRET], now()), Err(SignatureError::Mismatch));
        let mut altered = BODY.to_vec();
        altered[10] ^= 1;
        assert_eq!(check(Some(&header), &altered, &[SECRET], now()), Err(SignatureError::Mismatch));
        // Re-encoding the same JSON (whitespace) is an altered body too: the bytes are signed.
        let compact = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        assert_eq!(check(Some(&header), compact, &[SECRET], now()), Err(SignatureError::Mismatch));
        // Moving the timestamp breaks the signature, even inside the tolerance.
        let moved = header.replacen(&format!("t={t}"), &format!("t={}", t - 1), 1);
        assert_eq!(check(Some(&moved), BODY, &[SECRET], now()), Err(SignatureError::Mismatch));
        let empty = sign(SECRET, t, b"");
        assert_eq!(check(Some(&empty), BODY, &[SECRET], now()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_tolerance_is_five_minutes_either_way() {
        let t = now().as_second();
        for (offset, ok) in [(0, true), (300, true), (-300, true), (301, false), (-301, false), (86_400, false)] {
            let header = sign(SECRET, t - offset, BODY);
            let expected = if ok { Ok(()) } else { Err(SignatureError::Stale) };
            assert_eq!(check(Some(&header), BODY, &[SECRET], now()), expected, "offset {offset}");
        }
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        let t = now().as_second();
        let good = hex(&compute(SECRET.as_bytes(), t, BODY));
        assert_eq!(check(None, BODY, &[SECRET], now()), Err(SignatureError::Missing));
        for (header, why) in [
            (String::new(), SignatureError::Malformed),
            (format!("v1={good}"), SignatureError::Malformed),
            (format!("t=,v1={good}"), SignatureError::Malformed),
            (format!("t=-5,v1={good}"), SignatureError::Malformed),
            (format!("t=12a,v1={good}"), SignatureError::Malformed),
            (format!("t={t},t={t},v1={good}"), SignatureError::Malformed),
            (format!("t={t};v1={good}"), SignatureError::Malformed),
            (format!("t=99999999999999999999999,v1={good}"), SignatureError::Malformed),
            (format!("t={t}"), SignatureError::NoSignature),
            (format!("t={t},v0={good}"), SignatureError::NoSignature),
            (format!("t={t},v1=zz{}", &good[2..]), SignatureError::NoSignature),
            (format!("t={t},v1={good}0"), SignatureError::NoSignature),
            (format!("t={t},v1={}", "a".repeat(MAX_HEADER_LEN)), SignatureError::Malformed),
        ] {
            assert_eq!(check(Some(&header), BODY, &[SECRET], now()), Err(why), "{header:.80}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = core::array::from_fn(|i| (i * 9) as u8);
        assert_eq!(decode_hex(&hex(&bytes)), Some(bytes));
        assert_eq!(decode_hex("00"), None);
    }
}

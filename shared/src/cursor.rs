//! Signed pagination cursors.
//!
//! A cursor is `base64url(position JSON) "." base64url(HMAC-SHA256)`, the MAC taken over the
//! position AND the scope (route, caller, filters), so a cursor only works where it was issued:
//! forged, truncated or replayed on another route, caller or filter set, it is a 400
//! `invalid_cursor`, never a 500 and never someone else's page. The position is readable by the
//! client (it is a table key, nothing secret); it is only tamper-proof.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::config::ConfigError;
use crate::error::ApiError;
use crate::table::Item;

/// Shortest accepted key, in bytes: HMAC-SHA256's block-size security needs at least 256 bits.
pub const MIN_KEY_BYTES: usize = 32;
/// Longer tokens are refused before any decoding work.
const MAX_TOKEN_LEN: usize = 4096;
const DOMAIN: &[u8] = b"roost-cursor-v1";

/// What a cursor is bound to. `filters` are the query's filter values as the handler parsed
/// them (order does not matter); leave out `limit` and `cursor` themselves.
#[derive(Debug, Clone, Copy)]
pub struct CursorScope<'a> {
    pub route: &'a str,
    pub caller: Option<&'a str>,
    pub filters: &'a [(&'a str, String)],
}

#[derive(Clone)]
pub struct CursorKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

/// The environment variable naming the cursor key's SSM SecureString (the template sets it on
/// every function that lists).
pub const CURSOR_KEY_PARAMETER: &str = "CURSOR_KEY_PARAMETER";

impl CursorKey {
    /// The key named by [`CURSOR_KEY_PARAMETER`], read from SSM once at init.
    pub async fn from_parameter(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let secret = crate::config::secure_parameter(&ssm, &crate::config::required(CURSOR_KEY_PARAMETER)?).await?;
        Self::new(&secret)
    }

    /// The key shared by every instance (from SSM); at least 32 bytes.
    pub fn new(secret: &SecretString) -> Result<Self, ConfigError> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ConfigError::Invalid {
                name: "cursor key".to_owned(),
                reason: format!("must be at least {MIN_KEY_BYTES} bytes"),
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(bytes)
            .map_err(|e| ConfigError::Invalid { name: "cursor key".to_owned(), reason: e.to_string() })?;
        Ok(Self { mac })
    }

    pub fn seal(&self, scope: &CursorScope, position: &Value) -> String {
        let payload = position.to_string();
        let tag = self.tag(scope, payload.as_bytes());
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
    }

    pub fn open(&self, token: &str, scope: &CursorScope) -> Result<Value, ApiError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let (payload_b64, tag_b64) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| invalid())?;
        let mut mac = self.mac.clone();
        feed(&mut mac, scope, &payload);
        // Constant-time comparison (hmac uses `subtle`).
        mac.verify_slice(&tag).map_err(|_| invalid())?;
        serde_json::from_slice(&payload).map_err(|_| invalid())
    }

    /// Seals a DynamoDB `LastEvaluatedKey`; `None` (last page) gives `None`.
    pub fn seal_key(&self, scope: &CursorScope, key: Option<&Item>) -> Result<Option<String>, ApiError> {
        key.map(|k| {
            key_to_json(k).map(|v| self.seal(scope, &v)).ok_or_else(|| {
                ApiError::Unexpected(anyhow::anyhow!("LastEvaluatedKey has attribute types a cursor cannot carry"))
            })
        })
        .transpose()
    }

    /// Opens a cursor made by `seal_key` back into an `ExclusiveStartKey`.
    pub fn open_key(&self, token: &str, scope: &CursorScope) -> Result<Item, ApiError> {
        json_to_key(&self.open(token, scope)?).ok_or_else(invalid)
    }

    fn tag(&self, scope: &CursorScope, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        feed(&mut mac, scope, payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Length-prefixed fields, so no two different scopes encode to the same bytes.
fn feed(mac: &mut Hmac<Sha256>, scope: &CursorScope, payload: &[u8]) {
    let mut part = |bytes: &[u8]| {
        mac.update(&(bytes.len() as u64).to_be_bytes());
        mac.update(bytes);
    };
    part(DOMAIN);
    part(scope.route.as_bytes());
    match scope.caller {
        Some(c) => {
            part(b"caller");
            part(c.as_bytes());
        }
        None => part(b"anonymous"),
    }
    let mut filters: Vec<&(&str, String)> = scope.filters.iter().collect();
    filters.sort();
    part(&(filters.len() as u64).to_be_bytes());
    for (name, value) in filters {
        part(name.as_bytes());
        part(value.as_bytes());
    }
    part(payload);
}

fn invalid() -> ApiError {
    crate::page::invalid_cursor()
}

/// A key of string and number attributes as JSON (`{"PK":{"S":"..."},"n":{"N":"5"}}`, the
/// DynamoDB JSON shape); `None` for other attribute types, which keys never use.
pub fn key_to_json(key: &Item) -> Option<Value> {
    let mut map = Map::new();
    for (name, value) in key {
        let tagged = match value {
            AttributeValue::S(s) => serde_json::json!({ "S": s }),
            AttributeValue::N(n) => serde_json::json!({ "N": n }),
            _ => return None,
        };
        map.insert(name.clone(), tagged);
    }
    Some(Value::Object(map))
}

/// The inverse of `key_to_json`; `None` for any other shape.
pub fn json_to_key(value: &Value) -> Option<Item> {
    let mut key = HashMap::new();
    for (name, tagged) in value.as_object()? {
        let obj = tagged.as_object()?;
        if obj.len() != 1 {
            return None;
        }
        let attr = match (obj.get("S"), obj.get("N")) {
            (Some(Value::String(s)), None) => AttributeValue::S(s.clone()),
            (None, Some(Value::String(n))) if n.parse::<f64>().is_ok() => AttributeValue::N(n.clone()),
            _ => return None,
        };
        key.insert(name.clone(), attr);
    }
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> CursorKey {
        CursorKey::new(&SecretString::from("k".repeat(32))).unwrap()
    }

    fn filters() -> Vec<(&'static str, String)> {
        vec![("city", "lisbon".to_owned()), ("guests", "2".to_owned())]
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(&SecretString::from("k".repeat(31))).is_err());
        assert_eq!(format!("{:?}", key()), "CursorKey(..)");
    }

    #[test]
    fn round_trip_and_filter_order_does_not_matter() {
        let f = filters();
        let scope = CursorScope { route: "/v1/search", caller: None, filters: &f };
        let pos = json!({"GSI1PK": {"S": "CITY#lisbon"}, "price": {"N": "120"}});
        let token = key().seal(&scope, &pos);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(key().open(&token, &scope).unwrap(), pos);
        let reversed: Vec<_> = f.iter().rev().cloned().collect();
        let scope2 = CursorScope { filters: &reversed, ..scope };
        assert_eq!(key().open(&token, &scope2).unwrap(), pos);
    }

    fn assert_invalid(r: Result<Value, ApiError>) {
        let e = r.unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.code(), "invalid_cursor");
    }

    #[test]
    fn replays_and_forgeries_are_invalid() {
        let f = filters();
        let scope = CursorScope { route: "/v1/me/trips", caller: Some("u-1"), filters: &f };
        let token = key().seal(&scope, &json!({"PK": {"S": "USER#u-1"}}));

        assert_invalid(key().open(&token, &CursorScope { route: "/v1/me/reservations", ..scope }));
        assert_invalid(key().open(&token, &CursorScope { caller: Some("u-2"), ..scope }));
        assert_invalid(key().open(&token, &CursorScope { caller: None, ..scope }));
        let other = vec![("city", "porto".to_owned()), ("guests", "2".to_owned())];
        assert_invalid(key().open(&token, &CursorScope { filters: &other, ..scope }));
        assert_invalid(key().open(&token, &CursorScope { filters: &[], ..scope }));

        let other_key = CursorKey::new(&SecretString::from("x".repeat(40))).unwrap();
        assert_invalid(other_key.open(&token, &scope));

        // Forged position with the old tag.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(json!({"PK": {"S": "USER#u-2"}}).to_string()));
        assert_invalid(key().open(&forged, &scope));
        // Truncated, garbage, empty, oversized.
        assert_invalid(key().open(&token[..token.len() - 2], &scope));
        assert_invalid(key().open(token.split_once('.').unwrap().0, &scope));
        assert_invalid(key().open("", &scope));
        assert_invalid(key().open("!!!.???", &scope));
        assert_invalid(key().open(&"a".repeat(5000), &scope));
    }

    #[test]
    fn caller_and_filter_encoding_is_unambiguous() {
        // Same concatenated text, different split: must not collide.
        let a = vec![("ab", "c".to_owned())];
        let b = vec![("a", "bc".to_owned())];
        let sa = CursorScope { route: "/r", caller: None, filters: &a };
        let sb = CursorScope { route: "/r", caller: None, filters: &b };
        let token = key().seal(&sa, &json!(1));
        assert_invalid(key().open(&token, &sb));
        let empty = CursorScope { route: "/r", caller: Some(""), filters: &[] };
        let none = CursorScope { route: "/r", caller: None, filters: &[] };
        assert_invalid(key().open(&key().seal(&empty, &json!(1)), &none));
    }

    #[test]
    fn keys_convert_both_ways() {
        let item: Item = HashMap::from([
            ("PK".to_owned(), AttributeValue::S("LISTING#1".to_owned())),
            ("n".to_owned(), AttributeValue::N("42".to_owned())),
        ]);
        let json = key_to_json(&item).unwrap();
        assert_eq!(json, json!({"PK": {"S": "LISTING#1"}, "n": {"N": "42"}}));
        assert_eq!(json_to_key(&json).unwrap(), item);
        let with_bool = HashMap::from([("b".to_owned(), AttributeValue::Bool(true))]);
        assert!(key_to_json(&with_bool).is_none());
        assert!(json_to_key(&json!({"PK": "x"})).is_none());
        assert!(json_to_key(&json!({"PK": {"S": "x", "N": "1"}})).is_none());
        assert!(json_to_key(&json!({"n": {"N": "abc"}})).is_none());
        assert!(json_to_key(&json!({})).is_none());
        assert!(json_to_key(&json!([1])).is_none());

        let f = filters();
        let scope = CursorScope { route: "/v1/search", caller: None, filters: &f };
        let token = key().seal_key(&scope, Some(&item)).unwrap().unwrap();
        assert_eq!(key().open_key(&token, &scope).unwrap(), item);
        assert_eq!(key().seal_key(&scope, None).unwrap(), None);
        assert!(key().seal_key(&scope, Some(&with_bool)).is_err());
        let not_a_key = key().seal(&scope, &json!("hello"));
        assert_eq!(key().open_key(&not_a_key, &scope).unwrap_err().code(), "invalid_cursor");
    }
}

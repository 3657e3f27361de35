//! Who is asking. `/v1/graphql` serves anonymous callers and signed-in ones on one route, and an
//! HTTP API's JWT authorizer cannot do "optional" (a route behind it refuses a request without a
//! token), so the route has no authorizer and this module checks the token as the authorizer
//! would: RS256 only, signature against the user pool's JWKS, issuer, expiry, not-before, not
//! issued in the future, and the app client (`client_id` of an access token or `aud` of an id
//! token). Then the same `Caller` and the same sign-out check as every REST route.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use shared::sessions::Revocations;
use shared::{ApiError, Caller};
use tokio::sync::OnceCell;

use crate::AppState;

/// Why a token is refused (logged by kind only: never the token).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token or bad signature: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("the token names no key of the user pool")]
    UnknownKey,
    #[error("issued in the future")]
    IssuedInTheFuture,
    #[error("not for this app client")]
    Audience,
    #[error("no subject")]
    NoSubject,
    #[error("the user pool's keys could not be fetched: {0}")]
    Keys(#[from] reqwest::Error),
}

/// The user pool's token rules and keys (fetched once per process, on the first token).
pub struct TokenVerifier {
    issuer: String,
    client_ids: Vec<String>,
    jwks_url: String,
    keys: OnceCell<JwkSet>,
}

impl TokenVerifier {
    pub fn new(issuer: String, client_ids: Vec<String>, jwks_url: String) -> Self {
        Self { issuer, client_ids, jwks_url, keys: OnceCell::new() }
    }

    /// The keys are at `<issuer>/.well-known/jwks.json` on AWS; under an endpoint override (the
    /// local stack's Cognito emulator) at `<endpoint>/<pool id>/.well-known/jwks.json`.
    pub fn jwks_url(issuer: &str, endpoint: Option<&str>) -> String {
        match endpoint {
            Some(e) => {
                format!("{}/{}/.well-known/jwks.json", e.trim_end_matches('/'), issuer.rsplit('/').next().unwrap_or(""))
            }
            None => format!("{issuer}/.well-known/jwks.json"),
        }
    }

    async fn keys(&self) -> Result<&JwkSet, TokenError> {
        Ok(self
            .keys
            .get_or_try_init(|| async {
                reqwest::get(&self.jwks_url).await?.error_for_status()?.json::<JwkSet>().await
            })
            .await?)
    }

    /// The caller a token stands for, or why it is refused.
    pub async fn verify(&self, token: &str, now_epoch: i64) -> Result<Caller, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let jwk = self.keys().await?.find(&kid).ok_or(TokenError::UnknownKey)?;
        let claims = decode(token, &DecodingKey::from_jwk(jwk)?, &self.issuer)?;
        check_claims(&claims, &self.client_ids, now_epoch)?;
        Caller::from_claims(&as_gateway_claims(&claims)).ok_or(TokenError::NoSubject)
    }
}

fn decode(token: &str, key: &DecodingKey, issuer: &str) -> Result<Map<String, Value>, TokenError> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.validate_nbf = true;
    validation.validate_aud = false;
    Ok(jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)?.claims)
}

/// What the library leaves to us: `iat` not in the future, and the app client.
pub fn check_claims(claims: &Map<String, Value>, client_ids: &[String], now_epoch: i64) -> Result<(), TokenError> {
    if claims.get("iat").and_then(Value::as_i64).is_some_and(|issued| issued > now_epoch) {
        return Err(TokenError::IssuedInTheFuture);
    }
    let allowed = match claims.get("client_id").or_else(|| claims.get("aud")) {
        Some(Value::String(a)) => client_ids.contains(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| client_ids.iter().any(|c| c == a)),
        _ => false,
    };
    if allowed { Ok(()) } else { Err(TokenError::Audience) }
}

/// The claims as API Gateway hands them to a function: every value a string, arrays as
/// `[a b]`, so `Caller::from_claims` reads them the one way it reads the authorizer's.
pub fn as_gateway_claims(claims: &Map<String, Value>) -> HashMap<String, String> {
    claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(list) => {
                    let items: Vec<String> =
                        list.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect();
                    format!("[{}]", items.join(" "))
                }
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// The caller of a GraphQL request: `None` without an `Authorization` header; a token that
/// is present but refused is a 401, as the REST routes' authorizer answers (a client must not
/// be served the anonymous view of "my trips" because its token expired).
pub struct Viewer(pub Option<Caller>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else { return Ok(Self(None)) };
        let unauthorized = || ApiError::unauthorized("unauthorized", "The token is invalid or expired; sign in again.");
        let raw = value.to_str().map_err(|_| unauthorized())?.trim();
        let token = raw.strip_prefix("Bearer ").or_else(|| raw.strip_prefix("bearer ")).unwrap_or(raw).trim();
        let caller = match st.tokens.verify(token, st.clock.now().as_second()).await {
            Ok(caller) => caller,
            Err(e @ TokenError::Keys(_)) => return Err(ApiError::Unexpected(e.into())),
            Err(e) => {
                tracing::info!(reason = %e, "token refused");
                return Err(unauthorized());
            }
        };
        // A signed-out session ends here too (shared::sessions), as on every REST route.
        if let Some(revocations) = parts.extensions.get::<Arc<Revocations>>().cloned() {
            revocations.check(&caller).await?;
        }
        Ok(Self(Some(caller)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_app_client_and_the_issue_time_are_checked() {
        let ids = vec!["client-1".to_owned()];
        assert!(check_claims(&map(json!({"client_id": "client-1", "iat": 100})), &ids, 100).is_ok());
        assert!(check_claims(&map(json!({"aud": ["x", "client-1"]})), &ids, 100).is_ok());
        assert!(matches!(check_claims(&map(json!({"client_id": "other"})), &ids, 100), Err(TokenError::Audience)));
        assert!(matches!(check_claims(&map(json!({})), &ids, 100), Err(TokenError::Audience)));
        assert!(matches!(
            check_claims(&map(json!({"client_id": "client-1", "iat": 101})), &ids, 100),
            Err(TokenError::IssuedInTheFuture)
        ));
    }

    #[test]
    fn claims_read_as_the_gateway_renders_them() {
        let claims =
            map(json!({"sub": "u-1", "cognito:groups": ["hosts", "admins"], "iat": 1700000000, "username": "u-1"}));
        let caller = Caller::from_claims(&as_gateway_claims(&claims)).unwrap();
        assert_eq!(caller.user_id, "u-1");
        assert!(caller.is_host() && caller.is_admin());
        assert_eq!(caller.issued_at, Some(1_700_000_000));
    }

    #[test]
    fn keys_are_found_in_the_cloud_and_under_an_emulator() {
        let issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc";
        assert_eq!(TokenVerifier::jwks_url(issuer, None), format!("{issuer}/.well-known/jwks.json"));
        assert_eq!(
            TokenVerifier::jwks_url(issuer, Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/eu-west-1_abc/.well-known/jwks.json"
        );
    }
}

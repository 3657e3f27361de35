//! The caller, from the claims API Gateway's JWT authorizer put on the request context.
//!
//! The authorizer has already checked the token (issuer, signature, expiry, client); functions
//! never parse tokens. Claims arrive as strings: `cognito:groups` is rendered `[hosts admins]`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;

use crate::error::ApiError;
use crate::sessions::Revocations;

pub const HOSTS_GROUP: &str = "hosts";
pub const ADMINS_GROUP: &str = "admins";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The Cognito `sub`: Roost's user id.
    pub user_id: String,
    pub username: String,
    pub groups: Vec<String>,
    /// The token's `iat` (epoch seconds): tokens issued before the user's last sign-out are
    /// refused by the extractor (crate::sessions).
    pub issued_at: Option<i64>,
}

impl Caller {
    /// `None` without a non-empty `sub` claim.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let user_id = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let username = claims
            .get("username")
            .or_else(|| claims.get("cognito:username"))
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| user_id.clone());
        let groups = claims.get("cognito:groups").map(|g| parse_groups(g)).unwrap_or_default();
        let issued_at = claims.get("iat").and_then(|t| t.parse().ok());
        Some(Self { user_id, username, groups, issued_at })
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Host powers follow the `hosts` group claim; a token issued before the user became a host
    /// lacks it until refreshed, which is the documented behaviour.
    pub fn is_host(&self) -> bool {
        self.in_group(HOSTS_GROUP)
    }

    pub fn is_admin(&self) -> bool {
        self.in_group(ADMINS_GROUP)
    }

    /// 403 `host_required` unless the caller is in `hosts`.
    pub fn require_host(&self) -> Result<(), ApiError> {
        if self.is_host() {
            Ok(())
        } else {
            Err(ApiError::forbidden("host_required", "Only hosts may do this; become a host first."))
        }
    }
}

/// Parses a groups claim: `[hosts admins]` (API Gateway's rendering of a JSON array), a JSON
/// array string `["hosts","admins"]`, or a bare `hosts`. Empty entries are dropped.
pub fn parse_groups(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list.into_iter().filter(|g| !g.is_empty()).collect();
    }
    let inner = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    inner
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|g| g.trim_matches('"'))
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The JWT claims on the request, if API Gateway put any there.
pub fn claims(parts: &Parts) -> Option<&HashMap<String, String>> {
    match parts.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref()?.jwt.as_ref().map(|j| &j.claims),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether the request came through the JWT authorizer (a private route): its answer is one
/// person's data (`crate::caching::PRIVATE`), whatever the handler does.
pub fn carries_claims<B>(req: &axum::http::Request<B>) -> bool {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().is_some_and(|a| a.jwt.is_some()),
        _ => false,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Reaching a protected handler without claims means the route is not behind the
        // authorizer in the template: answer 401 rather than act as nobody.
        let caller = claims(parts)
            .and_then(Caller::from_claims)
            .ok_or_else(|| ApiError::unauthorized("unauthorized", "Sign in to use this endpoint."))?;
        // A signed-out session ends on every private route (crate::sessions). `shared::http::run`
        // installs the check in every HTTP function; handler unit tests run without it.
        if let Some(revocations) = parts.extensions.get::<Arc<Revocations>>().cloned() {
            revocations.check(&caller).await?;
        }
        Ok(caller)
    }
}

/// The request context API Gateway attaches for a caller with these claims, for handler tests
/// in any context: `Request::get(..).extension(claims_context([("sub", "u-1")]))`.
pub fn claims_context<'a>(claims: impl IntoIterator<Item = (&'a str, &'a str)>) -> RequestContext {
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.authorizer = Some(authorizer);
    RequestContext::ApiGatewayV2(ctx)
}

impl Caller {
    /// This caller's claims as API Gateway renders them (see `claims_context`).
    pub fn request_context(&self) -> RequestContext {
        let groups = format!("[{}]", self.groups.join(" "));
        claims_context([
            ("sub", self.user_id.as_str()),
            ("username", self.username.as_str()),
            ("cognito:groups", groups.as_str()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;

    #[test]
    fn groups_in_every_rendering() {
        let both = vec!["hosts".to_owned(), "admins".to_owned()];
        assert_eq!(parse_groups("[hosts admins]"), both);
        assert_eq!(parse_groups(r#"["hosts","admins"]"#), both);
        assert_eq!(parse_groups("[hosts, admins]"), both);
        assert_eq!(parse_groups(" [ hosts  admins ] "), both);
        assert_eq!(parse_groups("hosts"), vec!["hosts"]);
        assert!(parse_groups("[]").is_empty());
        assert!(parse_groups("").is_empty());
        assert!(parse_groups("[ ]").is_empty());
    }

    #[test]
    fn caller_from_claims() {
        let mut claims = HashMap::new();
        assert_eq!(Caller::from_claims(&claims), None);
        claims.insert("sub".to_owned(), String::new());
        assert_eq!(Caller::from_claims(&claims), None);
        claims.insert("sub".to_owned(), "u-1".to_owned());
        let c = Caller::from_claims(&claims).unwrap();
        assert_eq!(c.username, "u-1");
        assert!(!c.is_host() && !c.is_admin());
        assert_eq!(c.require_host().unwrap_err().code(), "host_required");
        claims.insert("username".to_owned(), "alice".to_owned());
        claims.insert("cognito:groups".to_owned(), "[hosts]".to_owned());
        let c = Caller::from_claims(&claims).unwrap();
        assert_eq!(c.username, "alice");
        assert!(c.is_host() && !c.is_admin());
        assert!(c.require_host().is_ok());
    }

    async fn extract(req: Request<Body>) -> Result<Caller, ApiError> {
        let (mut parts, _) = req.into_parts();
        Caller::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn extractor_reads_the_authorizer_claims() {
        let ctx = claims_context([
            ("sub", "3f1e2d4c-5b6a-4789-8abc-def012345678"),
            ("username", "3f1e2d4c-5b6a-4789-8abc-def012345678"),
            ("client_id", "client"),
            ("cognito:groups", "[hosts admins]"),
            ("exp", "1700000000"),
        ]);
        let req = Request::get("/v1/me").extension(ctx).body(Body::empty()).unwrap();
        let caller = extract(req).await.unwrap();
        assert_eq!(caller.user_id, "3f1e2d4c-5b6a-4789-8abc-def012345678");
        assert!(caller.is_host() && caller.is_admin());

        // A Caller renders back into the same context.
        let req = Request::get("/v1/me").extension(caller.request_context()).body(Body::empty()).unwrap();
        assert_eq!(extract(req).await.unwrap(), caller);
    }

    #[tokio::test]
    async fn extractor_reads_a_real_event() {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /v1/me", "rawPath": "/v1/me", "rawQueryString": "",
            "headers": {"host": "localhost", "x-forwarded-proto": "http"},
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "localhost", "requestId": "r",
                "routeKey": "GET /v1/me", "stage": "$default", "time": "t", "timeEpoch": 0,
                "http": {"method": "GET", "path": "/v1/me", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                "authorizer": {"jwt": {"claims": {"sub": "u-9", "cognito:groups": "[hosts]"},
                                        "scopes": null}}
            },
            "isBase64Encoded": false
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let caller = extract(req.map(|_| Body::empty())).await.unwrap();
        assert_eq!(caller.user_id, "u-9");
        assert!(caller.is_host());
    }

    #[tokio::test]
    async fn the_extractor_refuses_a_token_issued_before_the_last_sign_out() {
        use crate::test_support::{AwsStub, dynamodb_client};
        let stub = AwsStub::start(|_, _| (200, r#"{"Item":{"tokens_revoked_at":{"N":"100"}}}"#.to_owned())).await;
        let table = crate::Table::from_conf(dynamodb_client(&stub.url()), "roost");
        let revocations = Arc::new(Revocations::new(table));
        let request = |iat: &str| {
            Request::get("/v1/me/trips")
                .extension(claims_context([("sub", "u-1"), ("iat", iat)]))
                .extension(revocations.clone())
                .body(Body::empty())
                .unwrap()
        };
        let err = extract(request("100")).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (StatusCode::UNAUTHORIZED, "token_revoked"));
        assert_eq!(extract(request("101")).await.unwrap().user_id, "u-1");
        assert_eq!(stub.hits(), 1, "one read, then the cache");
        // Without the check installed (handler unit tests) the claims alone decide.
        let bare = Request::get("/v1/me").extension(claims_context([("sub", "u-1"), ("iat", "100")]));
        assert!(extract(bare.body(Body::empty()).unwrap()).await.is_ok());
    }

    #[tokio::test]
    async fn no_claims_is_401_problem() {
        let req = Request::get("/v1/me").body(Body::empty()).unwrap();
        let err = extract(req).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(err.code(), "unauthorized");
        let res = err.into_response();
        assert_eq!(res.headers()["content-type"], "application/problem+json");

        let no_sub = claims_context([("username", "x")]);
        let req = Request::get("/v1/me").extension(no_sub).body(Body::empty()).unwrap();
        assert_eq!(extract(req).await.unwrap_err().code(), "unauthorized");
    }
}

//! The one OpenAPI 3.1 document: every context's part merged, the shared answers added
//! (`shared::openapi::finish`), and the result as it is served (bytes and ETag).

use shared::caching::ETag;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ContactBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder};

/// The contexts in the order their tags are listed, with what each tag says.
const TAGS: &[(&str, &str)] = &[
    ("users", "Accounts, sign-in, profiles, becoming a host, and the in-app inbox."),
    ("listings", "Hosts' listings, photos, calendars; search and availability for everyone."),
    ("bookings", "Quotes, bookings, trips (the guest's) and reservations (the host's), cancellation."),
    ("payments", "Paying for a booking through Stripe, and Stripe's webhook."),
    ("reviews", "Reviews of completed stays and the hosts' responses."),
    ("messaging", "Conversations between a guest and a listing's host, before and after booking."),
    ("graphql", "The read side in GraphQL: one round trip per screen (docs/graphql.md)."),
    ("docs", "This document, its page and the GraphQL explorer."),
];

/// The merged document, generated from the code.
pub fn document() -> OpenApi {
    let mut api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Roost API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
                .contact(Some(ContactBuilder::new().name(Some("Roost")).url(Some("https://roost.dev")).build()))
                .build(),
        )
        .tags(Some(TAGS.iter().map(|(name, about)| TagBuilder::new().name(*name).description(Some(*about)).build())))
        .build();
    for part in [
        users::openapi(),
        listings::openapi(),
        bookings::openapi(),
        payments::openapi(),
        reviews::openapi(),
        messaging::openapi(),
        graphql::openapi(),
    ] {
        api.merge(part);
    }
    api.merge(crate::own_openapi());
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        shared::openapi::BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "The `access_token` from `POST /v1/auth/login` (or `/v1/auth/refresh`), as \
                     `Authorization: Bearer <token>`. Without a valid one the gateway answers 401 \
                     itself.",
                ))
                .build(),
        ),
    );
    shared::openapi::finish(&mut api);
    api
}

const DESCRIPTION: &str = "The HTTP API of Roost, a rental platform backend. This reference is \
generated from the code; the guide (flows, conventions, error codes) is docs/api.md.\n\n\
Errors are `application/problem+json` (RFC 9457) with a stable `code`; each operation lists the \
codes it can answer. Lists are pages: pass `next_cursor` back as `cursor`. Creating routes take \
an `Idempotency-Key`. Every answer of the functions carries `X-Request-Id`.";

/// The document as committed and served: pretty JSON with a trailing newline, the response
/// headers every answer carries marked `required` (utoipa's `Header` cannot say it).
pub fn to_json(api: &OpenApi) -> anyhow::Result<String> {
    let mut doc = serde_json::to_value(api)?;
    require_headers(&mut doc);
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// Headers our functions always send with the answers that document them. `X-Request-Id` and
/// `Cache-Control` are on every answer of a function, but not on the gateway's own (401, 404,
/// 413, 429, 5xx), and
/// `Location`/`Idempotent-Replayed` are not on every 201/200 (a replay has no `Location`).
const ALWAYS_SENT: &[&str] = &["X-Request-Id", "ETag", "Cache-Control", "Content-Security-Policy"];
const GATEWAY_STATUSES: &[&str] = &["401", "404", "413", "429", "500", "502", "503"];

fn require_headers(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
            for (status, response) in responses.iter_mut() {
                let Some(headers) = response.get_mut("headers").and_then(|h| h.as_object_mut()) else { continue };
                for (name, header) in headers.iter_mut() {
                    let gateway_may_answer = GATEWAY_STATUSES.contains(&status.as_str());
                    let function_only = matches!(name.as_str(), "X-Request-Id" | "Cache-Control");
                    if ALWAYS_SENT.contains(&name.as_str()) && !(function_only && gateway_may_answer) {
                        header["required"] = serde_json::Value::Bool(true);
                    }
                }
            }
        }
    }
}

/// The served document: its bytes and their strong ETag (`shared::caching`), computed once.
pub struct Published {
    pub json: String,
    pub etag: ETag,
}

impl Published {
    pub fn new(api: &OpenApi) -> anyhow::Result<Self> {
        let json = to_json(api)?;
        let etag = ETag::of_bytes(json.as_bytes());
        Ok(Self { json, etag })
    }
}

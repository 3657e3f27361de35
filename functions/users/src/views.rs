//! Response bodies, each with the schema the OpenAPI document shows for it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::cognito::Tokens;
use crate::store::{InboxItem, Profile};

/// `GET /v1/health`: the function is up (it touches no dependency).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Health)]
pub struct HealthBody {
    /// Always `ok`.
    pub status: HealthStatus,
}

/// The only status `GET /v1/health` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// `POST /v1/auth/signup`: the new account, unconfirmed until the e-mailed code is sent to
/// `POST /v1/auth/confirm`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SignedUp)]
pub struct SignedUpBody<'a> {
    /// The user's id: the Cognito `sub`, a lower-case UUID.
    #[schema(value_type = String, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", examples("3f0c6a52-8d1e-4b7a-9c2e-5f6a7b8c9d0e"))]
    pub user_id: &'a str,
    /// The e-mail address, trimmed and lower-cased.
    #[schema(value_type = String, examples("ana@example.com"))]
    pub email: &'a str,
    /// Always `false`: the account signs in once its e-mail is confirmed.
    pub confirmed: bool,
}

/// The tokens of a sign-in (`POST /v1/auth/login`) or a refresh (`POST /v1/auth/refresh`).
/// Secrets: keep them out of logs and URLs.
#[derive(Serialize, ToSchema)]
#[schema(as = Tokens)]
pub struct TokensBody {
    /// Cognito access token (a JWT): send it as `Authorization: Bearer <access_token>` on the
    /// signed-in routes.
    access_token: String,
    /// Cognito ID token (a JWT): the user's identity claims (`sub`, `email`, `name`); the
    /// gateway also accepts it as the bearer token.
    id_token: String,
    /// Cognito refresh token, for `POST /v1/auth/refresh`. Only a sign-in returns one: a
    /// refresh does not (keep using the one you have).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    /// Seconds until the access and ID tokens expire.
    #[schema(examples(3600))]
    expires_in: i32,
    /// Always `Bearer`.
    token_type: TokenType,
}

/// The kind of the tokens: always `Bearer`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

impl From<Tokens> for TokensBody {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            id_token: t.id_token,
            refresh_token: t.refresh_token,
            expires_in: t.expires_in,
            token_type: TokenType::Bearer,
        }
    }
}

/// A role of the caller: everyone is a `guest`; `host` once they became one
/// (`POST /v1/me/host`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    Host,
}

/// `/v1/me`: the caller's own profile, e-mail and roles included.
#[derive(Serialize, ToSchema)]
#[schema(as = Me)]
pub struct MeBody<'a> {
    /// The user's id: the Cognito `sub`, a lower-case UUID.
    #[schema(value_type = String, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub user_id: &'a str,
    /// The e-mail address the account signs in with (lower-case).
    #[schema(value_type = String, examples("ana@example.com"))]
    pub email: &'a str,
    /// The display name.
    #[schema(value_type = String, examples("Ana Lúcia"))]
    pub name: &'a str,
    /// About the person; `""` when not written.
    #[schema(value_type = String)]
    pub bio: &'a str,
    /// `["guest"]`, or `["guest", "host"]` for a host.
    #[schema(value_type = Vec<Role>, examples(json!(["guest", "host"])))]
    pub roles: Vec<&'static str>,
    /// When the account was made (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: &'a str,
}

impl<'a> From<&'a Profile> for MeBody<'a> {
    fn from(p: &'a Profile) -> Self {
        Self {
            user_id: &p.user_id,
            email: &p.email,
            name: &p.name,
            bio: &p.bio,
            roles: p.roles(),
            created_at: &p.created_at,
        }
    }
}

/// Anyone's view of a person: never the e-mail.
#[derive(Serialize, ToSchema)]
#[schema(as = PublicProfile)]
pub struct PublicProfile<'a> {
    /// The user's id: the Cognito `sub`, a lower-case UUID.
    #[schema(value_type = String, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub user_id: &'a str,
    /// The display name.
    #[schema(value_type = String, examples("Ana Lúcia"))]
    pub name: &'a str,
    /// About the person; `""` when not written.
    #[schema(value_type = String)]
    pub bio: &'a str,
    /// When the account was made (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: &'a str,
    /// Whether the person hosts (may have listings).
    pub is_host: bool,
}

impl<'a> From<&'a Profile> for PublicProfile<'a> {
    fn from(p: &'a Profile) -> Self {
        Self { user_id: &p.user_id, name: &p.name, bio: &p.bio, created_at: &p.created_at, is_host: p.is_host }
    }
}

/// One item of the caller's inbox: something that happened to one of their bookings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Notification)]
pub struct NotificationView {
    /// `ntf_` and 26 lower-case base32 characters.
    #[schema(pattern = "^ntf_[0-9a-z]{26}$", examples("ntf_01kaxb3c4d5e6f7g8h9jkmnp01"))]
    pub notification_id: String,
    /// The event it tells of: `booking.confirmed`, `booking.cancelled`, `booking.expired`,
    /// `payment.failed`, `refund.issued` or `review.posted` (more may come: show `title` and
    /// `body` for a type you do not know).
    #[serde(rename = "type")]
    #[schema(examples("booking.confirmed"))]
    pub notification_type: String,
    /// A one-line summary (the e-mail's subject).
    pub title: String,
    /// The text, plain.
    pub body: String,
    /// The booking it is about (`bkg_...`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub booking_id: Option<String>,
    /// When it was written (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Whether the caller marked it read (`POST /v1/me/notifications/{id}/read`).
    pub read: bool,
}

impl From<InboxItem> for NotificationView {
    fn from(s: InboxItem) -> Self {
        Self {
            notification_id: s.notification_id,
            notification_type: s.notification_type,
            title: s.title,
            body: s.body,
            booking_id: s.booking_id,
            created_at: s.created_at,
            read: s.read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use utoipa::PartialSchema;

    /// The view's JSON has exactly the schema's properties, every required one among them.
    fn matches_schema<T: Serialize + PartialSchema>(view: &T) -> Value {
        let json = serde_json::to_value(view).unwrap();
        let schema = serde_json::to_value(T::schema()).unwrap();
        let sent: Vec<&String> = json.as_object().unwrap().keys().collect();
        let properties = schema["properties"].as_object().unwrap();
        for key in &sent {
            assert!(properties.contains_key(*key), "{key} is sent but not in the schema");
        }
        for required in schema["required"].as_array().unwrap() {
            let required = required.as_str().unwrap();
            assert!(json.get(required).is_some_and(|v| !v.is_null()), "{required} is required but not sent");
        }
        json
    }

    fn profile() -> Profile {
        Profile::new(
            "3f0c6a52-8d1e-4b7a-9c2e-5f6a7b8c9d0e",
            "ana@example.com",
            "Ana",
            "2026-07-10T10:00:00.5Z".parse().unwrap(),
        )
    }

    #[test]
    fn the_views_send_what_their_schemas_say() {
        let p = profile();
        let me = matches_schema(&MeBody::from(&p));
        assert_eq!(me["roles"], json!(["guest"]));
        assert_eq!(matches_schema(&PublicProfile::from(&p)).get("email"), None);
        let signed_up = SignedUpBody { user_id: &p.user_id, email: &p.email, confirmed: false };
        assert_eq!(matches_schema(&signed_up)["confirmed"], false);
        assert_eq!(matches_schema(&HealthBody { status: HealthStatus::Ok }), json!({"status": "ok"}));
    }

    #[test]
    fn a_refresh_sends_no_refresh_token_and_the_schema_does_not_require_one() {
        let tokens = |refresh: Option<&str>| Tokens {
            access_token: "a".into(),
            id_token: "i".into(),
            refresh_token: refresh.map(str::to_owned),
            expires_in: 3600,
        };
        let login = matches_schema(&TokensBody::from(tokens(Some("r"))));
        assert_eq!(login["token_type"], "Bearer");
        assert_eq!(login["refresh_token"], "r");
        let refreshed = matches_schema(&TokensBody::from(tokens(None)));
        assert!(refreshed.get("refresh_token").is_none());
    }

    #[test]
    fn a_notification_without_a_booking_omits_it() {
        let item = |booking_id: Option<&str>| InboxItem {
            notification_id: "ntf_01kaxb3c4d5e6f7g8h9jkmnp01".into(),
            notification_type: "booking.confirmed".into(),
            title: "Booked".into(),
            body: "See you soon".into(),
            booking_id: booking_id.map(str::to_owned),
            created_at: "2026-07-10T10:00:00Z".into(),
            read: false,
        };
        let with = matches_schema(&NotificationView::from(item(Some("bkg_1"))));
        assert_eq!(with["type"], "booking.confirmed");
        assert!(matches_schema(&NotificationView::from(item(None))).get("booking_id").is_none());
    }
}

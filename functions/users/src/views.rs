//! Response bodies.

use serde::Serialize;

use crate::cognito::Tokens;
use crate::store::{InboxItem, Profile};

#[derive(Serialize)]
pub struct TokensBody {
    access_token: String,
    id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    expires_in: i32,
    token_type: &'static str,
}

impl From<Tokens> for TokensBody {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            id_token: t.id_token,
            refresh_token: t.refresh_token,
            expires_in: t.expires_in,
            token_type: "Bearer",
        }
    }
}

/// `/v1/me`: the caller's own profile, e-mail and roles included.
#[derive(Serialize)]
pub struct MeBody<'a> {
    user_id: &'a str,
    email: &'a str,
    name: &'a str,
    bio: &'a str,
    roles: Vec<&'static str>,
    created_at: &'a str,
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
#[derive(Serialize)]
pub struct PublicProfile<'a> {
    user_id: &'a str,
    name: &'a str,
    bio: &'a str,
    created_at: &'a str,
    is_host: bool,
}

impl<'a> From<&'a Profile> for PublicProfile<'a> {
    fn from(p: &'a Profile) -> Self {
        Self { user_id: &p.user_id, name: &p.name, bio: &p.bio, created_at: &p.created_at, is_host: p.is_host }
    }
}

#[derive(Debug, Serialize)]
pub struct NotificationView {
    notification_id: String,
    #[serde(rename = "type")]
    notification_type: String,
    title: String,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<String>,
    created_at: String,
    read: bool,
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

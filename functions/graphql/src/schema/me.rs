//! People: anyone's public profile, and the signed-in caller with their trips, reservations and
//! inbox (each list REST's read function: the same rules, filters and cursors).

use async_graphql::{Context, Object, SimpleObject};
use bookings::handlers::lists::{ReservationsParams, TripsParams};
use shared::Caller;
use users::store::Profile;
use users::views::{MeBody, NotificationView, PublicProfile};

use super::booking::Booking;
use super::connection::{self, BookingConnection, NotificationConnection};
use super::{FieldResult, Gql, reads};

/// A person's public profile: never the e-mail.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct User {
    /// The Cognito `sub`.
    pub id: String,
    pub name: String,
    /// `""` when not written.
    pub bio: String,
    pub is_host: bool,
    pub created_at: String,
}

impl From<&Profile> for User {
    fn from(p: &Profile) -> Self {
        let v = PublicProfile::from(p);
        Self {
            id: v.user_id.to_owned(),
            name: v.name.to_owned(),
            bio: v.bio.to_owned(),
            is_host: v.is_host,
            created_at: v.created_at.to_owned(),
        }
    }
}

/// The signed-in caller.
pub struct Me {
    pub caller: Caller,
    pub profile: Profile,
}

#[Object]
impl Me {
    async fn id(&self) -> &str {
        MeBody::from(&self.profile).user_id
    }

    /// The e-mail address the account signs in with.
    async fn email(&self) -> &str {
        MeBody::from(&self.profile).email
    }

    async fn name(&self) -> &str {
        MeBody::from(&self.profile).name
    }

    async fn bio(&self) -> &str {
        MeBody::from(&self.profile).bio
    }

    /// `guest`, and `host` for a host.
    async fn roles(&self) -> Vec<&'static str> {
        MeBody::from(&self.profile).roles
    }

    async fn created_at(&self) -> &str {
        MeBody::from(&self.profile).created_at
    }

    /// The caller's bookings as guest, newest first (`GET /v1/me/trips`); `status` filters on
    /// the effective status.
    #[graphql(complexity = "connection::page_complexity(first, child_complexity)")]
    async fn trips(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Option<BookingConnection>> {
        let params = TripsParams { status: booking_status(status)?, limit: connection::limit(first), cursor: after };
        let page = bookings::handlers::lists::trips_page(&reads(ctx).bookings, &self.caller, &params).await.gql()?;
        Ok(Some(BookingConnection::from_page(page, Booking)))
    }

    /// Bookings of the caller's listings, newest first (`GET /v1/me/reservations`; hosts only:
    /// `host_required` otherwise); `status` filters on the effective status (`requested`: the
    /// requests waiting for an answer).
    #[graphql(complexity = "connection::page_complexity(first, child_complexity)")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        listing_id: Option<String>,
        status: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Option<BookingConnection>> {
        let params = ReservationsParams {
            listing_id,
            status: booking_status(status)?,
            limit: connection::limit(first),
            cursor: after,
        };
        let page =
            bookings::handlers::lists::reservations_page(&reads(ctx).bookings, &self.caller, &params).await.gql()?;
        Ok(Some(BookingConnection::from_page(page, Booking)))
    }

    /// The caller's inbox, newest first (`GET /v1/me/notifications`).
    #[graphql(complexity = "connection::page_complexity(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        unread: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Option<NotificationConnection>> {
        let reads = reads(ctx);
        let params = users::handlers::inbox::ListParams { unread, limit: connection::limit(first), cursor: after };
        let page =
            users::handlers::inbox::inbox_page(&reads.table, &reads.cursors, &self.caller, &params).await.gql()?;
        Ok(Some(NotificationConnection::from_page(page, Notification::from)))
    }
}

/// Something that happened to one of the caller's bookings.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    /// `booking.confirmed`, `booking.cancelled`, ... (show `title` and `body` for a type you do
    /// not know).
    #[graphql(name = "type")]
    pub notification_type: String,
    pub title: String,
    pub body: String,
    pub booking_id: Option<String>,
    pub created_at: String,
    pub read: bool,
}

impl From<NotificationView> for Notification {
    fn from(n: NotificationView) -> Self {
        Self {
            id: n.notification_id,
            notification_type: n.notification_type,
            title: n.title,
            body: n.body,
            booking_id: n.booking_id,
            created_at: n.created_at,
            read: n.read,
        }
    }
}

/// A `status` argument as REST reads it (400 `validation_failed` naming `status` otherwise).
fn booking_status(status: Option<String>) -> FieldResult<Option<shared::booking::BookingStatus>> {
    status
        .map(|s| {
            serde_json::from_value(serde_json::Value::String(s))
                .map_err(|_| shared::ApiError::invalid_field("status", "must be a booking status such as confirmed"))
                .gql()
        })
        .transpose()
}

//! The schema: the read side of Roost over the same table, rules and views as REST. Every field
//! that REST also serves calls the REST handler's own read function (`listings::handlers::...`,
//! `bookings::handlers::...`), so the two APIs cannot disagree on a value, on who may see it or
//! on a cursor.
//!
//! Fields that read are nullable: one failing field is `null` with its error, and the rest of
//! the answer stands.
//!
//! Authorization is per field: public fields (`listing`, `search`, `user`) answer anyone;
//! `me` and `booking` need a signed-in caller, and `booking` answers `not_found` for a booking
//! that is not the caller's exactly as for one that does not exist.

pub mod booking;
pub mod connection;
pub mod listing;
pub mod me;
pub mod values;

use async_graphql::{Context, EmptyMutation, EmptySubscription, ErrorExtensions, Object, Schema, SchemaBuilder};
use shared::{ApiError, Caller};

use crate::Reads;
use crate::limits::{AliasLimit, Limits};
use crate::loaders::Loaders;

pub type RoostSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema's types and fields, without data: `build` adds the reads and the limits.
pub fn builder() -> SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
}

/// The schema served: the reads it resolves through, and the stage's limits.
pub fn build(reads: Reads, limits: &Limits) -> RoostSchema {
    let mut builder = builder()
        .data(reads)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .extension(AliasLimit(limits.aliases));
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The schema in SDL, as `docs/schema.graphql` holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// A resolver's result: errors carry REST's problem `code` (and `status`, field errors) in
/// their extensions.
pub type FieldResult<T> = async_graphql::Result<T>;

/// `ApiError` -> a GraphQL error with the same code. (async-graphql turns any `Display` error
/// into one through `?`, which would drop the code: resolvers go through `.gql()`.)
pub trait Gql<T> {
    fn gql(self) -> FieldResult<T>;
}

impl<T> Gql<T> for Result<T, ApiError> {
    fn gql(self) -> FieldResult<T> {
        self.map_err(to_graphql_error)
    }
}

impl<T> Gql<T> for Result<T, shared::table::TableError> {
    fn gql(self) -> FieldResult<T> {
        self.map_err(|e| to_graphql_error(e.into()))
    }
}

pub fn to_graphql_error(e: ApiError) -> async_graphql::Error {
    match e.problem() {
        Some(p) => {
            let fields = serde_json::to_value(&p.errors).ok().filter(|_| !p.errors.is_empty());
            async_graphql::Error::new(p.detail.clone()).extend_with(|_, ext| {
                ext.set("code", p.code);
                ext.set("status", p.status.as_u16());
                if let Some(fields) = &fields
                    && let Ok(value) = async_graphql::Value::from_json(fields.clone())
                {
                    ext.set("fields", value);
                }
            })
        }
        None => {
            tracing::error!(error = ?e, "a GraphQL field failed");
            async_graphql::Error::new("Something went wrong on our side; the request can be retried.")
                .extend_with(|_, ext| ext.set("code", "internal_error"))
        }
    }
}

/// The signed-in caller of this request, or `unauthorized` for a field that needs one.
pub fn caller<'a>(ctx: &'a Context<'_>) -> FieldResult<&'a Caller> {
    ctx.data_opt::<Option<Caller>>().and_then(Option::as_ref).ok_or_else(|| {
        to_graphql_error(ApiError::unauthorized("unauthorized", "Sign in to read this field (send the access token)."))
    })
}

pub fn reads<'a>(ctx: &'a Context<'_>) -> &'a Reads {
    ctx.data_unchecked::<Reads>()
}

pub fn loaders<'a>(ctx: &'a Context<'_>) -> &'a Loaders {
    ctx.data_unchecked::<std::sync::Arc<Loaders>>()
}

pub struct Query;

/// What anyone may read, and what the caller may read about themselves.
#[Object]
impl Query {
    /// A listing as anyone sees it (`GET /v1/listings/{id}`): `not_found` for an unknown or
    /// archived one.
    async fn listing(&self, ctx: &Context<'_>, id: String) -> FieldResult<Option<listing::Listing>> {
        let reads = reads(ctx);
        let item = listings::handlers::listings::active_listing(&reads.listings, &id).await.gql()?;
        listing::Listing::public(reads, item).await.map(Some)
    }

    /// Search active listings (`GET /v1/search`: the same parameters, the same cursors).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "connection::page_complexity(first, child_complexity)")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        city: String,
        country: Option<String>,
        check_in: Option<String>,
        check_out: Option<String>,
        guests: Option<u32>,
        min_price: Option<i64>,
        max_price: Option<i64>,
        currency: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Option<connection::ListingSummaryConnection>> {
        let params = listings::rules::SearchParams {
            city: Some(city),
            country,
            check_in,
            check_out,
            guests,
            min_price,
            max_price,
            currency,
            limit: connection::limit(first),
            cursor: after,
        };
        let page = listings::handlers::search::search_page(&reads(ctx).listings, &params).await.gql()?;
        Ok(Some(connection::ListingSummaryConnection::from_page(page, listing::ListingSummary::from)))
    }

    /// A person's public profile (`GET /v1/users/{id}`): never the e-mail.
    async fn user(&self, ctx: &Context<'_>, id: String) -> FieldResult<Option<me::User>> {
        let id = shared::ids::parse_user_id(&id).ok_or_else(ApiError::not_found).gql()?;
        loaders(ctx).profile(id).await?.ok_or_else(ApiError::not_found).gql().map(Some)
    }

    /// The signed-in caller: profile, trips, reservations, inbox.
    async fn me(&self, ctx: &Context<'_>) -> FieldResult<Option<me::Me>> {
        let caller = caller(ctx)?;
        let profile = users::store::get(&reads(ctx).table, &caller.user_id).await.gql()?;
        let profile = profile.ok_or_else(ApiError::not_found).gql()?;
        Ok(Some(me::Me { caller: caller.clone(), profile }))
    }

    /// One booking, its guest's or its host's (`GET /v1/bookings/{id}`): `not_found` to
    /// anyone else.
    async fn booking(&self, ctx: &Context<'_>, id: String) -> FieldResult<Option<booking::Booking>> {
        let caller = caller(ctx)?;
        let view = bookings::handlers::booking::booking_for(&reads(ctx).bookings, caller, &id).await.gql()?;
        Ok(Some(booking::Booking(view)))
    }
}

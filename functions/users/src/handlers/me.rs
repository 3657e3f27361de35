//! Profiles: the caller's own (read, edit, become a host) and anyone's public one.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::caching::{self, IfNoneMatch};
use shared::extract::{Json, Path};
use shared::identity::HOSTS_GROUP;
use shared::openapi::IfNoneMatchHeader;
use shared::{ApiError, Caller};

use super::{Result, caller_profile};
use crate::rules::{Fields, parse_bio, parse_name};
use crate::views::{MeBody, PublicProfile};
use crate::{AppState, store};

#[utoipa::path(get, path = "/v1/me", tag = "users", operation_id = "get_me",
    summary = "The caller's own profile, e-mail and roles included",
    responses(
        (status = 200, description = "The caller's profile.", body = MeBody),
        (status = 429, description = "too_many_requests"),
    ),
    security(("cognito" = [])))]
pub async fn me(State(st): State<AppState>, caller: Caller) -> Result<impl IntoResponse> {
    let profile = caller_profile(&st, &caller).await?;
    Ok(Json(MeBody::from(&profile)).into_response())
}

/// `PATCH /v1/me`: the fields to change; an absent or `null` field is left as it is. Nothing
/// else (the e-mail included) can be changed here.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProfileUpdate)]
pub struct UpdateMeBody {
    /// The display name: at most 100 characters, not blank (spaces around it are dropped), no
    /// control characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S", examples("Ana Lúcia"))]
    name: Option<String>,
    /// About the person: at most 1,000 characters (spaces around it are dropped); line breaks and
    /// tabs allowed, other control characters not. `""` clears it.
    #[schema(max_length = 1000, examples("Architect in Lisbon; I love quiet flats with a view."))]
    bio: Option<String>,
}

#[utoipa::path(patch, path = "/v1/me", tag = "users",
    summary = "Change the caller's name or bio",
    request_body = UpdateMeBody,
    responses(
        (status = 200, description = "The profile as changed.", body = MeBody),
        (status = 429, description = "too_many_requests"),
    ),
    security(("cognito" = [])))]
pub async fn update_me(
    State(st): State<AppState>,
    caller: Caller,
    Json(body): Json<UpdateMeBody>,
) -> Result<impl IntoResponse> {
    let mut fields = Fields::default();
    let name = body.name.as_deref().map(|n| fields.check(parse_name("name", n)));
    let bio = body.bio.as_deref().map(|b| fields.check(parse_bio("bio", b)));
    fields.finish(Some(()))?;
    let (name, bio) = (name.flatten(), bio.flatten());
    let mut me = caller_profile(&st, &caller).await?;
    if name.is_some() || bio.is_some() {
        let now = st.clock.now();
        store::update(&st.table, &me.user_id, name.as_deref(), bio.as_deref(), now).await?;
        me.name = name.unwrap_or(me.name);
        me.bio = bio.unwrap_or(me.bio);
        me.updated_at = now.to_string();
    }
    Ok(Json(MeBody::from(&me)).into_response())
}

/// Joins the `hosts` group (in tokens issued after the next refresh or sign-in) and marks the
/// profile, which is what `/me` reports at once. Idempotent.
#[utoipa::path(post, path = "/v1/me/host", tag = "users",
    summary = "Become a host (idempotent); `/v1/me` shows the `host` role at once",
    description = "No body. 200 with the profile, its roles now `[\"guest\", \"host\"]` (also \
        when the caller already was a host). Tokens issued after this (the next sign-in or \
        refresh) carry the `hosts` group that hosts' routes require.",
    responses(
        (status = 200, description = "The profile with the `host` role.", body = MeBody),
        (status = 429, description = "too_many_requests"),
    ),
    security(("cognito" = [])))]
pub async fn become_host(State(st): State<AppState>, caller: Caller) -> Result<impl IntoResponse> {
    let mut me = caller_profile(&st, &caller).await?;
    if !me.is_host {
        st.cognito.add_to_group(&caller.username, HOSTS_GROUP).await?;
        store::mark_host(&st.table, &me.user_id, st.clock.now()).await?;
        me.is_host = true;
    }
    Ok(Json(MeBody::from(&me)).into_response())
}

/// Anyone may read a person's public profile: never the e-mail.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", operation_id = "get_public_profile",
    summary = "A person's public profile (anyone; never the e-mail)",
    params(("id" = String, Path, description = "The user's id: the Cognito `sub`, a lower-case UUID.",
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        example = "3f0c6a52-8d1e-4b7a-9c2e-5f6a7b8c9d0e"),
        IfNoneMatchHeader),
    responses(
        (status = 200, description = "The public profile.", body = PublicProfile),
        (status = 404, description = "not_found"),
    ))]
pub async fn public_profile(
    State(st): State<AppState>,
    Path(id): Path<String>,
    conditions: IfNoneMatch,
) -> Result<Response> {
    let id = shared::ids::parse_user_id(&id).ok_or_else(ApiError::not_found)?;
    let p = store::get(&st.table, id).await?.ok_or_else(ApiError::not_found)?;
    caching::json(&conditions, caching::PUBLIC_ITEM, &PublicProfile::from(&p))
}

//! Profiles: the caller's own (read, edit, become a host) and anyone's public one.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::extract::{Json, Path};
use shared::identity::HOSTS_GROUP;
use shared::{ApiError, Caller};

use super::{Result, caller_profile};
use crate::rules::{Fields, parse_bio, parse_name};
use crate::views::{MeBody, PublicProfile};
use crate::{AppState, store};

pub async fn me(State(st): State<AppState>, caller: Caller) -> Result<impl IntoResponse> {
    let profile = caller_profile(&st, &caller).await?;
    Ok(Json(MeBody::from(&profile)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeBody {
    name: Option<String>,
    bio: Option<String>,
}

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
pub async fn public_profile(State(st): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse> {
    let id = shared::ids::parse_user_id(&id).ok_or_else(ApiError::not_found)?;
    let p = store::get(&st.table, id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(PublicProfile::from(&p)).into_response())
}

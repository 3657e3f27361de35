//! One function per route, thin: extract, apply the rules, call Cognito or the table, answer
//! with a view.

pub mod auth;
pub mod inbox;
pub mod me;

use shared::extract::Json;
use shared::{ApiError, Caller};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::store::{self, Profile};
use crate::views::{HealthBody, HealthStatus};

type Result<T> = std::result::Result<T, ApiError>;

/// The routes of this context (infra/template.yaml's UsersFunction), each with its OpenAPI
/// operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(auth::sign_up))
        .routes(routes!(auth::confirm))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::forgot_password))
        .routes(routes!(auth::reset_password))
        .routes(routes!(me::me, me::update_me))
        .routes(routes!(me::become_host))
        .routes(routes!(me::public_profile))
        .routes(routes!(inbox::list))
        .routes(routes!(inbox::mark_read))
}

/// Liveness only: it answers without touching DynamoDB or Cognito, so a health check never
/// costs a request or fails because a dependency is slow.
#[utoipa::path(get, path = "/v1/health", tag = "users",
    summary = "Liveness of the API (anyone; touches no dependency)",
    responses((status = 200, description = "The function is up.", body = HealthBody)))]
pub async fn health() -> Json<HealthBody> {
    Json(HealthBody { status: HealthStatus::Ok })
}

/// The caller's profile; repaired from Cognito if a sign-up step was lost, and refused (401)
/// for a token issued before the user's last logout or password reset.
async fn caller_profile(st: &AppState, caller: &Caller) -> Result<Profile> {
    let profile = match store::get(&st.table, &caller.user_id).await? {
        Some(p) => p,
        None => {
            let user = st.cognito.user(&caller.username).await?.ok_or_else(shared::sessions::revoked)?;
            store::ensure(&st.table, Profile::new(&user.sub, &user.email, &user.name, st.clock.now())).await?
        }
    };
    if profile.revokes(caller.issued_at) {
        return Err(shared::sessions::revoked());
    }
    Ok(profile)
}

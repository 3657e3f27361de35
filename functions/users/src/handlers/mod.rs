//! One function per route, thin: extract, apply the rules, call Cognito or the table, answer
//! with a view.

pub mod auth;
pub mod inbox;
pub mod me;

use serde_json::{Value, json};
use shared::extract::Json;
use shared::{ApiError, Caller};

use crate::AppState;
use crate::store::{self, Profile};

type Result<T> = std::result::Result<T, ApiError>;

/// Liveness only: it answers without touching DynamoDB or Cognito, so a health check never
/// costs a request or fails because a dependency is slow.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
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

//! The `users` context: sign-up to sign-out through Cognito, profiles, the host role, and the
//! health route. `router` builds the whole HTTP surface from an explicit `AppState`.

pub mod cognito;
pub mod domain;
pub mod inbox;
pub mod profile;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::extract::{Json, Path};
use shared::identity::HOSTS_GROUP;
use shared::{ApiError, Caller, SharedClock, Table};

use crate::cognito::{AuthError, Cognito, Tokens};
use crate::domain::{Email, Fields, Password, TakenEmail, on_taken_email, parse_bio, parse_code, parse_name};
use crate::profile::{Profile, Removal};

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub cognito: Arc<Cognito>,
    pub clock: SharedClock,
    /// Signs the inbox's pagination cursors (the key from SSM, shared by every instance).
    pub cursors: Arc<shared::cursor::CursorKey>,
    /// How long an unconfirmed account keeps its e-mail against new sign-ups
    /// (`UNCONFIRMED_ACCOUNT_GRACE_HOURS`, 24 in the template).
    pub unconfirmed_grace: jiff::SignedDuration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/auth/signup", post(sign_up))
        .route("/v1/auth/confirm", post(confirm))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/password/forgot", post(forgot_password))
        .route("/v1/auth/password/reset", post(reset_password))
        .route("/v1/me", get(me).patch(update_me))
        .route("/v1/me/host", post(become_host))
        .route("/v1/users/{id}", get(public_profile))
        .route("/v1/me/notifications", get(inbox::list))
        .route("/v1/me/notifications/{id}/read", post(inbox::mark_read))
        .with_state(state)
}

type Result<T> = std::result::Result<T, ApiError>;

/// Liveness only: it answers without touching DynamoDB or Cognito, so a health check never
/// costs a request or fails because a dependency is slow.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUpBody {
    email: String,
    password: String,
    name: String,
}

/// Cognito is the arbiter of who holds an e-mail, so concurrent sign-ups end with one account.
/// An e-mail that already has an account is 409 `email_taken`, whatever the account's state,
/// except that an UNCONFIRMED account older than the grace period is replaced (with its profile,
/// only if that holds nothing beyond its sign-up); a younger one is kept, password included, and
/// its code sent again (`domain::on_taken_email`, docs/decisions.md "Signing up again").
async fn sign_up(State(st): State<AppState>, Json(body): Json<SignUpBody>) -> Result<impl IntoResponse> {
    let mut fields = Fields::default();
    let email = fields.check(Email::parse("email", &body.email));
    let password = fields.check(Password::parse("password", &body.password));
    let name = fields.check(parse_name("name", &body.name));
    let (email, (password, name)) = fields.finish(email.zip(password.zip(name)))?;

    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        match st.cognito.sign_up(&email, &password, &name).await {
            Ok(user_id) => {
                profile::ensure(&st.table, Profile::new(&user_id, email.as_str(), &name, st.clock.now())).await?;
                let body = json!({ "user_id": user_id, "email": email.as_str(), "confirmed": false });
                return Ok((StatusCode::CREATED, Json(body)));
            }
            // Never end on a deletion: whoever replaces an unconfirmed account signs up next.
            Err(AuthError::EmailTaken) if attempt == ATTEMPTS => break,
            Err(AuthError::EmailTaken) => {
                // Replaced by a concurrent sign-up between our two calls: try again.
                let Some(existing) = st.cognito.user(email.as_str()).await? else { continue };
                match on_taken_email(existing.status, existing.created_at, st.clock.now(), st.unconfirmed_grace) {
                    TakenEmail::Keep => return Err(AuthError::EmailTaken.into()),
                    TakenEmail::ResendCode => {
                        // A courtesy to the mailbox's owner: its failure (throttling; moto does
                        // not implement the call) changes nothing in the answer.
                        if let Err(e) = st.cognito.resend_code(&email).await {
                            // The outermost context only: an SDK error's details may echo the request.
                            tracing::warn!(error = %e, "resending a confirmation code failed");
                        }
                        return Err(AuthError::EmailTaken.into());
                    }
                    // The profile goes first and only if it holds nothing but its sign-up; the
                    // account is deleted by its immutable username, so a concurrent replacement
                    // that already signed up again is never the one deleted.
                    TakenEmail::Replace => match profile::delete_if_only_sign_up(&st.table, &existing.sub).await? {
                        Removal::Removed | Removal::Absent => st.cognito.delete_user(&existing.username).await?,
                        Removal::Kept => return Err(AuthError::EmailTaken.into()),
                    },
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("signup_in_progress", "Another sign-up for this e-mail is in progress; try again."))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    email: String,
    code: String,
}

async fn confirm(State(st): State<AppState>, Json(body): Json<ConfirmBody>) -> Result<StatusCode> {
    let mut fields = Fields::default();
    let email = fields.check(Email::parse("email", &body.email));
    let code = fields.check(parse_code("code", &body.code));
    let (email, code) = fields.finish(email.zip(code))?;
    st.cognito.confirm(&email, &code).await?;
    if let Some(user) = st.cognito.user(email.as_str()).await? {
        profile::ensure(&st.table, Profile::new(&user.sub, &user.email, &user.name, st.clock.now())).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct TokensBody {
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

/// A wrong password and an unknown e-mail get the same 401: no account enumeration.
async fn login(State(st): State<AppState>, Json(body): Json<LoginBody>) -> Result<Json<TokensBody>> {
    let Ok(email) = Email::parse("email", &body.email) else {
        return Err(AuthError::InvalidCredentials.into());
    };
    let tokens = st.cognito.login(&email, &body.password).await?;
    let claims = tokens.id_claims()?;
    if profile::get(&st.table, &claims.sub).await?.is_none() {
        let email = if claims.email.is_empty() { email.as_str() } else { &claims.email };
        profile::ensure(&st.table, Profile::new(&claims.sub, email, &claims.name, st.clock.now())).await?;
    }
    Ok(Json(tokens.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(State(st): State<AppState>, Json(body): Json<RefreshBody>) -> Result<Json<TokensBody>> {
    if body.refresh_token.trim().is_empty() {
        return Err(ApiError::invalid_field("refresh_token", "must not be empty"));
    }
    let mut tokens = st.cognito.refresh(body.refresh_token.trim()).await?;
    // Refresh issues no new refresh token; the client keeps the one it has.
    tokens.refresh_token = None;
    Ok(Json(tokens.into()))
}

/// Revokes every refresh token (Cognito's global sign-out) and every access token issued so far
/// (the profile's revocation instant, which every private route of every context checks:
/// `shared::sessions`).
async fn logout(State(st): State<AppState>, caller: Caller) -> Result<StatusCode> {
    let me = caller_profile(&st, &caller).await?;
    // By e-mail (an alias Cognito resolves): moto revokes only refresh tokens recorded under the
    // name used at sign-in, which is the e-mail; AWS accepts either.
    st.cognito.sign_out_everywhere(&me.email).await?;
    profile::revoke_tokens(&st.table, &me.user_id, st.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgotBody {
    email: String,
}

/// 202 whether or not the account exists.
async fn forgot_password(State(st): State<AppState>, Json(body): Json<ForgotBody>) -> Result<StatusCode> {
    let email = Email::parse("email", &body.email).map_err(|e| ApiError::validation(vec![e]))?;
    st.cognito.forgot_password(&email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    email: String,
    code: String,
    new_password: String,
}

/// A reset also signs the user out everywhere: whoever knew the old password loses the session.
async fn reset_password(State(st): State<AppState>, Json(body): Json<ResetBody>) -> Result<StatusCode> {
    let mut fields = Fields::default();
    let email = fields.check(Email::parse("email", &body.email));
    let code = fields.check(parse_code("code", &body.code));
    let password = fields.check(Password::parse("new_password", &body.new_password));
    let (email, (code, password)) = fields.finish(email.zip(code.zip(password)))?;
    st.cognito.reset_password(&email, &code, &password).await.map_err(|e| match e {
        AuthError::InvalidPassword(reason) => ApiError::invalid_field("new_password", reason),
        other => other.into(),
    })?;
    if let Some(user) = st.cognito.user(email.as_str()).await? {
        st.cognito.sign_out_everywhere(email.as_str()).await?;
        if profile::get(&st.table, &user.sub).await?.is_some() {
            profile::revoke_tokens(&st.table, &user.sub, st.clock.now()).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct MeBody<'a> {
    user_id: &'a str,
    email: &'a str,
    name: &'a str,
    bio: &'a str,
    roles: Vec<&'static str>,
    created_at: &'a str,
}

fn me_body(p: &Profile) -> Json<MeBody<'_>> {
    Json(MeBody {
        user_id: &p.user_id,
        email: &p.email,
        name: &p.name,
        bio: &p.bio,
        roles: p.roles(),
        created_at: &p.created_at,
    })
}

/// The caller's profile; repaired from Cognito if a sign-up step was lost, and refused (401)
/// for a token issued before the user's last logout or password reset.
async fn caller_profile(st: &AppState, caller: &Caller) -> Result<Profile> {
    let profile = match profile::get(&st.table, &caller.user_id).await? {
        Some(p) => p,
        None => {
            let user = st.cognito.user(&caller.username).await?.ok_or_else(revoked)?;
            profile::ensure(&st.table, Profile::new(&user.sub, &user.email, &user.name, st.clock.now())).await?
        }
    };
    if profile.revokes(caller.issued_at) {
        return Err(revoked());
    }
    Ok(profile)
}

fn revoked() -> ApiError {
    shared::sessions::revoked()
}

async fn me(State(st): State<AppState>, caller: Caller) -> Result<impl IntoResponse> {
    let profile = caller_profile(&st, &caller).await?;
    Ok(me_body(&profile).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMeBody {
    name: Option<String>,
    bio: Option<String>,
}

async fn update_me(
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
        profile::update(&st.table, &me.user_id, name.as_deref(), bio.as_deref(), now).await?;
        me.name = name.unwrap_or(me.name);
        me.bio = bio.unwrap_or(me.bio);
        me.updated_at = now.to_string();
    }
    Ok(me_body(&me).into_response())
}

/// Joins the `hosts` group (in tokens issued after the next refresh or sign-in) and marks the
/// profile, which is what `/me` reports at once. Idempotent.
async fn become_host(State(st): State<AppState>, caller: Caller) -> Result<impl IntoResponse> {
    let mut me = caller_profile(&st, &caller).await?;
    if !me.is_host {
        st.cognito.add_to_group(&caller.username, HOSTS_GROUP).await?;
        profile::mark_host(&st.table, &me.user_id, st.clock.now()).await?;
        me.is_host = true;
    }
    Ok(me_body(&me).into_response())
}

#[derive(Serialize)]
struct PublicProfile<'a> {
    user_id: &'a str,
    name: &'a str,
    bio: &'a str,
    created_at: &'a str,
    is_host: bool,
}

/// Anyone may read a person's public profile: never the e-mail.
async fn public_profile(State(st): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse> {
    let id = shared::ids::parse_user_id(&id).ok_or_else(ApiError::not_found)?;
    let p = profile::get(&st.table, id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(PublicProfile {
        user_id: &p.user_id,
        name: &p.name,
        bio: &p.bio,
        created_at: &p.created_at,
        is_host: p.is_host,
    })
    .into_response())
}

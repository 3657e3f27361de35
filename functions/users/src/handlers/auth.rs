//! Sign-up to sign-out, through Cognito.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use shared::extract::Json;
use shared::{ApiError, Caller};

use super::Result;
use crate::AppState;
use crate::cognito::AuthError;
use crate::rules::{Email, Fields, Password, TakenEmail, on_taken_email, parse_code, parse_name};
use crate::store::{self, Profile, Removal};
use crate::views::TokensBody;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUpBody {
    email: String,
    password: String,
    name: String,
}

/// Cognito is the arbiter of who holds an e-mail, so concurrent sign-ups end with one account.
/// An e-mail that already has an account is 409 `email_taken`, whatever the account's state,
/// except that an UNCONFIRMED account older than the grace period is replaced (with its profile,
/// only if that holds nothing beyond its sign-up); a younger one is kept, password included, and
/// its code sent again (`rules::on_taken_email`, docs/decisions.md "Signing up again").
pub async fn sign_up(State(st): State<AppState>, Json(body): Json<SignUpBody>) -> Result<impl IntoResponse> {
    let mut fields = Fields::default();
    let email = fields.check(Email::parse("email", &body.email));
    let password = fields.check(Password::parse("password", &body.password));
    let name = fields.check(parse_name("name", &body.name));
    let (email, (password, name)) = fields.finish(email.zip(password.zip(name)))?;

    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        match st.cognito.sign_up(&email, &password, &name).await {
            Ok(user_id) => {
                store::ensure(&st.table, Profile::new(&user_id, email.as_str(), &name, st.clock.now())).await?;
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
                    TakenEmail::Replace => match store::delete_if_only_sign_up(&st.table, &existing.sub).await? {
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
pub struct ConfirmBody {
    email: String,
    code: String,
}

pub async fn confirm(State(st): State<AppState>, Json(body): Json<ConfirmBody>) -> Result<StatusCode> {
    let mut fields = Fields::default();
    let email = fields.check(Email::parse("email", &body.email));
    let code = fields.check(parse_code("code", &body.code));
    let (email, code) = fields.finish(email.zip(code))?;
    st.cognito.confirm(&email, &code).await?;
    if let Some(user) = st.cognito.user(email.as_str()).await? {
        store::ensure(&st.table, Profile::new(&user.sub, &user.email, &user.name, st.clock.now())).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// A wrong password and an unknown e-mail get the same 401: no account enumeration.
pub async fn login(State(st): State<AppState>, Json(body): Json<LoginBody>) -> Result<Json<TokensBody>> {
    let Ok(email) = Email::parse("email", &body.email) else {
        return Err(AuthError::InvalidCredentials.into());
    };
    let tokens = st.cognito.login(&email, &body.password).await?;
    let claims = tokens.id_claims()?;
    if store::get(&st.table, &claims.sub).await?.is_none() {
        let email = if claims.email.is_empty() { email.as_str() } else { &claims.email };
        store::ensure(&st.table, Profile::new(&claims.sub, email, &claims.name, st.clock.now())).await?;
    }
    Ok(Json(tokens.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(State(st): State<AppState>, Json(body): Json<RefreshBody>) -> Result<Json<TokensBody>> {
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
pub async fn logout(State(st): State<AppState>, caller: Caller) -> Result<StatusCode> {
    let me = super::caller_profile(&st, &caller).await?;
    // By e-mail (an alias Cognito resolves): moto revokes only refresh tokens recorded under the
    // name used at sign-in, which is the e-mail; AWS accepts either.
    st.cognito.sign_out_everywhere(&me.email).await?;
    store::revoke_tokens(&st.table, &me.user_id, st.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    email: String,
}

/// 202 whether or not the account exists.
pub async fn forgot_password(State(st): State<AppState>, Json(body): Json<ForgotBody>) -> Result<StatusCode> {
    let email = Email::parse("email", &body.email).map_err(|e| ApiError::validation(vec![e]))?;
    st.cognito.forgot_password(&email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    email: String,
    code: String,
    new_password: String,
}

/// A reset also signs the user out everywhere: whoever knew the old password loses the session.
pub async fn reset_password(State(st): State<AppState>, Json(body): Json<ResetBody>) -> Result<StatusCode> {
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
        if store::get(&st.table, &user.sub).await?.is_some() {
            store::revoke_tokens(&st.table, &user.sub, st.clock.now()).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

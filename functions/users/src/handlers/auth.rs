//! Sign-up to sign-out, through Cognito.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::extract::Json;
use shared::{ApiError, Caller};

use super::Result;
use crate::AppState;
use crate::cognito::AuthError;
use crate::rules::{Email, Fields, Password, TakenEmail, could_be_password, on_taken_email, parse_code, parse_name};
use crate::store::{self, Profile, Removal};
use crate::views::{SignedUpBody, TokensBody};

/// `POST /v1/auth/signup`: a new account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SignUpRequest)]
pub struct SignUpBody {
    /// The e-mail address to sign in with (trimmed and lower-cased; one account per address).
    #[schema(format = Email, examples("ana@example.com"))]
    email: String,
    /// At least 8 characters with an upper-case letter, a lower-case letter and a digit; at most
    /// 256 bytes; no space at either end.
    #[schema(min_length = 8, max_length = 256, examples("Secret123"))]
    password: String,
    /// The display name: at most 100 characters, not blank (spaces around it are dropped), no
    /// control characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S", examples("Ana Lúcia"))]
    name: String,
}

/// POST /v1/auth/signup. Cognito is the arbiter of who holds an e-mail, so concurrent sign-ups end with one account.
/// An e-mail that already has an account is 409 `email_taken`, whatever the account's state,
/// except that an UNCONFIRMED account older than the grace period is replaced (with its profile,
/// only if that holds nothing beyond its sign-up); a younger one is kept, password included, and
/// its code sent again (`rules::on_taken_email`, docs/decisions.md "Signing up again").
#[utoipa::path(post, path = "/v1/auth/signup", tag = "users",
    summary = "Sign up with e-mail, password and name (anyone); a code is e-mailed to confirm it",
    description = "Creates an unconfirmed account and e-mails a confirmation code (send it to \
        `POST /v1/auth/confirm`). 409 `email_taken` whenever the e-mail already has an account \
        (confirmed, or awaiting confirmation: its code is sent again and its password kept), \
        except an unconfirmed account older than 24 hours, which is replaced. 409 \
        `signup_in_progress`: sign-ups for the same e-mail raced; try again. 400 \
        `validation_failed` names every bad field (a weak password among them).",
    request_body = SignUpBody,
    responses(
        (status = 201, description = "The account, unconfirmed.", body = SignedUpBody),
        (status = 409, description = "email_taken, signup_in_progress"),
        (status = 429, description = "too_many_requests"),
    ))]
pub async fn sign_up(State(st): State<AppState>, Json(body): Json<SignUpBody>) -> Result<Response> {
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
                let body = SignedUpBody { user_id: &user_id, email: email.as_str(), confirmed: false };
                return Ok((StatusCode::CREATED, Json(body)).into_response());
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

/// `POST /v1/auth/confirm`: the code e-mailed at sign-up.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConfirmRequest)]
pub struct ConfirmBody {
    /// The e-mail address signed up with.
    #[schema(format = Email, examples("ana@example.com"))]
    email: String,
    /// The code from the e-mail: at most 64 characters, no space inside (spaces around it are
    /// ignored).
    #[schema(min_length = 1, max_length = 64, examples("123456"))]
    code: String,
}

/// POST /v1/auth/confirm: confirming twice is fine (204 again).
#[utoipa::path(post, path = "/v1/auth/confirm", tag = "users", operation_id = "confirm_sign_up",
    summary = "Confirm a sign-up's e-mail with the e-mailed code (anyone)",
    description = "204 once the account is confirmed (also when it already was); it can then sign \
        in. 400 `invalid_code` when the code is wrong or expired, or the e-mail has no account.",
    request_body = ConfirmBody,
    responses(
        (status = 204, description = "Confirmed: sign in with `POST /v1/auth/login`."),
        (status = 400, description = "invalid_code"),
        (status = 429, description = "too_many_requests"),
    ))]
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

/// `POST /v1/auth/login`: the account's credentials.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoginRequest)]
pub struct LoginBody {
    /// The e-mail address signed up with (any case).
    #[schema(format = Email, examples("ana@example.com"))]
    email: String,
    /// The password.
    #[schema(examples("Secret123"))]
    password: String,
}

/// POST /v1/auth/login. A wrong password and an unknown e-mail get the same 401: no account
/// enumeration.
#[utoipa::path(post, path = "/v1/auth/login", tag = "users",
    summary = "Sign in with e-mail and password (anyone): the tokens",
    description = "200 with the access, ID and refresh tokens (secrets: keep them out of logs). \
        401 `invalid_credentials` for a wrong password and an unknown e-mail alike; 403 \
        `user_not_confirmed` until the sign-up's code is confirmed.",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in: the tokens, a refresh token included.", body = TokensBody),
        (status = 401, description = "invalid_credentials"),
        (status = 403, description = "user_not_confirmed"),
        (status = 429, description = "too_many_requests"),
    ))]
pub async fn login(State(st): State<AppState>, Json(body): Json<LoginBody>) -> Result<Json<TokensBody>> {
    let Ok(email) = Email::parse("email", &body.email) else {
        return Err(AuthError::InvalidCredentials.into());
    };
    // No account has such a password (and Cognito answers an empty one as a missing parameter,
    // which would be a 500 here).
    if !could_be_password(&body.password) {
        return Err(AuthError::InvalidCredentials.into());
    }
    let tokens = st.cognito.login(&email, &body.password).await?;
    let claims = tokens.id_claims()?;
    if store::get(&st.table, &claims.sub).await?.is_none() {
        let email = if claims.email.is_empty() { email.as_str() } else { &claims.email };
        store::ensure(&st.table, Profile::new(&claims.sub, email, &claims.name, st.clock.now())).await?;
    }
    Ok(Json(tokens.into()))
}

/// `POST /v1/auth/refresh`: the refresh token of a sign-in.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefreshRequest)]
pub struct RefreshBody {
    /// The `refresh_token` that `POST /v1/auth/login` returned.
    #[schema(min_length = 1, pattern = r"\S")]
    refresh_token: String,
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "users", operation_id = "refresh_tokens",
    summary = "New access and ID tokens from a refresh token (anyone)",
    description = "200 with new access and ID tokens (no new refresh token: keep the one you \
        have). 401 `invalid_token` when the refresh token is invalid, expired, or revoked by a \
        logout or a password reset.",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens, without `refresh_token`.", body = TokensBody),
        (status = 401, description = "invalid_token"),
        (status = 429, description = "too_many_requests"),
    ))]
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
#[utoipa::path(post, path = "/v1/auth/logout", tag = "users",
    summary = "Sign out everywhere: every token of the caller is revoked",
    description = "No body. 204; refresh tokens stop working at once, access and ID tokens on \
        every route within 5 seconds (401 `token_revoked`).",
    responses(
        (status = 204, description = "Signed out everywhere."),
        (status = 429, description = "too_many_requests"),
    ),
    security(("cognito" = [])))]
pub async fn logout(State(st): State<AppState>, caller: Caller) -> Result<StatusCode> {
    let me = super::caller_profile(&st, &caller).await?;
    // By e-mail (an alias Cognito resolves): moto revokes only refresh tokens recorded under the
    // name used at sign-in, which is the e-mail; AWS accepts either.
    st.cognito.sign_out_everywhere(&me.email).await?;
    store::revoke_tokens(&st.table, &me.user_id, st.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/password/forgot`: whose password to reset.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ForgotPasswordRequest)]
pub struct ForgotBody {
    /// The account's e-mail address.
    #[schema(format = Email, examples("ana@example.com"))]
    email: String,
}

/// 202 whether or not the account exists.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "users",
    summary = "Ask for a password-reset code by e-mail (anyone)",
    description = "202 whether or not the e-mail has an account (no account enumeration); when \
        it has, a code is e-mailed for `POST /v1/auth/password/reset`.",
    request_body = ForgotBody,
    responses(
        (status = 202, description = "Accepted: a code is e-mailed if the account exists."),
        (status = 429, description = "too_many_requests"),
    ))]
pub async fn forgot_password(State(st): State<AppState>, Json(body): Json<ForgotBody>) -> Result<StatusCode> {
    let email = Email::parse("email", &body.email).map_err(|e| ApiError::validation(vec![e]))?;
    st.cognito.forgot_password(&email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /v1/auth/password/reset`: the e-mailed code and the new password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ResetPasswordRequest)]
pub struct ResetBody {
    /// The account's e-mail address.
    #[schema(format = Email, examples("ana@example.com"))]
    email: String,
    /// The code from the e-mail: at most 64 characters, no space inside (spaces around it are
    /// ignored).
    #[schema(min_length = 1, max_length = 64, examples("123456"))]
    code: String,
    /// As at sign-up: at least 8 characters with an upper-case letter, a lower-case letter and a
    /// digit; at most 256 bytes; no space at either end.
    #[schema(min_length = 8, max_length = 256, examples("Secret456"))]
    new_password: String,
}

/// A reset also signs the user out everywhere: whoever knew the old password loses the session.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "users",
    summary = "Set a new password with the e-mailed code (anyone); ends every session",
    description = "204 once the password is changed; every token issued before is revoked, as \
        a logout does. 400 `invalid_code` when the code is wrong or expired (or the e-mail has \
        no account); 400 `validation_failed` names every bad field (a weak password among them).",
    request_body = ResetBody,
    responses(
        (status = 204, description = "Password changed; sign in again."),
        (status = 400, description = "invalid_code"),
        (status = 429, description = "too_many_requests"),
    ))]
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

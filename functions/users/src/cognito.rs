//! The user pool, as the users context needs it: each Cognito call with its failures turned into
//! `AuthError`s that say what happened in our words (and never which accounts exist).

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, AuthenticationResultType, UserStatusType};
use base64::Engine;
use serde::Deserialize;
use shared::ApiError;

use crate::rules::{AccountStatus, Email, Password};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("e-mail already has an account")]
    EmailTaken,
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("user not confirmed")]
    NotConfirmed,
    #[error("wrong or expired code")]
    InvalidCode,
    #[error("password refused by the pool: {0}")]
    InvalidPassword(String),
    /// An address our checks accept but Cognito does not take as a username.
    #[error("e-mail refused by the pool: {0}")]
    InvalidEmail(String),
    #[error("invalid or revoked refresh token")]
    InvalidToken,
    #[error("too many attempts")]
    TooManyRequests,
    #[error("no such user")]
    UserNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // One answer whatever the account's state (confirmed, awaiting confirmation, reset by
            // an operator): sign-up reveals that the e-mail has an account, nothing more.
            AuthError::EmailTaken => ApiError::conflict(
                "email_taken",
                "An account with this e-mail already exists: sign in, reset the password, or confirm the \
                 e-mail with the code we sent.",
            ),
            AuthError::InvalidCredentials | AuthError::UserNotFound => {
                ApiError::unauthorized("invalid_credentials", "The e-mail or password is wrong.")
            }
            AuthError::NotConfirmed => {
                ApiError::forbidden("user_not_confirmed", "Confirm your e-mail address with the code we sent first.")
            }
            AuthError::InvalidCode => {
                ApiError::new(http::StatusCode::BAD_REQUEST, "invalid_code", "The code is wrong or has expired.")
                    .with_field("code", "is wrong or has expired")
            }
            AuthError::InvalidPassword(reason) => ApiError::invalid_field("password", reason),
            AuthError::InvalidEmail(_) => ApiError::invalid_field("email", "is not an address we can sign up"),
            AuthError::InvalidToken => {
                ApiError::unauthorized("invalid_token", "The refresh token is invalid, expired or revoked.")
            }
            AuthError::TooManyRequests => ApiError::too_many_requests("Too many attempts; try again in a few minutes."),
            AuthError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

/// A Cognito error code and what it means here (built from Cognito's message).
type KnownError = (&'static str, fn(String) -> AuthError);

/// Cognito's error code, for mapping (`UsernameExistsException`, ...).
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    error: SdkError<E, aws_sdk_cognitoidentityprovider::config::http::HttpResponse>,
    known: &[KnownError],
) -> AuthError {
    let code = error.code().unwrap_or_default().to_string();
    let message = error.message().unwrap_or_default().to_string();
    if let Some((_, make)) = known.iter().find(|(c, _)| *c == code) {
        return make(message);
    }
    match code.as_str() {
        "TooManyRequestsException" | "LimitExceededException" | "TooManyFailedAttemptsException" => {
            AuthError::TooManyRequests
        }
        _ => AuthError::Unexpected(anyhow::Error::new(error).context(format!("cognito {operation}"))),
    }
}

/// A Cognito call's outcome, its failure told in our words (`classify`): every call of the pool
/// goes through it.
trait Classified<T> {
    fn classified(self, operation: &'static str, known: &[KnownError]) -> Result<T, AuthError>;
}

impl<T, E> Classified<T> for Result<T, SdkError<E, aws_sdk_cognitoidentityprovider::config::http::HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn classified(self, operation: &'static str, known: &[KnownError]) -> Result<T, AuthError> {
        self.map_err(|e| classify(operation, e, known))
    }
}

pub struct CognitoUser {
    pub username: String,
    pub sub: String,
    pub email: String,
    pub name: String,
    pub status: AccountStatus,
    /// Cognito's `UserCreateDate`.
    pub created_at: Option<jiff::Timestamp>,
}

pub struct Tokens {
    pub access_token: String,
    pub id_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i32,
}

/// The claims of an id token that Cognito just handed us (over TLS, in answer to our own call):
/// read, not verified, to learn who signed in without another round trip.
#[derive(Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
}

impl Tokens {
    pub fn id_claims(&self) -> anyhow::Result<IdClaims> {
        let payload = self.id_token.split('.').nth(1).ok_or_else(|| anyhow::anyhow!("id token is not a JWT"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

pub struct Cognito {
    pub client: Client,
    pub pool_id: String,
    pub client_id: String,
}

fn attribute(name: &str, value: &str) -> Result<AttributeType, AuthError> {
    AttributeType::builder().name(name).value(value).build().map_err(|e| AuthError::Unexpected(e.into()))
}

impl Cognito {
    pub async fn sign_up(&self, email: &Email, password: &Password, name: &str) -> Result<String, AuthError> {
        let out = self
            .client
            .sign_up()
            .client_id(&self.client_id)
            .username(email.as_str())
            .password(password.expose())
            .user_attributes(attribute("email", email.as_str())?)
            .user_attributes(attribute("name", name)?)
            .send()
            .await
            .classified(
                "SignUp",
                &[
                    ("UsernameExistsException", |_| AuthError::EmailTaken),
                    ("InvalidPasswordException", AuthError::InvalidPassword),
                    // "Username should be either an email or a phone number": the fuzzer found
                    // addresses our checks accept and Cognito does not (a 500 until then).
                    ("InvalidParameterException", |m| {
                        if m.contains("Username") {
                            AuthError::InvalidEmail(m)
                        } else {
                            AuthError::Unexpected(anyhow::anyhow!("cognito SignUp: InvalidParameterException: {m}"))
                        }
                    }),
                ],
            )?;
        Ok(out.user_sub().to_string())
    }

    /// The pool's user for an e-mail (or username), if any.
    pub async fn user(&self, username: &str) -> Result<Option<CognitoUser>, AuthError> {
        let found = self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
            .classified("AdminGetUser", &[("UserNotFoundException", |_| AuthError::UserNotFound)]);
        let out = match found {
            Ok(out) => out,
            Err(AuthError::UserNotFound) => return Ok(None),
            Err(other) => return Err(other),
        };
        let get = |name: &str| {
            out.user_attributes()
                .iter()
                .find(|a| a.name() == name)
                .and_then(|a| a.value())
                .unwrap_or_default()
                .to_string()
        };
        Ok(Some(CognitoUser {
            username: out.username().to_string(),
            sub: get("sub"),
            email: get("email"),
            name: get("name"),
            status: match out.user_status() {
                Some(UserStatusType::Unconfirmed) => AccountStatus::Unconfirmed,
                _ => AccountStatus::Established,
            },
            created_at: out.user_create_date().and_then(|d| jiff::Timestamp::from_second(d.secs()).ok()),
        }))
    }

    /// Sends an unconfirmed account's confirmation code again (Cognito e-mails it; the password
    /// stays). Cognito limits how often per user. One attempt, no retries: it is a courtesy the
    /// sign-up's answer does not wait for twice.
    pub async fn resend_code(&self, email: &Email) -> Result<(), AuthError> {
        let once = aws_sdk_cognitoidentityprovider::config::Builder::default()
            .retry_config(aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::disabled());
        self.client
            .resend_confirmation_code()
            .client_id(&self.client_id)
            .username(email.as_str())
            .customize()
            .config_override(once)
            .send()
            .await
            .classified("ResendConfirmationCode", &[])?;
        Ok(())
    }

    pub async fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let deleted = self
            .client
            .admin_delete_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
            .classified("AdminDeleteUser", &[("UserNotFoundException", |_| AuthError::UserNotFound)]);
        match deleted {
            Ok(_) | Err(AuthError::UserNotFound) => Ok(()),
            Err(other) => Err(other),
        }
    }

    pub async fn confirm(&self, email: &Email, code: &str) -> Result<(), AuthError> {
        let result = self
            .client
            .confirm_sign_up()
            .client_id(&self.client_id)
            .username(email.as_str())
            .confirmation_code(code)
            .send()
            .await
            .classified(
                "ConfirmSignUp",
                &[
                    ("CodeMismatchException", |_| AuthError::InvalidCode),
                    ("ExpiredCodeException", |_| AuthError::InvalidCode),
                    ("UserNotFoundException", |_| AuthError::InvalidCode),
                    // "User cannot be confirmed. Current status is CONFIRMED": confirming twice is fine.
                    ("NotAuthorizedException", |_| AuthError::EmailTaken),
                ],
            );
        match result {
            Ok(_) | Err(AuthError::EmailTaken) => Ok(()),
            Err(other) => Err(other),
        }
    }

    pub async fn login(&self, email: &Email, password: &str) -> Result<Tokens, AuthError> {
        let out = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", email.as_str())
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .classified(
                "InitiateAuth",
                &[
                    ("NotAuthorizedException", |_| AuthError::InvalidCredentials),
                    ("UserNotFoundException", |_| AuthError::InvalidCredentials),
                    ("UserNotConfirmedException", |_| AuthError::NotConfirmed),
                    ("PasswordResetRequiredException", |_| AuthError::InvalidCredentials),
                ],
            )?;
        tokens(out.authentication_result())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let out = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token)
            .send()
            .await
            .classified(
                "InitiateAuth(refresh)",
                &[
                    ("NotAuthorizedException", |_| AuthError::InvalidToken),
                    ("UserNotFoundException", |_| AuthError::InvalidToken),
                    ("ResourceNotFoundException", |_| AuthError::InvalidToken),
                ],
            )?;
        tokens(out.authentication_result())
    }

    /// Revokes every refresh token of the user (Cognito's global sign-out).
    pub async fn sign_out_everywhere(&self, username: &str) -> Result<(), AuthError> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
            .classified("AdminUserGlobalSignOut", &[])?;
        Ok(())
    }

    /// Sends a reset code if the account exists; says nothing either way.
    pub async fn forgot_password(&self, email: &Email) -> Result<(), AuthError> {
        let sent = self.client.forgot_password().client_id(&self.client_id).username(email.as_str()).send().await;
        let known: &[KnownError] = &[
            ("UserNotFoundException", |_| AuthError::UserNotFound),
            ("InvalidParameterException", |_| AuthError::UserNotFound),
            ("NotAuthorizedException", |_| AuthError::UserNotFound),
        ];
        match sent.classified("ForgotPassword", known) {
            Ok(_) | Err(AuthError::UserNotFound) => Ok(()),
            Err(other) => Err(other),
        }
    }

    pub async fn reset_password(&self, email: &Email, code: &str, password: &Password) -> Result<(), AuthError> {
        self.client
            .confirm_forgot_password()
            .client_id(&self.client_id)
            .username(email.as_str())
            .confirmation_code(code)
            .password(password.expose())
            .send()
            .await
            .classified(
                "ConfirmForgotPassword",
                &[
                    ("CodeMismatchException", |_| AuthError::InvalidCode),
                    ("ExpiredCodeException", |_| AuthError::InvalidCode),
                    ("UserNotFoundException", |_| AuthError::InvalidCode),
                    ("NotAuthorizedException", |_| AuthError::InvalidCode),
                    ("InvalidPasswordException", |m| AuthError::InvalidPassword(m)),
                ],
            )?;
        Ok(())
    }

    pub async fn add_to_group(&self, username: &str, group: &str) -> Result<(), AuthError> {
        self.client
            .admin_add_user_to_group()
            .user_pool_id(&self.pool_id)
            .username(username)
            .group_name(group)
            .send()
            .await
            .classified("AdminAddUserToGroup", &[])?;
        Ok(())
    }
}

fn tokens(result: Option<&AuthenticationResultType>) -> Result<Tokens, AuthError> {
    let result = result.ok_or_else(|| anyhow::anyhow!("Cognito answered a challenge, not tokens"))?;
    let token = |t: Option<&str>, what: &str| t.map(str::to_string).ok_or_else(|| anyhow::anyhow!("no {what} token"));
    Ok(Tokens {
        access_token: token(result.access_token(), "access")?,
        id_token: token(result.id_token(), "id")?,
        refresh_token: result.refresh_token().map(str::to_string),
        expires_in: result.expires_in(),
    })
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn an_address_cognito_refuses_is_a_field_error_not_a_500() {
        let refused = AuthError::InvalidEmail("Username should be either an email or a phone number.".into());
        let ApiError::Problem(problem) = ApiError::from(refused) else { panic!("not a problem") };
        assert_eq!(problem.code, "validation_failed");
        assert_eq!(ApiError::Problem(problem).into_response().status(), 400);
    }
}

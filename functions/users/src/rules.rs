//! The users context's rules as plain functions: what a valid e-mail, password, name and bio
//! are, and what a sign-up may do to an account that already holds its e-mail. Parse, don't
//! validate: handlers receive these types, never raw strings.

use jiff::{SignedDuration, Timestamp};
use shared::FieldError;

pub const NAME_MAX: usize = 100;
pub const BIO_MAX: usize = 1000;
const EMAIL_MAX: usize = 254;
/// Cognito's password length limit.
const PASSWORD_MAX: usize = 256;
pub const PASSWORD_MIN: usize = 8;

/// An e-mail address, trimmed and lower-cased (Cognito's sign-in is case-insensitive, and one
/// address must be one account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let invalid = || FieldError::new(field, "must be an e-mail address like name@example.com");
        if email.is_empty() || email.len() > EMAIL_MAX || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain.contains('.') || !labels_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password meeting the user pool's policy (infra/template.yaml: at least 8 characters with
/// upper case, lower case and a digit). Checked here too so the client learns every broken rule
/// at once, with the field named, instead of Cognito's one-line message.
pub struct Password(String);

impl Password {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let mut missing = Vec::new();
        if raw.chars().count() < PASSWORD_MIN {
            missing.push(format!("at least {PASSWORD_MIN} characters"));
        }
        if !raw.chars().any(|c| c.is_uppercase()) {
            missing.push("an upper-case letter".to_string());
        }
        if !raw.chars().any(|c| c.is_lowercase()) {
            missing.push("a lower-case letter".to_string());
        }
        if !raw.chars().any(|c| c.is_ascii_digit()) {
            missing.push("a digit".to_string());
        }
        if raw.len() > PASSWORD_MAX {
            return Err(FieldError::new(field, format!("must be at most {PASSWORD_MAX} bytes")));
        }
        if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
            return Err(FieldError::new(field, "must not start or end with a space"));
        }
        if missing.is_empty() {
            Ok(Self(raw.to_string()))
        } else {
            Err(FieldError::new(field, format!("is too weak: it needs {}", missing.join(", "))))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether `raw` may be some account's password: not empty, not longer than the pool allows.
/// Sign-in checks nothing else before asking Cognito, which takes an empty one for a missing
/// parameter (an error of ours, not a wrong password).
pub fn could_be_password(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= PASSWORD_MAX
}

/// Never printed: a `Password` in a log line or panic message shows nothing.
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub fn parse_name(field: &str, raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    // As sent, as the schema's `maxLength` counts it.
    if raw.chars().count() > NAME_MAX {
        return Err(FieldError::new(field, format!("must be at most {NAME_MAX} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(name.to_string())
}

/// A bio: trimmed, at most 1000 characters; line breaks allowed, other control characters not.
pub fn parse_bio(field: &str, raw: &str) -> Result<String, FieldError> {
    let bio = raw.trim();
    if raw.chars().count() > BIO_MAX {
        return Err(FieldError::new(field, format!("must be at most {BIO_MAX} characters")));
    }
    if bio.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(bio.to_string())
}

/// Longest confirmation or reset code accepted, as sent.
pub const CODE_MAX: usize = 64;

/// A confirmation or reset code as a person types it: short, no spaces. Whether it is right is
/// Cognito's to say.
pub fn parse_code(field: &str, raw: &str) -> Result<String, FieldError> {
    let code = raw.trim();
    if code.is_empty()
        || raw.chars().count() > CODE_MAX
        || code.len() > CODE_MAX
        || code.chars().any(char::is_whitespace)
    {
        return Err(FieldError::new(field, "must be the code from the e-mail"));
    }
    Ok(code.to_string())
}

/// The default for `UNCONFIRMED_ACCOUNT_GRACE_HOURS`: how long an unconfirmed account keeps its
/// e-mail against new sign-ups.
pub const DEFAULT_UNCONFIRMED_GRACE: SignedDuration = SignedDuration::from_hours(24);

/// A Cognito account's status, as far as sign-up cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Signed up, e-mail never confirmed.
    Unconfirmed,
    /// Anything else: confirmed, or an account an operator made or reset
    /// (`FORCE_CHANGE_PASSWORD`, `RESET_REQUIRED`), or a status Cognito adds later.
    Established,
}

/// What a sign-up does when the e-mail already has an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenEmail {
    /// Nobody proved they own the e-mail within the grace period: the account may go, so a
    /// stranger's sign-up with someone's address cannot lock its owner out for good.
    Replace,
    /// A recent unconfirmed sign-up: kept, password included (a second sign-up must not take it
    /// over), and its code sent again for whoever owns the mailbox; answered like any taken e-mail.
    ResendCode,
    /// Kept and answered 409 `email_taken`.
    Keep,
}

/// Only an UNCONFIRMED account whose `UserCreateDate` is at least `grace` before `now` may be
/// replaced; an unknown creation date counts as recent (keeping is the safe side).
pub fn on_taken_email(
    status: AccountStatus,
    created_at: Option<Timestamp>,
    now: Timestamp,
    grace: SignedDuration,
) -> TakenEmail {
    match (status, created_at) {
        (AccountStatus::Established, _) => TakenEmail::Keep,
        (AccountStatus::Unconfirmed, Some(created)) if now.duration_since(created) >= grace => TakenEmail::Replace,
        (AccountStatus::Unconfirmed, _) => TakenEmail::ResendCode,
    }
}

/// Collects every field error of a body before answering, so the client fixes them in one go.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    pub fn finish<T>(self, value: Option<T>) -> Result<T, shared::ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(shared::ApiError::validation(self.0)),
        }
    }
}

/// A notification id as the API shows it: `ntf_` + 26 lowercase base32 characters.
pub fn parse_notification_id(raw: &str) -> Option<&str> {
    let rest = raw.strip_prefix("ntf_")?;
    (rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_checked() {
        assert!(parse_notification_id("ntf_01kaxb3c4d5e6f7g8h9jkmnp01").is_some());
        assert!(parse_notification_id("ntf_01KAXB3C4D5E6F7G8H9JKMNP01").is_none());
        assert!(parse_notification_id("evt_01kaxb3c4d5e6f7g8h9jkmnp01").is_none());
        assert!(parse_notification_id("ntf_x#y").is_none());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("email", "  Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        assert_eq!(Email::parse("email", "jo.ão+x@exämple.com.br").unwrap().as_str(), "jo.ão+x@exämple.com.br");
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "ana@-x.com", "ana@x..com"] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
        assert!(Email::parse("email", &format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords_follow_the_pool_policy_and_name_every_missing_rule() {
        assert!(Password::parse("password", "Secret123").is_ok());
        let err = Password::parse("password", "short").unwrap_err();
        assert_eq!(err.field, "password");
        assert!(
            err.message.contains("8 characters") && err.message.contains("upper-case") && err.message.contains("digit")
        );
        assert!(Password::parse("password", "alllowercase1").unwrap_err().message.contains("upper-case"));
        assert!(Password::parse("password", "ALLUPPERCASE1").unwrap_err().message.contains("lower-case"));
        assert!(Password::parse("password", " Secret123").is_err());
        assert_eq!(format!("{:?}", Password::parse("p", "Secret123").unwrap()), "Password(***)");
    }

    #[test]
    fn only_a_password_cognito_can_check_is_sent_to_it() {
        assert!(could_be_password("Secret123") && could_be_password("x"));
        assert!(!could_be_password(""));
        assert!(could_be_password(&"é".repeat(PASSWORD_MAX / 2)));
        assert!(!could_be_password(&"é".repeat(PASSWORD_MAX / 2 + 1)));
    }

    #[test]
    fn names_and_bios_are_trimmed_and_bounded() {
        assert_eq!(parse_name("name", "  Ana Lúcia ").unwrap(), "Ana Lúcia");
        assert!(parse_name("name", "   ").is_err());
        assert!(parse_name("name", &"é".repeat(NAME_MAX)).is_ok());
        assert!(parse_name("name", &"é".repeat(NAME_MAX + 1)).is_err());
        assert!(parse_name("name", &format!(" {}", "é".repeat(NAME_MAX))).is_err(), "the maximum counts what is sent");
        assert!(parse_bio("bio", &format!("{} ", "x".repeat(BIO_MAX))).is_err());
        assert!(parse_name("name", "a\u{0}b").is_err());
        assert_eq!(parse_bio("bio", " Hi\nthere ").unwrap(), "Hi\nthere");
        assert_eq!(parse_bio("bio", "").unwrap(), "");
        assert!(parse_bio("bio", &"x".repeat(BIO_MAX + 1)).is_err());
    }

    #[test]
    fn codes_are_short_and_unspaced() {
        assert_eq!(parse_code("code", " 123456 ").unwrap(), "123456");
        assert!(parse_code("code", "").is_err());
        assert!(parse_code("code", "12 34").is_err());
    }

    #[test]
    fn only_an_unconfirmed_account_past_the_grace_period_is_replaced() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let grace = DEFAULT_UNCONFIRMED_GRACE;
        let ago =
            |hours: i64, secs: i64| Some(now - SignedDuration::from_hours(hours) + SignedDuration::from_secs(secs));
        use AccountStatus::*;
        assert_eq!(on_taken_email(Unconfirmed, ago(24, 0), now, grace), TakenEmail::Replace);
        assert_eq!(on_taken_email(Unconfirmed, ago(400, 0), now, grace), TakenEmail::Replace);
        assert_eq!(on_taken_email(Unconfirmed, ago(24, 1), now, grace), TakenEmail::ResendCode);
        assert_eq!(on_taken_email(Unconfirmed, ago(0, 0), now, grace), TakenEmail::ResendCode);
        assert_eq!(on_taken_email(Unconfirmed, None, now, grace), TakenEmail::ResendCode);
        // A creation date in the future (clock skew) is recent.
        assert_eq!(on_taken_email(Unconfirmed, ago(-1, 0), now, grace), TakenEmail::ResendCode);
        for created in [ago(0, 0), ago(24 * 365, 0), None] {
            assert_eq!(on_taken_email(Established, created, now, grace), TakenEmail::Keep);
        }
    }

    #[test]
    fn fields_collect_every_error() {
        let mut fields = Fields::default();
        let a = fields.check(parse_name("name", ""));
        let b = fields.check(Email::parse("email", "nope"));
        let err = fields.finish(a.zip(b)).unwrap_err();
        assert_eq!(err.status(), 400);
    }
}

use std::sync::Arc;

use bookings::{AppState, router};
use jiff::SignedDuration;
use shared::config::{self, ConfigError};
use shared::cursor::CursorKey;
use shared::{Table, clock, telemetry};

/// The longest hold `HOLD_MINUTES` may ask for: a day.
const MAX_HOLD_MINUTES: i64 = 24 * 60;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let hold_minutes: i64 = config::parse("HOLD_MINUTES")?;
    if !(1..=MAX_HOLD_MINUTES).contains(&hold_minutes) {
        return Err(ConfigError::Invalid {
            name: "HOLD_MINUTES".to_owned(),
            reason: format!("must be 1 to {MAX_HOLD_MINUTES}"),
        }
        .into());
    }
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let cursor_secret = config::secure_parameter(&ssm, &config::required("CURSOR_KEY_PARAMETER")?).await?;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        cursors: Arc::new(CursorKey::new(&cursor_secret)?),
        hold: SignedDuration::from_mins(hold_minutes),
    };
    shared::http::run(router(state)).await
}

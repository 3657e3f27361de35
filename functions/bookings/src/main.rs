use std::sync::Arc;

use bookings::{AppState, router};
use jiff::SignedDuration;
use shared::cursor::CursorKey;
use shared::{Table, clock, metrics, telemetry};
use shared::{config, payout};

/// The longest hold `HOLD_MINUTES` may ask for: a day.
const MAX_HOLD_MINUTES: i64 = 24 * 60;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    metrics::init()?;
    let hold_minutes = config::parse_bounded("HOLD_MINUTES", 1..=MAX_HOLD_MINUTES)?;
    let fee = config::parse_bounded("PLATFORM_FEE_BASIS_POINTS", 0..=i64::from(payout::BASIS_POINTS))?;
    let sdk = config::aws_config().await;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        cursors: Arc::new(CursorKey::from_parameter(&sdk).await?),
        hold: SignedDuration::from_mins(hold_minutes),
        platform_fee_basis_points: u32::try_from(fee)?,
    };
    shared::http::run(router(state)).await
}

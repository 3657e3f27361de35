use std::sync::Arc;

use jiff::SignedDuration;
use shared::{Table, clock, config, telemetry};
use users::cognito::Cognito;
use users::{AppState, router};

/// The longest grace `UNCONFIRMED_ACCOUNT_GRACE_HOURS` may ask for: 30 days.
const MAX_GRACE_HOURS: i64 = 30 * 24;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let grace_hours = config::parse_bounded("UNCONFIRMED_ACCOUNT_GRACE_HOURS", 1..=MAX_GRACE_HOURS)?;
    let sdk = config::aws_config().await;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        cognito: Arc::new(Cognito {
            client: aws_sdk_cognitoidentityprovider::Client::from_conf(
                aws_sdk_cognitoidentityprovider::config::Builder::from(&sdk)
                    .interceptor(shared::dependency::WatchDependency)
                    .build(),
            ),
            pool_id: config::required("USER_POOL_ID")?,
            client_id: config::required("USER_POOL_CLIENT_ID")?,
        }),
        clock: clock::from_env()?,
        cursors: Arc::new(shared::cursor::CursorKey::from_parameter(&sdk).await?),
        unconfirmed_grace: SignedDuration::from_hours(grace_hours),
    };
    shared::http::run(router(state)).await
}

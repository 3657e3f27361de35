use std::sync::Arc;

use shared::{Table, clock, config, telemetry};
use users::cognito::Cognito;
use users::{AppState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let cursor_secret = config::secure_parameter(&ssm, &config::required("CURSOR_KEY_PARAMETER")?).await?;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        cognito: Arc::new(Cognito {
            client: aws_sdk_cognitoidentityprovider::Client::new(&sdk),
            pool_id: config::required("USER_POOL_ID")?,
            client_id: config::required("USER_POOL_CLIENT_ID")?,
        }),
        clock: clock::from_env()?,
        cursors: Arc::new(shared::cursor::CursorKey::new(&cursor_secret)?),
    };
    shared::http::run(router(state)).await
}

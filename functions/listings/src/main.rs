use std::sync::Arc;

use listings::photos::PhotoStore;
use listings::{AppState, router};
use shared::cursor::CursorKey;
use shared::{Table, clock, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        photos: Arc::new(PhotoStore::from_env(&sdk)?),
        clock: clock::from_env()?,
        cursors: Arc::new(CursorKey::from_parameter(&sdk).await?),
        allow_loopback_feeds: listings::feeds::FeedFetcher::loopback_allowed(),
        payout_account_required: config::optional("PAYOUT_ACCOUNT_REQUIRED_TO_PUBLISH").as_deref() == Some("true"),
    };
    shared::http::run(router(state)).await
}

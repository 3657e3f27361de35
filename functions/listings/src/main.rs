use std::sync::Arc;

use listings::photos::PhotoStore;
use listings::{AppState, router};
use shared::cursor::CursorKey;
use shared::{Table, clock, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    // An endpoint override (the local stack's emulator) gets path-style addressing; on AWS the
    // SDK's virtual-hosted default stays.
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk).interceptor(shared::dependency::WatchDependency);
    if config::optional("AWS_ENDPOINT_URL_S3").or_else(|| config::optional("AWS_ENDPOINT_URL")).is_some() {
        s3 = s3.force_path_style(true);
    }
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        photos: Arc::new(PhotoStore {
            client: aws_sdk_s3::Client::from_conf(s3.build()),
            bucket: config::required("PHOTOS_BUCKET")?,
        }),
        clock: clock::from_env()?,
        cursors: Arc::new(CursorKey::from_parameter(&sdk).await?),
    };
    shared::http::run(router(state)).await
}

use std::sync::Arc;

use docs::{AppState, openapi, page, router};
use shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let state = AppState {
        document: Arc::new(openapi::Published::new(&openapi::document())?),
        page: Arc::new(page::Page::new()),
    };
    // No `Caller` on any route: no sign-out check, so no table (shared::http::run needs one).
    lambda_http::run(shared::http::whole_gateway_path(shared::http::with_request_layers(router(state)))).await
}

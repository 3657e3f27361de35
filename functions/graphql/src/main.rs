use std::sync::Arc;

use graphql::auth::TokenVerifier;
use graphql::limits::Limits;
use graphql::{AppState, Reads, router};
use listings::photos::PhotoStore;
use shared::cursor::CursorKey;
use shared::{Table, clock, config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let table = Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?));
    let cursors = Arc::new(CursorKey::from_parameter(&sdk).await?);
    let clock = clock::from_env()?;
    let photos = Arc::new(PhotoStore::from_env(&sdk)?);
    let reads = Reads::new(table, photos, clock.clone(), cursors);
    let issuer = config::required("COGNITO_ISSUER")?;
    let jwks = TokenVerifier::jwks_url(&issuer, config::optional("AWS_ENDPOINT_URL").as_deref());
    let tokens = Arc::new(TokenVerifier::new(issuer, vec![config::required("USER_POOL_CLIENT_ID")?], jwks));
    let limits = Limits::from_env()?;
    let schema = graphql::schema::build(reads.clone(), &limits);
    shared::http::run(router(AppState { reads, schema, tokens, clock, limits })).await
}

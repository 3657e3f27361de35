//! One function per route of the bookings context, by resource: extract, check the rules
//! (`rules`, `cancellation`), read and write (`store`, `lifecycle`), answer with `views`.

pub mod answer;
pub mod booking;
pub mod create;
pub mod lists;
pub mod quote;

use shared::booking::BookingItem;
use shared::{ApiError, Caller};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, store};

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(quote::quote))
        .routes(routes!(create::create_booking))
        .routes(routes!(booking::get_booking))
        .routes(routes!(booking::cancellation_preview))
        .routes(routes!(booking::cancel_booking))
        .routes(routes!(answer::accept))
        .routes(routes!(answer::decline))
        .routes(routes!(lists::trips))
        .routes(routes!(lists::reservations));
    let api = router.get_openapi_mut();
    body_is_optional(api, "/v1/bookings/{id}/cancel");
    body_is_optional(api, "/v1/bookings/{id}/decline");
    router
}

/// The cancel's and the decline's body may be left out, but when sent it is an object (JSON
/// `null` is a 400). utoipa spells an optional body as `CancelRequest | null`; say it exactly.
fn body_is_optional(api: &mut utoipa::openapi::OpenApi, path: &str) {
    let op = api.paths.paths.get_mut(path).and_then(|item| item.post.as_mut());
    if let Some(utoipa::openapi::RefOr::T(body)) = op.and_then(|op| op.request_body.as_mut()) {
        body.required = Some(utoipa::openapi::Required::False);
    }
}

type Result<T> = std::result::Result<T, ApiError>;

fn unexpected(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Unexpected(e.into())
}

/// The booking `id` if the caller is its guest or its host; 404 for anyone else. One GetItem.
async fn party_booking(st: &AppState, caller: &Caller, id: &str) -> Result<BookingItem> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, id).ok_or_else(ApiError::not_found)?;
    store::booking(&st.table, id).await?.filter(|b| b.is_party(&caller.user_id)).ok_or_else(ApiError::not_found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_has_every_route_and_an_optional_cancel_body() {
        let api = serde_json::to_value(crate::openapi()).unwrap();
        let paths = api["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 9, "{:?}", paths.keys());
        let cancel = &api["paths"]["/v1/bookings/{id}/cancel"]["post"];
        assert_eq!(cancel["requestBody"]["required"], false);
        assert_eq!(
            cancel["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CancelRequest"
        );
        // Only the quote is public.
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                assert_eq!(op["tags"][0], "bookings", "{method} {path}");
                assert_eq!(op.get("security").is_none(), path == "/v1/quotes", "{method} {path}");
            }
        }
    }
}

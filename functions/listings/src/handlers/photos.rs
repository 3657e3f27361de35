//! A listing's photos: a pre-signed upload, its completion once the object is checked, removal.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use shared::ApiError;
use shared::extract::{Json, Path};
use shared::listing::{PendingPhoto, Photo};

use super::{Host, Result, modify, modify_from, own_listing, photo_id};
use crate::rules::{self, PhotoBody, PhotoUpload};
use crate::views::{self, CompletedPhotoView, UploadBody};
use crate::{AppState, photos};

/// POST /v1/listings/{id}/photos: a pre-signed PUT bound to the type and length. GetItem +
/// TransactWriteItems (2 items: the pending photo is recorded on the listing).
#[utoipa::path(post, path = "/v1/listings/{id}/photos", operation_id = "start_photo_upload", tag = "listings",
    summary = "Start a photo upload: a pre-signed S3 PUT bound to the image's type and size (its host)",
    description = "PUT the image to `upload_url` with exactly `upload_headers` within 15 minutes, then call `POST /v1/listings/{id}/photos/{photo_id}/complete`. A listing has at most 30 photos, counting uploads in progress, and at most 10 uploads in progress.",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    request_body = PhotoBody,
    responses(
        (status = 201, description = "Where and how to upload the image.", body = UploadBody),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "listing_archived, conflict"),
        (status = 422, description = "too_many_photos"),
    ),
    security(("cognito" = [])))]
pub async fn start_upload(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(body): Json<PhotoBody>,
) -> Result<impl IntoResponse> {
    let upload = PhotoUpload::parse(&body)?;
    let now = st.clock.now();
    let photo_id = shared::ids::new_id_at("pho", now);
    let expires_at = now.checked_add(photos::UPLOAD_URL_TTL).map_err(anyhow::Error::from)?;
    let mut object_key = String::new();
    modify(&st, &host, &id, |old| {
        rules::require_active(old)?;
        object_key = photos::object_key(&old.listing_id, &photo_id);
        let pending = PendingPhoto {
            photo_id: photo_id.clone(),
            object_key: object_key.clone(),
            content_type: upload.content_type.to_owned(),
            size: upload.content_length,
            caption: upload.caption.clone(),
            expires_at: expires_at.to_string(),
        };
        rules::with_pending_photo(old, pending, now).map(Some)
    })
    .await?;
    let url = st.photos.upload_url(&object_key, upload.content_type, upload.content_length, now).await?;
    Ok((StatusCode::CREATED, Json(UploadBody::new(photo_id, url))))
}

/// POST .../photos/{photo_id}/complete: HEAD the object (exists, announced type and size), then
/// show the photo. GetItem + (S3 HEAD) + TransactWriteItems (2 items). Idempotent.
#[utoipa::path(post, path = "/v1/listings/{id}/photos/{photo_id}/complete", operation_id = "complete_photo_upload", tag = "listings",
    summary = "Finish a photo upload: checks the uploaded image, then shows it on the listing (its host; idempotent)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`)."), ("photo_id" = String, Path, description = "The photo's id (`pho_...`).")),
    responses(
        (status = 200, description = "The photo, now on the listing.", body = CompletedPhotoView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "listing_archived, upload_missing, upload_mismatch, conflict"),
    ),
    security(("cognito" = [])))]
pub async fn complete_upload(
    State(st): State<AppState>,
    Host(host): Host,
    Path((id, pid)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let pid = photo_id(&pid)?.to_owned();
    let current = own_listing(&st, &host, &id).await?;
    if let Some(done) = current.photos.get(&pid) {
        return Ok(Json(views::photo(&st.photos, done, st.clock.now()).await?));
    }
    rules::require_active(&current)?;
    let pending = current.pending_photos.get(&pid).cloned().ok_or_else(ApiError::not_found)?;
    let Some(info) = st.photos.head(&pending.object_key).await? else {
        return Err(ApiError::conflict(
            "upload_missing",
            "Nothing was uploaded to the upload URL yet; PUT the image first.",
        ));
    };
    if !photos::matches_announcement(&info, &pending.content_type, pending.size) {
        return Err(ApiError::conflict(
            "upload_mismatch",
            format!(
                "The uploaded object is not the announced {} of {} bytes; upload it again to the same URL.",
                pending.content_type, pending.size
            ),
        ));
    }
    let photo = Photo {
        photo_id: pid.clone(),
        object_key: pending.object_key.clone(),
        content_type: pending.content_type.clone(),
        size: pending.size,
        caption: pending.caption.clone(),
        created_at: st.clock.now().to_string(),
    };
    let saved = modify_from(&st, &host, &id, Some(current), |old| rules::with_completed_photo(old, &photo)).await?;
    let shown = saved.photos.get(&pid).ok_or_else(|| anyhow::anyhow!("completed photo {pid} not on the listing"))?;
    Ok(Json(views::photo(&st.photos, shown, st.clock.now()).await?))
}

/// DELETE .../photos/{photo_id}: off the listing (GetItem + TransactWriteItems), then the object.
#[utoipa::path(delete, path = "/v1/listings/{id}/photos/{photo_id}", operation_id = "delete_photo", tag = "listings",
    summary = "Remove a photo, or cancel its upload (its host)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`)."), ("photo_id" = String, Path, description = "The photo's id (`pho_...`).")),
    responses(
        (status = 204, description = "The photo is off the listing."),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "conflict"),
    ),
    security(("cognito" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    Host(host): Host,
    Path((id, pid)): Path<(String, String)>,
) -> Result<StatusCode> {
    let pid = photo_id(&pid)?.to_owned();
    let mut object_key = None;
    modify(&st, &host, &id, |old| {
        let (new, removed) = rules::without_photo(old, &pid)?;
        object_key = Some(removed);
        Ok(Some(new))
    })
    .await?;
    if let Some(k) = object_key {
        // The photo is already off the listing; a leftover object is only storage.
        if let Err(e) = st.photos.delete(&k).await {
            tracing::warn!(error.cause_chain = ?e, "photo object not deleted");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

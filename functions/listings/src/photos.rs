//! Photo objects in the private photos bucket: pre-signed upload and download URLs (signing
//! only: no request), HEAD to check an upload, delete.
//!
//! Object keys are `listings/<listing id>/<photo id>`; the bucket is private, so a client reads
//! a photo only through a pre-signed GET made when a listing or search page is answered.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use aws_sdk_s3::presigning::PresigningConfig;
use jiff::{SignedDuration, Timestamp};

/// How long an upload URL works.
pub const UPLOAD_URL_TTL: SignedDuration = SignedDuration::from_mins(15);
/// Download URLs are signed from the start of the current hour and last two hours, so they are
/// stable within an hour (cacheable) and valid for at least one more.
const DOWNLOAD_WINDOW_SECS: i64 = 3600;
const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(2 * 3600);

/// The start (epoch seconds) of the hour every download URL signed at `now` is signed from: an
/// answer with photo URLs changes when it does (`views::listing_etag`).
pub fn download_window(now: Timestamp) -> i64 {
    now.as_second() - now.as_second().rem_euclid(DOWNLOAD_WINDOW_SECS)
}

#[derive(Debug, Clone)]
pub struct PhotoStore {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

impl PhotoStore {
    /// The bucket named by `PHOTOS_BUCKET`. An endpoint override (the local stack's emulator)
    /// gets path-style addressing; on AWS the SDK's virtual-hosted default stays.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk).interceptor(shared::dependency::WatchDependency);
        if shared::config::optional("AWS_ENDPOINT_URL_S3")
            .or_else(|| shared::config::optional("AWS_ENDPOINT_URL"))
            .is_some()
        {
            s3 = s3.force_path_style(true);
        }
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(s3.build()),
            bucket: shared::config::required("PHOTOS_BUCKET")?,
        })
    }
}

/// A pre-signed PUT and the headers the client must send with it (they are signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadUrl {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: Timestamp,
}

/// What HEAD says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

pub fn object_key(listing_id: &str, photo_id: &str) -> String {
    format!("listings/{listing_id}/{photo_id}")
}

impl PhotoStore {
    /// A PUT URL bound to `content_type` and `content_length` (both signed headers).
    pub async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        now: Timestamp,
    ) -> anyhow::Result<UploadUrl> {
        let expires_at = now.checked_add(UPLOAD_URL_TTL).context("upload expiry")?;
        let config = PresigningConfig::builder()
            .start_time(SystemTime::from(now))
            .expires_in(Duration::from_secs(UPLOAD_URL_TTL.as_secs().unsigned_abs()))
            .build()
            .context("upload URL presigning config")?;
        let length = i64::try_from(content_length).context("content length")?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(config)
            .await
            .context("presign PutObject")?;
        let url = presigned.uri().to_owned();
        let signed = signed_headers(&url);
        let headers = presigned
            .headers()
            .filter(|(k, _)| signed.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        Ok(UploadUrl { url, headers, expires_at })
    }

    /// A GET URL for a photo (no request is made: signing is local).
    pub async fn download_url(&self, key: &str, now: Timestamp) -> anyhow::Result<String> {
        let start = Timestamp::from_second(download_window(now)).context("download URL window")?;
        let config = PresigningConfig::builder()
            .start_time(SystemTime::from(start))
            .expires_in(DOWNLOAD_URL_TTL)
            .build()
            .context("download URL presigning config")?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .context("presign GetObject")?;
        Ok(presigned.uri().to_owned())
    }

    /// `None` when the object does not exist.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<ObjectInfo>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectInfo {
                content_type: out.content_type().map(str::to_owned),
                size: out.content_length().and_then(|n| u64::try_from(n).ok()),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("HeadObject")),
        }
    }

    /// Deleting a missing object is not an error (S3 semantics).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.context("DeleteObject")?;
        Ok(())
    }
}

/// The header names a pre-signed URL's signature covers (`X-Amz-SignedHeaders`), but `host`,
/// which the client sends anyway: only these must be sent exactly as signed.
fn signed_headers(url: &str) -> Vec<String> {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .map(|v| v.replace("%3B", ";").replace("%3b", ";"))
        .unwrap_or_default()
        .split(';')
        .filter(|h| !h.is_empty() && *h != "host")
        .map(str::to_owned)
        .collect()
}

/// Whether an uploaded object is the one announced: same type (parameters such as `charset`
/// ignored) and exactly the announced size.
pub fn matches_announcement(info: &ObjectInfo, content_type: &str, size: u64) -> bool {
    let essence = info
        .content_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    essence == content_type && info.size == Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> PhotoStore {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
            .endpoint_url("http://127.0.0.1:9")
            .force_path_style(true)
            .build();
        PhotoStore { client: aws_sdk_s3::Client::from_conf(conf), bucket: "photos".into() }
    }

    #[tokio::test]
    async fn upload_urls_sign_type_and_length() {
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let up = store().upload_url("listings/lst_1/pho_1", "image/png", 1234, now).await.unwrap();
        assert!(up.url.starts_with("http://127.0.0.1:9/photos/listings/lst_1/pho_1?"), "{}", up.url);
        assert!(up.url.contains("X-Amz-Expires=900"), "{}", up.url);
        assert!(up.url.contains("X-Amz-Date=20260301T100000Z"), "{}", up.url);
        let signed = up.url.split("X-Amz-SignedHeaders=").nth(1).unwrap().split('&').next().unwrap();
        assert!(signed.contains("content-type"), "{signed}");
        assert!(signed.contains("content-length"), "{signed}");
        assert!(up.headers.contains(&("content-type".to_owned(), "image/png".to_owned())), "{:?}", up.headers);
        assert!(up.headers.contains(&("content-length".to_owned(), "1234".to_owned())), "{:?}", up.headers);
        assert!(up.headers.iter().all(|(k, _)| k == "content-type" || k == "content-length"), "{:?}", up.headers);
        assert_eq!(up.expires_at.to_string(), "2026-03-01T10:15:00Z");
    }

    #[tokio::test]
    async fn download_urls_are_stable_within_the_hour() {
        let a = store().download_url("k", "2026-03-01T10:05:00Z".parse().unwrap()).await.unwrap();
        let b = store().download_url("k", "2026-03-01T10:55:00Z".parse().unwrap()).await.unwrap();
        let c = store().download_url("k", "2026-03-01T11:00:00Z".parse().unwrap()).await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.contains("X-Amz-Date=20260301T100000Z") && a.contains("X-Amz-Expires=7200"), "{a}");
    }

    #[test]
    fn signed_header_names() {
        let url =
            "http://h/b/k?x-id=PutObject&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature=1";
        assert_eq!(signed_headers(url), vec!["content-length", "content-type"]);
        assert!(signed_headers("http://h/b/k").is_empty());
    }

    #[test]
    fn announcements() {
        let info = ObjectInfo { content_type: Some("image/png".into()), size: Some(10) };
        assert!(matches_announcement(&info, "image/png", 10));
        assert!(!matches_announcement(&info, "image/png", 11));
        assert!(!matches_announcement(&info, "image/jpeg", 10));
        let with_params = ObjectInfo { content_type: Some("IMAGE/PNG; x=y".into()), size: Some(10) };
        assert!(matches_announcement(&with_params, "image/png", 10));
        assert!(!matches_announcement(&ObjectInfo { content_type: None, size: Some(10) }, "image/png", 10));
        assert_eq!(object_key("lst_1", "pho_2"), "listings/lst_1/pho_2");
    }
}

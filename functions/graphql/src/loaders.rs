//! Batched reads (DataLoader over BatchGetItem), one set per request: every host profile a page
//! of listings asks for, or every listing a page of trips asks for, is one BatchGetItem (per 100
//! keys), however many items the page holds. Per request, so nothing one caller read is ever
//! served to another.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use shared::Table;
use shared::listing::ListingItem;
use shared::table::TableError;
use users::store::Profile;

use crate::schema::me::User;
use crate::schema::{FieldResult, to_graphql_error};

/// Profiles by user id (`USER#<id>` / `PROFILE`).
pub struct ProfileLoader(pub Arc<Table>);

/// Listings by id (`LISTING#<id>` / `LISTING`).
pub struct ListingLoader(pub Arc<Table>);

impl Loader<String> for ProfileLoader {
    type Value = Profile;
    type Error = Arc<TableError>;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Profile>, Self::Error> {
        let keys: Vec<_> = ids.iter().map(|id| shared::keys::user_profile(id)).collect();
        let found: Vec<Profile> = self.0.batch_get(&keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|p| (p.user_id.clone(), p)).collect())
    }
}

impl Loader<String> for ListingLoader {
    type Value = ListingItem;
    type Error = Arc<TableError>;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, ListingItem>, Self::Error> {
        let keys: Vec<_> = ids.iter().map(|id| listings::store::listing_key(id)).collect();
        let found: Vec<ListingItem> = self.0.batch_get(&keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|l| (l.listing_id.clone(), l)).collect())
    }
}

pub struct Loaders {
    profiles: DataLoader<ProfileLoader, HashMapCache>,
    listings: DataLoader<ListingLoader, HashMapCache>,
}

impl Loaders {
    pub fn new(table: &Arc<Table>) -> Self {
        Self {
            profiles: DataLoader::with_cache(ProfileLoader(table.clone()), tokio::spawn, HashMapCache::default()),
            listings: DataLoader::with_cache(ListingLoader(table.clone()), tokio::spawn, HashMapCache::default()),
        }
    }

    /// A public profile; `None` for an unknown user.
    pub async fn profile(&self, user_id: &str) -> FieldResult<Option<User>> {
        let found = self.profiles.load_one(user_id.to_owned()).await.map_err(table_error)?;
        Ok(found.as_ref().map(User::from))
    }

    /// A listing item in any state (the caller decides what it may show).
    pub async fn listing(&self, listing_id: &str) -> FieldResult<Option<ListingItem>> {
        self.listings.load_one(listing_id.to_owned()).await.map_err(table_error)
    }
}

fn table_error(e: Arc<TableError>) -> async_graphql::Error {
    // TableError is not Clone (the SDK's errors are not): DataLoader shares one error between
    // the fields that waited on the batch, so each field reports it as text.
    let e = Arc::try_unwrap(e).unwrap_or_else(|shared| TableError::from(anyhow::anyhow!("{shared}")));
    to_graphql_error(e.into())
}

//! Where inbox items live: DynamoDB in production, memory in tests. Storage decides nothing
//! about e-mails: it writes a new item once, reads one, and swaps an item's e-mail state only
//! if nobody changed it since it was read (its `rev`); the rules are in `email.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shared::Table;
use shared::keys::Key;
use shared::table::{Expr, TableError};

use crate::email::EmailState;
use crate::{BoxFuture, InboxItem};

pub trait InboxStore: Send + Sync {
    /// Writes `item` if no item has its key; `false` if one has (a redelivery of the event).
    fn put_new<'a>(&'a self, item: &'a InboxItem) -> BoxFuture<'a, anyhow::Result<bool>>;

    /// The item as stored now (strongly consistent), `None` if there is none.
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, anyhow::Result<Option<InboxItem>>>;

    /// Replaces the item's e-mail state with `new` if its `rev` is still `expected_rev`;
    /// `false` if another delivery changed it first (or the item is gone).
    fn swap_email<'a>(
        &'a self,
        key: &'a Key,
        expected_rev: u32,
        new: &'a EmailState,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;
}

/// The table: `PutItem` with `attribute_not_exists(PK)`, a consistent `GetItem`, and
/// `UpdateItem SET email = :new` with the condition `email.rev = :expected` (which also fails on
/// a missing item, so a swap never creates one).
pub struct DynamoInbox {
    pub table: Arc<Table>,
}

impl InboxStore for DynamoInbox {
    fn put_new<'a>(&'a self, item: &'a InboxItem) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            match self.table.put_new(item).await {
                Ok(()) => Ok(true),
                Err(TableError::ConditionFailed) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, anyhow::Result<Option<InboxItem>>> {
        Box::pin(async move { Ok(self.table.get::<InboxItem>(key).await?) })
    }

    fn swap_email<'a>(
        &'a self,
        key: &'a Key,
        expected_rev: u32,
        new: &'a EmailState,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let update = Expr::new("SET #email = :email").name("#email", "email").ser(":email", new)?;
            let condition = Expr::new("#email.#rev = :rev")
                .name("#email", "email")
                .name("#rev", "rev")
                .n(":rev", i64::from(expected_rev));
            match self.table.update(key, &update, Some(&condition)).await {
                Ok(()) => Ok(true),
                Err(TableError::ConditionFailed) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// In memory, with the same conditions (for tests).
#[derive(Default)]
pub struct MemoryInbox {
    items: Mutex<HashMap<(String, String), InboxItem>>,
}

impl MemoryInbox {
    /// Every item, in key order.
    pub fn items(&self) -> Vec<InboxItem> {
        let mut items: Vec<InboxItem> = self.lock().values().cloned().collect();
        items.sort_by(|a, b| (&a.key.pk, &a.key.sk).cmp(&(&b.key.pk, &b.key.sk)));
        items
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), InboxItem>> {
        self.items.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn id(key: &Key) -> (String, String) {
    (key.pk.clone(), key.sk.clone())
}

impl InboxStore for MemoryInbox {
    fn put_new<'a>(&'a self, item: &'a InboxItem) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let mut items = self.lock();
            if items.contains_key(&id(&item.key)) {
                return Ok(false);
            }
            items.insert(id(&item.key), item.clone());
            Ok(true)
        })
    }

    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, anyhow::Result<Option<InboxItem>>> {
        Box::pin(async move { Ok(self.lock().get(&id(key)).cloned()) })
    }

    fn swap_email<'a>(
        &'a self,
        key: &'a Key,
        expected_rev: u32,
        new: &'a EmailState,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let mut items = self.lock();
            match items.get_mut(&id(key)) {
                Some(item) if item.email.as_ref().is_some_and(|e| e.rev == expected_rev) => {
                    item.email = Some(new.clone());
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}

//! The listings context's DynamoDB access: one function per access pattern of
//! docs/data-model.md, each with its request count.
//!
//! Host writes to a listing are read-modify-write under an optimistic lock: the listing item's
//! `revision` must still be the one read, and the search item is rewritten from the new listing
//! in the same transaction, so the two never disagree. Only the attributes listings owns are
//! written (`LISTING_MUTABLE`, `SEARCH_DERIVED`): the rating counters (reviews) and the
//! unavailable set (every NIGHT writer) are never overwritten.

pub mod calendar_sync;
pub mod search;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use shared::Table;
use shared::keys::{self, Key, PK, SK};
use shared::listing::{self, ListingFields, ListingItem, ListingStatus, SearchItem};
use shared::night::{self, Night};
use shared::table::{Expr, Item, Page, Query, TableError, TransactError, Transaction};

use crate::rules::normalise_city;

/// Attributes of the listing item that listings writes after creation.
pub const LISTING_MUTABLE: &[&str] = &[
    "status",
    "version",
    "revision",
    "title",
    "description",
    "property_type",
    "address",
    "timezone",
    "max_guests",
    "bedrooms",
    "beds",
    "bathrooms",
    "amenities",
    "nightly_price",
    "cleaning_fee",
    "min_nights",
    "max_nights",
    "cancellation_policy",
    "check_in_time",
    "check_out_time",
    "booking_mode",
    "photos",
    "pending_photos",
    "updated_at",
];

/// Attributes of the search item derived from the listing (everything but its keys, type,
/// `listing_id`, `created_at`, the rating counters and `unavailable`).
pub const SEARCH_DERIVED: &[&str] = &[
    "GSI2PK",
    "GSI2SK",
    "status",
    "title",
    "property_type",
    "city",
    "region",
    "country",
    "max_guests",
    "bedrooms",
    "beds",
    "bathrooms",
    "price",
    "currency",
    "cleaning_fee",
    "min_nights",
    "max_nights",
    "cover_photo",
];

/// A new listing item of `host_id`: active, at version and revision 1, without photos.
pub fn new_listing(
    listing_id: String,
    host_id: &str,
    host_name: String,
    fields: ListingFields,
    now: Timestamp,
) -> ListingItem {
    let key = listing::key(&listing_id);
    ListingItem {
        pk: key.pk,
        sk: key.sk,
        item_type: listing::LISTING_ITEM_TYPE.to_owned(),
        gsi1pk: listing::host_partition(host_id),
        gsi1sk: listing::host_sort_key(&listing_id),
        listing_id,
        host_id: host_id.to_owned(),
        host_name,
        status: ListingStatus::Active,
        version: 1,
        revision: 1,
        fields,
        photos: Default::default(),
        pending_photos: Default::default(),
        rating_count: 0,
        rating_total: 0,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    }
}

/// Why `save` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Another write came first (the listing's `revision` moved): re-read and retry.
    #[error("the listing changed since it was read")]
    Stale,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Why a calendar transaction (`block`, `unblock`) wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// Indices (into the dates given) of nights that are held or booked.
    #[error("nights held or booked: {0:?}")]
    Taken(Vec<usize>),
    /// The listing is no longer active (archived meanwhile) or not the caller's.
    #[error("the listing is not the caller's active listing")]
    ListingInactive,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The search item for `l` (keys only while active: the sparse index).
pub fn search_item_for(l: &ListingItem) -> SearchItem {
    let key = listing::search_key(&l.listing_id);
    let active = l.is_active();
    SearchItem {
        pk: key.pk,
        sk: key.sk,
        item_type: listing::SEARCH_ITEM_TYPE.to_owned(),
        gsi2pk: active.then(|| listing::city_partition(&normalise_city(&l.fields.address.city))),
        gsi2sk: active.then(|| l.listing_id.clone()),
        listing_id: l.listing_id.clone(),
        status: l.status,
        title: l.fields.title.clone(),
        property_type: l.fields.property_type.clone(),
        city: l.fields.address.city.clone(),
        region: l.fields.address.region.clone(),
        country: l.fields.address.country.clone(),
        max_guests: l.fields.max_guests,
        bedrooms: l.fields.bedrooms,
        beds: l.fields.beds,
        bathrooms: l.fields.bathrooms,
        price: l.fields.nightly_price.amount,
        currency: l.fields.nightly_price.currency,
        cleaning_fee: l.fields.cleaning_fee.map(|m| m.amount),
        min_nights: l.fields.min_nights,
        max_nights: l.fields.max_nights,
        cover_photo: l.photos_in_order().next().map(|p| p.object_key.clone()),
        rating_count: l.rating_count,
        rating_total: l.rating_total,
        unavailable: Vec::new(),
        created_at: l.created_at.clone(),
    }
}

/// `SET #a = :a, ... REMOVE #b, ...` for `attrs` of `item` (absent ones are removed).
/// Placeholders are `#<attr>` / `:<attr>`, so a condition may reuse `#<attr>`.
pub fn set_or_remove(item: &Item, attrs: &[&str]) -> Expr {
    let mut e = Expr::new("");
    let (mut sets, mut removes) = (Vec::new(), Vec::new());
    for attr in attrs {
        let name = format!("#{attr}");
        e = e.name(&name, attr);
        match item.get(*attr) {
            Some(v) => {
                let value = format!(":{attr}");
                sets.push(format!("{name} = {value}"));
                e = e.value(&value, v.clone());
            }
            None => removes.push(name),
        }
    }
    let mut expression = String::new();
    if !sets.is_empty() {
        expression = format!("SET {}", sets.join(", "));
    }
    if !removes.is_empty() {
        expression = format!("{expression} REMOVE {}", removes.join(", ")).trim().to_owned();
    }
    e.expression = expression;
    e
}

/// Whether `new` differs from `old` in a field a booking depends on.
pub fn changes_versioned_fields(old: &ListingItem, new: &ListingItem) -> Result<bool, TableError> {
    let (a, b) = (shared::table::to_item(old)?, shared::table::to_item(new)?);
    Ok(listing::VERSIONED_FIELDS.iter().any(|f| a.get(*f) != b.get(*f)))
}

/// GetItem (1 request, strongly consistent).
pub async fn get(table: &Table, listing_id: &str) -> Result<Option<ListingItem>, TableError> {
    table.get(&listing::key(listing_id)).await
}

/// What the public listing's answer depends on, besides the hour its photo URLs are signed
/// for: every write listings makes bumps `revision` (`save`), reviews add to the rating
/// counters. Read alone it answers `If-None-Match` with one small GetItem.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListingStamp {
    pub status: ListingStatus,
    pub revision: u64,
    #[serde(default)]
    pub rating_count: u64,
    #[serde(default)]
    pub rating_total: u64,
}

const STAMP_ATTRS: &[&str] =
    &[listing::STATUS_ATTR, "revision", listing::RATING_COUNT_ATTR, listing::RATING_TOTAL_ATTR];

impl From<&ListingItem> for ListingStamp {
    fn from(l: &ListingItem) -> Self {
        Self { status: l.status, revision: l.revision, rating_count: l.rating_count, rating_total: l.rating_total }
    }
}

/// GetItem of the stamp only (1 request, a ProjectionExpression).
pub async fn stamp(table: &Table, listing_id: &str) -> Result<Option<ListingStamp>, TableError> {
    table.get_projected(&listing::key(listing_id), STAMP_ATTRS).await
}

/// The listing and its search item, both new: one TransactWriteItems of 2 items.
pub async fn create(table: &Table, l: &ListingItem) -> Result<(), TableError> {
    let mut tx = Transaction::new(table);
    tx.put_new(CreateItem::Listing, l)?;
    tx.put_new(CreateItem::SearchItem, &search_item_for(l))?;
    Ok(tx.commit().await?)
}

/// The items of [`create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateItem {
    Listing,
    SearchItem,
}

/// The items of [`save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveItem {
    /// Conditioned on the revision the write was computed from.
    Listing,
    SearchItem,
}

/// Writes `new` over `old`: one TransactWriteItems of 2 items (listing update conditioned on
/// `old.revision`, search item rewritten from `new`). `new.revision` must be `old.revision + 1`.
/// A failed condition on the listing means another write came first (`SaveError::Stale`): the
/// caller re-reads and retries.
pub async fn save(table: &Table, old: &ListingItem, new: &ListingItem) -> Result<(), SaveError> {
    let listing_item = shared::table::to_item(new)?;
    let update = set_or_remove(&listing_item, LISTING_MUTABLE);
    let condition = Expr::new("#revision = :seen_revision")
        .name("#revision", "revision")
        .value(":seen_revision", AttributeValue::N(old.revision.to_string()));
    let search = shared::table::to_item(&search_item_for(new))?;
    let search_update = set_or_remove(&search, SEARCH_DERIVED);
    let mut tx = Transaction::new(table);
    tx.update(SaveItem::Listing, &listing::key(&new.listing_id), &update, Some(&condition))?;
    tx.update(
        SaveItem::SearchItem,
        &listing::search_key(&new.listing_id),
        &search_update,
        Some(&listing::condition_search_item_exists()),
    )?;
    tx.commit().await.map_err(|e| match e {
        TransactError::Conditions(failed) if failed.contains(&SaveItem::Listing) => SaveError::Stale,
        other => SaveError::Table(other.into()),
    })
}

/// The listing is active and `host_id`'s: a ConditionCheck that makes ownership and status part
/// of a calendar transaction's decision.
fn condition_active_listing_of(host_id: &str) -> Expr {
    Expr::new("#l_status = :l_active AND #l_host = :l_host")
        .name("#l_status", listing::STATUS_ATTR)
        .name("#l_host", "host_id")
        .s(":l_active", ListingStatus::Active.as_str())
        .s(":l_host", host_id)
}

/// Blocks `dates` (at most 90): one TransactWriteItems of `dates + 2` items (a conditional put
/// per night, the search item's `ADD unavailable`, a ConditionCheck on the listing).
pub async fn block(
    table: &Table,
    listing_id: &str,
    host_id: &str,
    dates: &[Date],
    now: Timestamp,
) -> Result<(), CalendarError> {
    let Some(add) = listing::add_unavailable(dates) else { return Ok(()) };
    let mut tx = Transaction::new(table);
    for (i, d) in dates.iter().enumerate() {
        let night = Night::blocked(listing_id, *d, now);
        tx.put(CalendarItem::Night(i), &night, Some(&night::condition_free_or_blocked()))?;
    }
    calendar_commit(tx, listing_id, host_id, &add).await
}

/// Unblocks `dates` (at most 90): one TransactWriteItems of `dates + 2` items (a conditional
/// delete per night: free or blocked only, the search item's `DELETE unavailable`, a
/// ConditionCheck on the listing).
pub async fn unblock(table: &Table, listing_id: &str, host_id: &str, dates: &[Date]) -> Result<(), CalendarError> {
    let Some(remove) = listing::remove_unavailable(dates) else { return Ok(()) };
    let mut tx = Transaction::new(table);
    for (i, d) in dates.iter().enumerate() {
        tx.delete(CalendarItem::Night(i), &night::key(listing_id, *d), Some(&night::condition_free_or_blocked()))?;
    }
    calendar_commit(tx, listing_id, host_id, &remove).await
}

/// The items of a calendar transaction (`block`, `unblock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CalendarItem {
    /// The night at this index of the dates given.
    Night(usize),
    SearchItem,
    /// The ConditionCheck: the caller's active listing.
    Listing,
}

/// Adds the search item's `unavailable` change and the listing check to the nights' writes,
/// and commits.
async fn calendar_commit(
    mut tx: Transaction<'_, CalendarItem>,
    listing_id: &str,
    host_id: &str,
    unavailable: &Expr,
) -> Result<(), CalendarError> {
    tx.update(
        CalendarItem::SearchItem,
        &listing::search_key(listing_id),
        unavailable,
        Some(&listing::condition_search_item_exists()),
    )?;
    tx.check(CalendarItem::Listing, &listing::key(listing_id), &condition_active_listing_of(host_id))?;
    tx.commit().await.map_err(|e| match e {
        TransactError::Conditions(failed) => calendar_refusal(&failed),
        TransactError::Table(e) => CalendarError::Table(e),
    })
}

/// Why the named items' conditions failed: the listing first (nothing else matters then), then
/// the nights taken. A missing search item is a bug with no answer of its own: it stays a failed
/// condition (409 `conflict`, as before named items).
fn calendar_refusal(failed: &[CalendarItem]) -> CalendarError {
    let taken: Vec<usize> =
        failed.iter().filter_map(|item| if let CalendarItem::Night(i) = item { Some(*i) } else { None }).collect();
    if failed.contains(&CalendarItem::Listing) {
        CalendarError::ListingInactive
    } else if !taken.is_empty() {
        CalendarError::Taken(taken)
    } else {
        CalendarError::Table(TransactError::Conditions(failed.to_vec()).into())
    }
}

/// The NIGHT items with `from <= date <= last`: one Query (strongly consistent).
pub async fn nights(table: &Table, listing_id: &str, from: Date, last: Date) -> Result<Vec<Night>, TableError> {
    let mut out = Vec::new();
    let mut start = None;
    // 366 nights of ~150 bytes are one page; the loop only guards against a surprise.
    for _ in 0..4 {
        let page: Page<Night> = table.query(night::range_query(listing_id, from, last).start(start)).await?;
        out.extend(page.items);
        match page.last_key {
            Some(k) => start = Some(k),
            None => return Ok(out),
        }
    }
    Err(anyhow::anyhow!("night range of {listing_id} did not fit 4 pages").into())
}

/// One page of a host's listings, newest first: one Query on GSI1
/// (`GSI1PK = HOST#<id> AND begins_with(GSI1SK, "LISTING#")`), status as a filter.
pub async fn host_page(
    table: &Table,
    host_id: &str,
    status: Option<ListingStatus>,
    limit: u32,
    start: Option<Item>,
) -> Result<Page<ListingItem>, TableError> {
    let mut q = Query::begins_with("GSI1PK", listing::host_partition(host_id), "GSI1SK", listing::HOST_SORT_PREFIX)
        .index(listing::HOST_INDEX)
        .descending()
        .limit(limit)
        .start(start);
    if let Some(s) = status {
        q = q.filter(
            Expr::new("#f_status = :f_status").name("#f_status", listing::STATUS_ATTR).s(":f_status", s.as_str()),
        );
    }
    table.query(q).await
}

/// The host's display name from their profile (GetItem, 1 request); `None` without a profile.
/// Whether the host's payout account can receive transfers (one GetItem).
pub async fn can_receive_payouts(table: &Table, user_id: &str) -> Result<bool, TableError> {
    let account: Option<shared::payout::PayoutAccountItem> = table.get(&shared::payout::account_key(user_id)).await?;
    Ok(account.is_some_and(|a| a.can_receive()))
}

pub async fn host_name(table: &Table, user_id: &str) -> Result<Option<String>, TableError> {
    #[derive(Deserialize)]
    struct ProfileName {
        name: String,
    }
    Ok(table.get::<ProfileName>(&keys::user_profile(user_id)).await?.map(|p| p.name))
}

/// The exclusive start key of a GSI query positioned on this item (table key + index key).
pub fn index_position(pk: &str, sk: &str, index_pk: (&str, &str), index_sk: (&str, &str)) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk.to_owned())),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
        (index_pk.0.to_owned(), AttributeValue::S(index_pk.1.to_owned())),
        (index_sk.0.to_owned(), AttributeValue::S(index_sk.1.to_owned())),
    ])
}

/// Key of a listing item, for tests and callers that build positions.
pub fn listing_key(listing_id: &str) -> Key {
    listing::key(listing_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::listing::{Address, CancellationPolicy, Photo};
    use shared::page::{Partition, is_position_in};
    use shared::{Currency, Money};
    use std::collections::{BTreeMap, BTreeSet};

    fn full_listing() -> ListingItem {
        let k = listing::key("lst_1");
        let photo = Photo {
            photo_id: "pho_1".into(),
            object_key: "listings/lst_1/pho_1".into(),
            content_type: "image/png".into(),
            size: 10,
            caption: Some("c".into()),
            created_at: "t".into(),
        };
        ListingItem {
            pk: k.pk,
            sk: k.sk,
            item_type: listing::LISTING_ITEM_TYPE.into(),
            gsi1pk: listing::host_partition("u-1"),
            gsi1sk: listing::host_sort_key("lst_1"),
            listing_id: "lst_1".into(),
            host_id: "u-1".into(),
            host_name: "H".into(),
            status: ListingStatus::Active,
            version: 1,
            revision: 1,
            fields: ListingFields {
                title: "T".into(),
                description: "D".into(),
                property_type: "house".into(),
                address: Address {
                    line1: "L".into(),
                    city: "São Paulo".into(),
                    region: Some("SP".into()),
                    country: "BR".into(),
                    postal_code: Some("1".into()),
                },
                timezone: "America/Sao_Paulo".into(),
                max_guests: 2,
                bedrooms: 1,
                beds: 1,
                bathrooms: 1,
                amenities: vec!["wifi".into()],
                nightly_price: Money::new(100, Currency::USD),
                cleaning_fee: Some(Money::new(10, Currency::USD)),
                min_nights: 1,
                max_nights: 30,
                cancellation_policy: CancellationPolicy::Strict,
                check_in_time: "15:00".into(),
                check_out_time: "11:00".into(),
                booking_mode: Default::default(),
            },
            photos: BTreeMap::from([("pho_1".to_owned(), photo)]),
            pending_photos: BTreeMap::new(),
            rating_count: 1,
            rating_total: 5,
            created_at: "t".into(),
            updated_at: "t".into(),
        }
    }

    fn names(item: &Item) -> BTreeSet<String> {
        item.keys().cloned().collect()
    }

    #[test]
    fn mutable_lists_cover_every_owned_attribute() {
        let l = full_listing();
        let mut all = names(&shared::table::to_item(&l).unwrap());
        for fixed in ["PK", "SK", "type", "GSI1PK", "GSI1SK", "listing_id", "host_id", "host_name", "created_at"] {
            assert!(all.remove(fixed), "{fixed}");
        }
        for other_writers in ["rating_count", "rating_total"] {
            assert!(all.remove(other_writers));
        }
        let listed: BTreeSet<String> = LISTING_MUTABLE.iter().map(|s| s.to_string()).collect();
        assert_eq!(all, listed);

        let mut s = search_item_for(&l);
        s.unavailable = vec!["2026-01-01".into()];
        let mut all = names(&shared::table::to_item(&s).unwrap());
        for fixed in ["PK", "SK", "type", "listing_id", "created_at", "rating_count", "rating_total", "unavailable"] {
            assert!(all.remove(fixed), "{fixed}");
        }
        let listed: BTreeSet<String> = SEARCH_DERIVED.iter().map(|s| s.to_string()).collect();
        assert_eq!(all, listed);
    }

    #[test]
    fn search_items_are_sparse_and_keyed_by_the_normalised_city() {
        let mut l = full_listing();
        let s = search_item_for(&l);
        assert_eq!(s.gsi2pk.as_deref(), Some("CITY#sao paulo"));
        assert_eq!(s.gsi2sk.as_deref(), Some("lst_1"));
        assert_eq!(s.cover_photo.as_deref(), Some("listings/lst_1/pho_1"));
        assert_eq!((s.price, s.currency, s.cleaning_fee), (100, Currency::USD, Some(10)));
        l.status = ListingStatus::Archived;
        let s = search_item_for(&l);
        assert_eq!((s.gsi2pk, s.gsi2sk), (None, None));
        let update = set_or_remove(&shared::table::to_item(&search_item_for(&l)).unwrap(), SEARCH_DERIVED);
        assert!(update.expression.contains("REMOVE #GSI2PK, #GSI2SK"), "{}", update.expression);
    }

    #[test]
    fn set_or_remove_builds_one_expression() {
        let item: Item = HashMap::from([("a".to_owned(), AttributeValue::S("x".into()))]);
        let e = set_or_remove(&item, &["a", "b"]);
        assert_eq!(e.expression, "SET #a = :a REMOVE #b");
        assert_eq!(e.names["#b"], "b");
        assert_eq!(e.values[":a"], AttributeValue::S("x".into()));
        assert_eq!(set_or_remove(&item, &["b"]).expression, "REMOVE #b");
    }

    #[test]
    fn versioned_changes() {
        let old = full_listing();
        let mut new = old.clone();
        new.fields.description = "other".into();
        new.fields.amenities.push("pool".into());
        new.photos.clear();
        assert!(!changes_versioned_fields(&old, &new).unwrap());
        for change in [
            |l: &mut ListingItem| l.fields.nightly_price.amount += 1,
            |l: &mut ListingItem| l.fields.cleaning_fee = None,
            |l: &mut ListingItem| l.fields.max_nights = 20,
            |l: &mut ListingItem| l.fields.cancellation_policy = CancellationPolicy::Flexible,
            |l: &mut ListingItem| l.fields.timezone = "UTC".into(),
            |l: &mut ListingItem| l.fields.check_in_time = "16:00".into(),
            |l: &mut ListingItem| l.fields.title = "New".into(),
            |l: &mut ListingItem| l.status = ListingStatus::Archived,
            |l: &mut ListingItem| l.fields.max_guests = 3,
        ] {
            let mut new = old.clone();
            change(&mut new);
            assert!(changes_versioned_fields(&old, &new).unwrap());
        }
    }

    #[test]
    fn calendar_failures_name_the_nights() {
        use CalendarItem::{Listing, Night, SearchItem};
        assert!(matches!(calendar_refusal(&[Night(1)]), CalendarError::Taken(t) if t == [1]));
        assert!(matches!(calendar_refusal(&[Night(0), Night(2)]), CalendarError::Taken(t) if t == [0, 2]));
        assert!(matches!(calendar_refusal(&[Night(1), Listing]), CalendarError::ListingInactive));
        match calendar_refusal(&[SearchItem]) {
            CalendarError::Table(e) => {
                let answer = shared::ApiError::from(e);
                let problem = answer.problem().expect("a problem, not a 500");
                assert_eq!((problem.status.as_u16(), problem.code), (409, "conflict"), "a missing search item");
            }
            other => panic!("a missing search item is a bug, not {other:?}"),
        }
    }

    #[test]
    fn positions() {
        let p = index_position("LISTING#l", "SEARCH", ("GSI2PK", "CITY#x"), ("GSI2SK", "l"));
        // What the search seals as its next position, the search's cursor check accepts.
        let search = |city| Partition::index("GSI2", city, "");
        assert!(is_position_in(&p, &search("CITY#x")));
        assert!(!is_position_in(&p, &search("CITY#y")));
        assert_eq!(listing_key("l"), Key::new("LISTING#l", "LISTING"));
    }
}

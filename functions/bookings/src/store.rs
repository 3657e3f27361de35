//! The bookings context's DynamoDB access: one function per access pattern of
//! docs/data-model.md, each with its request count.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::TransactWriteItem;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::Table;
use shared::booking::{self, BookingItem, BookingStatus, HoldSlot};
use shared::events::{self, BookingCreated, Envelope};
use shared::idempotency::{IdempotencyRecord, Idempotent, StoredResponse};
use shared::keys::{self, Key, PK, SK};
use shared::listing::{self, ListingItem, MAX_STAY_NIGHTS};
use shared::night::{self, Night};
use shared::page::Partition;
use shared::payout::PayoutItem;
use shared::table::{Expr, Item, MAX_TRANSACTION_ITEMS, Page, Query, TableError, TransactError, Transaction};

use crate::rules::SlotClaim;

/// Items of a booking's transaction besides its nights: the idempotency record, the listing's
/// ConditionCheck, the search item's update, the booking itself, its payout, the guest's hold slot and its
/// `booking.created` outbox item.
pub const FIXED_ITEMS: usize = 7;
const _: () = assert!(MAX_STAY_NIGHTS as usize + FIXED_ITEMS <= MAX_TRANSACTION_ITEMS);

/// GetItem of the listing (1 request, strongly consistent).
pub async fn listing(table: &Table, listing_id: &str) -> Result<Option<ListingItem>, TableError> {
    table.get(&listing::key(listing_id)).await
}

/// The nights among `nights` that are taken at `now` (blocked, booked, or held by a hold that has
/// not lapsed): one strongly consistent Query on the listing's NIGHT range (at most 90 items of
/// about 200 bytes: one page).
pub async fn taken_nights(
    table: &Table,
    listing_id: &str,
    nights: &[Date],
    now: Timestamp,
) -> Result<Vec<Date>, TableError> {
    let (Some(first), Some(last)) = (nights.first(), nights.last()) else { return Ok(Vec::new()) };
    let page: Page<Night> = table.query(night::range_query(listing_id, *first, *last)).await?;
    if page.last_key.is_some() {
        return Err(anyhow::anyhow!("NIGHT range of {listing_id} did not fit one page").into());
    }
    let mut taken: Vec<Date> = page
        .items
        .iter()
        .filter(|n| n.is_taken_at(now))
        .filter_map(Night::civil_date)
        .filter(|d| nights.contains(d))
        .collect();
    taken.sort();
    Ok(taken)
}

/// What `POST /v1/bookings` reads before writing.
#[derive(Debug, Default)]
pub struct BookingReads {
    pub listing: Option<ListingItem>,
    /// The guest's display name from their profile.
    pub guest_name: Option<String>,
    pub idempotency: Option<IdempotencyRecord>,
    /// The guest's hold slot items that exist.
    pub hold_slots: Vec<HoldSlot>,
}

/// One BatchGetItem (1 request, strongly consistent): the listing, the guest's profile, the
/// guest's hold slots and, with an `Idempotency-Key`, its record.
pub async fn booking_reads(
    table: &Table,
    listing_id: &str,
    guest_id: &str,
    idempotency: Option<&Key>,
) -> Result<BookingReads, TableError> {
    let listing_key = listing::key(listing_id);
    let profile_key = keys::user_profile(guest_id);
    let slot_keys = booking::hold_slot_keys(guest_id);
    let mut wanted = vec![listing_key.clone(), profile_key.clone()];
    wanted.extend(slot_keys.iter().cloned());
    wanted.extend(idempotency.cloned());
    let mut reads = BookingReads::default();
    for item in table.batch_get::<Value>(&wanted).await? {
        let key = Key::new(text(&item, PK), text(&item, SK));
        if key == listing_key {
            reads.listing = Some(decode(item, &key)?);
        } else if key == profile_key {
            #[derive(Deserialize)]
            struct ProfileName {
                name: String,
            }
            reads.guest_name = Some(decode::<ProfileName>(item, &key)?.name);
        } else if Some(&key) == idempotency {
            reads.idempotency = Some(decode(item, &key)?);
        } else if slot_keys.contains(&key) {
            reads.hold_slots.push(decode(item, &key)?);
        }
    }
    Ok(reads)
}

/// The effective status at `now` of each of `booking_ids` that exists: one BatchGetItem
/// (1 request, strongly consistent), only when every hold slot of the guest looks taken.
pub async fn booking_statuses(
    table: &Table,
    booking_ids: &[String],
    now: Timestamp,
) -> Result<HashMap<String, BookingStatus>, TableError> {
    let keys: Vec<Key> = booking_ids.iter().map(|id| booking::key(id)).collect();
    let found: Vec<BookingItem> = table.batch_get(&keys).await?;
    Ok(found.into_iter().map(|b| (b.booking_id.clone(), b.effective_status(now))).collect())
}

fn decode<T: DeserializeOwned>(item: Value, key: &Key) -> Result<T, TableError> {
    Ok(serde_json::from_value(item).with_context(|| format!("decode item {}/{}", key.pk, key.sk))?)
}

fn text(item: &Value, attr: &str) -> String {
    item.get(attr).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The items of a booking's transaction, in the order they are sent (docs/data-model.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateItem {
    /// The idempotency record with its stored response (with an `Idempotency-Key`; condition:
    /// no live record).
    Idempotency,
    /// ConditionCheck on the listing: active, at the version the price came from.
    Listing,
    /// The search item: `ADD unavailable :nights` (condition: it exists).
    SearchItem,
    /// The booking (condition: new).
    Booking,
    /// Its payout item (condition: new; exists iff the booking does).
    Payout,
    /// The guest's hold slot (condition: it still names the booking it was judged free with:
    /// `shared::booking::condition_slot_unchanged`).
    HoldSlot,
    /// Its `booking.created` outbox item (a new id: never fails).
    Event,
    /// One NIGHT put per night (condition: free, or held by a hold that lapsed before `now`:
    /// taken over).
    Night(Date),
}

/// Why a booking was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The idempotency record exists: another request with this key committed first.
    #[error("another request with this Idempotency-Key committed first")]
    Duplicate,
    /// The listing is no longer active, or not at the version the price came from.
    #[error("the listing changed since it was read")]
    ListingChanged,
    /// These nights are taken.
    #[error("nights taken: {0:?}")]
    NightsTaken(Vec<Date>),
    /// Another booking of the guest took the hold slot first: judge the slots again.
    #[error("the hold slot was taken by another booking")]
    HoldSlotTaken,
    #[error(transparent)]
    Table(#[from] TableError),
}

impl CreateError {
    /// The refusal the failed items mean, the first that applies in this order: a duplicate, a
    /// changed listing, taken nights (all of them named), a lost hold slot.
    fn refused(failed: &[CreateItem]) -> Self {
        if failed.contains(&CreateItem::Idempotency) {
            return Self::Duplicate;
        }
        if failed.contains(&CreateItem::Listing) {
            return Self::ListingChanged;
        }
        let taken: Vec<Date> =
            failed.iter().filter_map(|i| if let CreateItem::Night(d) = i { Some(*d) } else { None }).collect();
        if !taken.is_empty() {
            return Self::NightsTaken(taken);
        }
        if failed.contains(&CreateItem::HoldSlot) {
            Self::HoldSlotTaken
        } else {
            Self::Table(TransactError::Conditions(failed.to_vec()).into())
        }
    }
}

/// What a new booking writes: the booking, its payout (scheduled with its terms), its nights
/// and the hold slot it takes.
pub struct NewBookingItems<'a> {
    pub booking: &'a BookingItem,
    pub payout: &'a PayoutItem,
    pub nights: &'a [Date],
    pub slot: &'a SlotClaim,
}

/// Creates the booking holding its nights until its `hold_expires_at`: ONE TransactWriteItems
/// (1 request) of up to `nights + 7` items (`CreateItem`).
pub async fn create(
    table: &Table,
    new: NewBookingItems<'_>,
    now: Timestamp,
    idempotency: Option<(&Idempotent, StoredResponse)>,
) -> Result<(), CreateError> {
    let NewBookingItems { booking: b, payout, nights, slot } = new;
    let hold_until: Timestamp = b
        .hold_expires_at
        .as_deref()
        .ok_or_else(|| TableError::from(anyhow::anyhow!("new booking {} has no hold", b.booking_id)))?
        .parse()
        .map_err(|e| TableError::from(anyhow::anyhow!("hold of {}: {e}", b.booking_id)))?;
    let add = listing::add_unavailable(nights)
        .ok_or_else(|| TableError::from(anyhow::anyhow!("booking {} has no nights", b.booking_id)))?;
    let mut tx = Transaction::new(table);
    if let Some((request, response)) = idempotency {
        tx.push(CreateItem::Idempotency, request.tx_put_completed(table, response, now)?);
    }
    tx.check(CreateItem::Listing, &listing::key(&b.listing_id), &listing::condition_bookable(b.listing_version))?;
    tx.update(
        CreateItem::SearchItem,
        &listing::search_key(&b.listing_id),
        &add,
        Some(&listing::condition_search_item_exists()),
    )?;
    tx.put_new(CreateItem::Booking, b)?;
    tx.put_new(CreateItem::Payout, payout)?;
    let taken = HoldSlot::taken(&b.guest.user_id, slot.slot, &b.booking_id, hold_until, now);
    tx.put(CreateItem::HoldSlot, &taken, Some(&booking::condition_slot_unchanged(slot.seen_booking.as_deref())))?;
    // The event exists iff the booking does: same transaction (docs/events.md).
    tx.push(CreateItem::Event, booking_created(table, b, hold_until, now)?);
    for d in nights {
        let held = Night::held(&b.listing_id, *d, &b.booking_id, hold_until, now);
        tx.put(CreateItem::Night(*d), &held, Some(&night::condition_free_or_expired_hold(now)))?;
    }
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(TransactError::Conditions(failed)) => Err(CreateError::refused(&failed)),
        Err(TransactError::Table(e)) => Err(e.into()),
    }
}

/// The `booking.created` outbox item of `b`.
fn booking_created(
    table: &Table,
    b: &BookingItem,
    hold_until: Timestamp,
    now: Timestamp,
) -> Result<TransactWriteItem, TableError> {
    let created = Envelope::new(
        BookingCreated {
            booking_id: b.booking_id.clone(),
            listing_id: b.listing_id.clone(),
            guest_id: b.guest.user_id.clone(),
            host_id: b.host.user_id.clone(),
            check_in: b.check_in,
            check_out: b.check_out,
            total: b.price.total_money(),
            hold_expires_at: hold_until,
        },
        now,
    );
    events::outbox_put(table, &created).map_err(|e| TableError::from(anyhow::anyhow!("booking.created: {e}")))
}

/// A booking and its payout in ONE consistent Query (`PK = BOOKING#<id> AND SK BETWEEN
/// "BOOKING" AND "PAYOUT"`: the partition's other items, the review mark, sort after). The
/// payout is `None` for bookings made before payouts.
pub async fn booking_with_payout(
    table: &Table,
    booking_id: &str,
) -> Result<Option<(BookingItem, Option<PayoutItem>)>, TableError> {
    let key = booking::key(booking_id);
    let q = Query::between(PK, key.pk, SK, booking::SK, shared::payout::PAYOUT_SK).consistent();
    let page: Page<Value> = table.query(q).await?;
    let mut found = (None, None);
    for item in page.items {
        let decode = |what: &str| TableError::from(anyhow::anyhow!("{what} of {booking_id} unreadable"));
        match item.get(SK).and_then(Value::as_str) {
            Some(booking::SK) => found.0 = Some(serde_json::from_value(item).map_err(|_| decode("booking"))?),
            Some(shared::payout::PAYOUT_SK) => {
                found.1 = Some(serde_json::from_value(item).map_err(|_| decode("payout"))?);
            }
            _ => {}
        }
    }
    Ok(found.0.map(|b| (b, found.1)))
}

/// GetItem of a booking (1 request, strongly consistent).
pub async fn booking(table: &Table, booking_id: &str) -> Result<Option<BookingItem>, TableError> {
    table.get(&booking::key(booking_id)).await
}

/// One page of a guest's trips, newest first: one Query on GSI1
/// (`GSI1PK = GUEST#<id> AND begins_with(GSI1SK, "BOOKING#")`), the status as a filter.
pub async fn trips_page(
    table: &Table,
    guest_id: &str,
    status: Option<BookingStatus>,
    limit: u32,
    start: Option<Item>,
    now: Timestamp,
) -> Result<Page<BookingItem>, TableError> {
    let q = newest_first(booking::GUEST_INDEX, booking::guest_partition(guest_id), limit, start);
    table
        .query(match status {
            Some(s) => q.filter(booking::status_filter(s, now)),
            None => q,
        })
        .await
}

/// One page of a host's reservations, newest first: one Query on GSI2
/// (`GSI2PK = HOST#<id> AND begins_with(GSI2SK, "BOOKING#")`), one listing and one status as
/// filters.
pub async fn reservations_page(
    table: &Table,
    host_id: &str,
    listing_id: Option<&str>,
    status: Option<BookingStatus>,
    limit: u32,
    start: Option<Item>,
    now: Timestamp,
) -> Result<Page<BookingItem>, TableError> {
    let q = newest_first(booking::HOST_INDEX, booking::host_partition(host_id), limit, start);
    let listing = listing_id.map(|id| {
        Expr::new("#f_listing = :f_listing").name("#f_listing", booking::LISTING_ID_ATTR).s(":f_listing", id)
    });
    let filter = match (listing, status.map(|s| booking::status_filter(s, now))) {
        (Some(l), Some(s)) => Some(l.and(s)),
        (l, s) => l.or(s),
    };
    table
        .query(match filter {
            Some(f) => q.filter(f),
            None => q,
        })
        .await
}

/// The bookings in one partition of `index` (`GSI1` or `GSI2`, keys `<index>PK`/`<index>SK`),
/// newest first.
fn newest_first(index: &str, partition: String, limit: u32, start: Option<Item>) -> Query {
    Query::begins_with(&format!("{index}PK"), partition, &format!("{index}SK"), booking::INDEX_SORT_PREFIX)
        .index(index)
        .descending()
        .limit(limit)
        .start(start)
}

/// Where a cursor of a guest's trips may point: a booking position in `pk`
/// (`booking::guest_partition`) of GSI1.
pub fn trip_positions(pk: &str) -> Partition<'_> {
    Partition::index(booking::GUEST_INDEX, pk, booking::INDEX_SORT_PREFIX)
}

/// Where a cursor of a host's reservations may point: a booking position in `pk`
/// (`booking::host_partition`) of GSI2.
pub fn reservation_positions(pk: &str) -> Partition<'_> {
    Partition::index(booking::HOST_INDEX, pk, booking::INDEX_SORT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::keys::{PK, SK};
    use shared::page::is_position_in;

    fn position(pk: &str, sk: &str, index: [(&str, &str); 2]) -> Item {
        let mut m = HashMap::from([
            (PK.to_owned(), AttributeValue::S(pk.to_owned())),
            (SK.to_owned(), AttributeValue::S(sk.to_owned())),
        ]);
        for (a, v) in index {
            m.insert(a.to_owned(), AttributeValue::S(v.to_owned()));
        }
        m
    }

    #[test]
    fn a_ninety_night_stay_fits_one_transaction() {
        assert_eq!(MAX_STAY_NIGHTS as usize + FIXED_ITEMS, 97);
        assert!(MAX_STAY_NIGHTS as usize + FIXED_ITEMS <= MAX_TRANSACTION_ITEMS);
    }

    #[test]
    fn failed_items_name_the_first_refusal_that_applies() {
        use CreateItem::*;
        let (d1, d2): (Date, Date) = ("2026-03-01".parse().unwrap(), "2026-03-03".parse().unwrap());
        assert!(matches!(CreateError::refused(&[Idempotency, Listing, Night(d1)]), CreateError::Duplicate));
        assert!(matches!(CreateError::refused(&[Listing, HoldSlot, Night(d1)]), CreateError::ListingChanged));
        assert!(
            matches!(CreateError::refused(&[Night(d1), HoldSlot, Night(d2)]), CreateError::NightsTaken(ref v) if *v == [d1, d2])
        );
        assert!(matches!(CreateError::refused(&[HoldSlot]), CreateError::HoldSlotTaken));
        // Items that never fail by design (the search item exists with its listing): a conflict.
        assert!(matches!(CreateError::refused(&[SearchItem]), CreateError::Table(TableError::ConditionFailed)));
    }

    #[test]
    fn positions_must_be_in_the_partition() {
        let p = position("BOOKING#b", "BOOKING", [("GSI1PK", "GUEST#u-1"), ("GSI1SK", "BOOKING#b")]);
        assert!(is_position_in(&p, &trip_positions("GUEST#u-1")));
        assert!(!is_position_in(&p, &trip_positions("GUEST#u-2")));
        assert!(!is_position_in(&p, &reservation_positions("GUEST#u-1")));
        let mut extra = p.clone();
        extra.insert("x".into(), AttributeValue::S("y".into()));
        assert!(!is_position_in(&extra, &trip_positions("GUEST#u-1")));
        let other = position("BOOKING#b", "BOOKING", [("GSI1PK", "GUEST#u-1"), ("GSI1SK", "LISTING#l")]);
        assert!(!is_position_in(&other, &trip_positions("GUEST#u-1")), "only bookings' positions");
    }
}
